"""Cold-start cycles of a built target in a private network namespace (test helper).

Run it *inside* a fresh network namespace, e.g.

    unshare --net python3 tests/synthetic_netns.py --binary out/usr/local/bin/suricata \
        --pairs 2 --threads 2 --delay-us 100000 --cycles 10

It makes the veth pairs of the run contract (SFE_i_TX/far_i_tx, SFE_i_RX/far_i_rx), blasts
UDP frames (many flows, so every fanout member gets some) into far_i_tx, and per cycle
starts the target with stdin on /dev/null, waits for "Engine started.", lets traffic flow
for --traffic-s seconds, sends SIGTERM and records: start time, signature lines, frames
that reached far_i_rx after the start, shutdown counters, exit code.  Prints one JSON
document.  An anonymous namespace (unshare) goes away with its last process: nothing can
be left behind, even on a crash.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAGIC = b"AFPBSYN!"

SIGNATURE_RE = re.compile(r"Warning: af-packet: (\S+): sending packet failed on socket (-?\d+): (.*)$")
STARTED_RE = re.compile(r"Engine started\.")
DEVICE_RE = re.compile(r"Notice: device: (\S+): packets: (\d+), drops: (\d+) \(([\d.]+)%\), invalid chksum: (\d+)")

YAML = """%YAML 1.1
---
# written by tests/synthetic_netns.py
runmode: workers
af-packet:
{items}
outputs:
  - fast:
      enabled: no
