"""afpbisect.core.console_log on realistic console logs (pure, fast).

Samples follow Suricata's console formats (src/util-debug.[ch], same at 7.0.0 and 8.0.3):
the repro yaml's explicit "[%m] %z %d: %S: %M", a RELEASE build's default "%D: %S: %M"
("W:" / "i:"), a git build's default "%d: %S: %M [%n:%f:%l]", the ticket's samples, and the
synthetic target's contract lines (docs/ARCHITECTURE.md)."""
from __future__ import annotations

import re

import pytest

from afpbisect.core import console_log
from afpbisect.core.scenario import load

SCENARIO = load("8667")
SIGNATURE_RE = SCENARIO.hit.console[0]   # the built-in scenario's hit rule


def parse_console(text):
    """console_log.parse_console with the built-in scenario's hit rule and start marker."""
    return console_log.parse_console(text, SCENARIO.hit_patterns("console"), SCENARIO.health.start_marker)


def parse_console_file(path):
    return console_log.parse_console_file(path, SCENARIO.hit_patterns("console"), SCENARIO.health.start_marker)

SIG = "sending packet failed on socket 0: Socket operation on non-socket"

# 8.0 bad build (923ad6af77 + widener), as the repro yaml makes Suricata print it.
LOG_80_HIT = """\
[Suricata-Main] 2026-11-25 01:52:37 Notice: suricata: This is Suricata version 8.0.3 RELEASE running in SYSTEM mode
[W#01-SFE_0_TX] 2026-11-25 01:52:38 Warning: af-packet: SFE_0_RX: sending packet failed on socket 0: Socket operation on non-socket
[W#02-SFE_1_TX] 2026-11-25 01:52:38 Warning: af-packet: SFE_1_RX: sending packet failed on socket 0: Socket operation on non-socket
[W#01-SFE_2_TX] 2026-11-25 01:52:38 Warning: af-packet: SFE_2_RX: sending packet failed on socket 0: Socket operation on non-socket
[W#01-SFE_3_TX] 2026-11-25 01:52:38 Warning: af-packet: SFE_3_RX: sending packet failed on socket 0: Socket operation on non-socket
[W#01-SFE_4_TX] 2026-11-25 01:52:38 Warning: af-packet: SFE_4_RX: sending packet failed on socket 0: Socket operation on non-socket
[W#02-SFE_5_TX] 2026-11-25 01:52:39 Warning: af-packet: SFE_5_RX: sending packet failed on socket 0: Socket operation on non-socket
[Suricata-Main] 2026-11-25 01:52:39 Notice: threads: Threads created -> W: 24 FM: 1 FR: 1   Engine started.
[Suricata-Main] 2026-11-25 01:52:41 Notice: suricata: Signal Received.  Stopping engine.
[Suricata-Main] 2026-11-25 01:52:42 Notice: device: SFE_0_TX: packets: 3727852, drops: 0 (0.00%), invalid chksum: 0
[Suricata-Main] 2026-11-25 01:52:42 Notice: device: SFE_0_RX: packets: 279, drops: 0 (0.00%), invalid chksum: 0
[Suricata-Main] 2026-11-25 01:52:42 Notice: device: SFE_1_TX: packets: 19696196, drops: 12 (0.00%), invalid chksum: 0
[Suricata-Main] 2026-11-25 01:52:42 Notice: device: SFE_1_RX: packets: 0, drops: 0 (0.00%), invalid chksum: 0
"""

# 7.0 RELEASE build without the yaml's format: Suricata's default "%D: %S: %M".
LOG_70_RELEASE_CLEAN = """\
i: suricata: This is Suricata version 7.0.10 RELEASE running in SYSTEM mode
W: runmodes: disabling livedev.use-for-tracking with IPS mode. See ticket #6726.
i: threads: Threads created -> W: 24 FM: 1 FR: 1   Engine started.
i: suricata: Signal Received.  Stopping engine.
i: device: SFE_0_TX: packets: 1641, drops: 0 (0.00%), invalid chksum: 0
i: device: SFE_0_RX: packets: 0, drops: 0 (0.00%), invalid chksum: 0
"""

