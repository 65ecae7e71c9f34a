"""The repro driver (afpbisect/machinery/container/afpdriver), on the host, without Docker.

The driver is a directory that the repro container runs as `python3 /afp/afpdriver CMD`:
python3 puts the directory itself at sys.path[0] and runs its __main__.py, so its modules
import each other by plain name (`import net`).  The tests use it the same two ways, not
through a shim that would make it an afpbisect.* package (which it never is: no
__init__.py, the host never imports it): as a program (`python3 DIR cycle ...`, with no
PYTHONPATH, so only the directory itself can answer), and, for its pure functions, with the
directory on sys.path for the duration of a test (the `drv` fixture, which takes the plain
names back out of sys.modules afterwards so that nothing else sees them).

What a real session does with it (veths, AF_PACKET traffic) is in the docker tests of
test_repro.py, test_storage.py and the end-to-end tests.
"""
from __future__ import annotations

import ast
import importlib
import io
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import pytest

from afpbisect.commands import doctor
from afpbisect.core.pcap import pcap_problem
from afpbisect.machinery import storage
from afpbisect.machinery.repro_session import DRIVER, DRIVER_CMD, ReproSession
from afpbisect.machinery.repro_settings import ReproSettings, driver_config

MODULES = ("net", "traffic", "serve", "cycle")
RECORD_KEYS = sorted(["index", "started", "start_seconds", "exit_code", "killed", "early_exit", "start_timeout",
                      "died", "forwarded_after_start", "offered", "stray_into_rx", "log", "duration", "error"])


@pytest.fixture
def drv():
    """The driver's modules by their plain names, as in the container (see the docstring)."""
    sys.path.insert(0, str(DRIVER))
    try:
        yield types.SimpleNamespace(**{m: importlib.import_module(m) for m in MODULES})
    finally:
        sys.path.remove(str(DRIVER))
        for m in MODULES:
            sys.modules.pop(m, None)


def _run_driver(where: Path, *args: str, driver: Path = DRIVER) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([sys.executable, str(driver), *args], cwd=where, env=env,
                          capture_output=True, text=True, timeout=60)


def _fake_target(tmp_path: Path) -> Path:
    """Prints the start marker, then runs until SIGTERM (exit 0)."""
    binary = tmp_path / "product/usr/local/bin/suricata"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n"
                      "echo 'Notice: threads: Threads created -> W: 1 FM: 1 FR: 1   Engine started.'\n"
                      "trap 'exit 0' TERM\n"
                      "while :; do sleep 0.05; done\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return binary


def _cycle_config(tmp_path: Path, binary: Path) -> Path:
    cfg = driver_config(ReproSettings(pairs=1, traffic_kind="none", traffic_seconds=0.2), "tok")
    cfg.update(binary=str(binary), product=str(tmp_path / "product"), yaml="/dev/null",
               logs=str(tmp_path / "logs"))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


# ---------------------------------------------------------------------------------------
# shape: one module a job, all of them shipped
# ---------------------------------------------------------------------------------------

def test_the_driver_is_a_directory_of_small_modules_with_small_functions():
    files = sorted(p.name for p in DRIVER.glob("*.py"))
    assert files == sorted(["__main__.py", *(m + ".py" for m in MODULES)])
    assert not (DRIVER / "__init__.py").exists()   # never an afpbisect.* package
    for name in files:
        text = (DRIVER / name).read_text()
        assert len(text.splitlines()) <= 250, name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno + 1 <= 60, (name, node.name)


def test_doctor_requires_every_module_of_the_driver():
    listed = {p.name for p in doctor.PACKAGE_FILES if p.parent == DRIVER}
    assert listed == {p.name for p in DRIVER.glob("*.py")}


def test_the_container_runs_the_directory():
    assert DRIVER_CMD == ["python3", "/afp/afpdriver"]


# ---------------------------------------------------------------------------------------
# as a program
# ---------------------------------------------------------------------------------------

def test_a_config_without_the_hosts_keys_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"pairs": 1}))
    proc = _run_driver(tmp_path, "serve", "--config", str(tmp_path / "config.json"))
    assert proc.returncode == 1, proc
    assert proc.stderr.strip() == (f"driver: {tmp_path / 'config.json'} lacks traffic_kind, frame_size, pcap, "
                                   "start_marker, traffic_pps, send_rx, traffic_seconds, start_timeout, "
                                   "stop_timeout (the host's driver_config gives them)")


def test_a_bad_command_line_is_a_usage_error(tmp_path):
    proc = _run_driver(tmp_path, "cycle", "--config", "x.json")
    assert proc.returncode == 2 and "--index" in proc.stderr, proc


def test_one_cycle_prints_one_json_record_and_keeps_it(tmp_path):
    """A cold start of a stand-in target: no veths here, so the counters are None."""
    cfg = _cycle_config(tmp_path, _fake_target(tmp_path))
    proc = _run_driver(tmp_path, "cycle", "--config", str(cfg), "--index", "7")
    assert proc.returncode == 0, proc
    (line,) = proc.stdout.splitlines()
    rec = json.loads(line)
    assert list(rec) == RECORD_KEYS and line == json.dumps(rec, sort_keys=True)
    logdir = tmp_path / "logs" / "cycle-007"
    assert (logdir / "record.json").read_text() == line + "\n"
    assert rec["log"] == str(logdir / "console.log") and rec["index"] == 7
    assert rec["started"] and rec["exit_code"] == 0 and rec["error"] is None, rec
    assert not (rec["killed"] or rec["died"] or rec["early_exit"] or rec["start_timeout"]), rec
    assert rec["forwarded_after_start"] == {"SFE_0_RX": None} and rec["offered"] == {"SFE_0_TX": None}
    assert rec["stray_into_rx"] == {"SFE_0_RX": None}
    assert "Engine started." in (logdir / "console.log").read_text()


