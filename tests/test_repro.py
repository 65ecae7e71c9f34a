"""afpbisect.machinery.repro_session: the rendered yaml, CycleRecord, and (marked docker) real sessions.

The docker tests build a tiny image FROM the local base image with python3 + iproute2 and
run sessions with a stand-in target (a python script at usr/local/bin/suricata in a temp
product dir) that follows the run contract: reads the af-packet section line by line, opens
AF_PACKET sockets on the SFE interfaces, forwards real frames between each pair, prints
Suricata's console lines.  Forwarded counters therefore come from real traffic over the
veths.  The C synthetic target is not needed here."""
from __future__ import annotations

import io
import re
import signal
import threading
import uuid

import pytest

from afpbisect.core.errors import InfraError, UsageError
from afpbisect.core.scenario import HitSection, load as load_scenario
from afpbisect.machinery.repro_record import CycleRecord
from afpbisect.machinery.repro_session import ReproEnv
from afpbisect.machinery.repro_settings import ReproSettings, driver_config, render_suricata_yaml
from afpbisect.core.verdict import CycleOutcome

BASE_IMAGE = "afpbisect/debian-local:bookworm"


# ---------------------------------------------------------------------------------------
# pure
# ---------------------------------------------------------------------------------------

def test_yaml_af_packet_section_follows_the_contract():
    text = render_suricata_yaml(ReproSettings(pairs=3, threads=4))
    lines = text.splitlines()
    start = lines.index("af-packet:")
    items, cur = [], None
    # Parse exactly as the synthetic target does: line by line, "- interface:" opens an item.
    for line in lines[start + 1:]:
        if line and not line.startswith(" "):
            break
        m = re.match(r"^  - interface: (\S+)$", line)
        if m:
            cur = {"interface": m.group(1)}
            items.append(cur)
            continue
        m = re.match(r"^    ([a-z0-9-]+): (\S+)$", line)
        assert m, f"unexpected line in af-packet section: {line!r}"
        cur[m.group(1)] = m.group(2)
    assert [i["interface"] for i in items] == ["SFE_0_TX", "SFE_0_RX", "SFE_1_TX", "SFE_1_RX",
                                               "SFE_2_TX", "SFE_2_RX"]
    for it in items:
        assert it["threads"] == "4"
        assert it["copy-mode"] == "ips"
        peer = it["interface"][:-2] + ("RX" if it["interface"].endswith("TX") else "TX")
        assert it["copy-iface"] == peer
        assert it["tpacket-v3"] == "no" and it["defrag"] == "no" and it["use-mmap"] == "yes"
        assert it["cluster-type"] == "cluster_flow"
    ids = [int(i["cluster-id"]) for i in items]
    assert len(set(ids)) == len(ids)


def test_yaml_is_valid_yaml_with_the_settings():
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load(render_suricata_yaml(ReproSettings(pairs=2, threads=1, ring_size=1024)))
    assert doc["runmode"] == "workers"
    assert doc["rule-files"] == []
    assert doc["host-mode"] == "router"
    assert len(doc["af-packet"]) == 4
    assert doc["af-packet"][0]["ring-size"] == 1024
    assert doc["af-packet"][0]["tpacket-v3"] is False
    assert doc["logging"]["default-log-level"] == "notice"
    assert all(not o[k]["enabled"] for o in doc["outputs"] for k in o)
    for key in ("classification-file", "reference-config-file", "threshold-file"):
        assert doc[key] == "/dev/null"


def test_driver_config_carries_the_settings():
    cfg = driver_config(ReproSettings(env={"DELAY_US": "20000"}, traffic_pps=100, send_rx=True), "tok")
    assert cfg["env"] == {"DELAY_US": "20000"} and cfg["traffic_pps"] == 100 and cfg["send_rx"] is True
    assert cfg["binary"] == "/opt/product/usr/local/bin/suricata"
    assert cfg["session"] == "tok"