# A git checkout (not RELEASE) without the yaml's format: "%d: %S: %M [%n:%f:%l]".
LOG_GIT_DEBUG_HIT = """\
Notice: suricata: This is Suricata version 8.0.0-dev (923ad6af7) running in SYSTEM mode [LogVersion:suricata.c:1150]
Warning: af-packet: SFE_3_RX: sending packet failed on socket 0: Socket operation on non-socket [AFPWritePacket:source-af-packet.c:679]
Notice: threads: Threads created -> W: 24 FM: 1 FR: 1   Engine started. [TmThreadWaitOnThreadRunning:tm-threads.c:1980]
Notice: device: SFE_3_TX: packets: 1234, drops: 0 (0.00%), invalid chksum: 0 [LiveDeviceListClean:util-device.c:345]
"""

# The synthetic target prints the contract lines bare (docs/ARCHITECTURE.md).
LOG_SYNTHETIC_HIT = """\
Warning: af-packet: SFE_3_RX: sending packet failed on socket 0: Socket operation on non-socket
Notice: threads: Threads created -> W: 24 FM: 1 FR: 1   Engine started.
Notice: device: SFE_0_TX: packets: 1234, drops: 0 (0.00%), invalid chksum: 0
Notice: device: SFE_3_RX: packets: 0, drops: 0 (0.00%), invalid chksum: 0
"""

# The ticket's samples (thread-name prefix, no timestamp).
LOG_TICKET = """\
[W#01-SFE_3_TX] Warning: af-packet: SFE_3_RX: sending packet failed on socket 0: Socket operation on non-socket
[W#02-SFE_5_TX] Warning: af-packet: SFE_5_RX: sending packet failed on socket 0: Socket operation on non-socket
[Suricata-Main] Notice: threads: Threads created -> W: 24 FM: 1 FR: 1   Engine started.
"""


def test_80_hit_all_before_start_and_counters():
    s = parse_console(LOG_80_HIT)
    assert s.started and s.start_line == 8
    assert len(s.signature) == 6
    assert s.signature_ifaces == [f"SFE_{i}_RX" for i in range(6)]
    assert s.signature_before_start
    assert all("on socket 0:" in h.text for h in s.signature)
    assert s.signature_lines[0].startswith("[W#01-SFE_0_TX] 2026-11-25 01:52:38 Warning: af-packet: SFE_0_RX: ")
    assert s.other_send_errors == []
    assert s.shutdown_counters["SFE_0_TX"] == {"packets": 3727852, "drops": 0, "drop_pct": 0.0,
                                               "invalid_chksum": 0}
    assert s.shutdown_counters["SFE_1_RX"]["packets"] == 0
    assert s.shutdown_counters["SFE_1_TX"]["drops"] == 12
    assert s.error_lines == []


def test_70_release_short_levels_clean():
    s = parse_console(LOG_70_RELEASE_CLEAN)
    assert s.started and s.start_line == 3
    assert s.signature == [] and not s.signature_before_start
    assert set(s.shutdown_counters) == {"SFE_0_TX", "SFE_0_RX"}
    assert s.shutdown_counters["SFE_0_TX"]["packets"] == 1641


def test_git_build_suffix_is_accepted():
    s = parse_console(LOG_GIT_DEBUG_HIT)
    assert s.started
    assert [h.iface for h in s.signature] == ["SFE_3_RX"]
    assert s.signature_before_start
    assert s.shutdown_counters["SFE_3_TX"]["packets"] == 1234


@pytest.mark.parametrize("text", [LOG_SYNTHETIC_HIT, LOG_TICKET])
def test_synthetic_and_ticket_formats(text):
    s = parse_console(text)
    assert s.started
    assert s.signature and s.signature_before_start
    assert s.signature_ifaces[0] == "SFE_3_RX"


def test_signature_after_start_is_flagged():
    text = (
        "Notice: threads: Threads created -> W: 4 FM: 1 FR: 1   Engine started.\n"
        f"Warning: af-packet: SFE_1_RX: {SIG}\n"
    )
    s = parse_console(text)
    assert len(s.signature) == 1
    assert s.signature[0].before_start is False
    assert s.signature_before_start is False


def test_mixed_before_and_after_is_not_all_before():
    text = (
        f"Warning: af-packet: SFE_0_RX: {SIG}\n"
        "Notice: threads: Threads created -> W: 4 FM: 1 FR: 1   Engine started.\n"
        f"Warning: af-packet: SFE_1_RX: {SIG}\n"
    )
    s = parse_console(text)
    assert [h.before_start for h in s.signature] == [True, False]
    assert not s.signature_before_start


