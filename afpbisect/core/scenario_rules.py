"""The rules a scenario's values must keep beyond their types (core/scenario.py checks the
types): choices, regexes that compile and decide something, ranges, refs, values that go
into suricata.yaml or onto a command line.  Each broken rule is one UsageError naming the
file and the key (docs/scenarios.md)."""
from __future__ import annotations

import re
from pathlib import Path

from afpbisect.core.errors import UsageError
from afpbisect.core.pcap import pcap_problem

# The lowest per-cycle rate a scenario or option may state: 1 in 1,000 already asks for about
# 7,000 clean cycles at the default budget, above any sensible --cycle-cap.
MIN_RATE = 0.001
CHOICES = {("suricata", "copy_mode"): ("ips", "tap"), ("suricata", "runmode"): ("workers", "autofp"),
           ("suricata", "cluster_type"): ("cluster_flow", "cluster_qm", "cluster_cpu", "cluster_round_robin"),
           ("traffic", "kind"): ("udp", "none", "pcap"), ("cycle", "kind"): ("restart", "hold")}
# Lines every healthy cycle leaves, per log a [hit] rule reads (docs/ARCHITECTURE.md,
# "Console lines that matter"; Suricata's eve.json and stats.log formats).  A hit rule that
# matches one of them, or the empty line, makes every cycle a hit: refused (issue 25),
# because one hit is taken as proof of the bug.
INNOCENT_LINES = {
    "console": ["Notice: suricata: This is Suricata version 8.0.3 RELEASE running in SYSTEM mode",
                "Notice: threads: Threads created -> W: 24 FM: 1 FR: 1   Engine started.",
                *(f"Notice: device: SFE_{i}_{d}: packets: 1234, drops: 0 (0.00%), invalid chksum: 0"
                  for i in range(32) for d in ("TX", "RX")),
                "Notice: suricata: Signal Received.  Stopping engine."],
    "eve": ['{"timestamp":"2025-01-01T10:00:02.000000+0000","event_type":"stats","stats":{"uptime":2,'
            '"capture":{"kernel_packets":10,"kernel_drops":0},"decoder":{"pkts":10,"bytes":600,'
            '"ipv4":10,"ethernet":10,"udp":10}}}'],
    "stats": ["-" * 84, "Date: 1/1/2025 -- 10:00:02 (uptime: 0d, 00h 00m 02s)",
              "Counter                                       | TM Name                   | Value",
              *(f"{c:<46}| Total                     | {n}" for c, n in (
                  ("capture.kernel_packets", 10), ("capture.kernel_drops", 0), ("decoder.pkts", 10),
                  ("decoder.bytes", 600), ("decoder.ipv4", 10), ("decoder.ethernet", 10),
                  ("decoder.udp", 10), ("flow.memuse", 7154304), ("tcp.memuse", 4587520)))],
}


def check_values(s: dict, path: Path) -> None:
    for (sec, key), allowed in CHOICES.items():
        if s[sec][key] not in allowed:
            raise UsageError(f"scenario {path}: key [{sec}] {key!r} must be one of {', '.join(allowed)}")
    regexes = [("hit", w, rx) for w in ("console", "eve", "stats") for rx in s["hit"][w]]
    for sec, key, rx in regexes + [("health", "start_marker", s["health"]["start_marker"])]:
        if re.search(r"[\n\r]", str(rx)) or re.search(r"(?<!\\)\\[nr]", str(rx)):
            # matched against one line at a time, which never holds one: a rule that never
            # matches (a hit never seen: "not reproducible" after the builds; fourth tour)
            raise UsageError(f"scenario {path}: key [{sec}] {key!r}: regex {str(rx)[:80]!r} holds a "
                             f"line break, and is matched against one line at a time")
        try:
            re.compile(str(rx))
        except (re.error, OverflowError, RecursionError) as exc:   # a{4294967296}, ((((...
            raise UsageError(f"scenario {path}: key [{sec}] {key!r}: regex {str(rx)[:80]!r} does "
                             f"not compile ({str(exc)[:120] or type(exc).__name__})") from None
    _check_specific(s, path)
    if not any(s["hit"][k] for k in ("console", "eve", "stats", "exit_codes")) and not s["hit"]["crash"]:
        raise UsageError(f"scenario {path}: [hit] says nothing is a hit: give console, eve, stats, "
                         f"exit_codes or crash")
    if not all(isinstance(c, int) and 0 <= c <= 255 for c in s["hit"]["exit_codes"]):
        raise UsageError(f"scenario {path}: key [hit] 'exit_codes' must be a list of integers "
                         f"in 0..255 (a signal is [hit] crash)")
    _check_ranges(s, path)