@pytest.mark.parametrize("kw, outcome", [
    (dict(started=True, signature_lines=["x"]), CycleOutcome.HIT),
    # the signature is evidence even when the cycle went wrong otherwise
    (dict(started=False, early_exit=True, signature_lines=["x"]), CycleOutcome.HIT),
    (dict(started=True, killed=True, signature_lines=["x"]), CycleOutcome.HIT),
    (dict(started=True), CycleOutcome.CLEAN),
    (dict(started=True, forwarded_after_start={"SFE_0_RX": 812, "SFE_1_RX": 790}), CycleOutcome.CLEAN),
    # issue 16: the target, not the machinery, failed: no evidence, and not INFRA either
    (dict(started=False, start_timeout=True), CycleOutcome.UNHEALTHY),
    (dict(started=False, early_exit=True), CycleOutcome.UNHEALTHY),
    (dict(started=True, killed=True), CycleOutcome.UNHEALTHY),
    (dict(started=True, died=True), CycleOutcome.UNHEALTHY),
    # 0 forwarded on one pair under live traffic: the IPS path never came up, not clean
    (dict(started=True, forwarded_after_start={"SFE_0_RX": 812, "SFE_1_RX": 0}), CycleOutcome.UNHEALTHY),
    (dict(started=True, signature_lines=["x"], forwarded_after_start={"SFE_0_RX": 0}), CycleOutcome.HIT),
    # the machinery: the driver's error, an unreadable counter
    (dict(started=True, error="docker"), CycleOutcome.INFRA),
    (dict(started=True, forwarded_after_start={"SFE_0_RX": None}), CycleOutcome.INFRA),
])
def test_outcome_rule(kw, outcome):
    assert CycleRecord(index=1, **kw).outcome() == outcome


def test_health_rule_names_the_problem_and_can_be_relaxed():
    from afpbisect.machinery.repro_record import HealthRule
    rec = CycleRecord(index=1, started=True, forwarded_after_start={"SFE_0_RX": 812, "SFE_1_RX": 0},
                      offered={"SFE_0_TX": 900, "SFE_1_TX": 880})
    assert HealthRule().problem(rec) == "forwarded nothing after start on SFE_1_RX (0 of 880 offered)"
    assert rec.outcome(HealthRule(min_forwarded=0)) is CycleOutcome.CLEAN
    gone = CycleRecord(index=2, early_exit=True, exit_code=1, error_lines=["Error: bad option"])
    assert HealthRule().problem(gone) == "exited before start (exit 1): Error: bad option"


def test_record_round_trip_and_tolerance():
    rec = CycleRecord(index=3, started=True, start_seconds=1.5, exit_code=0,
                      signature_lines=["a"], signature_before_start=True,
                      forwarded_after_start={"SFE_0_RX": 10}, shutdown_counters={"SFE_0_TX": {"packets": 1}},
                      log_path="/x/cycle-003/console.log", duration=4.2)
    d = rec.to_dict()
    assert CycleRecord.from_dict(d) == rec
    assert CycleRecord.from_dict({**d, "wall": 5.0, "future_key": 1}) == rec   # pipeline adds "wall"
    old = {k: v for k, v in d.items() if k not in ("died", "offered", "error_lines")}
    assert CycleRecord.from_dict(old) == rec


# ---------------------------------------------------------------------------------------
# docker
# ---------------------------------------------------------------------------------------

