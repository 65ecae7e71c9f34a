"""The frames the repro sends, and the paced sender (serve keeps it running between cycles)."""
from __future__ import annotations

import socket
import struct
import time

from net import far_rx, far_tx

ETH_P_ALL = 0x0003


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


def send_paced(traffic: Traffic, stop: dict, deadline: float, each_tick=lambda: None) -> None:
    """Frames at traffic.pps until stop["flag"] or the deadline (then stop["why"] says
    max_seconds); `each_tick` is called once a tick (serve reaps orphans there)."""
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
        each_tick()
        time.sleep(Traffic.TICK)