def _check_specific(s: dict, path: Path) -> None:
    """Rules that would decide nothing: a hit rule matching every cycle (the empty line, or a
    line every healthy engine leaves), a start marker matching every line (issue 25)."""
    for where, lines in INNOCENT_LINES.items():
        for rx in s["hit"][where]:
            if re.search(str(rx), ""):
                raise UsageError(f"scenario {path}: key [hit] {where!r}: regex {rx!r} matches every "
                                 f"line (it matches the empty one); a hit rule must match only what the bug leaves")
            line = next((ln for ln in lines if re.search(str(rx), ln)), None)
            if line is not None:
                raise UsageError(f"scenario {path}: key [hit] {where!r}: regex {rx!r} matches a line a "
                                 f"healthy engine prints ({line!r}); a hit rule must match only what the bug leaves")
    if 0 in s["hit"]["exit_codes"]:
        raise UsageError(f"scenario {path}: key [hit] 'exit_codes': 0 is how a healthy engine stops on "
                         f"SIGTERM, so every cycle would be a hit")
    marker = s["health"]["start_marker"]
    if not marker:
        raise UsageError(f"scenario {path}: key [health] 'start_marker' must not be empty (the console "
                         f"line that says the engine is up, e.g. 'Engine started\\.')")
    if re.search(marker, ""):
        raise UsageError(f"scenario {path}: key [health] 'start_marker': regex {marker!r} matches every "
                         f"line (it matches the empty one)")
    banner = INNOCENT_LINES["console"][0]   # the first line, long before the engine is up
    if re.search(marker, banner):   # '.' was taken (fourth hostile tour)
        raise UsageError(f"scenario {path}: key [health] 'start_marker': regex {marker!r} matches the "
                         f"first line an engine prints ({banner!r}), long before it is up")


def _check_ranges(s: dict, path: Path) -> None:
    for sec, key, lo, hi in (("suricata", "pairs", 1, 32), ("suricata", "threads", 1, 16),
                             ("traffic", "pps", 0, 1_000_000), ("traffic", "size", 0, 1400),
                             ("health", "min_forwarded", 0, 10**9), ("suricata", "ring_size", 0, 10**7),
                             ("suricata", "block_size", 0, 1 << 30)):
        if not lo <= s[sec][key] <= hi:
            raise UsageError(f"scenario {path}: key [{sec}] {key!r} must be in {lo}..{hi}")
    for key in ("seconds", "start_timeout", "stop_timeout"):
        if not 0.1 <= s["cycle"][key] <= 3600.0:   # 1e-300 s was taken and ran for nothing
            raise UsageError(f"scenario {path}: key [cycle] {key!r} must be in [0.1, 3600] seconds")
    if s["traffic"]["kind"] != "none" and s["traffic"]["pps"] == 0 and s["health"]["min_forwarded"] > 0:
        # no packet offered, and every cycle waited for one forwarded (second hostile tour)
        raise UsageError(f"scenario {path}: key [traffic] 'pps' must be > 0 when [health] "
                         f"min_forwarded > 0 (nothing would be offered to forward)")
    if not MIN_RATE <= s["verdict"]["rate_floor"] < 1.0 or not 1 <= s["verdict"]["cycle_cap"] <= 1_000_000:
        raise UsageError(f"scenario {path}: [verdict] rate_floor must be in [{MIN_RATE}, 1), cycle_cap "
                         f"in 1..1000000")
    if not 0.5 <= s["nightly"]["confidence"] < 1.0 or not MIN_RATE <= s["nightly"]["assumed_rate"] <= 1.0:
        raise UsageError(f"scenario {path}: [nightly] confidence must be in [0.5, 1), assumed_rate "
                         f"in [{MIN_RATE}, 1]")
    for sec, key in (("nightly", "branch"), ("verify", "target")):
        value = s[sec][key]
        if (not value.strip() and (value or key == "branch")) or re.search(r"[\s\x00-\x1f]", value) \
                or value.startswith("-"):   # an option to git, not a ref
            raise UsageError(f"scenario {path}: key [{sec}] {key!r} must be a git ref, got {value!r}")

            raise UsageError(f"scenario {path}: key [{sec}] {key!r} must be a git ref, got {value!r}")
    # Values that go into suricata.yaml or onto the command line: no quote, backslash or
    # line break can smuggle in another key.
    for key, values in (("bpf_filter", [s["suricata"]["bpf_filter"]]), ("args", s["suricata"]["args"])):
        if any(re.search(r'["\\\x00-\x1f\x7f]', str(v)) for v in values):
            raise UsageError(f"scenario {path}: key [suricata] {key!r} must not contain quotes, "
                             f"backslashes, line breaks or other control characters")
    if s["traffic"]["kind"] == "none" and s["health"]["min_forwarded"] > 0:
        raise UsageError(f"scenario {path}: key [health] 'min_forwarded' must be 0 when "
                         f"[traffic] kind = \"none\" (nothing is offered to forward)")
    if s["traffic"]["pcap"] and s["traffic"]["kind"] != "pcap":   # never played (fourth tour)
        raise UsageError(f"scenario {path}: key [traffic] 'pcap' is played only with kind = \"pcap\" "
                         f"(kind is {s['traffic']['kind']!r})")
    if s["traffic"]["kind"] == "pcap":
        pcap = (path.parent / s["traffic"]["pcap"]) if s["traffic"]["pcap"] else None
        if pcap is None or not pcap.is_file():
            raise UsageError(f"scenario {path}: key [traffic] 'pcap' must name a pcap file "
                             f"(relative to the scenario) when kind = \"pcap\"")
        problem = pcap_problem(pcap)
        if problem:
            raise UsageError(f"scenario {path}: key [traffic] 'pcap': {s['traffic']['pcap']} {problem}")
        s["traffic"]["pcap"] = str(pcap.resolve())