STANDIN = r'''#!/usr/bin/python3
"""Stand-in target for afpbisect's repro tests (see tests/test_repro.py).  Mode: ../../../mode."""
import os, signal, socket, stat, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
MODE = open(os.path.join(HERE, "..", "..", "..", "mode")).read().strip()
SIG = "sending packet failed on socket 0: Socket operation on non-socket"

def say(thread, level, subsys, msg):
    print(f"[{thread}] {time.strftime('%Y-%m-%d %H:%M:%S')} {level}: {subsys}: {msg}", flush=True)

def die(msg, code=2):
    say("Suricata-Main", "Error", "standin", msg)
    sys.exit(code)

say("Suricata-Main", "Notice", "suricata", "This is Suricata version 8.0.0-dev (standin) running in SYSTEM mode")
a = sys.argv[1:]
# the run contract
if a[:1] != ["-c"] or "--af-packet" not in a or a[a.index("-k") + 1] != "none" or a[a.index("-S") + 1] != "/dev/null":
    die(f"contract: argv {a}")
logdir = a[a.index("-l") + 1]
if not os.path.isdir(logdir):
    die(f"contract: no log dir {logdir}")
if stat.S_ISSOCK(os.fstat(0).st_mode):
    die("contract: stdin is a socket")
if not os.environ.get("LD_LIBRARY_PATH", "").startswith("/opt/product/usr/local/lib"):
    die("contract: LD_LIBRARY_PATH")
widen = int(os.environ["SURICATA_RING_SETUP_DELAY_US"])
if MODE == "crash":
    die("af-packet: SFE_0_TX: failed to bind socket: No such device", 1)

peers = {}
cur = None
with open(a[1]) as fh:           # line by line, as the synthetic target does
    for line in fh:
        s = line.strip()
        if s.startswith("- interface:"):
            cur = s.split(":", 1)[1].strip()
        elif s.startswith("copy-iface:") and cur:
            peers[cur] = s.split(":", 1)[1].strip()

stop = threading.Event()
signal.signal(signal.SIGTERM, signal.SIG_IGN if MODE == "hang" else (lambda *_: stop.set()))
socks = {}
for iface in peers:
    so = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    so.bind((iface, 0))
    so.settimeout(0.2)
    socks[iface] = so
counts = {i: 0 for i in peers}
time.sleep(widen / 1e6)          # "ring setup"
if MODE == "slow":
    stop.wait(3600)
    sys.exit(0)
wedged = set()
if MODE == "bad":
    for iface in peers:
        if iface.endswith("_TX"):
            say(f"W#01-{iface}", "Warning", "af-packet", f"{peers[iface]}: {SIG}")
    wedged.add("SFE_0_TX")        # pair 0 never forwards, like the ticket's wedge

def forward(iface):
    src, dst = socks[iface], socks[peers[iface]]
    while not stop.is_set():
        try:
            data, addr = src.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        counts[iface] += 1
        if iface not in wedged:
            try:
                dst.send(data)
            except OSError:
                pass

for iface in peers:
    threading.Thread(target=forward, args=(iface,), daemon=True).start()
say("Suricata-Main", "Notice", "threads", f"Threads created -> W: {len(peers) * 2} FM: 1 FR: 1   Engine started.")
while not stop.wait(0.1):
    pass
say("Suricata-Main", "Notice", "suricata", "Signal Received.  Stopping engine.")
for iface in peers:
    say("Suricata-Main", "Notice", "device", f"{iface}: packets: {counts[iface]}, drops: 0 (0.00%), invalid chksum: 0")
sys.exit(0)
'''


def _product(tmp_path, mode: str):
    d = tmp_path / f"product-{mode}"
    (d / "usr/local/bin").mkdir(parents=True)
    (d / "usr/local/lib").mkdir(parents=True)
    b = d / "usr/local/bin/suricata"
    b.write_text(STANDIN)
    b.chmod(0o755)
    (d / "mode").write_text(mode + "\n")
    return d


def _ours(engine):
    return engine.client.containers.list(all=True, filters={"label": f"afpbisect.run={engine.run_id}"})


@pytest.fixture(scope="module")
def engine():
    from afpbisect.machinery.engine import connect
    try:
        eng = connect(f"test-repro-{uuid.uuid4().hex[:8]}")
    except InfraError as exc:
        pytest.skip(f"no Docker engine: {exc}")
    yield eng
    eng.cleanup_run()