def test_a_target_that_exits_before_its_start_is_an_early_exit(tmp_path):
    binary = _fake_target(tmp_path)
    binary.write_text("#!/bin/sh\necho 'no start here'\nexit 3\n")
    proc = _run_driver(tmp_path, "cycle", "--config", str(_cycle_config(tmp_path, binary)), "--index", "1")
    rec = json.loads(proc.stdout)
    assert rec["early_exit"] and not rec["started"] and rec["exit_code"] == 3, rec


# ---------------------------------------------------------------------------------------
# pure parts, imported the container's way
# ---------------------------------------------------------------------------------------

def test_a_frame_is_broadcast_udp_with_a_right_ip_checksum(drv):
    frame = drv.traffic.make_frame(3, 1030, 40)
    assert len(frame) == 14 + 20 + 8 + 40
    assert frame[:6] == b"\xff" * 6 and frame[12:14] == b"\x08\x00"
    assert drv.traffic._ip_checksum(frame[14:34]) == 0   # a header with its checksum sums to 0
    assert struct.unpack("!HH", frame[34:38]) == (1030, 9)
    assert frame[42:].startswith(b"afpbisect-03-")


def test_read_pcap_takes_what_the_host_checks(drv, tmp_path):
    frames = [drv.traffic.make_frame(0, 1024 + k, 18) for k in range(3)]
    body = b"".join(struct.pack("<IIII", 0, 0, len(f), len(f)) + f for f in frames)
    good = tmp_path / "t.pcap"
    good.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + body)
    assert pcap_problem(good) is None and drv.traffic.read_pcap(str(good)) == frames
    raw_ip = tmp_path / "raw.pcap"   # link type 101: not Ethernet, refused on both sides
    raw_ip.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101) + body)
    assert pcap_problem(raw_ip) is not None
    with pytest.raises(ValueError):
        drv.traffic.read_pcap(str(raw_ip))


def test_counter_deltas_say_none_where_a_side_is_unreadable(drv):
    assert drv.net.delta({"a": 1, "b": None, "c": 5}, {"a": 4, "b": 9}) == {"a": 3, "b": None, "c": None}
    assert drv.net.snapshot(2, True) == {"SFE_0_RX": None, "SFE_1_RX": None, "SFE_0_TX": None, "SFE_1_TX": None}
    assert drv.net.stray_toward_rx(1, True) == {}


def test_paced_sending_stops_at_the_deadline_and_says_so(drv):
    sent = []
    fake = types.SimpleNamespace(pps=1000.0, sent=0, send=lambda n: sent.append(n))
    stop = {"flag": False, "why": ""}
    ticks = []
    drv.traffic.send_paced(fake, stop, deadline=0.0, each_tick=lambda: ticks.append(1))
    assert stop["why"] == "max_seconds" and sent == [] and ticks == []


# ---------------------------------------------------------------------------------------
# shipped whole: staging (the local engine's bind mount) and the archive (another engine)
# ---------------------------------------------------------------------------------------

class _Container:
    def __init__(self):
        self.archives = []

    def put_archive(self, path, data):
        self.archives.append((path, data))
        return True


def _staged(tmp_path: Path, monkeypatch) -> ReproSession:
    """_stage from a copy of the driver that has a __pycache__ beside its modules."""
    src = tmp_path / "src" / DRIVER.name
    shutil.copytree(DRIVER, src, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "net.cpython-311.pyc").write_bytes(b"stale")
    monkeypatch.setattr("afpbisect.machinery.repro_session.DRIVER", src)
    session = ReproSession(types.SimpleNamespace(remote=True, name="far"), ReproSettings(pairs=1),
                           "img", tmp_path / "product", tmp_path / "logs")
    (session.afp_dir / DRIVER.name).mkdir(parents=True)
    (session.afp_dir / DRIVER.name / "gone.py").write_text("an earlier version's module")
    session._stage("tok")
    return session


def test_staging_copies_the_whole_directory_and_no_bytecode(tmp_path, monkeypatch):
    staged = _staged(tmp_path, monkeypatch).afp_dir / DRIVER.name
    assert sorted(p.name for p in staged.iterdir()) == sorted(p.name for p in DRIVER.glob("*.py"))
    for p in DRIVER.glob("*.py"):
        assert (staged / p.name).read_bytes() == p.read_bytes()


def test_another_engine_gets_the_directory_as_one_archive_it_can_run(tmp_path, monkeypatch):
    session = _staged(tmp_path, monkeypatch)
    (session.afp_dir / DRIVER.name / "__pycache__").mkdir()   # as a run of python3 would leave
    (session.afp_dir / DRIVER.name / "__pycache__" / "x.pyc").write_bytes(b"x")
    container = _Container()
    storage.put_dir(types.SimpleNamespace(name="far"), container, session.afp_dir, "/afp")
    ((path, data),) = container.archives
    names = sorted(tarfile.open(fileobj=io.BytesIO(data)).getnames())
    assert path == "/" and names == sorted(
        ["afp/config.json", "afp/suricata.yaml", *(f"afp/afpdriver/{p.name}" for p in DRIVER.glob("*.py"))])
    # What the engine unpacks is a driver that runs: one cycle from the unpacked copy.
    root = tmp_path / "engine"
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    tarfile.open(fileobj=io.BytesIO(data)).extractall(root, **safe)
    cfg = _cycle_config(tmp_path, _fake_target(tmp_path))
    proc = _run_driver(tmp_path, "cycle", "--config", str(cfg), "--index", "2", driver=root / "afp/afpdriver")
    assert proc.returncode == 0 and json.loads(proc.stdout)["started"], proc
