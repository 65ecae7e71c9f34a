"""The policy's errors, its environment interface and its knobs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from afpbisect.core.errors import AfpError, UsageError
from afpbisect.core.scenario import NightlySection, VerdictSection
from afpbisect.core.verdict import CycleOutcome


class RangeError(AfpError):
    """The range cannot be bisected as given (the user's input, not the infrastructure)."""


class NotReproducible(RangeError):
    """Calibration saw no hit at the racy endpoint ("not reproducible on BAD")."""


class EndpointNotClean(RangeError):
    """The endpoint that should be free of the race showed the signature."""


class EndpointUnbuildable(RangeError):
    """An endpoint did not build, or cannot be tested (it never runs healthy), so there is
    nothing to compare against."""


class Undecided(RangeError):
    """The proof asked for needs more cycles than `cycle_cap` allows (issue 25: a
    re-calibration of 1 hit in 60 asked for about 98,000 clean cycles, 19 days): no answer
    is claimed, the evidence is kept, and a run with a higher cap goes on from it."""


class Env(Protocol):
    def build(self, commit) -> str | None:
        """None = built OK; a string = the build error (-> SKIP). Raise InfraError for infra."""

    def cycle(self, commit) -> CycleOutcome:
        """One cold start of the built commit (InfraError raised here counts as INFRA)."""

    def release(self, commit) -> None:
        """Done with this commit for now (the real env stops its container)."""

    # Optional: prepare(commits) -> None builds a round's probes at once (several engines);
    # the policy calls it when the env has it, and build() then finds them built.
    # Optional: gate, whose run_all(tasks) runs a round's probes at once, each task under
    # the gate (the policy's code one at a time), and returns each one's result or
    # exception in order (machinery/parallel.Gate).  The env brings it, so the policy
    # imports no machinery and knows no threads.


class Handler:
    """What the policy tells while it works, in one object (like mozregression's
    BisectorHandler): subclass it and override what you need; here each does nothing.

    on_cycle(commit, evidence): after each cycle or build result: persist the store here.
    on_step(record): after each decision (a StepRecord), replayed ones included.
    on_trace(line): each decision's trace line, as it is made.
    """

    def on_cycle(self, commit, ev) -> None:
        pass

    def on_step(self, rec) -> None:
        pass

    def on_trace(self, line: str) -> None:
        pass


@dataclass
class PolicyConfig:
    """Knobs of the policy; defaults chosen with bench/simulate.py and bench/plan.py.

    confidence: target probability that the answer contains the culprit, for the whole
        bisection (all verifications together miss with at most 1 - confidence).
    find_fix: find the first commit where the race is gone (the old endpoint is racy).
    calibration_hits / max_calibration_cycles: run the calibrated commit until this many
        hits (the reference of every verification), or this many valid cycles (0 hits then
        -> NotReproducible). 8 hits minimise calibration + verification cycles (simulated:
        6 and 7 cost more at p = 0.3 and 0.6, 10 more at every p).
    max_consecutive_infra: infrastructure failures in a row on one commit (cycles, or
        build attempts) before the run aborts with InfraError; a resumed run starts anew.
    unhealthy_lead: a commit whose unhealthy cycles outnumber its clean ones by this much
        is SKIP (`verdict.decide`, rule 4, states the bound).
    light_miss: the miss a light step allowed before issue 18 (`priced_light=False`:
        `clean_cycles_needed(p_hat, light_miss)`, kept for bench/simulate.py's comparison).
    priced_light: a light GOOD's level priced in builds (`light.priced_level`); False =
        the rule before issue 18.
    light_tighten: the price of a wrong light GOOD is divided by this for every false GOOD
        met in the run (one says the calibration flattered the rate).
    bound_level: level of the one-sided lower bound on p that prices a light GOOD and is
        reported (p_lower); the verification itself does not use it.
    max_verify_cycles: cap on the verification's clean cycles (None: no cap). When it
        binds, the reported confidence is below the target and the trace says so (the
        naive `--cycles N`, which claims no target).
    rate_floor: the lowest per-cycle hit rate a race on the boundary's clean side is
        assumed to have (issue 25; a scenario's [verdict] rate_floor). The verification
        runs at least `clean_cycles_needed(rate_floor, budget)` clean cycles, so a race
        that was already there at a lower rate than the culprit's (or a rate that a load
        swing lowered) is caught down to this rate, and the confidence is stated against
        it. None: bounded against the calibration alone (the rule before issue 25).
    cycle_cap: the most clean cycles one verification may ask for; beyond it the run
        ends "undecided" (`Undecided`, exit 3) with the count it needs instead of running
        for days. None: no cap.
    lazy_endpoints: build neither endpoint up front (issue 18): calibrate on the first
        commit seen racy, check the clean endpoint only if the search ends there. False:
        calibrate the racy endpoint and light-check the clean one first (the old order).
    cycle_seconds / build_seconds: prices of one light cycle and of one probe's build
        when the caller gives no cost model; a light GOOD's level weighs the one against
        the builds a wrong GOOD wastes (`light.priced_level`).
    slack_bits: information a probe may give up against the best split to be cheaper to
        build (`search.weighted_pick`); 0 = always the best split.
    engines: probes asked per round (issue 20: one per Docker engine). Above 1 the search
        is `search.kary_least_satisfying` at the cuts of the prior mass, without slack (a
        cheaper probe saves nothing when the round waits for the dearest); the env's
        `prepare` builds a round's probes at once. Same answer and proof as with 1.
    """

    confidence: float = NightlySection.confidence   # THE default confidence (core/scenario.py)
    find_fix: bool = False
    calibration_hits: int = 8
    max_calibration_cycles: int = 60
    max_consecutive_infra: int = 3
    unhealthy_lead: int = 3
    light_miss: float = 0.1
    light_tighten: float = 0.5
    bound_level: float = 0.9
    max_verify_cycles: int | None = None
    lazy_endpoints: bool = True
    priced_light: bool = True
    cycle_seconds: float = 15.0
    build_seconds: float = 240.0
    slack_bits: float = 0.02
    engines: int = 1
    rate_floor: float | None = None
    cycle_cap: int | None = VerdictSection.cycle_cap

    def __post_init__(self) -> None:
        for name in ("confidence", "light_miss", "bound_level"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise UsageError(f"{name} must be in (0, 1), got {value!r}")
        if not 0.0 < self.light_tighten <= 1.0:
            raise UsageError(f"light_tighten must be in (0, 1], got {self.light_tighten!r}")
        for name in ("calibration_hits", "max_calibration_cycles", "max_consecutive_infra",
                     "unhealthy_lead", "engines"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("max_verify_cycles", "cycle_cap"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise UsageError(f"{name} must be a whole number >= 1, got {value!r}")
        if self.rate_floor is not None and not 0.0 < self.rate_floor < 1.0:
            raise UsageError(f"rate_floor must be in (0, 1), got {self.rate_floor!r}")
        for name in ("cycle_seconds", "build_seconds", "slack_bits"):
            value = getattr(self, name)
            if not (value >= 0.0 and value < float("inf")):
                raise UsageError(f"{name} must be a finite number >= 0, got {value!r}")
