#!/usr/bin/env python3
"""afpbisect repro driver: runs INSIDE the repro container, with Debian's python3 (stdlib only).

Two subcommands (docs/ARCHITECTURE.md, "how a target is run"):

  serve --config /afp/config.json
      The container's main process.  Makes the veth pairs in the container's own network
      namespace (pair i: SFE_i_TX <-> far_i_tx and SFE_i_RX <-> far_i_rx), keeps frames
      flowing into far_i_tx (so they arrive on SFE_i_TX) for every pair -- small broadcast
      UDP frames, or the frames of a pcap file, or none, as the scenario's [traffic] says --
      writes <logs>/serve/ready.json, and runs until SIGTERM or `max_seconds`, whichever
      comes first.  Traffic flows between cycles too: a start-up race needs packets waiting
      on the read side when the workers come up.

  cycle --config /afp/config.json --index N
      One cold start of the target per the run contract, with the traffic of `serve` flowing:
      start (with the scenario's `env`), wait for the start marker (a regex), count what
      reaches far_i_rx for `traffic_seconds`,
      SIGTERM, wait.  Prints ONE JSON record on stdout (also kept as
      <logs>/cycle-NNN/record.json).  The target is always terminated, whatever happens.

The driver reads no log for the verdict: afpbisect/core/console_log.py does that on the host.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback

# Only where things are inside the container; how a cycle runs (pairs, traffic, the start
# marker, the timeouts) the host always sends (repro_settings.driver_config, from the scenario,
# whose models hold those defaults): a config without them is refused, not filled in here.
DEFAULTS = {
    "binary": "/opt/product/usr/local/bin/suricata",
    "product": "/opt/product",
    "yaml": "/afp/suricata.yaml",
    "logs": "/logs",
    "env": {},                    # environment of the target (the test patches read it)
    "max_seconds": 3600.0,        # serve's lifetime: traffic stops and serve exits after it
    "extra_args": [],
}
REQUIRED = ("pairs", "traffic_kind", "frame_size", "pcap", "start_marker", "traffic_pps", "send_rx",
            "traffic_seconds", "start_timeout", "stop_timeout")

ETH_P_ALL = 0x0003


def load_config(path: str) -> dict:
    cfg = dict(DEFAULTS)
    with open(path, encoding="utf-8") as fh:
        cfg.update(json.load(fh))
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise SystemExit(f"driver: {path} lacks {', '.join(missing)} (the host's driver_config gives them)")
    return cfg


def tx_if(i: int) -> str:
    return f"SFE_{i}_TX"


def rx_if(i: int) -> str:
    return f"SFE_{i}_RX"


def far_tx(i: int) -> str:
    return f"far_{i}_tx"


def far_rx(i: int) -> str:
    return f"far_{i}_rx"


def log(msg: str) -> None:
    print(f"afp-driver[{os.getpid()}] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# veth setup
# ---------------------------------------------------------------------------------------

def _sysctl_write(path: str, value: str) -> bool:
    try:
        with open(path, "w", encoding="ascii") as fh:
            fh.write(value)
        return True
    except OSError:
        return False


def _ipv6_disabled(iface: str) -> bool:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{iface}/disable_ipv6", encoding="ascii") as fh:
            return fh.read().strip() == "1"
    except OSError:
        return True  # no IPv6 at all: quiet too


def setup_veths(pairs: int) -> dict:
    """Create and bring up the veth pairs; return what was done (for ready.json).

    IPv6 is switched off so that the kernel sends no router solicitations / MLD reports out
    of SFE_i_RX: far_i_rx must count only what the target forwarded.  /proc/sys is read-only
    in an unprivileged container, so the host also passes net.ipv6.conf.{all,default}
    .disable_ipv6=1 as container sysctls (new interfaces inherit `default`); the writes here
    are a second chance for engines that ignore those.
    """
    for key in ("all", "default"):
        _sysctl_write(f"/proc/sys/net/ipv6/conf/{key}/disable_ipv6", "1")
    cmds = []
    for i in range(pairs):
        cmds.append(f"link add {tx_if(i)} type veth peer name {far_tx(i)}")
        cmds.append(f"link add {rx_if(i)} type veth peer name {far_rx(i)}")
    ifaces = [n for i in range(pairs) for n in (far_tx(i), far_rx(i), tx_if(i), rx_if(i))]
    for name in ifaces:
        cmds.append(f"link set {name} up")
    subprocess.run(["ip", "-batch", "-"], input="\n".join(cmds) + "\n", text=True, check=True)
    quiet = True
    for name in ifaces:
        _sysctl_write(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "1")
        quiet = quiet and _ipv6_disabled(name)
    return {"ifaces": ifaces, "ipv6_disabled": quiet}


# ---------------------------------------------------------------------------------------
# traffic
# ---------------------------------------------------------------------------------------

def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack("!%dH" % (len(header) // 2), header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def make_frame(pair: int, sport: int, payload_len: int) -> bytes:
    """A small broadcast UDP frame: 0.0.0.0 -> 255.255.255.255, UDP to the discard port.

    Limited broadcast from the unspecified address is link-local by definition, so the
    frames name no host anywhere.  The UDP source port varies so that cluster_flow spreads
    the frames over all workers of an interface; the IPv4 checksum is right and the UDP
    checksum is 0 (none), so no checksum logic drops anything.
    """
    payload = (b"afpbisect-%02d-" % (pair % 100)).ljust(payload_len, b".")[:payload_len]
    udp = struct.pack("!HHHH", sport, 9, 8 + len(payload), 0) + payload
    ip_wo_csum = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), pair & 0xFFFF, 0, 64, 17, 0,
                             b"\x00\x00\x00\x00", b"\xff\xff\xff\xff")
    csum = _ip_checksum(ip_wo_csum)
    ip = ip_wo_csum[:10] + struct.pack("!H", csum) + ip_wo_csum[12:]
    src_mac = bytes([0x02, 0xAF, 0xB1, 0x5E, pair & 0xFF, 0x01])
    eth = b"\xff" * 6 + src_mac + struct.pack("!H", 0x0800)
    return eth + ip + udp


def read_pcap(path: str) -> list:
    """The frames of a classic pcap file (Ethernet link type), in order."""
    with open(path, "rb") as fh:
        data = fh.read()
    magic = data[:4]
    endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
              b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
    if endian is None or struct.unpack(endian + "I", data[20:24])[0] != 1:
        raise ValueError(f"{path}: not a classic pcap file of Ethernet frames")
    frames, pos = [], 24
    while pos + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[pos + 8:pos + 12])[0]
        frames.append(data[pos + 16:pos + 16 + incl])
        pos += 16 + incl
    if not frames:
        raise ValueError(f"{path}: no frames")
    return frames


class Traffic:
    """Paced sender over one AF_PACKET raw socket per far interface."""

    SPORTS = 64
    TICK = 0.005

    def __init__(self, pairs: int, pps: float, send_rx: bool, kind: str, size: int,
                 pcap: str = ""):
        self.pps = max(float(pps), 1.0)
        self.targets = []  # (socket, [frames])
        names = [far_tx(i) for i in range(pairs)]
        if send_rx:
            names += [far_rx(i) for i in range(pairs)]
        replay = read_pcap(pcap) if kind == "pcap" else None
        for idx, name in enumerate(names if kind != "none" else []):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.bind((name, 0))
            sock.setblocking(False)
            frames = replay or [make_frame(idx % pairs, 1024 + k, size) for k in range(self.SPORTS)]
            self.targets.append((sock, frames))
        self.sent = 0
        self.errors = 0
        self._cursor = 0

    def send(self, count: int) -> None:
        n = len(self.targets)
        for _ in range(count if n else 0):
            k = self._cursor
            self._cursor += 1
            sock, frames = self.targets[k % n]
            try:
                sock.send(frames[(k // n) % len(frames)])
                self.sent += 1
            except OSError:
                # ENOBUFS / EAGAIN when the far side is busy: the next tick catches up.
                self.errors += 1

    def close(self) -> None:
        for sock, _ in self.targets:
            sock.close()


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

    _send_paced(traffic, stop, deadline=t0 + float(cfg["max_seconds"]))
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


def _write_ready(ready_path: str, cfg: dict, traffic: "Traffic", setup: dict, t0: float) -> None:
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


def _send_paced(traffic: "Traffic", stop: dict, deadline: float) -> None:
    """Frames at traffic.pps until stopped or the deadline; orphans reaped meanwhile."""
    start = time.monotonic()
    due_base = traffic.sent
    while not stop["flag"]:
        now = time.monotonic()
        if now >= deadline:
            stop["why"] = "max_seconds"
            break
        due = int((now - start) * traffic.pps) + due_base - traffic.sent
        # After a stall, catch up at most one second's worth: a burst is not the point.
        traffic.send(min(max(due, 0), int(traffic.pps)))
        if due > traffic.pps:
            start = now
            due_base = traffic.sent
        _reap_children()
        time.sleep(Traffic.TICK)


def _reap_children() -> None:
    # serve is PID 1: processes orphaned by an interrupted `docker exec` end up here.
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ---------------------------------------------------------------------------------------
# one cycle
# ---------------------------------------------------------------------------------------

def read_counter(iface: str, name: str = "rx_packets") -> int | None:
    try:
        with open(f"/sys/class/net/{iface}/statistics/{name}", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def snapshot(pairs: int, send_rx: bool) -> dict:
    """Frames that left each forwarding interface, as counted on its veth peer.

    Key SFE_i_RX: what the target wrote out of SFE_i_RX (TX->RX forwarding), counted as
    rx_packets of far_i_rx.  With send_rx, also SFE_i_TX (RX->TX forwarding) on far_i_tx.
    Nothing else sends out of the SFE ends (no addresses, IPv6 off), so the count is the
    target's forwarding alone.
    """
    snap = {rx_if(i): read_counter(far_rx(i)) for i in range(pairs)}
    if send_rx:
        snap.update({tx_if(i): read_counter(far_tx(i)) for i in range(pairs)})
    return snap


def _sent_toward_rx(pairs: int) -> dict:
    """tx_packets of each far_i_rx, keyed by the SFE_i_RX it feeds."""
    return {rx_if(i): read_counter(far_rx(i), "tx_packets") for i in range(pairs)}


def offered(pairs: int, send_rx: bool) -> dict:
    """Frames the generator put on the wire toward each read interface (far end tx_packets)."""
    snap = {tx_if(i): read_counter(far_tx(i), "tx_packets") for i in range(pairs)}
    if send_rx:
        snap.update(_sent_toward_rx(pairs))
    return snap


def stray_toward_rx(pairs: int, send_rx: bool) -> dict:
    """Frames the far end of each SFE_i_RX emitted while the generator sends nothing there.

    Only the kernel could emit them (the generator writes into far_i_rx only with send_rx);
    the target reads every one on SFE_i_RX, so a shutdown count that is not 0 there is
    explained (or not) by this, instead of by guesswork.
    """
    return {} if send_rx else _sent_toward_rx(pairs)


def _delta(before: dict, after: dict) -> dict:
    return {k: (after[k] - before[k]) if after.get(k) is not None and before[k] is not None else None
            for k in before}


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass


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
        rec["stray_into_rx"] = _delta(stray0, stray_toward_rx(pairs, send_rx))
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


def _count_forwarding(cfg: dict, proc: subprocess.Popen, rec: dict) -> None:
    """After the start marker: frames offered and forwarded over the traffic window."""
    pairs, send_rx = int(cfg["pairs"]), bool(cfg["send_rx"])
    before, offered0 = snapshot(pairs, send_rx), offered(pairs, send_rx)
    end = time.monotonic() + float(cfg["traffic_seconds"])
    while time.monotonic() < end and proc.poll() is None:
        time.sleep(0.02)
    after, offered1 = snapshot(pairs, send_rx), offered(pairs, send_rx)
    rec["forwarded_after_start"] = _delta(before, after)
    rec["offered"] = _delta(offered0, offered1)
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


def cmd_cycle(cfg: dict, index: int) -> int:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="driver.py", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_serve = sub.add_parser("serve")
    p_serve.add_argument("--config", required=True)
    p_cycle = sub.add_parser("cycle")
    p_cycle.add_argument("--config", required=True)
    p_cycle.add_argument("--index", type=int, required=True)
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    if args.cmd == "serve":
        return cmd_serve(cfg)
    return cmd_cycle(cfg, args.index)


if __name__ == "__main__":
    sys.exit(main())