"""
ITEM = """  - interface: {iface}
    threads: {threads}
    cluster-id: {cid}
    cluster-type: cluster_flow
    defrag: no
    copy-mode: ips
    copy-iface: {peer}
    use-mmap: yes
    tpacket-v3: no
{extra}"""


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def setup_links(pairs: int) -> None:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    names = [l.split(":")[1].strip().split("@")[0] for l in links.splitlines()]
    if [n for n in names if n != "lo"]:
        raise SystemExit(f"refusing to run outside a fresh network namespace (links: {names})")
    sh("ip", "link", "set", "lo", "up")
    for key in ("default", "all"):  # no IPv6 chatter (router solicitations, MLD) on the veths
        p = Path(f"/proc/sys/net/ipv6/conf/{key}/disable_ipv6")
        if p.exists():
            p.write_text("1\n")
    for i in range(pairs):
        for side in ("tx", "rx"):
            sh("ip", "link", "add", f"SFE_{i}_{side.upper()}", "type", "veth", "peer", "name", f"far_{i}_{side}")
            sh("ip", "link", "set", f"SFE_{i}_{side.upper()}", "up")
            sh("ip", "link", "set", f"far_{i}_{side}", "up")


def _csum(data: bytes) -> int:
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def frames_for_pair(i: int, flows: int = 64) -> list[bytes]:
    out = []
    for k in range(flows):
        payload = MAGIC + struct.pack("!HH", i, k) + bytes(20)
        udp = struct.pack("!HHHH", 10000 + k, 9, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), k, 0, 64, 17, 0,
                         bytes([10, 0, i, 1]), bytes([10, 0, i, 255]))
        ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
        eth = b"\xff" * 6 + bytes([2, 0, 0, 0, i, 1]) + b"\x08\x00"
        out.append(eth + ip + udp)
    return out


class Traffic(threading.Thread):
    """Sends `pps` frames a second into every far_i_tx, counts what comes out of far_i_rx."""

    def __init__(self, pairs: int, pps: int):
        super().__init__(daemon=True)
        self.pairs, self.pps = pairs, pps
        self.stop = threading.Event()
        self.forwarded = [0] * pairs
        self.sent = 0
        self.tx, self.rx = [], []
        for i in range(pairs):
            t = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            t.bind((f"far_{i}_tx", 0))
            r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            r.bind((f"far_{i}_rx", 0))
            r.setblocking(False)
            self.tx.append(t)
            self.rx.append(r)
        self.frames = [frames_for_pair(i) for i in range(pairs)]

    def run(self) -> None:
        tick = 0.005
        per_tick = max(1, int(self.pps * tick))
        k = 0
        nxt = time.monotonic()
        while not self.stop.is_set():
            for i in range(self.pairs):
                fr = self.frames[i]
                for _ in range(per_tick):
                    try:
                        self.tx[i].send(fr[k % len(fr)])
                        self.sent += 1
                    except OSError:
                        pass
                    k += 1
                while True:
                    try:
                        data, addr = self.rx[i].recvfrom(2048)
                    except BlockingIOError:
                        break
                    if addr[2] != PACKET_OUTGOING and MAGIC in data:
                        self.forwarded[i] += 1
            nxt += tick
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                nxt = time.monotonic()
        for s in self.tx + self.rx:
            s.close()


def run_cycle(binary: str, yaml_path: str, logdir: str, delay_us: int, traffic: Traffic,
              traffic_s: float, start_timeout: float) -> dict:
    env = {**os.environ, "SURICATA_RING_SETUP_DELAY_US": str(delay_us)}
    lines: list[tuple[float, str]] = []
    started = threading.Event()
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "-c", yaml_path, "--af-packet", "-l", logdir, "-k", "none",
                             "-S", "/dev/null"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)

    def reader():
        for line in proc.stdout:
            lines.append((time.monotonic() - t0, line.rstrip("\n")))
            if STARTED_RE.search(line):
                started.set()

    rd = threading.Thread(target=reader, daemon=True)
    rd.start()
    deadline = t0 + start_timeout
    while not started.is_set() and proc.poll() is None and time.monotonic() < deadline:
        started.wait(0.01)
    start_s = (time.monotonic() - t0) if started.is_set() else None
    fwd0 = sum(traffic.forwarded)
    if started.is_set():
        time.sleep(traffic_s)
    fwd1 = sum(traffic.forwarded)
    t_stop = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    stop_s = time.monotonic() - t_stop
    rd.join(timeout=5)
    sig = [(t, l) for t, l in lines if SIGNATURE_RE.search(l)]
    devices = {}
    for _, l in lines:
        m = DEVICE_RE.search(l)
        if m:
            devices[m.group(1)] = {"packets": int(m.group(2)), "drops": int(m.group(3))}
    return {
        "started": started.is_set(), "start_s": None if start_s is None else round(start_s, 3),
        "signature": [l for _, l in sig],
        "signature_before_start": all(start_s is None or t <= start_s for t, _ in sig),
        "forwarded_after_start": fwd1 - fwd0, "stop_s": round(stop_s, 3), "rc": rc,
        "devices": devices, "log": [l for _, l in lines],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--delay-us", type=int, default=100000)
    ap.add_argument("--cycles", type=int, default=1)
    ap.add_argument("--traffic-s", type=float, default=1.0)
    ap.add_argument("--pps", type=int, default=5000, help="frames per second per pair")
    ap.add_argument("--start-timeout", type=float, default=30.0)
    ap.add_argument("--ring-size", type=int, default=0, help="ring-size: line in the yaml (0: none)")
    ap.add_argument("--keep-logs", action="store_true")
    a = ap.parse_args(argv)

    setup_links(a.pairs)
    items = []
    for i in range(a.pairs):
        for j, (side, peer) in enumerate((("TX", "RX"), ("RX", "TX"))):
            items.append(ITEM.format(iface=f"SFE_{i}_{side}", peer=f"SFE_{i}_{peer}",
                                     threads=a.threads, cid=90 + 2 * i + j,
                                     extra=f"    ring-size: {a.ring_size}\n" if a.ring_size else ""))
    traffic = Traffic(a.pairs, a.pps)
    traffic.start()
    time.sleep(0.2)  # traffic is flowing before the first start, as in the ticket's steps
    cycles = []
    with tempfile.TemporaryDirectory(prefix="afpb-netns-") as tmp:
        yaml_path = os.path.join(tmp, "suricata.yaml")
        Path(yaml_path).write_text(YAML.format(items="".join(items)))
        for _ in range(a.cycles):
            c = run_cycle(a.binary, yaml_path, tmp, a.delay_us, traffic, a.traffic_s, a.start_timeout)
            if not a.keep_logs:
                c.pop("log")
            cycles.append(c)
    traffic.stop.set()
    traffic.join(timeout=5)
    hits = sum(1 for c in cycles if c["signature"])
    starts = [c["start_s"] for c in cycles if c["start_s"] is not None]
    json.dump({"cycles": cycles, "hits": hits, "n": len(cycles), "sent": traffic.sent,
               "start_s": {"min": min(starts, default=None), "max": max(starts, default=None)}},
              sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
