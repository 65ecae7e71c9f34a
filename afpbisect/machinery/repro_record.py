"""A cycle's record and when it counts as evidence: what the driver measured, the signals
read from the cycle's logs on the host (afpbisect/core/console_log.py), and the health rule
(issue 16) that says whether a cycle without a hit is CLEAN or UNHEALTHY."""
from __future__ import annotations

import re
import signal
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from afpbisect.core.console_log import matching_lines, parse_console_file
from afpbisect.core.scenario import HealthSection, HitSection
from afpbisect.core.verdict import CycleOutcome

if TYPE_CHECKING:
    from afpbisect.machinery.repro_settings import ReproSettings


@dataclass(frozen=True)
class HealthRule:
    """When a cycle counts as evidence at all (issue 16).  A cycle in which the target did
    not come up as an IPS cannot show the race, so calling it clean would make a broken
    commit GOOD; it is UNHEALTHY instead (verdict.py says what the policy does with it).

    require_start: the start marker must appear (else: exited or hung before start).
    min_forwarded: frames each pair must forward after start (ticket 8667: "RX packets: 0
        under live traffic is the definitive indicator that the forwarding path never came
        up"); 0 turns the forwarding check off.
    require_clean_stop: the target must run until SIGTERM and exit within stop_timeout.
    """

    require_start: bool = HealthSection.require_start   # the defaults: [health]'s
    min_forwarded: int = HealthSection.min_forwarded
    require_clean_stop: bool = HealthSection.require_clean_stop

    def problem(self, rec: "CycleRecord") -> str | None:
        """Why `rec` is unhealthy by this rule, or None when it is healthy."""
        if self.require_start and not rec.started:
            last = f": {rec.error_lines[-1][:160]}" if rec.error_lines else ""
            if rec.early_exit:
                return f"exited before start (exit {rec.exit_code}){last}"
            return f"no start marker within the start timeout{last}"
        if self.require_clean_stop and rec.died:
            return f"exited on its own after start (exit {rec.exit_code})"
        if self.require_clean_stop and rec.killed:
            return "did not stop after SIGTERM (killed)"
        if rec.missing_logs and not rec.started:
            # Whatever the rule says of starts: a hit rule over these logs was never checked.
            return (f"wrote no {', '.join(rec.missing_logs)} (it did not start; the [hit] rule "
                    "over it could not be checked)")
        if rec.started and self.min_forwarded > 0:
            short = {k: v for k, v in sorted(rec.forwarded_after_start.items())
                     if v is not None and v < self.min_forwarded}
            if short:
                return "forwarded nothing after start on " + ", ".join(
                    f"{k} ({v} of {rec.offered.get(peer_iface(k), '?')} offered)" for k, v in short.items())
        return None


def peer_iface(iface: str) -> str:
    """SFE_i_RX <-> SFE_i_TX: forwarded out of one side counts frames offered to the other."""
    return iface[:-2] + ("TX" if iface.endswith("RX") else "RX")


DEFAULT_HEALTH = HealthRule()