def test_no_marker():
    text = (
        "Notice: suricata: This is Suricata version 8.0.3 RELEASE running in SYSTEM mode\n"
        "Error: af-packet: SFE_0_TX: failed to bind socket: No such device\n"
    )
    s = parse_console(text)
    assert not s.started and s.start_line is None
    assert s.signature == []
    assert s.error_lines == ["Error: af-packet: SFE_0_TX: failed to bind socket: No such device"]


@pytest.mark.parametrize("line", [
    # other errno on fd 0: not the race's ENOTSOCK
    "Warning: af-packet: SFE_0_RX: sending packet failed on socket 0: Bad file descriptor",
    # ENOTSOCK on another fd: not the unpublished-fd-0 signature
    "Warning: af-packet: SFE_0_RX: sending packet failed on socket 10: Socket operation on non-socket",
    # a real socket, the veth busy
    "[W#01-SFE_0_TX] 2026-11-25 01:52:38 Warning: af-packet: SFE_0_RX: sending packet failed on socket 17: No buffer space available",
    "W: af-packet: SFE_2_TX: sending packet failed on socket 23: Network is down [AFPWritePacket:source-af-packet.c:679]",
])
def test_other_send_failures_are_not_the_signature(line):
    s = parse_console(line + "\nNotice: threads: Threads created -> W: 4   Engine started.\n")
    assert s.signature == []
    assert len(s.other_send_errors) == 1
    f = s.other_send_errors[0]
    assert f.before_start and f.iface.startswith("SFE_")
    assert f.reason in line


def test_other_send_failure_fields():
    s = parse_console("Warning: af-packet: SFE_0_RX: sending packet failed on socket 17: "
                      "No buffer space available [AFPWritePacket:source-af-packet.c:679]\n")
    f = s.other_send_errors[0]
    assert (f.iface, f.fd, f.reason) == ("SFE_0_RX", 17, "No buffer space available")


@pytest.mark.parametrize("line", [
    f"Warning: af-packet: SFE_0_RX: {SIG}X",
    f"Warning: af-packet: SFE_0_RX: {SIG} and more",
    "Warning: af-packet: SFE_0_RX: sending packet failed on socket 00: Socket operation on non-socket",
])
def test_near_misses_are_not_the_signature(line):
    assert re.search(SIGNATURE_RE, line) is None


def test_ansi_colours_and_crlf_are_stripped():
    text = (
        "\x1b[32m25/11/2026 -- 01:52:38\x1b[0m - <\x1b[31mWarning\x1b[0m> - "
        f"\x1b[1;33mSFE_4_RX: {SIG}\x1b[0m\r\n"
        "\x1b[33mi\x1b[0m: threads: Threads created -> W: 4 FM: 1 FR: 1   Engine started.\r\n"
    )
    s = parse_console(text)
    assert s.started
    assert s.signature_ifaces == ["SFE_4_RX"]
    assert "\x1b" not in s.signature_lines[0]


def test_only_first_marker_counts():
    text = (
        "Notice: threads: Threads created -> W: 4   Engine started.\n"
        "Notice: threads: Threads created -> W: 4   Engine started.\n"
    )
    assert parse_console(text).start_line == 1


def test_counters_without_invalid_chksum_and_odd_pct():
    s = parse_console("Notice: device: eth0: packets: 10, drops: 10 (100.00%)\n"
                      "Notice: device: eth1: packets: 0, drops: 0 (-nan%), invalid chksum: 3\n")
    assert s.shutdown_counters["eth0"] == {"packets": 10, "drops": 10, "drop_pct": 100.0,
                                           "invalid_chksum": None}
    assert s.shutdown_counters["eth1"]["drop_pct"] is None
    assert s.shutdown_counters["eth1"]["invalid_chksum"] == 3


def test_empty_log():
    s = parse_console("")
    assert not s.started and s.signature == [] and s.shutdown_counters == {}


def test_file_with_bad_bytes(tmp_path):
    p = tmp_path / "console.log"
    p.write_bytes(b"\xff\xfe garbage\n" + LOG_TICKET.encode())
    s = parse_console_file(p)
    assert s.started and len(s.signature) == 2
    assert s.signature[0].line_no == 2
