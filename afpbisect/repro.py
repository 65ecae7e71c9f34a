"""The repro environment: one elevated container per build, many cold-start cycles in it.

A session starts ONE container from the build's image (NET_ADMIN + NET_RAW, `--network
none`, the product read-only at /opt/product, the logs at /logs, the driver and its inputs
at /afp) whose main process is `driver.py serve`: the veth pairs and a traffic generator
that keeps frames flowing between cycles.  `cycle()` is one `docker exec driver.py cycle`:
a cold start of the target per the run contract (docs/ARCHITECTURE.md), 2 s of traffic,
SIGTERM.  The console log is read here, on the host, through the /logs mount, and turned
into signals by afpbisect/signals.py.

Keeping the container (and its traffic) across the cycles of one build is what makes "one
more cycle" cheap for the policy: the veths and the generator are set up once, not per cycle.

On a remote engine (`Engine.remote`) nothing is bind-mounted: the product is the engine's
volume of it (filled once from the local product dir), /afp is sent as an archive before the
container starts, /logs stays in the container, and each cycle's directory is copied back
into the local cycle dir after the cycle, so everything after it reads the same files.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import docker.errors
import jinja2
import requests.exceptions

from . import PACKAGE_DIR, TEMPLATES_DIR, storage
from .engine import (TRANSPORT_ERRORS, Engine, _short, check_capability_error, create_container, patience,
                     retrying)
from .errors import InfraError
from .signals import matching_lines, parse_console_file
from .verdict import CycleOutcome

log = logging.getLogger(__name__)

DRIVER = PACKAGE_DIR / "container" / "driver.py"
YAML_TEMPLATE = "suricata.yaml.j2"

# Paths inside the repro container (the driver's defaults say the same).
C_PRODUCT = "/opt/product"
C_LOGS = "/logs"
C_AFP = "/afp"
C_BINARY = f"{C_PRODUCT}/usr/local/bin/suricata"

# Keeps the veths quiet: with IPv6 on, the kernel sends router solicitations and MLD reports
# out of SFE_i_RX, which far_i_rx would count as forwarded.  /proc/sys is read-only in the
# container; new interfaces inherit `default`.
IPV6_OFF = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}


@dataclass(frozen=True)
class HealthRule:
    """When a cycle counts as evidence at all (issue 16).  A cycle in which the target did
    not come up as an IPS cannot show the race, so calling it clean would make a broken
    commit GOOD; it is UNHEALTHY instead (verdict.py says what the policy does with it).

    require_start: the start marker must appear (else: exited or hung before start).
    min_forwarded: frames each pair must forward after start (ticket 8667: "RX packets: 0
        under live traffic is the definitive indicator that the forwarding path never came
        up"); 0 turns the forwarding check off.
    require_clean_stop: the target must run until SIGTERM and exit within stop_timeout.
    """

    require_start: bool = True
    min_forwarded: int = 1
    require_clean_stop: bool = True

    def problem(self, rec: "CycleRecord") -> str | None:
        """Why `rec` is unhealthy by this rule, or None when it is healthy."""
        if self.require_start and not rec.started:
            last = f": {rec.error_lines[-1][:160]}" if rec.error_lines else ""
            if rec.early_exit:
                return f"exited before start (exit {rec.exit_code}){last}"
            return f"no start marker within the start timeout{last}"
        if self.require_clean_stop and rec.died:
            return f"exited on its own after start (exit {rec.exit_code})"
        if self.require_clean_stop and rec.killed:
            return "did not stop after SIGTERM (killed)"
        if rec.missing_logs and not rec.started:
            # Whatever the rule says of starts: a hit rule over these logs was never checked.
            return (f"wrote no {', '.join(rec.missing_logs)} (it did not start; the [hit] rule "
                    "over it could not be checked)")
        if rec.started and self.min_forwarded > 0:
            short = {k: v for k, v in sorted(rec.forwarded_after_start.items())
                     if v is not None and v < self.min_forwarded}
            if short:
                return "forwarded nothing after start on " + ", ".join(
                    f"{k} ({v} of {rec.offered.get(peer_iface(k), '?')} offered)" for k, v in short.items())
        return None


def peer_iface(iface: str) -> str:
    """SFE_i_RX <-> SFE_i_TX: forwarded out of one side counts frames offered to the other."""
    return iface[:-2] + ("TX" if iface.endswith("RX") else "RX")


DEFAULT_HEALTH = HealthRule()


# The scenario's [suricata] keys the yaml template reads, with the values it renders
# when no scenario says otherwise (8667's repro: workers, inline IPS, no defrag).
YAML_DEFAULTS = {"runmode": "workers", "copy_mode": "ips", "tpacket_v3": False, "ring_size": 0,
                 "block_size": 0, "defrag": False, "bpf_filter": "", "cluster_type": "cluster_flow"}
NO_HIT = {"console": [], "eve": [], "stats": [], "exit_codes": [], "crash": False}


@dataclass
class ReproSettings:
    """How a cycle is run.  `from_scenario` fills it from a scenario (docs/scenarios.md);
    the defaults here are only the shape."""

    pairs: int = 6                 # SFE_i_TX <-> SFE_i_RX pairs
    threads: int = 2               # workers per interface
    env: dict = field(default_factory=dict)   # the target's environment (test patches read it)
    traffic_pps: int = 3000        # frames per second over all pairs, into far_i_tx
    traffic_seconds: float = 2.0   # traffic counted after the start marker
    start_timeout: float = 120.0   # no marker by then: UNHEALTHY (the target hung)
    stop_timeout: float = 30.0     # not exited by then after SIGTERM: SIGKILL, UNHEALTHY
    caps: tuple = ("NET_ADMIN", "NET_RAW")
    send_rx: bool = False          # also send into far_i_rx (both directions forwarded)
    max_seconds: float = 3600.0    # the container's lifetime; the session renews it before it runs out
    ready_timeout: float = 60.0    # container start to "veths up, traffic flowing"
    ring_size: int | None = None   # af-packet ring-size; None keeps Suricata's default
    cluster_id_base: int = 1       # cluster-ids are base, base+1, ... one per interface
    health: HealthRule = DEFAULT_HEALTH   # when a cycle counts as evidence
    traffic_kind: str = "udp"      # udp | pcap | none
    frame_size: int = 18           # UDP payload bytes
    pcap: str = ""                 # host path of the pcap to replay (traffic_kind pcap)
    start_marker: str = r"Engine started\."
    extra_args: tuple = ()         # more Suricata command-line options
    suricata: dict = field(default_factory=lambda: dict(YAML_DEFAULTS))
    hit: dict = field(default_factory=lambda: dict(NO_HIT))   # the scenario's [hit]

    def cycle_budget(self) -> float:
        """Upper bound of one cycle's seconds (for the container lifetime check)."""
        return self.start_timeout + self.traffic_seconds + self.stop_timeout + 60.0

    @classmethod
    def from_scenario(cls, sc, pairs: int | None = None, threads: int | None = None,
                      env: dict | None = None, **kw) -> "ReproSettings":
        """The scenario's repro; `pairs`, `threads`, `env` (command-line overrides) and any
        other field given in `kw` (tests, benches) win."""
        su, tr, cy, he = sc["suricata"], sc["traffic"], sc["cycle"], sc["health"]
        fields_ = dict(
            pairs=pairs or su["pairs"], threads=threads or su["threads"], env={**sc.env, **(env or {})},
            traffic_pps=tr["pps"], traffic_seconds=cy["seconds"], start_timeout=cy["start_timeout"],
            stop_timeout=cy["stop_timeout"], send_rx=tr["both_ways"], ring_size=su["ring_size"] or None,
            health=HealthRule(he["require_start"], he["min_forwarded"], he["require_clean_stop"]),
            traffic_kind=tr["kind"], frame_size=tr["size"], pcap=tr["pcap"],
            start_marker=he["start_marker"], extra_args=tuple(su["args"]),
            suricata={k: su[k] for k in YAML_DEFAULTS}, hit=dict(sc["hit"]))
        return cls(**{**fields_, **kw})


def render_suricata_yaml(settings: ReproSettings, log_dir: str = C_LOGS, rule_dir: str = C_AFP) -> str:
    """The repro's suricata.yaml (afpbisect/templates/suricata.yaml.j2)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template(YAML_TEMPLATE).render(
        pairs=settings.pairs, threads=settings.threads, ring_size=settings.ring_size,
        cluster_id_base=settings.cluster_id_base, log_dir=log_dir, rule_dir=rule_dir,
        s={**YAML_DEFAULTS, **settings.suricata}, eve=bool(settings.hit.get("eve")),
        stats=bool(settings.hit.get("stats")),
    )


def driver_config(settings: ReproSettings, session: str = "") -> dict:
    """config.json for driver.py (inside the container)."""
    return {
        "session": session,
        "pairs": settings.pairs,
        "binary": C_BINARY,
        "product": C_PRODUCT,
        "yaml": f"{C_AFP}/suricata.yaml",
        "logs": C_LOGS,
        "env": dict(settings.env),
        "traffic_kind": settings.traffic_kind,
        "frame_size": int(settings.frame_size),
        "pcap": f"{C_AFP}/traffic.pcap" if settings.traffic_kind == "pcap" else "",
        "start_marker": settings.start_marker,
        "extra_args": list(settings.extra_args),
        "traffic_pps": settings.traffic_pps,
        "send_rx": bool(settings.send_rx),
        "traffic_seconds": float(settings.traffic_seconds),
        "start_timeout": float(settings.start_timeout),
        "stop_timeout": float(settings.stop_timeout),
        "max_seconds": float(settings.max_seconds),
    }


@dataclass
class CycleRecord:
    """One cold start, as the driver measured it and the console log says."""

    index: int
    started: bool = False
    start_seconds: float | None = None
    exit_code: int | None = None       # negative: ended by that signal (Python's convention)
    killed: bool = False               # needed SIGKILL (stop_timeout passed, or cleanup)
    early_exit: bool = False           # exited before "Engine started."
    start_timeout: bool = False        # still running, no "Engine started." within start_timeout
    signature_lines: list = field(default_factory=list)
    signature_before_start: bool = False
    other_send_errors: int = 0
    forwarded_after_start: dict = field(default_factory=dict)   # SFE_i_RX -> frames that left it
    shutdown_counters: dict = field(default_factory=dict)       # iface -> {packets, drops, ...}
    log_path: str = ""                 # console.log on the host
    duration: float = 0.0              # seconds inside the container, spawn to exit
    error: str | None = None
    died: bool = False                 # exited on its own after the marker, before SIGTERM
    offered: dict = field(default_factory=dict)    # SFE_i_TX -> frames sent toward it meanwhile
    stray_into_rx: dict = field(default_factory=dict)  # SFE_i_RX -> frames the kernel sent toward it
    error_lines: list = field(default_factory=list)  # the console's Error lines (first few)
    missing_logs: list = field(default_factory=list)  # eve.json / stats.log a [hit] rule reads, absent

    def outcome(self, rule: HealthRule = DEFAULT_HEALTH):
        """HIT iff the exact signature line is in the log (it can only come from sendto() on
        the unpublished fd 0, so it is evidence whatever else went wrong); else INFRA when the
        machinery failed (`error`: the driver, its counters, the container); else UNHEALTHY
        when the target did not run as `rule` asks; else CLEAN."""
        if self.signature_lines:
            return CycleOutcome.HIT
        if self.error:
            return CycleOutcome.INFRA
        if self.started and any(v is None for v in self.forwarded_after_start.values()):
            return CycleOutcome.INFRA   # a counter could not be read: the rig, not the target
        if self.missing_logs:
            # A [hit] rule over eve.json or stats.log was never checked, so the cycle proves
            # nothing (issue 25).  Suricata opens its outputs before the start marker: after a
            # start their absence is the rig's (yaml, /logs, copy-back); before it, the target
            # never got that far.
            return CycleOutcome.INFRA if self.started else CycleOutcome.UNHEALTHY
        if rule.problem(self) is not None:
            return CycleOutcome.UNHEALTHY
        return CycleOutcome.CLEAN

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CycleRecord":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class ReproEnv:
    def __init__(self, engine: Engine, settings: ReproSettings):
        self.engine = engine
        self.settings = settings

    def session(self, image: str, product_dir: Path, logs_dir: Path) -> "ReproSession":
        """Start one container for this build and wait until its traffic flows.

        Usable as a context manager; `close()` removes the container in any case."""
        s = ReproSession(self.engine, self.settings, image, Path(product_dir), Path(logs_dir))
        try:
            s.start()
        except BaseException:
            s.close()
            raise
        return s


class ReproSession:
    def __init__(self, engine: Engine, settings: ReproSettings, image: str, product_dir: Path,
                 logs_dir: Path):
        self.engine = engine
        self.settings = settings
        self.image = image
        self.product_dir = product_dir.resolve()
        self.logs_dir = logs_dir.resolve()
        self.afp_dir = self.logs_dir / "afp"
        self.container = None
        self.ready: dict = {}
        self.ready_seconds: float | None = None   # container create to ready.json
        self._started_at = 0.0
        self._sysctls = dict(IPV6_OFF)

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> "ReproSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        binary = self.product_dir / "usr/local/bin/suricata"
        if not binary.is_file():
            raise InfraError(f"no target binary at {binary}: the product directory is incomplete")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:12]
        self._stage(token)
        t0 = time.monotonic()
        self.container = self._create_and_start(token)
        self._wait_ready(token, t0)
        self.ready_seconds = round(time.monotonic() - t0, 3)
        self._started_at = t0
        log.info("repro container %s ready in %.2fs (%s)", self.container.name, self.ready_seconds,
                 self.ready)

    def close(self) -> None:
        """Remove the container (idempotent; also after KeyboardInterrupt)."""
        c, self.container = self.container, None
        if c is None:
            return
        if self.engine.remote:
            self._copy_serve_back(c)
        try:
            _remove(c)
        except docker.errors.NotFound:
            pass
        except TRANSPORT_ERRORS as exc:
            # The run's label cleanup (Engine.cleanup_run) is the second net.
            log.warning("could not remove repro container %s: %s", c.name, exc)

    # ------------------------------------------------------------ one cycle
    def cycle(self, index: int) -> CycleRecord:
        if self.container is None:
            raise InfraError("repro session is closed")
        self._renew_if_old()
        self._check_alive("before cycle %d" % index)
        cycle_dir = self.logs_dir / f"cycle-{index:03d}"
        # The fallback below must never read the record of an earlier run of this index.
        (cycle_dir / "record.json").unlink(missing_ok=True)
        cmd = ["python3", f"{C_AFP}/driver.py", "cycle", "--config", f"{C_AFP}/config.json",
               "--index", str(index)]
        api = self.engine.client.api
        try:
            exec_id = _exec_create(api, self.container.id, cmd)
        except TRANSPORT_ERRORS as exc:
            self._check_alive("creating the exec of cycle %d" % index)
            raise InfraError(f"docker exec of cycle {index} could not be created: {exc}") from exc
        stdout = stderr = b""
        try:
            # The driver says nothing until the cycle ends: the reply may take the cycle's
            # whole budget. A read that times out (TimeoutError: docker-py reads the socket
            # itself) is found out below by polling, each poll with the API's deadline.
            with patience(self.settings.cycle_budget()):
                stdout, stderr = api.exec_start(exec_id, demux=True)
            stdout, stderr = stdout or b"", stderr or b""
        except (*TRANSPORT_ERRORS, TimeoutError) as exc:
            # Not retried: the cycle may be running.  Wait for it, then take its record.json.
            log.warning("docker exec of cycle %d: %s; waiting for it to end", index, exc)
            self._wait_exec(api, exec_id)
        self._check_alive("during cycle %d" % index)
        if self.engine.remote:
            self._copy_back(f"cycle-{index:03d}", cycle_dir)
        exit_code = _exec_inspect(api, exec_id).get("ExitCode")
        raw = _last_json_line(stdout)
        if raw is None and (cycle_dir / "record.json").is_file():
            raw = _last_json_line((cycle_dir / "record.json").read_bytes())
        if raw is None:
            tail = (stderr or stdout).decode("utf-8", "replace").strip().splitlines()[-5:]
            if exit_code is None:
                raise InfraError(f"docker exec of cycle {index} did not run")
            return self._fill(CycleRecord(
                index=index, log_path=str(cycle_dir / "console.log"),
                error=f"driver exited {exit_code} without a record: {' | '.join(tail) or 'no output'}"))
        return self._fill(self._from_driver(raw, cycle_dir))

    # ------------------------------------------------------------ helpers
    def _stage(self, token: str) -> None:
        self.afp_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DRIVER, self.afp_dir / "driver.py")
        (self.afp_dir / "suricata.yaml").write_text(render_suricata_yaml(self.settings))
        (self.afp_dir / "config.json").write_text(
            json.dumps(driver_config(self.settings, token), indent=2) + "\n")
        if self.settings.traffic_kind == "pcap":
            shutil.copyfile(self.settings.pcap, self.afp_dir / "traffic.pcap")
        stale = self.logs_dir / "serve" / "ready.json"
        if stale.exists():
            stale.unlink()

    def _create_and_start(self, token: str):
        caps = list(self.settings.caps)
        name = f"afpbisect-repro-{self.engine.run_id}-{token[:6]}"
        labels = {**self.engine.labels, "afpbisect.role": "repro"}
        storage_kw = self._storage_kw()
        cmd = ["python3", f"{C_AFP}/driver.py", "serve", "--config", f"{C_AFP}/config.json"]
        container = None
        try:
            try:
                container = _create(self.engine.client, image=self.image, command=cmd, name=name,
                                    labels=labels, cap_add=caps, network_mode="none",
                                    sysctls=self._sysctls or None, init=True,
                                    stdin_open=False, tty=False, **storage_kw)
            except docker.errors.APIError as exc:
                if "sysctl" not in str(exc).lower() or not self._sysctls:
                    raise
                # An engine that refuses per-container sysctls: the driver's own writes are
                # the second chance (ready.json says whether IPv6 is off).
                log.warning("engine refused container sysctls (%s); going on without", exc)
                self._sysctls = {}
                container = _create(self.engine.client, image=self.image, command=cmd, name=name,
                                    labels=labels, cap_add=caps, network_mode="none", init=True,
                                    stdin_open=False, tty=False, **storage_kw)
            self.container = container
            if self.engine.remote:
                storage.put_dir(self.engine, container, self.afp_dir, C_AFP)
            _start(container)
            return container
        except docker.errors.ImageNotFound as exc:
            raise InfraError(f"repro image {self.image} not found: {exc}") from exc
        except docker.errors.APIError as exc:
            check_capability_error(exc, caps)
            hint = (" (the repro image needs python3 and iproute2)"
                    if "executable file not found" in str(exc) else "")
            raise InfraError(f"repro container did not start: {_short(exc)}{hint}") from exc
        except requests.exceptions.RequestException as exc:
            raise InfraError(f"Docker engine failed while starting the repro container: {exc}") from exc

    def _wait_ready(self, token: str, t0: float) -> None:
        deadline = t0 + self.settings.ready_timeout
        next_check = 0.0
        while True:
            raw = self._read_ready()
            if raw is not None:
                try:
                    info = json.loads(raw)
                except ValueError:
                    info = {}
                if info.get("session") == token:
                    self.ready = info
                    if not info.get("ipv6_disabled", True):
                        log.warning("IPv6 is on on the repro veths: far_i_rx may count a few "
                                    "kernel frames as forwarded")
                    return
            now = time.monotonic()
            if now >= next_check:
                self._check_alive("while setting up veths and traffic")
                next_check = now + 0.5
            if now >= deadline:
                raise InfraError(f"repro container not ready after {self.settings.ready_timeout:.0f}s; "
                                 f"its output: {self._logs_tail()}")
            # A remote poll is an API call, not a stat: not 20 a second.
            time.sleep(0.25 if self.engine.remote else 0.05)

    # ------------------------------------------------------------ storage (bind or remote)
    def _storage_kw(self) -> dict:
        """The container's storage: the local engine bind-mounts product, logs and inputs;
        a remote engine gets the product as its read-only volume, the rest by archive."""
        if not self.engine.remote:
            return {"volumes": {
                str(self.product_dir): {"bind": C_PRODUCT, "mode": "ro"},
                str(self.logs_dir): {"bind": C_LOGS, "mode": "rw"},
                str(self.afp_dir): {"bind": C_AFP, "mode": "ro"},
            }}
        volume = storage.product_volume(self.engine, self.image, self.product_dir, C_PRODUCT)
        return {"mounts": [storage.volume_mount(volume, C_PRODUCT, read_only=True)]}

    def _read_ready(self) -> bytes | None:
        if not self.engine.remote:
            path = self.logs_dir / "serve" / "ready.json"
            try:
                return path.read_bytes() if path.is_file() else None
            except OSError:
                return None
        return storage.read_file(self.engine, self.container, f"{C_LOGS}/serve/ready.json")

    def _copy_back(self, name: str, dest: Path) -> None:
        """A directory of the container's /logs into the local `dest`, replacing it (what a
        bind mount would show: only this run's files)."""
        shutil.rmtree(dest, ignore_errors=True)
        try:
            storage.get_tree(self.engine, self.container, f"{C_LOGS}/{name}", dest)
        except docker.errors.NotFound:
            log.warning("no %s/%s in repro container %s", C_LOGS, name, self.container.name)

    def _copy_serve_back(self, c) -> None:
        """serve's own log and ready.json, for diagnostics; never worth failing a close for."""
        try:
            storage.get_tree(self.engine, c, f"{C_LOGS}/serve", self.logs_dir / "serve")
        except (InfraError, docker.errors.APIError, OSError) as exc:
            log.warning("could not copy %s/serve back from %s: %s", C_LOGS, c.name, exc)

    def _renew_if_old(self) -> None:
        """The container stops itself after max_seconds (the driver's bound on its traffic);
        start a fresh one before a cycle could run into that."""
        age = time.monotonic() - self._started_at
        if age + self.settings.cycle_budget() < self.settings.max_seconds:
            return
        log.info("repro container %s is %.0fs old; starting a fresh one", self.container.name, age)
        self.close()
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    def _check_alive(self, when: str) -> None:
        c = self.container
        try:
            _reload(c)
        except docker.errors.NotFound as exc:
            raise InfraError(f"repro container {c.name} vanished {when}") from exc
        except TRANSPORT_ERRORS as exc:
            raise InfraError(f"Docker engine failed {when}: {exc}") from exc
        if c.status != "running":
            state = c.attrs.get("State", {})
            hint = ""
            out = self._logs_tail()
            if "python3" in out and ("not found" in out or "no such file" in out.lower()):
                hint = " (the repro image needs python3 and iproute2)"
            elif "ip" in out and "not found" in out:
                hint = " (the repro image needs iproute2)"
            raise InfraError(
                f"repro container {c.name} is {c.status} {when} (exit {state.get('ExitCode')}, "
                f"OOM {state.get('OOMKilled')}){hint}; its output: {out}")

    def _logs_tail(self) -> str:
        try:
            text = self.container.logs(tail=15).decode("utf-8", "replace").strip()
        except Exception:  # noqa: BLE001 - diagnostics only
            return "(no output)"
        return " | ".join(text.splitlines()[-8:]) or "(no output)"

    def _wait_exec(self, api, exec_id) -> None:
        deadline = time.monotonic() + self.settings.cycle_budget()
        while time.monotonic() < deadline:
            if not _exec_inspect(api, exec_id).get("Running"):
                return
            time.sleep(0.5)
        raise InfraError("docker exec of a cycle did not end in time")

    def _from_driver(self, raw: dict, cycle_dir: Path) -> CycleRecord:
        return CycleRecord(
            index=int(raw.get("index", 0)),
            started=bool(raw.get("started")),
            start_seconds=raw.get("start_seconds"),
            exit_code=raw.get("exit_code"),
            killed=bool(raw.get("killed")),
            early_exit=bool(raw.get("early_exit")),
            start_timeout=bool(raw.get("start_timeout")),
            died=bool(raw.get("died")),
            forwarded_after_start=dict(raw.get("forwarded_after_start") or {}),
            offered=dict(raw.get("offered") or {}),
            stray_into_rx=dict(raw.get("stray_into_rx") or {}),
            log_path=str(cycle_dir / "console.log"),
            duration=float(raw.get("duration") or 0.0),
            error=raw.get("error"),
        )

    def _fill(self, rec: CycleRecord) -> CycleRecord:
        return fill_from_logs(rec, self.settings)


def fill_from_logs(rec: CycleRecord, settings: ReproSettings) -> CycleRecord:
    """Signals from the cycle's logs, read on the host (through the /logs mount, or copied
    back from a remote engine): the console, and eve.json / stats.log when a hit rule reads them."""
    path = Path(rec.log_path)
    if not path.is_file():
        rec.error = rec.error or f"no console log at {path}"
        return rec
    hit = settings.hit
    sig = parse_console_file(path, [re.compile(rx) for rx in hit.get("console", [])],
                             settings.start_marker)
    rec.signature_lines = sig.signature_lines + scenario_hits(rec, hit, path.parent)
    rec.signature_before_start = sig.signature_before_start
    rec.other_send_errors = len(sig.other_send_errors)
    rec.shutdown_counters = sig.shutdown_counters
    rec.error_lines = sig.error_lines[:5]
    rec.missing_logs = missing_hit_logs(hit, path.parent)
    if rec.started and rec.missing_logs and not rec.error:
        rec.error = (f"the target started but wrote no {', '.join(rec.missing_logs)}: the [hit] rule "
                     "over it could not be checked")
    if rec.started and not sig.started and not rec.error:
        # The driver saw the marker, the parser did not: trust neither.
        rec.error = "start marker seen by the driver but not found in the log"
    return rec


HIT_LOGS = (("eve.json", "eve"), ("stats.log", "stats"))


def missing_hit_logs(hit: dict, cycle_dir: Path) -> list[str]:
    """The logs a [hit] rule reads (eve.json, stats.log) that the cycle did not leave."""
    return [name for name, key in HIT_LOGS if hit.get(key) and not (cycle_dir / name).is_file()]


def scenario_hits(rec: "CycleRecord", hit: dict, cycle_dir: Path) -> list[str]:
    """Hits beyond the console: eve.json and stats.log lines, an exit code, a crash (the
    scenario's [hit]); each is written as the line that proves it, for the record."""
    out = []
    for name, key in HIT_LOGS:
        if hit.get(key):
            out += [f"{name}: {ln}" for ln in matching_lines(cycle_dir / name,
                                                              [re.compile(rx) for rx in hit[key]])]
    code = rec.exit_code
    if code is not None and code in hit.get("exit_codes", []):
        out.append(f"exit code {code} (a hit by the scenario)")
    if hit.get("crash") and code is not None and code < 0 and not rec.killed \
            and -code not in (signal.SIGTERM, signal.SIGKILL):
        out.append(f"crashed: killed by {signal.Signals(-code).name}")
    return out


# ------------------------------------------------------------ Docker calls, retried

def _create(client, image, command, name, **kw):
    return create_container(client, image, command, name, **kw)


@retrying
def _start(container):
    # engine.retrying does not retry the runtime refusing the container (capabilities,
    # missing command): those come straight back for check_capability_error.
    container.start()


@retrying
def _reload(container):
    container.reload()


@retrying
def _remove(container):
    container.remove(force=True)


@retrying
def _exec_create(api, container_id, cmd):
    return api.exec_create(container_id, cmd, stdout=True, stderr=True, stdin=False, tty=False)["Id"]


@retrying
def _exec_inspect(api, exec_id) -> dict:
    return api.exec_inspect(exec_id)


def _last_json_line(data: bytes) -> dict | None:
    for line in reversed((data or b"").decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None
