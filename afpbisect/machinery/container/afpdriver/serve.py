"""`serve`: the repro container's main process (veths, traffic, ready.json, reaping)."""
from __future__ import annotations

import json
import os
import signal
import sys
import time

from net import setup_veths
from traffic import Traffic, send_paced


def log(msg: str) -> None:
    print(f"afp-driver[{os.getpid()}] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def cmd_serve(cfg: dict) -> int:
    """The container's PID 1: veths up, traffic flowing, "ready" written; then paced traffic
    until SIGTERM/SIGINT or max_seconds."""
    logs = cfg["logs"]
    state_dir = os.path.join(logs, "serve")
    os.makedirs(state_dir, exist_ok=True)
    ready_path = os.path.join(state_dir, "ready.json")
    try:
        os.unlink(ready_path)
    except FileNotFoundError:
        pass
    stop = _stop_on_signals()

    t0 = time.monotonic()
    pairs = int(cfg["pairs"])
    setup = setup_veths(pairs)
    traffic = Traffic(pairs, float(cfg["traffic_pps"]), bool(cfg["send_rx"]), cfg["traffic_kind"],
                      int(cfg["frame_size"]), cfg["pcap"])
    traffic.send(len(traffic.targets))  # one frame each, so "ready" means frames flow
    _write_ready(ready_path, cfg, traffic, setup, t0)
    log(f"ready: {pairs} pairs, {traffic.pps:.0f} pps, ipv6 off: {setup['ipv6_disabled']}")

    send_paced(traffic, stop, deadline=t0 + float(cfg["max_seconds"]), each_tick=_reap_children)
    traffic.close()
    log(f"stopping ({stop['why']}): sent {traffic.sent} frames, {traffic.errors} send errors")
    with open(os.path.join(state_dir, "stopped.json"), "w", encoding="utf-8") as fh:
        json.dump({"why": stop["why"], "sent": traffic.sent, "errors": traffic.errors}, fh)
    return 0


def _stop_on_signals() -> dict:
    """A flag SIGTERM and SIGINT raise (and say which)."""
    stop = {"flag": False, "why": ""}

    def on_signal(signum, _frame):
        stop["flag"] = True
        stop["why"] = signal.Signals(signum).name

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _write_ready(ready_path: str, cfg: dict, traffic: Traffic, setup: dict, t0: float) -> None:
    """ready.json, atomically: what the host waits for (the session's start)."""
    info = {
        "session": cfg.get("session"),
        "pid": os.getpid(),
        "pairs": int(cfg["pairs"]),
        "traffic_pps": traffic.pps,
        "send_rx": bool(cfg["send_rx"]),
        "max_seconds": float(cfg["max_seconds"]),
        "setup_seconds": round(time.monotonic() - t0, 3),
        "wall_started": time.time(),
        **setup,
    }
    tmp = ready_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    os.replace(tmp, ready_path)


def _reap_children() -> None:
    # serve is PID 1: processes orphaned by an interrupted `docker exec` end up here.
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