@dataclass
class CycleRecord:
    """One cold start, as the driver measured it and the console log says."""

    index: int
    started: bool = False
    start_seconds: float | None = None
    exit_code: int | None = None       # negative: ended by that signal (Python's convention)
    killed: bool = False               # needed SIGKILL (stop_timeout passed, or cleanup)
    early_exit: bool = False           # exited before "Engine started."
    start_timeout: bool = False        # still running, no "Engine started." within start_timeout
    signature_lines: list = field(default_factory=list)
    signature_before_start: bool = False
    other_send_errors: int = 0
    forwarded_after_start: dict = field(default_factory=dict)   # SFE_i_RX -> frames that left it
    shutdown_counters: dict = field(default_factory=dict)       # iface -> {packets, drops, ...}
    log_path: str = ""                 # console.log on the host
    duration: float = 0.0              # seconds inside the container, spawn to exit
    error: str | None = None
    died: bool = False                 # exited on its own after the marker, before SIGTERM
    offered: dict = field(default_factory=dict)    # SFE_i_TX -> frames sent toward it meanwhile
    stray_into_rx: dict = field(default_factory=dict)  # SFE_i_RX -> frames the kernel sent toward it
    error_lines: list = field(default_factory=list)  # the console's Error lines (first few)
    missing_logs: list = field(default_factory=list)  # eve.json / stats.log a [hit] rule reads, absent

    def outcome(self, rule: HealthRule = DEFAULT_HEALTH):
        """HIT iff the exact signature line is in the log (it can only come from sendto() on
        the unpublished fd 0, so it is evidence whatever else went wrong); else INFRA when the
        machinery failed (`error`: the driver, its counters, the container); else UNHEALTHY
        when the target did not run as `rule` asks; else CLEAN."""
        if self.signature_lines:
            return CycleOutcome.HIT
        if self.error:
            return CycleOutcome.INFRA
        if self.started and any(v is None for v in self.forwarded_after_start.values()):
            return CycleOutcome.INFRA   # a counter could not be read: the rig, not the target
        if self.missing_logs:
            # A [hit] rule over eve.json or stats.log was never checked, so the cycle proves
            # nothing (issue 25).  Suricata opens its outputs before the start marker: after a
            # start their absence is the rig's (yaml, /logs, copy-back); before it, the target
            # never got that far.
            return CycleOutcome.INFRA if self.started else CycleOutcome.UNHEALTHY
        if rule.problem(self) is not None:
            return CycleOutcome.UNHEALTHY
        return CycleOutcome.CLEAN

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CycleRecord":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})



def fill_from_logs(rec: CycleRecord, settings: ReproSettings) -> CycleRecord:
    """Signals from the cycle's logs, read on the host (through the /logs mount, or copied
    back from a remote engine): the console, and eve.json / stats.log when a hit rule reads them."""
    path = Path(rec.log_path)
    if not path.is_file():
        rec.error = rec.error or f"no console log at {path}"
        return rec
    hit = settings.hit
    sig = parse_console_file(path, [re.compile(rx) for rx in hit.console],
                             settings.start_marker)
    rec.signature_lines = sig.signature_lines + scenario_hits(rec, hit, path.parent)
    rec.signature_before_start = sig.signature_before_start
    rec.other_send_errors = len(sig.other_send_errors)
    rec.shutdown_counters = sig.shutdown_counters
    rec.error_lines = sig.error_lines[:5]
    rec.missing_logs = missing_hit_logs(hit, path.parent)
    if rec.started and rec.missing_logs and not rec.error:
        rec.error = (f"the target started but wrote no {', '.join(rec.missing_logs)}: the [hit] rule "
                     "over it could not be checked")
    if rec.started and not sig.started and not rec.error:
        # The driver saw the marker, the parser did not: trust neither.
        rec.error = "start marker seen by the driver but not found in the log"
    return rec


HIT_LOGS = (("eve.json", "eve"), ("stats.log", "stats"))


def missing_hit_logs(hit: HitSection, cycle_dir: Path) -> list[str]:
    """The logs a [hit] rule reads (eve.json, stats.log) that the cycle did not leave."""
    return [name for name, key in HIT_LOGS if getattr(hit, key) and not (cycle_dir / name).is_file()]


def scenario_hits(rec: "CycleRecord", hit: HitSection, cycle_dir: Path) -> list[str]:
    """Hits beyond the console: eve.json and stats.log lines, an exit code, a crash (the
    scenario's [hit]); each is written as the line that proves it, for the record."""
    out = []
    for name, key in HIT_LOGS:
        if getattr(hit, key):
            out += [f"{name}: {ln}" for ln in matching_lines(cycle_dir / name,
                                                              [re.compile(rx) for rx in getattr(hit, key)])]
    code = rec.exit_code
    if code is not None and code in hit.exit_codes:
        out.append(f"exit code {code} (a hit by the scenario)")
    if hit.crash and code is not None and code < 0 and not rec.killed \
            and -code not in (signal.SIGTERM, signal.SIGKILL):
        out.append(f"crashed: killed by {signal.Signals(-code).name}")
    return out
