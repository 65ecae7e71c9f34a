"""`cycle`: one cold start of the target, with serve's traffic flowing, and its JSON record."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback

from net import delta, offered, snapshot, stray_toward_rx


def cmd_cycle(cfg: dict, index: int) -> int:
    """Run one cycle; its record is ONE JSON line on stdout (and <logdir>/record.json)."""
    rec = run_cycle(cfg, index)
    line = json.dumps(rec, sort_keys=True)
    try:
        with open(os.path.join(os.path.dirname(rec["log"]), "record.json"), "w", encoding="utf-8") as fh:
            fh.write(line + "\n")
    except OSError:
        pass
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0


def run_cycle(cfg: dict, index: int) -> dict:
    """One cold start of the target: spawn, wait for the start marker, count forwarding
    for the traffic window, stop it (SIGTERM, then SIGKILL), and say what happened."""
    t0 = time.monotonic()
    pairs, send_rx = int(cfg["pairs"]), bool(cfg["send_rx"])
    logdir = _fresh_logdir(os.path.join(cfg["logs"], f"cycle-{index:03d}"))
    console = os.path.join(logdir, "console.log")
    rec = _new_record(index, console)
    argv, env = _target_command(cfg, logdir)
    proc = None
    out = open(console, "wb")
    stray0 = stray_toward_rx(pairs, send_rx)
    try:
        t_spawn = time.monotonic()
        # stdin must not be a socket: the signature is sendto() on fd 0 (NOTES).
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=logdir, start_new_session=True)
        marker_at = _wait_marker(proc, console, float(cfg["start_timeout"]),
                                 re.compile(cfg["start_marker"].encode()))
        if marker_at is not None:
            rec["started"] = True
            rec["start_seconds"] = round(marker_at - t_spawn, 3)
            _count_forwarding(cfg, proc, rec)
        elif proc.poll() is not None:
            rec["early_exit"] = True
        else:
            # The target hung before start: its fault, not the rig's (UNHEALTHY on the host).
            rec["start_timeout"] = True
        _stop_target(proc, float(cfg["stop_timeout"]), rec)
        rec["stray_into_rx"] = delta(stray0, stray_toward_rx(pairs, send_rx))
    except Exception as exc:  # noqa: BLE001 - the record carries it; the target still dies below
        rec["error"] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
    finally:
        _make_sure_it_is_gone(proc, rec)
        out.close()
        rec["duration"] = round(time.monotonic() - t0, 3)
    return rec


def _new_record(index: int, console: str) -> dict:
    return {
        "index": index,
        "started": False,
        "start_seconds": None,
        "exit_code": None,
        "killed": False,
        "early_exit": False,
        "start_timeout": False,
        "died": False,
        "forwarded_after_start": {},
        "offered": {},
        "stray_into_rx": {},
        "log": console,
        "duration": 0.0,
        "error": None,
    }


def _fresh_logdir(logdir: str) -> str:
    if os.path.isdir(logdir):
        shutil.rmtree(logdir)  # a re-run of the same index starts from an empty directory
    os.makedirs(logdir)
    return logdir


def _target_command(cfg: dict, logdir: str) -> tuple[list, dict]:
    """The target's argv and environment (the contract in docs/ARCHITECTURE.md)."""
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (cfg.get("env") or {}).items()})
    lib = os.path.join(cfg["product"], "usr/local/lib")
    env["LD_LIBRARY_PATH"] = lib + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    argv = [cfg["binary"], "-c", cfg["yaml"], "--af-packet", "-l", logdir, "-k", "none",
            "-S", "/dev/null", *cfg.get("extra_args", [])]
    return argv, env


def _wait_marker(proc: subprocess.Popen, console: str, timeout: float, marker) -> float | None:
    """Monotonic time at which the start marker (a compiled bytes regex, matched within a
    line) appeared in the console log, or None if the target exited first or the timeout
    passed.  Suricata flushes every console line."""
    deadline = time.monotonic() + timeout
    pos = 0
    tail = b""   # the last line, while it is not complete
    with open(console, "rb") as fh:
        while True:
            fh.seek(pos)
            chunk = fh.read()
            if chunk:
                pos += len(chunk)
                buf = tail + chunk
                if marker.search(buf):
                    return time.monotonic()
                tail = buf[buf.rfind(b"\n") + 1:]
            if proc.poll() is not None:
                # one last read: the marker may have been written just before exit
                fh.seek(pos)
                if marker.search(tail + fh.read()):
                    return time.monotonic()
                return None
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)


def _count_forwarding(cfg: dict, proc: subprocess.Popen, rec: dict) -> None:
    """After the start marker: frames offered and forwarded over the traffic window."""
    pairs, send_rx = int(cfg["pairs"]), bool(cfg["send_rx"])
    before, offered0 = snapshot(pairs, send_rx), offered(pairs, send_rx)
    end = time.monotonic() + float(cfg["traffic_seconds"])
    while time.monotonic() < end and proc.poll() is None:
        time.sleep(0.02)
    after, offered1 = snapshot(pairs, send_rx), offered(pairs, send_rx)
    rec["forwarded_after_start"] = delta(before, after)
    rec["offered"] = delta(offered0, offered1)
    if cfg["traffic_kind"] != "none" and not any(rec["offered"].values()):
        # The rig, not the target: without frames offered the race cannot fire.
        rec["error"] = "no frames offered during the traffic window (traffic generator not running?)"
    if proc.poll() is not None:
        rec["died"] = True  # exited on its own after starting: not a clean cycle


def _stop_target(proc: subprocess.Popen, stop_timeout: float, rec: dict) -> None:
    """SIGTERM, and SIGKILL (the group) when it has not exited within stop_timeout."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            rec["killed"] = True
            _kill_group(proc)
            proc.wait(timeout=30)
    rec["exit_code"] = proc.returncode


def _make_sure_it_is_gone(proc: subprocess.Popen | None, rec: dict) -> None:
    """Whatever went wrong: the target and its process group end with the cycle."""
    if proc is not None and proc.poll() is None:
        rec["killed"] = True
        _kill_group(proc)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        rec["exit_code"] = proc.returncode
    elif proc is not None:
        # the session leader is gone; sweep anything it left in its group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
