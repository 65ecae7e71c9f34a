"""The bisection policy: calibration, adaptive cycles, boundary verification, confirmation.

Works over an abstract environment (`Env`: build / cycle / release), so the real run and
`bench/simulate.py` go through the same code. Nothing here imports docker or git.

Why this shape (ticket 8667; NOTES.md "The repro"; numbers from bench/simulate.py):

* A hit is proof of the race; the only possible error is a false GOOD, a racy commit that
  started clean every time. The answer (last GOOD, first BAD] is therefore wrong exactly
  when the commit on its clean side is racy. Every other GOOD only steers the search: a
  false one costs cycles, never correctness, because the search then ends on or above
  it, and the clean side of the boundary is always verified.
* So search steps are LIGHT: BAD at the first hit, GOOD after
  `clean_cycles_needed(p_hat, light_miss)` clean cycles (`decide`, the one rule). After
  the search ONE HEAVY verification of the boundary's clean side spends the error budget
  (1 - confidence) where an error changes the answer. If it hits, that commit was a false
  GOOD: search again (the store makes the replay free) and verify the new boundary.
* The heavy level does not trust an estimate of p: it compares with the calibration run
  (`clean_cycles_needed_vs_reference`), which bounds the miss for EVERY p, lucky
  calibrations included. It counts only clean cycles run after the search chose the
  commit: the light ones are why it was chosen, so they are not evidence.
* The r-th verification on a bisection gets 6/(pi r)^2 of the budget, so the misses of all
  verifications add up to at most 1 - confidence (union bound).
* With `find_fix` the terms are inverted (git bisect --term-old=racy --term-new=fixed): the
  old endpoint is racy and is calibrated, the answer is the first clean commit, and that
  commit itself gets the heavy verification.

Verdicts in the store and in StepRecord are in race terms in both modes: BAD = the race
was seen, GOOD = not seen in enough clean cycles.

Resuming: `store` (commit -> Evidence) is the whole state; nothing is ever discarded and
a step whose evidence already satisfies `decide` at the level asked costs no cycle. Levels
are made so that a new call never asks more of a finished step than the first call did:
the light level depends on the frozen calibration and on the false GOODs met in THIS call
(a replay meets them no earlier than the original did), the round of a verification is
counted from the store (1 + false GOODs caught), and `clean_needed` of a GOOD keeps the
clean count the search saw, so "clean cycles beyond it" means the same thing on a resume.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from .errors import AfpError, InfraError, UsageError
from .search import least_satisfying
from .verdict import (
    CycleOutcome,
    Evidence,
    Verdict,
    clean_cycles_needed,
    clean_cycles_needed_vs_reference,
    decide,
    hit_rate_lower_bound,
    miss_bound_vs_reference,
)


# --- errors -----------------------------------------------------------------------------


class RangeError(AfpError):
    """The range cannot be bisected as given (the user's input, not the infrastructure)."""


class NotReproducible(RangeError):
    """Calibration saw no hit at the racy endpoint ("not reproducible on BAD")."""


class EndpointNotClean(RangeError):
    """The endpoint that should be free of the race showed the signature."""


class EndpointUnbuildable(RangeError):
    """An endpoint did not build, or cannot be tested (it never runs healthy), so there is
    nothing to compare against."""


# --- interfaces -------------------------------------------------------------------------


class Env(Protocol):
    def build(self, commit) -> str | None:
        """None = built OK; a string = the build error (-> SKIP). Raise InfraError for infra."""

    def cycle(self, commit) -> CycleOutcome:
        """One cold start of the built commit (InfraError raised here counts as INFRA)."""

    def release(self, commit) -> None:
        """Done with this commit for now (the real env stops its container)."""


@dataclass
class PolicyConfig:
    """Knobs of the policy; defaults chosen with bench/simulate.py.

    confidence: target probability that the answer contains the culprit, for the whole
        bisection (all verifications together miss with at most 1 - confidence).
    find_fix: find the first commit where the race is gone (the old endpoint is racy).
    calibration_hits / max_calibration_cycles: run the racy endpoint until this many hits
        (the reference of every verification), or this many valid cycles (0 hits then ->
        NotReproducible). 8 hits minimise calibration + verification cycles (simulated:
        6 and 7 cost more at p = 0.3 and 0.6, 10 more at every p).
    max_consecutive_infra: infrastructure failures in a row on one commit (cycles, or
        build attempts) before the run aborts with InfraError; a resumed run starts anew.
    unhealthy_lead: a commit whose unhealthy cycles outnumber its clean ones by this much
        is SKIP (`verdict.decide`, rule 4, states the bound).
    light_miss: chance that a light step calls a racy commit GOOD, under the calibration's
        estimate of p. Costs cycles only, never correctness; 0.1 was cheapest (0.05 costs
        about the same, 0.02 and 0.2 more).
    light_tighten: light_miss is multiplied by this for every false GOOD met in the run.
    bound_level: level of the one-sided lower bound on p that is reported (p_lower);
        the verification itself does not use it.
    max_verify_cycles: cap on the verification's clean cycles (None: no cap). When it
        binds, the reported confidence is below the target and the trace says so.
    """

    confidence: float = 0.999
    find_fix: bool = False
    calibration_hits: int = 8
    max_calibration_cycles: int = 60
    max_consecutive_infra: int = 3
    unhealthy_lead: int = 3
    light_miss: float = 0.1
    light_tighten: float = 0.5
    bound_level: float = 0.9
    max_verify_cycles: int | None = None

    def __post_init__(self) -> None:
        for name in ("confidence", "light_miss", "bound_level"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise UsageError(f"{name} must be in (0, 1), got {value!r}")
        if not 0.0 < self.light_tighten <= 1.0:
            raise UsageError(f"light_tighten must be in (0, 1], got {self.light_tighten!r}")
        for name in ("calibration_hits", "max_calibration_cycles", "max_consecutive_infra",
                     "unhealthy_lead"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.max_verify_cycles is not None and self.max_verify_cycles < 1:
            raise UsageError(f"max_verify_cycles must be >= 1, got {self.max_verify_cycles!r}")


# --- results ----------------------------------------------------------------------------


PHASES = ("calibrate", "endpoint", "search", "verify", "confirm", "check")


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
    calibration: (hits, valid cycles) of the calibration at the start.
    recalibration: (hits, valid cycles) of the re-calibration on `confirmed` at the end
        (the confidence is bounded against it and the calibration, the lower rate ruling).
    verified: the commit on the clean side of the boundary (heavy verification);
    confirmed: the one on the racy side (proven by a hit, re-tested).
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

    def to_dict(self) -> dict:
        return {
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


# --- the run ----------------------------------------------------------------------------


def _short(commit) -> str:
    return str(commit)[:12]


def _is_false_good(ev: Evidence) -> bool:
    """Judged GOOD at some level (clean_needed kept) and caught with the race since."""
    return bool(ev.hits and ev.clean_needed)


class _Run:
    """Cycles, builds, the trace and the store for one call."""

    def __init__(self, env: Env, config: PolicyConfig, store: dict, in_range: set, racy,
                 on_step=None, on_cycle=None, on_trace=None):
        self.env = env
        self.cfg = config
        self.store = store
        self.in_range = in_range
        self.racy = racy  # the commit racy by assumption: the calibrated reference
        self.on_step = on_step
        self.on_cycle = on_cycle
        self.on_trace = on_trace  # decisions shown live (syzkaller traces as it goes)
        self.trace: list = []
        self.steps: list = []
        self.new_cycles = 0
        self.built: set = set()
        self.visited: set = set()  # commits judged in this call
        self._bound: tuple | None = None

    def log(self, line: str) -> None:
        self.trace.append(line)
        if self.on_trace is not None:
            self.on_trace(line)

    def ev(self, commit) -> Evidence:
        ev = self.store.get(commit)
        if ev is None:
            ev = self.store[commit] = Evidence()
        return ev

    def _persist(self, commit, ev: Evidence) -> None:
        if self.on_cycle is not None:
            self.on_cycle(commit, ev)

    def record(self, phase, commit, index, verdict, ev, level, new, note="", fresh=0) -> StepRecord:
        rec = StepRecord(phase, commit, index, verdict, ev.cycles, ev.hits, ev.infra, level, new,
                         note, fresh)
        self.steps.append(rec)
        if self.on_step is not None:
            self.on_step(rec)
        return rec

    # -- estimates and levels --

    def reference(self) -> tuple[int, int]:
        """(hits, valid cycles) of the calibrated racy endpoint: the reference sample.

        It is racy by assumption and was run to a fixed number of hits, so its cycles are an
        unselected negative-binomial sample, which `miss_bound_vs_reference` needs.
        Left out on purpose, the commits the search found racy: one is "known racy" only
        because it hit within its light budget (those that did not are false GOODs), so
        their hits / cycles is biased upwards (pooling them, as first designed, gave 1%
        wrong answers in bench/simulate.py at p = 0.3 and 0.6).
        """
        ev = self.store.get(self.racy)
        if ev is None:
            return 0, 0
        # Once the endpoint is re-calibrated (the culprit is the endpoint) its calibration
        # stays what it was, so a resumed run decides every step as the first one did.
        return (ev.mark[0], ev.mark[1]) if ev.mark is not None else (ev.hits, ev.valid_cycles)

    def estimate(self) -> tuple[float, float]:
        """(hits / cycles, `bound_level` lower bound) of the calibration; for reports."""
        hits, valid = self.reference()
        if not hits:
            return 0.0, 0.0
        if self._bound is None or self._bound[0] != (hits, valid):
            self._bound = ((hits, valid), hit_rate_lower_bound(hits, valid, self.cfg.bound_level))
        return hits / valid, self._bound[1]

    def light_level(self, tighten: bool = True) -> int:
        """Clean cycles for a light GOOD.

        `light_miss` under the calibration's hit rate, times `light_tighten` for every false
        GOOD met in this call: one says the level is short (often a lucky calibration, say 8
        hits in 10 cycles at p = 0.6), and without tightening each light GOOD judged at that
        level can cost a verification round of its own (simulated: 165 -> 159 mean cycles
        at p = 0.3). Counting only this call's commits keeps a resumed run from asking more
        of a step than the original run did.
        """
        hits, valid = self.reference()
        k = sum(1 for c in self.visited if _is_false_good(self.store[c])) if tighten else 0
        return clean_cycles_needed(hits / valid, self.cfg.light_miss * self.cfg.light_tighten ** k)

    def verify_round(self) -> int:
        """1 + false GOODs caught in the store: grows with every verification that hits."""
        return 1 + sum(1 for c, ev in self.store.items()
                       if c in self.in_range and c != self.racy and _is_false_good(ev))

    # -- cycles --

    def _build(self, commit, ev: Evidence) -> bool:
        last = None
        for attempt in range(1, self.cfg.max_consecutive_infra + 1):
            try:
                error = self.env.build(commit)
            except InfraError as exc:
                last = exc
                self.log(f"{_short(commit)}: build attempt {attempt}: infrastructure error: {exc}")
                continue
            if error is not None:
                ev.build_error = str(error) or "build failed"
                self._persist(commit, ev)
                return False
            self.built.add(commit)
            return True
        raise InfraError(
            f"{_short(commit)}: {self.cfg.max_consecutive_infra} build attempts in a row failed "
            f"on infrastructure (last: {last}); state kept, resume when it is fixed"
        )

    def _release(self, commit) -> None:
        if commit in self.built:
            self.built.discard(commit)
            self.env.release(commit)

    def cycle_until(self, commit, stop: Callable[[Evidence], bool]) -> tuple[Evidence, int]:
        """Run cycles on `commit` until `stop(evidence)` or a build error; returns the new count."""
        ev = self.ev(commit)
        before = self.new_cycles
        try:
            while ev.skip_reason(self.cfg.unhealthy_lead) is None and not stop(ev):
                if ev.consecutive_infra >= self.cfg.max_consecutive_infra:
                    if ev.verdict is None:  # a decided verdict (a light GOOD) stays
                        ev.verdict = Verdict.ERROR
                    self._persist(commit, ev)
                    self.log(f"{_short(commit)}: {ev.consecutive_infra} infrastructure errors "
                             f"in a row: abort (resumable)")
                    raise InfraError(
                        f"{_short(commit)}: {ev.consecutive_infra} cycles in a row failed on "
                        f"infrastructure; state kept, resume when it is fixed"
                    )
                if commit not in self.built and not self._build(commit, ev):
                    break
                try:
                    outcome = self.env.cycle(commit)
                except InfraError as exc:
                    self.log(f"{_short(commit)}: cycle failed on infrastructure: {exc}")
                    outcome = CycleOutcome.INFRA
                ev.add(outcome)
                self.new_cycles += 1
                self._persist(commit, ev)
        finally:
            self._release(commit)
        return ev, self.new_cycles - before

    def judge(self, commit, index, level: int, phase: str, why: str = "",
              keep_level: bool = False, fresh: int = 0) -> Verdict:
        """Apply THE rule (`decide`) at `level`, running cycles until it answers.

        A new (or extended) GOOD records its clean count in `clean_needed`; a reused one
        and the verification (`keep_level`) leave it alone: see `selected`.
        """
        maxi, lead = self.cfg.max_consecutive_infra, self.cfg.unhealthy_lead
        self.visited.add(commit)
        ev, new = self.cycle_until(commit,
                                   lambda e: decide(e, level, maxi, lead) not in (None, Verdict.ERROR))
        verdict = decide(ev, level, maxi, lead)
        if verdict is Verdict.GOOD and not keep_level and (ev.verdict is not Verdict.GOOD or new):
            # every clean cycle so far is part of why it is GOOD (usually exactly `level`)
            ev.clean_needed = ev.clean
        ev.verdict = verdict
        self._persist(commit, ev)
        if verdict is Verdict.SKIP:
            lines = (ev.skip_reason(lead) or "").strip().splitlines()
            detail = (f"does not build: {lines[-1] if lines else '?'}" if ev.build_error is not None
                      else lines[-1])
        elif verdict is Verdict.BAD:
            detail = f"race signature seen ({ev.hits} hit(s) in {ev.valid_cycles} valid cycles)"
        else:
            detail = f"{ev.clean} clean cycles >= {level} needed"
        extra = "".join(f", {n} {what} in all" for n, what in ((ev.infra, "infra"),
                                                                (ev.unhealthy, "unhealthy")) if n)
        reuse = "reused, no new cycle" if new == 0 else f"{new} new cycle(s){extra}"
        self.log(f"{phase} {_short(commit)}{'' if index is None else f' [{index}]'}: "
                 f"{verdict.value.upper()}: {detail} ({reuse}){why}")
        self.record(phase, commit, index, verdict, ev, level, new, why.strip(" ;"), fresh)
        return verdict

    @staticmethod
    def selected(ev: Evidence) -> int:
        """Clean cycles the search's choice of this commit depended on.

        The search ends on a boundary whose clean side came out clean in its light test;
        those cycles are why it was chosen, so they are not evidence for the verification
        (counting them, the simulation was wrong 0.13% of the time at p = 0.3, above the
        0.1% budget). A search GOOD records its clean count in `clean_needed` and the
        verification leaves it alone, so it is that count, on a resume too.
        """
        return ev.clean_needed if ev.verdict is Verdict.GOOD else ev.clean

    def verify(self, commit, index, fresh: int, why: str) -> Verdict:
        """The heavy test: `fresh` clean cycles beyond the selected ones, or a hit."""
        pre = self.selected(self.ev(commit))
        return self.judge(commit, index, pre + fresh, "verify",
                          f"; {fresh} clean beyond the {pre} of its light test{why}",
                          keep_level=True, fresh=fresh)

    def calibrate(self, commit, index, role: str) -> Evidence:
        """Run the racy endpoint to `calibration_hits` hits (or the cycle cap)."""
        cfg = self.cfg
        target, cap = cfg.calibration_hits, cfg.max_calibration_cycles
        self.visited.add(commit)
        ev, new = self.cycle_until(commit, lambda e: e.hits >= target or e.valid_cycles >= cap)
        why = ev.skip_reason(cfg.unhealthy_lead)
        if why is not None:
            ev.verdict = Verdict.SKIP
            self._persist(commit, ev)
            what = "does not build" if ev.build_error is not None else "cannot be tested"
            raise EndpointUnbuildable(f"the {role} endpoint {commit} {what}: {why}")
        if ev.hits == 0:
            self.log(f"calibrate {_short(commit)} [{index}]: no hit in "
                     f"{ev.valid_cycles} valid cycles: refusing to bisect")
            raise NotReproducible(
                f"not reproducible on BAD: no hit at the {role} endpoint {commit} in "
                f"{ev.valid_cycles} healthy cycles ({ev.infra} infrastructure errors and "
                f"{ev.unhealthy} unhealthy cycles not counted). Nothing to bisect: check that this "
                f"commit has the bug, the scenario's hit rule and test patches, or allow more "
                f"calibration cycles (max_calibration_cycles={cfg.max_calibration_cycles})."
            )
        ev.verdict = Verdict.BAD
        self._persist(commit, ev)
        p_hat, p_low = self.estimate()
        short = "" if ev.hits >= target else (
            f"; only {ev.hits} of the {target} hits wanted within the cap: the verification "
            f"will be long, and its bound assumes the reference ran to its last hit")
        self.log(f"calibrate {_short(commit)} [{index}] ({role} endpoint): {ev.hits} hits in "
                 f"{ev.valid_cycles} valid cycles ({new} new, {ev.infra} infra in all): "
                 f"p ~ {p_hat:.3f}, {cfg.bound_level:.0%} lower bound {p_low:.3f}{short}")
        self.record("calibrate", commit, index, Verdict.BAD, ev, 0, new,
                    f"p_estimate={p_hat:.4f} p_lower={p_low:.4f}")
        return ev

    def clear_streaks(self) -> None:
        """A new call is a new session: an infrastructure streak recorded by an aborted run
        is about that run's infrastructure, not about the commit."""
        for commit, ev in self.store.items():
            if commit in self.in_range and (ev.consecutive_infra or ev.verdict is Verdict.ERROR):
                ev.consecutive_infra = 0
                if ev.verdict is Verdict.ERROR:
                    ev.verdict = None
                self.log(f"resume: cleared the infrastructure-error streak on {_short(commit)}")

    def boundary_failed(self, v: Verdict, commit, endpoint_role: str | None) -> None:
        """The boundary's clean side did not verify: search again, or raise (always when it
        is the clean endpoint, whose role `endpoint_role` names)."""
        if v is Verdict.SKIP and self.store[commit].build_error is not None:
            # it built before; a build error now means the environment changed
            raise InfraError(f"{_short(commit)} built before and not now")
        if endpoint_role is not None:
            _clean_endpoint_failed(self, v, commit, endpoint_role)
        if v is Verdict.SKIP:
            # Unhealthy in its verification: it cannot carry the answer. The search now sees
            # it as a skip and ends around it.
            self.log(f"verify: {_short(commit)} became untestable; searching again")
        else:
            self.log(f"verify caught the race on {_short(commit)}: its light GOOD was a miss; "
                     f"searching again (stored evidence reused)")

    def answer(self, cands: list, certain, uncertain, what: str, rounds: int) -> BisectResult:
        p_hat, p_low = self.estimate()
        ev_u = self.store[uncertain]
        confidence = 1.0 - self.miss_bound(certain, ev_u.clean - self.selected(ev_u))
        culprit = cands[0] if len(cands) == 1 else None
        total = sum(ev.cycles for c, ev in self.store.items() if c in self.in_range)
        if culprit is not None:
            self.log(f"answer: {_short(culprit)} is the {what} commit; confidence {confidence:.5f}; "
                     f"p ~ {p_hat:.3f} (>= {p_low:.3f}); {total} cycles in all, {self.new_cycles} now")
        else:
            self.log(f"answer: the {what} commit is one of {len(cands)}: "
                     + ", ".join(_short(c) for c in cands)
                     + f"; confidence {confidence:.5f}; {total} cycles in all, {self.new_cycles} now")
        if confidence < self.cfg.confidence:
            self.log(f"warning: confidence {confidence:.5f} is below the target {self.cfg.confidence}")
        return BisectResult(
            candidates=cands, culprit=culprit, confidence=confidence, p_estimate=p_hat,
            p_lower=p_low, total_cycles=total, steps=self.steps, trace=self.trace,
            find_fix=self.cfg.find_fix, verified=uncertain, confirmed=certain,
            new_cycles=self.new_cycles, rounds=rounds,
            recalibration=self.references(certain)[-1], calibration=self.reference())

    def recalibrate(self, commit, index) -> tuple[int, int]:
        """The culprit's confirmation, and the rate measured again where it is used.

        The hit rate is not a constant of the build (ticket 8667 without its widener hit
        about 1 cycle in 4 on a quiet machine and 8 of 8 beside a build: NOTES), so a
        calibration made at the start may not hold at the end (issue 16). Fresh cycles on
        the commit proven racy at the boundary, until `calibration_hits` hits or
        `max_calibration_cycles` valid cycles: the same stopping rule as the calibration, so
        `miss_bound_vs_reference` holds against it too. The cycles before `mark` selected
        the commit (it hit in the search) and are left out. Returns (hits, valid cycles).
        """
        cfg = self.cfg
        ev = self.ev(commit)
        if ev.mark is None:
            ev.mark = [ev.hits, ev.valid_cycles]
            self._persist(commit, ev)
        self.visited.add(commit)
        ev, new = self.cycle_until(commit, lambda e: e.since_mark()[0] >= cfg.calibration_hits
                                   or e.since_mark()[1] >= cfg.max_calibration_cycles)
        h, v = ev.since_mark()
        note = f"re-calibration: {h} hits in {v} fresh valid cycles"
        if h == 0:
            note += ": the race no longer shows at this commit, so no bound holds against it"
        self.log(f"confirm {_short(commit)} [{index}]: race present (proven by a hit); {note} "
                 f"({new} new cycle(s))")
        self.record("confirm", commit, index, Verdict.BAD, ev, 0, new, note)
        return h, v

    def references(self, certain) -> list[tuple[int, int]]:
        """(hits, valid cycles) of every reference the verification is bounded against: the
        calibration, and the re-calibration on `certain` once it ran."""
        refs = [self.reference()]
        ev = self.store.get(certain)
        if ev is not None and ev.mark is not None:
            refs.append(ev.since_mark())
        return refs

    def fresh_needed(self, budget: float, refs: list[tuple[int, int]]) -> int | None:
        """Clean cycles that bound the miss by `budget` against EVERY reference in `refs`
        (the lower rate rules); None when one has no hit (nothing can be bounded)."""
        if any(h == 0 for h, _ in refs):
            return None
        need = max(clean_cycles_needed_vs_reference(h, v, budget) for h, v in refs)
        cap = self.cfg.max_verify_cycles
        if cap is not None and need > cap:
            self.log(f"verify: {need} clean cycles needed; capped at max_verify_cycles={cap}: "
                     f"the confidence will be below the target")
            need = cap
        return need

    def miss_bound(self, certain, fresh_clean: int) -> float:
        """The answer's miss bound: the largest against any reference (1 if one has no hit)."""
        return max(miss_bound_vs_reference(h, v, fresh_clean) if h else 1.0
                   for h, v in self.references(certain))

    def check_boundary(self, certain, certain_i, uncertain, uncertain_i, side: str) -> Verdict:
        """Verify the clean side of the boundary heavily, re-calibrate on its racy side, and
        verify further when the rate measured now asks more. GOOD = the answer stands."""
        r = self.verify_round()
        budget = (1.0 - self.cfg.confidence) * 6.0 / (math.pi * r) ** 2
        # First against the calibration alone, whatever a killed run left of the
        # re-calibration: a resumed run then asks of each step what the first run asked.
        hits, valid = self.reference()
        need = self.fresh_needed(budget, [(hits, valid)])
        v = self.verify(uncertain, uncertain_i, need, f" ({side}); verification {r}: miss <= "
                        f"{budget:.2g} for any p, against the calibration's {hits} hits in {valid} cycles")
        if v is not Verdict.GOOD:
            return v
        self.recalibrate(certain, certain_i)
        refs = self.references(certain)
        again = self.fresh_needed(budget, refs)
        if again is not None and again > need:
            said = " and ".join(f"{h} hits in {v} cycles" for h, v in refs)
            v = self.verify(uncertain, uncertain_i, again,
                            f" ({side}); verification {r} extended: the re-calibration asks more "
                            f"(miss <= {budget:.2g} against {said})")
        return v


# --- entry points -----------------------------------------------------------------------


def bisect(
    commits: list,
    env: Env,
    config: PolicyConfig | None = None,
    store: dict | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
    on_cycle: Callable[[Any, Evidence], None] | None = None,
    on_trace: Callable[[str], None] | None = None,
) -> BisectResult:
    """Find the first racy commit (with `find_fix`: the first clean one) in `commits`.

    commits: oldest first; commits[0] the old endpoint, commits[-1] the new one.
    store: commit -> Evidence, the resumable state, mutated in place. Persist it on every
        `on_cycle(commit, evidence)` (after each cycle or build result) or at least on
        every `on_step(record)` (after each decision). Calling again with the same store
        runs no finished step again and gives the same answer.
    Raises NotReproducible, EndpointNotClean, EndpointUnbuildable (RangeError, not
    infrastructure) and InfraError; the store stays valid for a resume after any of them.
    """
    cfg = config if config is not None else PolicyConfig()
    commits = _checked(commits)
    n, fix = len(commits), cfg.find_fix
    store = {} if store is None else store
    racy_i, clean_i = (0, n - 1) if fix else (n - 1, 0)
    run = _Run(env, cfg, store, set(commits), commits[racy_i], on_step, on_cycle, on_trace)
    racy_role, clean_role = ("old (racy)", "new (fixed)") if fix else ("BAD (new)", "GOOD (old)")
    what = "first clean" if fix else "first bad"
    run.log(f"bisect for the {what} commit; {n} commits {_short(commits[0])}..{_short(commits[-1])}; "
            f"target confidence {cfg.confidence}")
    run.clear_streaks()

    # 1. Calibration at the racy endpoint: the reference of every verification.
    run.calibrate(commits[racy_i], racy_i, racy_role)

    # 2. The clean endpoint, a light check up front (the verification covers the rest
    #    if the boundary ends there). Untightened level: the same on a resume.
    level = run.light_level(tighten=False)
    v = run.judge(commits[clean_i], clean_i, level, "endpoint",
                  f"; {clean_role} endpoint, light level {level}")
    if v is not Verdict.GOOD:
        _clean_endpoint_failed(run, v, commits[clean_i], clean_role)

    # 3. Search with light steps; verify the clean side of the boundary; again on a hit.
    def oracle(i: int) -> Verdict:
        light = run.light_level()
        race = run.judge(commits[i], i, light, "search", f"; light level {light}")
        if race is Verdict.SKIP:
            return Verdict.SKIP
        if fix:  # old = racy = search-GOOD, new = fixed = search-BAD
            return Verdict.GOOD if race is Verdict.BAD else Verdict.BAD
        return race

    rounds = 0
    while True:
        rounds += 1
        res = least_satisfying(n, oracle)
        cands = [commits[i] for i in res.candidates]
        certain_i, uncertain_i = ((res.last_good_index, res.first_bad_index) if fix
                                  else (res.first_bad_index, res.last_good_index))
        run.log(f"search: {what} commit {_short(cands[0])} [{res.candidates[0]}]" if len(cands) == 1
                else f"search: the {what} commit could be any of {len(cands)} (unbuildable "
                     f"commits in the way): " + ", ".join(_short(c) for c in cands))
        # The r-th verification gets 6 / (pi r)^2 of the budget (union bound over rounds).
        side = "first clean commit" if fix else "parent of the first bad commit"
        v = run.check_boundary(commits[certain_i], certain_i, commits[uncertain_i], uncertain_i, side)
        if v is Verdict.GOOD:
            break
        run.boundary_failed(v, commits[uncertain_i], clean_role if uncertain_i == clean_i else None)

    return run.answer(cands, commits[certain_i], commits[uncertain_i], what, rounds)


def _checked(commits) -> list:
    commits = list(commits)
    if len(commits) < 2:
        raise UsageError(f"need at least the two endpoints, got {len(commits)} commit(s)")
    if len(set(commits)) != len(commits):
        raise UsageError("the commit list has duplicates")
    return commits


def _clean_endpoint_failed(run: "_Run", v: Verdict, commit, role: str) -> None:
    """The clean endpoint cannot anchor the search: no answer (RangeError)."""
    if v is Verdict.SKIP:
        why = run.store[commit].skip_reason(run.cfg.unhealthy_lead)
        raise EndpointUnbuildable(f"the {role} endpoint {commit} cannot be used: {why}")
    raise EndpointNotClean(_not_clean_message(commit, role, run.cfg.find_fix))


def _not_clean_message(commit, role: str, fix: bool) -> str:
    if fix:
        return (f"the {role} endpoint {commit} still shows the race signature: the race is not "
                f"fixed in this range")
    return (f"the {role} endpoint {commit} shows the race signature: the race is older than this "
            f"range; pick an older good endpoint")


def check_patch(
    commit,
    env: Env,
    config: PolicyConfig | None = None,
    reference: Evidence | None = None,
    evidence: Evidence | None = None,
    on_cycle: Callable[[Any, Evidence], None] | None = None,
    p_lower: float | None = None,
    on_trace: Callable[[str], None] | None = None,
) -> PatchCheck:
    """Cycles on one build; the env decides what it builds (with or without the patch).

    Call it twice for verify-patch:
      1. without `reference`, on the build WITHOUT the patch: a calibration (until
         `calibration_hits` hits or `max_calibration_cycles` valid cycles). BAD = the race
         is there, with p_estimate / p_lower; GOOD = it never showed (nothing to verify).
      2. with `reference=<evidence of 1>`, on the build WITH the patch: BAD at the first
         hit ("race present"), GOOD after `clean_cycles_needed_vs_reference` clean cycles
         ("cleared with confidence c", c = 1 - the miss bound, >= config.confidence
         unless max_verify_cycles capped it).
    `evidence` (this build's Evidence) lets the caller resume; it is updated in place.
    `p_lower` instead of `reference` (kept for callers that pass the rate): GOOD after
    clean_cycles_needed(p_lower, 1 - confidence) clean cycles. That trusts the bound on p,
    which holds only with `bound_level`; `reference` holds for every p. Prefer it.
    """
    cfg = config if config is not None else PolicyConfig()
    ev = evidence if evidence is not None else Evidence()
    run = _Run(env, cfg, {commit: ev}, {commit}, commit, on_cycle=on_cycle, on_trace=on_trace)
    ev.consecutive_infra = 0  # a new session
    if ev.verdict is Verdict.ERROR:
        ev.verdict = None
    if reference is None and p_lower is None:
        ev, new = run.cycle_until(
            commit, lambda e: e.hits >= cfg.calibration_hits or e.valid_cycles >= cfg.max_calibration_cycles)
        verdict = decide(ev, 0, cfg.max_consecutive_infra)  # SKIP, BAD, or GOOD at level 0
        ev.verdict = verdict
        p_hat, p_low = run.estimate()
        if verdict is Verdict.GOOD:
            note = f"no race signature in {ev.valid_cycles} valid cycles: nothing to verify against"
        else:
            note = f"{ev.hits} hits in {ev.valid_cycles} valid cycles: p ~ {p_hat:.3f} (>= {p_low:.3f})"
        run.log(f"check {_short(commit)} (calibration): {verdict.value.upper()}: {note} "
                f"({new} new cycle(s))")
        return PatchCheck(commit, verdict, ev, 0, p_hat, p_low, 0.0, run.trace)
    miss = 1.0 - cfg.confidence
    if reference is not None:
        if reference.hits < 1:
            raise UsageError("the reference shows no race: calibrate on a build that has it first")
        h, v = reference.hits, reference.valid_cycles
        need = clean_cycles_needed_vs_reference(h, v, miss)
        how = f"miss <= {miss:.2g} for any p, against {h} hits in {v} cycles"
        p_hat, p_low = h / v, hit_rate_lower_bound(h, v, cfg.bound_level)
        bound = lambda clean: miss_bound_vs_reference(h, v, clean)  # noqa: E731
    else:
        if not 0.0 < p_lower <= 1.0:
            raise UsageError(f"p_lower must be in (0, 1], got {p_lower!r}: calibrate on a build "
                             f"that has the race first")
        need = clean_cycles_needed(p_lower, miss)
        how = f"miss <= {miss:.2g} at p >= {p_lower:.3f}"
        p_hat, p_low = p_lower, p_lower
        bound = lambda clean: (1.0 - p_lower) ** clean  # noqa: E731
    if cfg.max_verify_cycles is not None:
        need = min(need, cfg.max_verify_cycles)
    verdict = run.judge(commit, None, need, "check", f"; cleared after {need} clean ({how})")
    confidence = 1.0
    if verdict is Verdict.GOOD:
        confidence = 1.0 - bound(ev.clean)
        run.log(f"check {_short(commit)}: race cleared with confidence {confidence:.5f}")
    elif verdict is Verdict.BAD:
        run.log(f"check {_short(commit)}: race present")
    return PatchCheck(commit, verdict, ev, need, p_hat, p_low, confidence, run.trace)


def bisect_fixed(
    commits: list,
    env: Env,
    cycles: int,
    find_fix: bool = False,
    store: dict | None = None,
    on_cycle: Callable[[Any, Evidence], None] | None = None,
    max_consecutive_infra: int = 3,
) -> BisectResult:
    """The naive method, kept for comparison (`--cycles N`, bench/): git bisect with up to
    `cycles` valid cycles per step, BAD at the first hit, no calibration, no verification of
    the boundary, and so no stated confidence (reported as 0).  The same rule decides."""
    commits = list(commits)
    store = {} if store is None else store
    for ev in store.values():   # a new call is a new session (as in bisect())
        ev.consecutive_infra = 0
    steps, trace = [], [f"bisect with a fixed {cycles} cycle(s) per step (naive method): no confidence is claimed"]

    def oracle(i: int) -> Verdict:
        c = commits[i]
        ev = store.setdefault(c, Evidence())
        new = 0
        if ev.build_error is None and ev.cycles == 0:
            err = env.build(c)
            if err is not None:
                ev.build_error = err
        while (v := decide(ev, cycles, max_consecutive_infra)) is None:
            try:
                outcome = env.cycle(c)
            except InfraError:
                outcome = CycleOutcome.INFRA
            ev.add(outcome)
            new += 1
            if on_cycle:
                on_cycle(c, ev)
        env.release(c)
        if v is Verdict.ERROR:
            raise InfraError(f"{max_consecutive_infra} infrastructure failures in a row on {_short(c)}")
        ev.verdict, ev.clean_needed = v, cycles
        steps.append(StepRecord("search", c, i, v, ev.cycles, ev.hits, ev.infra, cycles, new))
        trace.append(f"search {_short(c)} [{i}]: {v.value.upper()} ({ev.hits} hit(s) in {ev.valid_cycles} valid cycles)")
        if find_fix and v in (Verdict.GOOD, Verdict.BAD):
            return Verdict.GOOD if v is Verdict.BAD else Verdict.BAD
        return v

    res = least_satisfying(len(commits), oracle)
    cands = [commits[i] for i in res.candidates]
    in_range = set(commits)
    total = sum(e.cycles for k, e in store.items() if k in in_range)
    bad_ev = [e for e in store.values() if e.hits]
    hits, valid = sum(e.hits for e in bad_ev), sum(e.valid_cycles for e in bad_ev)
    trace.append(f"answer: {' '.join(_short(c) for c in cands)}; {total} cycles in all")
    return BisectResult(candidates=cands, culprit=cands[0] if len(cands) == 1 else None, confidence=0.0,
                        p_estimate=hits / valid if valid else 0.0, p_lower=0.0, total_cycles=total,
                        steps=steps, trace=trace, find_fix=find_fix)
