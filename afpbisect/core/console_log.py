"""A cycle's console log -> the facts the verdict needs.  Pure: text in, dataclass out.

What counts (docs/ARCHITECTURE.md, "Console lines that matter"):

* the scenario's hit lines (`[hit] console` regexes, docs/scenarios.md): one is proof of
  the bug; the regex's named group `iface`, when it has one, says which interface.
* any other ``sending packet failed`` line: AF-PACKET's own send-error diagnostic, counted
  apart, never a hit (ENOBUFS, ENETDOWN, a real fd...).
* the start marker (`[health] start_marker`) and, per hit line, whether it came before it.
* the shutdown counters ``device: <iface>: packets: N, drops: M (P%)[, invalid chksum: K]``.

Prefixes differ by build and configuration, and all are accepted: a RELEASE build's default
``W: af-packet: ...``, the long ``Warning: af-packet: ...``, the repro yaml's
``[W#01-SFE_3_TX] 2025-01-01 10:00:00 Warning: af-packet: ...``, the legacy
``1/2/2025 -- 10:00:00 - <Warning> - ...``, ANSI colours, and a git build's trailing
`` [AFPWritePacket:source-af-packet.c:679]``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

# ANSI colour sequences (Suricata colours its console when stdout and stderr are a tty).
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# A non-RELEASE build appends " [function:file.c:line]" to every console line.
_SUFFIX = r"(?:\s+\[[^\]\s]*:[^\]\s]*:\d+\])?"

# Any send failure of AF-PACKET's write path (a hit line is told apart first).
SEND_FAILED_RE = re.compile(
    r"(?:^|[\s:\]>-])(?P<iface>[^\s:\[\]]+): sending packet failed on socket (?P<fd>-?\d+): "
    r"(?P<reason>.*?)" + _SUFFIX + r"\s*$"
)


COUNTERS_RE = re.compile(
    r"device: (?P<iface>[^\s:]+): packets: (?P<packets>\d+), drops: (?P<drops>\d+) "
    r"\((?P<pct>[-\w.]+)%\)(?:, invalid chksum: (?P<invalid>\d+))?"
)

# Error-level lines, for the record's explanation when a cycle is INFRA.
_ERROR_RE = re.compile(r"(?:^|[\s\]])(?:Error|E|<Error>)(?::| -) ")


@dataclass
class SendFailure:
    line_no: int          # 1-based line number in the console log
    iface: str            # the peer interface whose socket was written to
    fd: int
    reason: str
    text: str             # the whole line, colours stripped
    before_start: bool    # came before "Engine started." (or the marker never came)


@dataclass
class HitLine:
    line_no: int          # 1-based line number in the console log
    iface: str            # the regex's `iface` group, "?" without one
    text: str             # the whole line, colours stripped
    before_start: bool    # came before the start marker (or the marker never came)


@dataclass
class ConsoleSignals:
    started: bool = False
    start_line: int | None = None
    signature: list[HitLine] = field(default_factory=list)
    other_send_errors: list[SendFailure] = field(default_factory=list)
    shutdown_counters: dict = field(default_factory=dict)   # iface -> {packets, drops, drop_pct, invalid_chksum}
    error_lines: list[str] = field(default_factory=list)

    @property
    def signature_lines(self) -> list[str]:
        return [h.text for h in self.signature]

    @property
    def signature_before_start(self) -> bool:
        """True iff there is a signature and every line of it came before the start marker."""
        return bool(self.signature) and all(h.before_start for h in self.signature)

    @property
    def signature_ifaces(self) -> list[str]:
        return sorted({h.iface for h in self.signature})


def clean_line(line: str) -> str:
    return _ANSI.sub("", line).rstrip("\r\n")


def parse_console(text: str, hits: list[re.Pattern], start_marker: str) -> ConsoleSignals:
    """Parse a whole console log.  `hits` and `start_marker` come from the scenario
    (`Scenario.hit_patterns("console")`, `Scenario.health.start_marker`).  Lines after the
    first start marker are "after start"."""
    start_re = re.compile(start_marker)
    sig = ConsoleSignals()
    for no, raw in enumerate(text.splitlines(), start=1):
        line = clean_line(raw)
        if not sig.started and start_re.search(line):
            sig.started = True
            sig.start_line = no
            continue
        m = next((m for rx in hits if (m := rx.search(line))), None)
        if m is not None:
            iface = m.groupdict().get("iface") or "?"
            sig.signature.append(HitLine(no, iface, line.strip(), not sig.started))
            continue
        if "sending packet failed" in line:
            m = SEND_FAILED_RE.search(line)
            fail = SendFailure(no, m.group("iface") if m else "?", int(m.group("fd")) if m else -1,
                               m.group("reason") if m else line.strip(), line.strip(), not sig.started)
            sig.other_send_errors.append(fail)
            continue
        if _counters(sig, line):
            continue
        if _ERROR_RE.search(line):
            sig.error_lines.append(line.strip())
    return sig


def _counters(sig: ConsoleSignals, line: str) -> bool:
    m = COUNTERS_RE.search(line)
    if not m:
        return False
    try:
        pct = float(m.group("pct"))
    except ValueError:
        pct = None
    if pct is not None and math.isnan(pct):
        pct = None  # "-nan%": glibc's 0/0
    sig.shutdown_counters[m.group("iface")] = {
        "packets": int(m.group("packets")),
        "drops": int(m.group("drops")),
        "drop_pct": pct,
        "invalid_chksum": int(m.group("invalid")) if m.group("invalid") is not None else None,
    }
    return True


def parse_console_file(path, hits: list[re.Pattern], start_marker: str) -> ConsoleSignals:
    """Parse a console log on disk; bytes that are not UTF-8 are replaced, not fatal."""
    with open(path, "rb") as fh:
        return parse_console(fh.read().decode("utf-8", errors="replace"), hits, start_marker)


def matching_lines(path, patterns: list[re.Pattern], limit: int = 20) -> list[str]:
    """Lines of a file (eve.json, stats.log) that match any of `patterns` (a scenario's hit
    rule over another log); none when the file is missing."""
    try:
        with open(path, "rb") as fh:
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return [ln.strip() for ln in lines if any(rx.search(ln) for rx in patterns)][:limit]
