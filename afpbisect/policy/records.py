"""What the policy returns: one record per decision, the bisection's answer, a patch check."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from afpbisect.core.verdict import Evidence, Verdict

PHASES = ("calibrate", "endpoint", "search", "verify", "confirm", "rate", "check")


@dataclass
class StepRecord:
    """One decision on one commit. `verdict` is in race terms (BAD = race seen).
    `clean_needed` is the level asked (for "verify": light level + fresh cycles)."""

    phase: str
    commit: Any
    index: int | None
    verdict: Verdict
    cycles: int
    hits: int
    infra: int
    clean_needed: int
    new_cycles: int  # cycles run for this decision in this call; 0 = reused from the store
    note: str = ""
    fresh_needed: int = 0  # "verify": clean cycles asked beyond the light test's

    def to_dict(self) -> dict:
        return {
            "fresh_needed": self.fresh_needed,
            "phase": self.phase,
            "commit": self.commit,
            "index": self.index,
            "verdict": self.verdict.value,
            "cycles": self.cycles,
            "hits": self.hits,
            "infra": self.infra,
            "clean_needed": self.clean_needed,
            "new_cycles": self.new_cycles,
            "note": self.note,
        }


@dataclass
class BisectResult:
    """The answer. `candidates` as git bisect gives it: the culprit alone (then `culprit`
    is set), or every commit it could be when unbuildable commits hide it (oldest first).

    confidence: 1 - the miss bound left by the verified commit's fresh clean cycles
        against the calibration (`miss_bound_vs_reference`): how sure the cycles make us
        that the culprit is among `candidates` (the other side of the boundary is proven).
    p_estimate / p_lower: the calibration's hit rate and its `bound_level` lower bound.
    total_cycles: every cycle recorded in the store for this range (all sessions).
    new_cycles: cycles run by this call. rounds: searches run by this call.
    calibration: (hits, valid cycles) of the calibration; calibrated: the commit it ran on
        (the racy endpoint, or with lazy endpoints the first commit the search saw racy).
    recalibration: (hits, valid cycles) of the re-calibration on `confirmed` at the end
        (the confidence is bounded against it and the calibration, the lower rate ruling).
    verified: the commit on the clean side of the boundary (heavy verification);
    confirmed: the one on the racy side (proven by a hit, re-tested).
    kind: what the commit named did to the race: "introduced" (with find_fix "removed"),
        or, when the verified side carries the race at a lower rate (policy/rates.py),
        "raised" ("lowered"); then `lower_sample` is that side's (hits, valid cycles),
        `rate_sample` the other side's taken cycle by cycle with it, and `confidence` is
        that the two rates differ.
    rate_floor: the lowest rate of a race on the verified side that the confidence covers
        (None: bounded against the calibration alone).
    """

    candidates: list
    culprit: Any | None
    confidence: float
    p_estimate: float
    p_lower: float
    total_cycles: int
    steps: list
    trace: list
    find_fix: bool = False
    verified: Any = None
    confirmed: Any = None
    new_cycles: int = 0
    rounds: int = 1
    recalibration: tuple | None = None
    calibration: tuple | None = None
    calibrated: Any = None
    kind: str = "introduced"
    lower_sample: tuple | None = None
    rate_sample: tuple | None = None
    rate_floor: float | None = None

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "lower_sample": None if self.lower_sample is None else list(self.lower_sample),
            "rate_sample": None if self.rate_sample is None else list(self.rate_sample),
            "rate_floor": self.rate_floor,
            "candidates": list(self.candidates),
            "culprit": self.culprit,
            "confidence": self.confidence,
            "p_estimate": self.p_estimate,
            "p_lower": self.p_lower,
            "total_cycles": self.total_cycles,
            "new_cycles": self.new_cycles,
            "find_fix": self.find_fix,
            "verified": self.verified,
            "confirmed": self.confirmed,
            "rounds": self.rounds,
            "recalibration": None if self.recalibration is None else list(self.recalibration),
            "calibration": None if self.calibration is None else list(self.calibration),
            "calibrated": self.calibrated,
            "steps": [s.to_dict() for s in self.steps],
            "trace": list(self.trace),
        }


@dataclass
class PatchCheck:
    """Result of `check_patch`, verdict in race terms.

    Without a reference (calibration run): BAD = race present (p_estimate, p_lower from
    its cycles); GOOD = never seen in max_calibration_cycles (confidence 0: no claim).
    With a reference: BAD = race present; GOOD = cleared, with `confidence`.
    SKIP = did not build or cannot be tested (evidence.skip_reason() says why).
    """

    commit: Any
    verdict: Verdict
    evidence: Evidence
    clean_needed: int
    p_estimate: float
    p_lower: float
    confidence: float
    trace: list = field(default_factory=list)

    @property
    def race_present(self) -> bool:
        return self.verdict is Verdict.BAD