@pytest.fixture(scope="module")
def repro_image(engine):
    import docker.errors
    try:
        engine.client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"base image {BASE_IMAGE} is missing (no registry here: it is made by "
                    "debootstrap + docker import, afpbisect.machinery.baseimage.ensure_base_image)")
    tag = f"afpbisect-test/repro:{engine.run_id}"
    dockerfile = (f"FROM {BASE_IMAGE}\n"
                  "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                  "--no-install-recommends python3 iproute2 >/dev/null && rm -rf /var/lib/apt/lists/*\n")
    try:
        engine.client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, network_mode="host",
                                   labels=engine.labels, rm=True, forcerm=True)
    except docker.errors.BuildError as exc:
        pytest.skip(f"could not build the test image (apt over the host network): {exc}")
    yield tag
    engine.client.images.remove(tag, force=True)


def _settings(**kw):
    base = dict(pairs=2, threads=2, env={"SURICATA_RING_SETUP_DELAY_US": "200000"})
    timing = dict(traffic_pps=2000, traffic_seconds=2.0, start_timeout=20.0, stop_timeout=5.0)
    timing.update(kw)
    return ReproSettings.from_scenario(load_scenario(), **base, **timing)


@pytest.mark.docker
def test_session_clean_then_hit(engine, repro_image, tmp_path):
    env = ReproEnv(engine, _settings())
    with env.session(repro_image, _product(tmp_path, "good"), tmp_path / "logs-good") as s:
        assert s.ready["ipv6_disabled"] is True
        c = engine.client.containers.get(s.container.id)
        assert c.labels["afpbisect.run"] == engine.run_id and c.labels["afpbisect"] == "1"
        assert c.attrs["HostConfig"]["NetworkMode"] == "none"
        assert set(c.attrs["HostConfig"]["CapAdd"]) >= {"NET_ADMIN", "NET_RAW"}
        assert not c.attrs["HostConfig"]["Privileged"]
        recs = [s.cycle(i) for i in (1, 2)]
    for i, r in enumerate(recs, start=1):
        assert r.outcome() == CycleOutcome.CLEAN, r
        assert r.index == i and r.exit_code == 0 and not r.killed
        assert 0.2 <= r.start_seconds < 5
        assert r.signature_lines == [] and r.other_send_errors == 0
        assert set(r.forwarded_after_start) == {"SFE_0_RX", "SFE_1_RX"}
        # 2000 pps over 2 pairs for 2 s: about 2000 frames each; real frames over the veths
        assert all(n > 1000 for n in r.forwarded_after_start.values()), r.forwarded_after_start
        assert all(n > 1000 for n in r.offered.values()), r.offered
        assert r.shutdown_counters["SFE_0_TX"]["packets"] > 1000
        # The generator sends nothing into far_i_rx: what SFE_0_RX read is what the kernel
        # emitted from far_0_rx over the target's life (CI once saw 2 frames), never the traffic.
        assert r.shutdown_counters["SFE_0_RX"]["packets"] <= r.stray_into_rx["SFE_0_RX"] < 50, r
        assert r.log_path.endswith(f"cycle-{i:03d}/console.log")
        assert (tmp_path / "logs-good" / f"cycle-{i:03d}" / "console.log").is_file()
    assert _ours(engine) == []

    with env.session(repro_image, _product(tmp_path, "bad"), tmp_path / "logs-bad") as s:
        r = s.cycle(1)
    assert r.outcome() == CycleOutcome.HIT
    assert len(r.signature_lines) == 2 and r.signature_before_start
    assert "SFE_1_RX: sending packet failed on socket 0" in r.signature_lines[1]
    # forwarding is measured apart from the signature: pair 0 wedged, pair 1 forwards
    assert r.forwarded_after_start["SFE_0_RX"] == 0
    assert r.forwarded_after_start["SFE_1_RX"] > 1000
    assert _ours(engine) == []


@pytest.mark.docker
def test_unhealthy_cycles(engine, repro_image, tmp_path):
    """A target that crashes, hangs at stop or never starts is UNHEALTHY (issue 16): the
    machinery worked, so it is not INFRA, and it proves nothing, so it is not CLEAN."""
    env = ReproEnv(engine, _settings(traffic_seconds=0.5, stop_timeout=1.0, start_timeout=2.0))
    with env.session(repro_image, _product(tmp_path, "crash"), tmp_path / "l-crash") as s:
        r = s.cycle(1)
    assert r.outcome() == CycleOutcome.UNHEALTHY and r.error is None
    assert r.early_exit and not r.started and r.exit_code == 1
    assert "failed to bind socket" in env.settings.health.problem(r)

    with env.session(repro_image, _product(tmp_path, "hang"), tmp_path / "l-hang") as s:
        r = s.cycle(1)
        assert r.outcome() == CycleOutcome.UNHEALTHY and r.started and r.killed and r.exit_code == -9
        # the session survives a killed target: the next cycle runs in the same container
        r2 = s.cycle(2)
        assert r2.killed and r2.index == 2

    with env.session(repro_image, _product(tmp_path, "slow"), tmp_path / "l-slow") as s:
        r = s.cycle(1)
    assert r.outcome() == CycleOutcome.UNHEALTHY and not r.started and r.start_timeout
    assert "no start marker" in env.settings.health.problem(r)
    assert _ours(engine) == []


@pytest.mark.docker
def test_no_container_left_after_exception_mid_cycle(engine, repro_image, tmp_path, monkeypatch):
    import afpbisect.machinery.repro_record as repro_mod
    env = ReproEnv(engine, _settings(traffic_seconds=0.5))
    product = _product(tmp_path, "good")

    def boom(path, *_):
        assert _ours(engine), "the container should still be there mid-cycle"
        raise RuntimeError("boom mid-cycle")

    monkeypatch.setattr(repro_mod, "parse_console_file", boom)
    with pytest.raises(RuntimeError, match="boom"):
        with env.session(repro_image, product, tmp_path / "l1") as s:
            s.cycle(1)
    assert _ours(engine) == []
    monkeypatch.undo()

    # Ctrl-C while `docker exec` blocks: the container (and the target in it) goes.
    main = threading.main_thread().ident
    env = ReproEnv(engine, _settings(traffic_seconds=5.0))
    # Python's own Ctrl-C handler, even when this process inherited SIGINT ignored (a job
    # started in the background), which would make the signal below a no-op.
    prev = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with env.session(repro_image, product, tmp_path / "l2") as s:
                t = threading.Timer(1.5, signal.pthread_kill, (main, signal.SIGINT))
                t.start()
                try:
                    s.cycle(1)
                finally:
                    t.cancel()
    finally:
        signal.signal(signal.SIGINT, prev)
    assert _ours(engine) == []


@pytest.mark.docker
def test_dead_container_is_infra_error(engine, repro_image, tmp_path):
    env = ReproEnv(engine, _settings())
    with env.session(repro_image, _product(tmp_path, "good"), tmp_path / "l") as s:
        s.container.kill()
        with pytest.raises(InfraError, match="exited|is "):
            s.cycle(1)
    assert _ours(engine) == []


@pytest.mark.docker
def test_missing_binary_and_bad_image(engine, repro_image, tmp_path):
    env = ReproEnv(engine, _settings())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InfraError, match="no target binary"):
        env.session(repro_image, empty, tmp_path / "l")
    with pytest.raises(InfraError, match="python3"):
        env.session(BASE_IMAGE, _product(tmp_path, "good"), tmp_path / "l2")
    assert _ours(engine) == []


@pytest.mark.docker
def test_refused_capability_is_a_usage_error(engine, repro_image, tmp_path):
    # CAP_SYS_RESOURCE is outside this machine's bounding set (shared NOTES, "The machine").
    env = ReproEnv(engine, _settings(caps=("NET_ADMIN", "NET_RAW", "SYS_RESOURCE")))
    try:
        s = env.session(repro_image, _product(tmp_path, "good"), tmp_path / "l")
    except UsageError as exc:
        assert "refused capabilities" in str(exc)
    else:
        s.close()
        pytest.skip("this engine grants CAP_SYS_RESOURCE: nothing to refuse")
    assert _ours(engine) == []


@pytest.mark.docker
def test_container_is_renewed_before_its_lifetime_ends(engine, repro_image, tmp_path):
    # max_seconds smaller than one cycle's budget: every cycle gets a fresh container.
    env = ReproEnv(engine, _settings(traffic_seconds=0.5, max_seconds=30.0))
    with env.session(repro_image, _product(tmp_path, "good"), tmp_path / "l") as s:
        first = s.container.id
        r = s.cycle(1)
        assert s.container.id != first
        assert r.outcome() == CycleOutcome.CLEAN
    assert _ours(engine) == []


# --- issue 25: a hit rule over eve.json or stats.log whose file is missing -----------------

@pytest.mark.parametrize("kw, outcome", [
    # the engine came up (outputs are opened before the start marker) and wrote no eve.json:
    # the yaml, the /logs mount or the copy-back failed, so the rule was never checked
    (dict(started=True, forwarded_after_start={"SFE_0_RX": 812}, missing_logs=["eve.json"]),
     CycleOutcome.INFRA),
    (dict(started=True, missing_logs=["stats.log"]), CycleOutcome.INFRA),
    # the target never got that far: no evidence about it, and not the machinery's fault
    (dict(started=False, early_exit=True, missing_logs=["eve.json"]), CycleOutcome.UNHEALTHY),
    # a hit elsewhere (the console) still proves the bug
    (dict(started=True, signature_lines=["x"], missing_logs=["eve.json"]), CycleOutcome.HIT),
])
def test_a_missing_hit_log_is_never_clean(kw, outcome):
    assert CycleRecord(index=1, **kw).outcome() == outcome


def test_a_missing_hit_log_without_a_start_is_unhealthy_even_when_start_is_not_required():
    from afpbisect.machinery.repro_record import HealthRule
    rule = HealthRule(require_start=False, min_forwarded=0, require_clean_stop=False)
    rec = CycleRecord(index=1, started=False, early_exit=True, exit_code=0, missing_logs=["eve.json"])
    assert rec.outcome(rule) is CycleOutcome.UNHEALTHY
    assert "eve.json" in rule.problem(rec)


def _cycle_dir(tmp_path, started=True):
    d = tmp_path / "cycle-001"
    d.mkdir()
    lines = ["Notice: suricata: This is Suricata version 8.0.3 RELEASE"]
    if started:
        lines.append("Notice: threads: Threads created -> W: 4 FM: 1 FR: 1   Engine started.")
    (d / "console.log").write_text("\n".join(lines) + "\n")
    return d


@pytest.mark.parametrize("key, name", [("eve", "eve.json"), ("stats", "stats.log")])
def test_fill_from_logs_missing_eve_or_stats_is_infra(tmp_path, key, name):
    """The record a cycle leaves -> its outcome, through the same code a session uses."""
    from afpbisect.machinery.repro_record import fill_from_logs
    settings = ReproSettings(hit=HitSection(**{key: ('"event_type":"anomaly"',)}))
    d = _cycle_dir(tmp_path)
    rec = fill_from_logs(CycleRecord(index=1, started=True, forwarded_after_start={"SFE_0_RX": 9},
                                     log_path=str(d / "console.log")), settings)
    assert rec.outcome() is CycleOutcome.INFRA and name in rec.error, rec
    (d / name).write_text('{"event_type":"flow"}\n')       # present, nothing matches: clean
    rec = fill_from_logs(CycleRecord(index=1, started=True, forwarded_after_start={"SFE_0_RX": 9},
                                     log_path=str(d / "console.log")), settings)
    assert rec.outcome() is CycleOutcome.CLEAN, rec
    (d / name).write_text('{"event_type":"anomaly"}\n')    # present and matching: a hit
    rec = fill_from_logs(CycleRecord(index=1, started=True, forwarded_after_start={"SFE_0_RX": 9},
                                     log_path=str(d / "console.log")), settings)
    assert rec.outcome() is CycleOutcome.HIT, rec


def test_fill_from_logs_without_a_hit_rule_over_eve_does_not_ask_for_it(tmp_path):
    from afpbisect.machinery.repro_record import fill_from_logs
    d = _cycle_dir(tmp_path)
    rec = fill_from_logs(CycleRecord(index=1, started=True, log_path=str(d / "console.log")),
                         ReproSettings(hit=HitSection(console=("never printed",))))
    assert rec.outcome() is CycleOutcome.CLEAN and rec.missing_logs == []

