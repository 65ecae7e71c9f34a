"""Whether a file is a pcap the repro's driver can replay (a scenario's [traffic] pcap),
checked on the host before anything is built."""
from __future__ import annotations

from pathlib import Path

# The magic numbers of a classic pcap (microsecond and nanosecond, either byte order) and of
# pcapng; the driver replays classic pcaps of Ethernet frames only (read_pcap, afpdriver/traffic.py).
PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


def pcap_problem(pcap: Path) -> str | None:
    """Why `pcap` is not a classic pcap of Ethernet frames with at least one frame, or None
    (the rule the driver's read_pcap applies in the container, checked here before anything)."""
    try:
        with open(pcap, "rb") as fh:
            head = fh.read(24 + 16)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if head[:4] == PCAPNG_MAGIC:
        return "is a pcapng file; the traffic is replayed from a classic pcap (convert it: editcap -F pcap IN OUT)"
    endian = PCAP_MAGIC.get(head[:4])
    if endian is None or len(head) < 24:
        return f"is not a pcap file (its first bytes are {head[:4].hex() or 'missing'}, not a pcap magic number)"
    link = int.from_bytes(head[20:24], "little" if endian == "<" else "big")
    if link != 1:
        return f"has link type {link}, not Ethernet (1)"
    if len(head) < 24 + 16:
        return "holds no frames"
    caplen = int.from_bytes(head[32:36], "little" if endian == "<" else "big")
    if caplen < 14:   # the driver replays frames; one without an Ethernet header sends nothing
        return f"starts with a frame of {caplen} bytes, shorter than an Ethernet header (14)"
    return None
