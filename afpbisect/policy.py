"""The bisection policy: calibration, adaptive cycles, boundary verification, confirmation.

Works over an abstract environment (`Env`: build / cycle / release), so the real run and
`bench/simulate.py` go through the same code. Nothing here imports docker or git.

Why this shape (ticket 8667, NOTES.md "The repro"):

* A hit is proof of BAD; the only possible error is a false GOOD on a bad commit that
  happened to start clean every time. So the answer is wrong exactly when the commit on
  the "no race" side of the final boundary is in fact racy. Every other GOOD verdict only
  steers the search: a false one there costs cycles, never correctness, because it ends up
  on (or beyond) the boundary, where it is re-tested.
* Hence LIGHT search steps (GOOD after `clean_cycles_needed(p_hat, light_miss)` clean
  cycles, BAD at the first hit) and ONE HEAVY verification of the boundary's clean side:
  GOOD only after `clean_cycles_needed(p_lower, 1 - confidence)` clean cycles, p_lower a
  one-sided lower confidence bound on the hit rate. The whole bisection's error budget
  (1 - confidence) is spent on the one step where an error can change the answer. If the
  heavy test hits, that commit is racy: search again (stored evidence makes the replay
  free) and verify the new boundary.
* p is estimated from all valid cycles on commits proven racy (a hit); calibration runs
  the racy endpoint to `calibration_hits` hits first, and refuses to start (NotReproducible)
  when it shows none.
* With `find_fix` the terms are inverted (git bisect --term-old=racy --term-new=fixed): the
  old endpoint is racy, the answer is the first clean commit, and the heavy verification
  is on that first clean commit itself.

Verdicts in the store and in StepRecord are in race terms in both modes: BAD = the race
was seen, GOOD = not seen in enough clean cycles.

Resuming: `store` (commit -> Evidence) is the whole state. Stored evidence is never
discarded; a commit whose evidence already satisfies a step costs no cycle. Light GOOD
verdicts are provisional by design, so a stored one is reused at whatever light level
it was judged; the heavy level is always checked against the clean count. Confirmation
runs before verification so that the heavy test is the last thing a run does: a replay
sees the same pool, the same heavy level, and reaches the same answer.
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
    decide,
    clean_cycles_needed_vs_reference,
    hit_rate_lower_bound,
    miss_bound_vs_reference,
)


# --- errors -----------------------------------------------------------------------------


class RangeError(AfpError):
    """The range cannot be bisected as given (not an infrastructure error)."""


class NotReproducible(RangeError):
    """Calibration saw no race signature at the racy endpoint."""


class EndpointNotClean(RangeError):
    """The endpoint that should be free of the race showed the signature."""


class EndpointUnbuildable(RangeError):
    """An endpoint did not build, so there is nothing to compare against."""


# --- interfaces -------------------------------------------------------------------------


class Env(Protocol):
    def build(self, commit) -> str | None:
        """None = built OK; a string = the build error (-> SKIP). Raise InfraError for infra."""

    def cycle(self, commit) -> CycleOutcome:
        """One cold start of the built commit."""

    def release(self, commit) -> None:
        """Done with this commit for now (the real env stops its container)."""


@dataclass
class PolicyConfig:
    """Knobs of the policy; defaults chosen with bench/simulate.py (see its output).

    confidence: target probability that the answer contains the culprit, for the whole
        bisection; 1 - confidence is the miss budget of the boundary verification.
    find_fix: find the first commit where the race is gone (old endpoint racy).
    calibration_hits / max_calibration_cycles: run the racy endpoint until this many
        hits, or this many valid cycles (0 hits then -> NotReproducible).
    max_consecutive_infra: infrastructure failures in a row on one commit (cycles or
        builds) before the run aborts with InfraError; a resumed run starts the count again.
    confirm_extra: hits asked of the culprit beyond the one that proved it (re-test of the
        culprit; its parent gets the heavy verification). Capped at max_calibration_cycles
        valid cycles; a single hit stays proof, a missing second one is only reported.
    light_miss: per-step probability of a false GOOD during the search, under the point
        estimate of p. Costs cycles only, never correctness (see the module docstring).
    bound_level: one-sided confidence level of the lower bound on p used by the heavy test.
    max_verify_cycles: cap on the heavy test's clean cycles (None: no cap). When it binds,
        the reported confidence is below the target and the trace says so.
    """

    confidence: float = 0.999
    find_fix: bool = False
    calibration_hits: int = 8
    max_calibration_cycles: int = 60
    max_consecutive_infra: int = 3
    confirm_extra: int = 1
    light_miss: float = 0.1
    light_tighten: float = 0.5
    bound_level: float = 0.9
    max_verify_cycles: int | None = None
    verify_rule: str = "reference"

    def __post_init__(self) -> None:
        if self.verify_rule not in ("reference", "p_lower"):
            raise UsageError(f"verify_rule must be 'reference' or 'p_lower', got {self.verify_rule!r}")
        if not 0.0 < self.confidence < 1.0:
            raise UsageError(f"confidence must be in (0, 1), got {self.confidence!r}")
        if not 0.0 < self.light_miss < 1.0:
            raise UsageError(f"light_miss must be in (0, 1), got {self.light_miss!r}")
        if not 0.0 < self.bound_level < 1.0:
            raise UsageError(f"bound_level must be in (0, 1), got {self.bound_level!r}")
        if self.calibration_hits < 1:
            raise UsageError(f"calibration_hits must be >= 1, got {self.calibration_hits!r}")
        if self.max_calibration_cycles < 1:
            raise UsageError(f"max_calibration_cycles must be >= 1, got {self.max_calibration_cycles!r}")
        if self.max_consecutive_infra < 1:
            raise UsageError(f"max_consecutive_infra must be >= 1, got {self.max_consecutive_infra!r}")
        if self.confirm_extra < 0:
            raise UsageError(f"confirm_extra must be >= 0, got {self.confirm_extra!r}")
        if self.max_verify_cycles is not None and self.max_verify_cycles < 1:
            raise UsageError(f"max_verify_cycles must be >= 1, got {self.max_verify_cycles!r}")


# --- results ----------------------------------------------------------------------------


PHASES = ("calibrate", "endpoint", "search", "confirm", "verify", "check")


@dataclass
class StepRecord:
    """One decision on one commit. `verdict` is in race terms (BAD = race seen)."""

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

    def to_dict(self) -> dict:
        return {
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
    is set), or every commit it could be when unbuildable commits hide it.

    confidence: P(the culprit is among `candidates`) as far as the cycles show it:
        1 - (1 - p_lower) ** clean cycles on the verified commit (the boundary's
        clean side), under the `bound_level` lower bound p_lower.
    total_cycles: every cycle recorded in the store for this range (all sessions).
    new_cycles: cycles run by this call.
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
    verified: Any = None  # the commit that got the heavy verification
    confirmed: Any = None  # the commit on the racy side of the boundary
    new_cycles: int = 0
    rounds: int = 1

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
            "steps": [s.to_dict() for s in self.steps],
            "trace": list(self.trace),
        }


@dataclass
class PatchCheck:
    """Result of `check_patch`. verdict (race terms): BAD = race present, GOOD = not seen
    (cleared with `confidence` when a calibrated p_lower was given), SKIP = did not build."""

    commit: Any
    verdict: Verdict
    evidence: Evidence
    clean_needed: int
    p_estimate: float | None
    p_lower: float | None
    confidence: float
    trace: list = field(default_factory=list)

    @property
    def race_present(self) -> bool:
        return self.verdict is Verdict.BAD


# --- the run ----------------------------------------------------------------------------


def _short(commit) -> str:
    return str(commit)[:12]


class _Run:
    """Cycles, builds, the trace and the store for one call."""

    def __init__(self, env: Env, config: PolicyConfig, store: dict, on_step, on_cycle, in_range, racy):
        self.racy = racy  # the commit racy by assumption (calibrated)
        self.env = env
        self.cfg = config
        self.store = store
        self.on_step = on_step
        self.on_cycle = on_cycle
        self.in_range = in_range
        self.trace: list = []
        self.steps: list = []
        self.new_cycles = 0
        self.built: set = set()

    def log(self, line: str) -> None:
        self.trace.append(line)

    def ev(self, commit) -> Evidence:
        ev = self.store.get(commit)
        if ev is None:
            ev = self.store[commit] = Evidence()
        return ev

    def _persist(self, commit, ev: Evidence) -> None:
        if self.on_cycle is not None:
            self.on_cycle(commit, ev)

    def record(self, phase, commit, index, verdict, ev, level, new, note="") -> StepRecord:
        rec = StepRecord(phase, commit, index, verdict, ev.cycles, ev.hits, ev.infra, level, new, note)
        self.steps.append(rec)
        if self.on_step is not None:
            self.on_step(rec)
        return rec

    # -- estimates --

    def pool(self) -> tuple[int, int]:
        """The reference sample (hits, valid cycles): the calibrated racy endpoint's.

        It is racy by assumption and was run until a fixed number of hits, so its cycles
        are an unselected negative-binomial sample: what `miss_bound_vs_reference` needs.
        Left out on purpose, the commits the search found racy: one joins "known racy"
        only because it hit within its light budget (those that did not are false GOODs),
        so their hits / cycles is biased upwards, badly at a light level of 1 or 2 (with
        them pooled, bench/simulate.py gave 1% wrong answers). Confirmation cycles after
        a first hit would be a fair sample, but counting them conservatively without the
        position of that first hit cost more cycles than it saved (simulated).
        """
        ev = self.store.get(self.racy)
        if ev is None:
            return 0, 0
        return ev.hits, ev.valid_cycles

    def estimate(self) -> tuple[float, float]:
        """(point estimate, `bound_level` lower bound) of the per-cycle hit rate."""
        hits, valid = self.pool()
        if not hits:
            return 0.0, 0.0
        return hits / valid, hit_rate_lower_bound(hits, valid, self.cfg.bound_level)

    def false_goods(self) -> int:
        """Commits judged GOOD and later caught with the race (a hit and a GOOD level)."""
        return sum(1 for c, ev in self.store.items()
                   if ev.hits and ev.clean_needed and c != self.racy and c in self.in_range)

    def light_level(self, tighten: bool = True) -> int:
        """Clean cycles for a light GOOD: `light_miss` under the calibration's estimate of p,
        times `light_tighten` for every false GOOD caught so far.

        A caught false GOOD says the light level was short (often: a lucky calibration,
        e.g. 8 hits in 10 cycles at p = 0.6). Without tightening, every other light GOOD
        judged at that level stays in the store and may cost a whole verification round
        each. With it, the next search re-tests the GOODs on its path at the new level,
        at light cost. A count (not the cycles) drives it so that a resumed run computes
        the same level as the round it resumes.
        """
        import os
        mode = os.environ.get("LIGHTP", "mle")
        hits, valid = self.pool()
        if mode == "mle": p_hat = hits / valid
        elif mode == "umvu": p_hat = (hits - 1) / (valid - 1) if hits > 1 else hits / valid
        else: p_hat = hit_rate_lower_bound(hits, valid, float(mode))
        k = self.false_goods() if tighten else 0
        return clean_cycles_needed(p_hat, self.cfg.light_miss * self.cfg.light_tighten ** k)

    def verify_level(self, budget: float) -> tuple[int, str]:
        """Clean cycles the boundary's clean side needs for a miss of at most `budget`."""
        hits, valid = self.pool()
        p_hat, p_low = self.estimate()
        if self.cfg.verify_rule == "reference":
            need = clean_cycles_needed_vs_reference(hits, valid, budget)
            how = (f"miss <= {budget:.2g} for any p, against the reference's {hits} hits in "
                   f"{valid} cycles")
        else:
            need = clean_cycles_needed(p_low, budget)
            how = f"miss <= {budget:.2g} at p >= {p_low:.3f} ({self.cfg.bound_level:.0%} bound)"
        return need, how

    def miss_bound(self, clean: int) -> float:
        """What `clean` clean cycles on the verified commit leave as chance of a miss."""
        hits, valid = self.pool()
        if self.cfg.verify_rule == "reference":
            return miss_bound_vs_reference(hits, valid, clean)
        _, p_low = self.estimate()
        return (1.0 - p_low) ** clean

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
                ev.build_error = str(error)
                self._persist(commit, ev)
                return False
            self.built.add(commit)
            return True
        raise InfraError(
            f"{_short(commit)}: {self.cfg.max_consecutive_infra} builds in a row failed on "
            f"infrastructure (last: {last}); state kept, resume when it is fixed"
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
            while ev.build_error is None and not stop(ev):
                if ev.consecutive_infra >= self.cfg.max_consecutive_infra:
                    if ev.verdict is None:  # a decided verdict (a light GOOD) stays
                        ev.verdict = Verdict.ERROR
                    self._persist(commit, ev)
                    self.log(f"{_short(commit)}: {ev.consecutive_infra} infrastructure errors in a row: abort")
                    raise InfraError(
                        f"{_short(commit)}: {ev.consecutive_infra} cycles in a row failed on "
                        f"infrastructure; state kept, resume when it is fixed"
                    )
                if commit not in self.built and not self._build(commit, ev):
                    break
                outcome = self.env.cycle(commit)
                ev.add(outcome)
                self.new_cycles += 1
                self._persist(commit, ev)
        finally:
            self._release(commit)
        return ev, self.new_cycles - before

    def judge(self, commit, index, level: int, phase: str, why: str = "",
              keep_level: bool = False) -> Verdict:
        """Apply THE rule (`decide`) at `level`, running cycles until it answers.

        A GOOD records `level` in `clean_needed`, unless `keep_level` (the verification,
        which must leave the light level there: see verify()).
        """
        maxi = self.cfg.max_consecutive_infra
        ev, new = self.cycle_until(commit, lambda e: decide(e, level, maxi) not in (None, Verdict.ERROR))
        verdict = decide(ev, level, maxi)
        if verdict is Verdict.GOOD and not keep_level:
            ev.clean_needed = max(level, ev.clean_needed) if ev.verdict is Verdict.GOOD else level
        ev.verdict = verdict
        self._persist(commit, ev)
        if verdict is Verdict.SKIP:
            detail = f"did not build: {ev.build_error.strip().splitlines()[-1] if ev.build_error.strip() else '?'}"
        elif verdict is Verdict.BAD:
            detail = f"race signature seen ({ev.hits} hit(s) in {ev.valid_cycles} valid cycles)"
        else:
            detail = f"{ev.clean} clean cycles >= {level} needed"
        extra = f", {ev.infra} infra" if ev.infra else ""
        reuse = "reused, no new cycle" if new == 0 else f"{new} new cycle(s){extra}"
        self.log(f"{phase} {_short(commit)}{'' if index is None else f' [{index}]'}: "
                 f"{verdict.value.upper()}: {detail} ({reuse}){why}")
        self.record(phase, commit, index, verdict, ev, level, new, why.strip(" ;"))
        return verdict

    @staticmethod
    def selected(ev: Evidence) -> int:
        """Clean cycles of a commit that its choice as the boundary depended on.

        The search picks as boundary a commit whose light test came out clean; so those
        clean cycles are not evidence for the verification (counting them, the simulation
        was wrong 0.13% of the time, above the 0.1% budget). A light GOOD stops at exactly
        `clean_needed` clean cycles, and the verification leaves `clean_needed` alone, so
        `clean_needed` is that count, before and after (and in a resumed run).
        """
        return ev.clean_needed if ev.verdict is Verdict.GOOD else ev.clean

    def verify(self, commit, index, fresh: int, why: str) -> Verdict:
        """The heavy test: `fresh` clean cycles beyond the selected ones, or a hit."""
        pre = self.selected(self.ev(commit))
        return self.judge(commit, index, pre + fresh, "verify",
                          f"; {fresh} clean beyond the {pre} the search saw{why}", keep_level=True)

    def calibrate(self, commit, index, role: str) -> Evidence:
        """Run the racy endpoint to `calibration_hits` hits (or the cycle cap)."""
        cfg = self.cfg
        target, cap = cfg.calibration_hits, cfg.max_calibration_cycles
        ev, new = self.cycle_until(commit, lambda e: e.hits >= target or e.valid_cycles >= cap)
        if ev.build_error is not None:
            ev.verdict = Verdict.SKIP
            self._persist(commit, ev)
            raise EndpointUnbuildable(f"the {role} endpoint {commit} does not build: {ev.build_error}")
        if ev.hits == 0:
            ev.verdict = None
            self._persist(commit, ev)
            self.log(f"calibrate {_short(commit)} [{index}]: no race signature in {ev.valid_cycles} cycles: refuse")
            raise NotReproducible(
                f"the race does not reproduce at the {role} endpoint {commit}: no race signature in "
                f"{ev.valid_cycles} cold starts ({ev.infra} infrastructure errors not counted). "
                f"Nothing to bisect: check that this commit has the race, enable the window "
                f"widener (without it the hit rate is about 0.25 per cycle), or allow more "
                f"calibration cycles (max_calibration_cycles={cfg.max_calibration_cycles})."
            )
        ev.verdict = Verdict.BAD
        self._persist(commit, ev)
        p_hat, p_low = self.estimate()
        short = "" if ev.hits >= target else (
            f"; only {ev.hits} of {target} hits wanted within the cap, proceeding")
        self.log(
            f"calibrate {_short(commit)} [{index}] ({role} endpoint): {ev.hits} hits in "
            f"{ev.valid_cycles} valid cycles ({ev.infra} infra; {new} new): "
            f"p ~ {p_hat:.3f}, {cfg.bound_level:.0%} lower bound {p_low:.3f}{short}"
        )
        self.record("calibrate", commit, index, Verdict.BAD, ev, 0, new,
                    f"p_estimate={p_hat:.4f} p_lower={p_low:.4f}")
        return ev

    def confirm(self, commit, index) -> None:
        cfg = self.cfg
        want = 1 + cfg.confirm_extra
        ev, new = self.cycle_until(
            commit, lambda e: e.hits >= want or e.valid_cycles >= cfg.max_calibration_cycles)
        if ev.hits >= want:
            note = f"{ev.hits} hits in {ev.valid_cycles} valid cycles"
        else:
            note = (f"only {ev.hits} hit(s) in {ev.valid_cycles} valid cycles (wanted {want}); "
                    f"a hit is still proof of the race, but the rate here looks low")
        self.log(f"confirm {_short(commit)} [{index}]: race present: {note} ({new} new cycle(s))")
        self.record("confirm", commit, index, Verdict.BAD, ev, 0, new, note)


# --- entry points -----------------------------------------------------------------------


def bisect(
    commits: list,
    env: Env,
    config: PolicyConfig | None = None,
    store: dict | None = None,
    on_step: Callable[[StepRecord], None] | None = None,
    on_cycle: Callable[[Any, Evidence], None] | None = None,
) -> BisectResult:
    """Find the first racy commit (or with `find_fix` the first clean one) in `commits`.

    commits: oldest first; commits[0] the old endpoint, commits[-1] the new one.
    store: commit -> Evidence, the resumable state; mutated in place. The caller persists
        it on every `on_cycle(commit, evidence)` (after each cycle or build result) and/or
        `on_step(StepRecord)` (after each decision).
    Raises NotReproducible, EndpointNotClean, EndpointUnbuildable (RangeError) and
    InfraError; the store stays valid for a resume after any of them.
    """
    cfg = config if config is not None else PolicyConfig()
    commits = list(commits)
    n = len(commits)
    if n < 2:
        raise UsageError(f"need at least two commits (the endpoints), got {n}")
    if len(set(commits)) != n:
        raise UsageError("the commit list has duplicates")
    store = {} if store is None else store
    fix = cfg.find_fix
    racy_i, clean_i = (0, n - 1) if fix else (n - 1, 0)
    run = _Run(env, cfg, store, on_step, on_cycle, set(commits), commits[racy_i])
    racy_role, clean_role = ("old (racy)", "new (fixed)") if fix else ("BAD (new)", "GOOD (old)")
    mode = "fix: first commit without the race" if fix else "regression: first commit with the race"
    run.log(f"bisect {mode}; {n} commits {_short(commits[0])}..{_short(commits[-1])}; "
            f"target confidence {cfg.confidence}")

    # A new call is a new session: an infrastructure streak recorded by an aborted run is
    # about that run's infrastructure, not about the commit.
    for commit, ev in store.items():
        if commit in run.in_range and (ev.consecutive_infra or ev.verdict is Verdict.ERROR):
            ev.consecutive_infra = 0
            if ev.verdict is Verdict.ERROR:
                ev.verdict = None
            run.log(f"resume: cleared the infrastructure-error streak on {_short(commit)}")

    # 1. calibration: the hit rate at the racy endpoint.
    run.calibrate(commits[racy_i], racy_i, racy_role)

    # 2. the clean endpoint: a light check up front (heavy only if it ends on the boundary).
    level = run.light_level(tighten=False)  # before any search: the same on a resume
    v = run.judge(commits[clean_i], clean_i, level, "endpoint",
                  f"; {clean_role} endpoint, light level {level}")
    if v is Verdict.SKIP:
        raise EndpointUnbuildable(f"the {clean_role} endpoint {commits[clean_i]} does not build")
    if v is Verdict.BAD:
        raise EndpointNotClean(_not_clean_message(commits[clean_i], clean_role, fix))

    # 3. search, confirm, verify; search again while the verification finds the race.
    def oracle(i: int) -> Verdict:
        commit = commits[i]
        light = run.light_level()
        race = run.judge(commit, i, light, "search", f"; light level {light}")
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
        if fix:
            certain_i, uncertain_i = res.last_good_index, res.first_bad_index
        else:
            certain_i, uncertain_i = res.first_bad_index, res.last_good_index
        what = "first clean" if fix else "first bad"
        if len(cands) == 1:
            run.log(f"search round {rounds}: {what} commit {_short(cands[0])} [{res.candidates[0]}]")
        else:
            run.log(f"search round {rounds}: the {what} commit could be any of {len(cands)} "
                    f"(unbuildable commits in the way): " + ", ".join(_short(c) for c in cands))

        # Every verification that runs on a racy commit could miss, so the r-th one gets
        # 6 / (pi r)^2 of the budget (union bound: the misses add up to at most
        # 1 - confidence; the need grows like r ** (2 / hits), not 2 ** r). A replay starts
        # again at round 1 with a larger budget, so it needs no more cycles.
        budget = (1.0 - cfg.confidence) * 6.0 / (math.pi * rounds) ** 2
        need, how = run.verify_level(budget)
        if cfg.max_verify_cycles is not None and need > cfg.max_verify_cycles:
            run.log(f"verify: {need} clean cycles needed ({how}); capped at "
                    f"max_verify_cycles={cfg.max_verify_cycles}")
            need = cfg.max_verify_cycles
        side = "first clean commit" if fix else "parent of the first bad commit"
        v = run.verify(commits[uncertain_i], uncertain_i, need, f"; {side}: {how}")
        if v is Verdict.GOOD:
            break
        if v is not Verdict.BAD:  # it built before, so SKIP here means the env changed its mind
            raise InfraError(f"{_short(commits[uncertain_i])} built before and not now: {v.value}")
        if uncertain_i == clean_i:
            raise EndpointNotClean(_not_clean_message(commits[clean_i], clean_role, fix))
        run.log(f"verify found the race on {_short(commits[uncertain_i])}: its light verdict was "
                f"a miss; searching again (stored evidence reused)")

    # Culprit confirmation: its parent just had the heavy verification; the culprit itself
    # (proven racy by a hit) is re-tested for `confirm_extra` more hits. Done once, at the
    # end: the reference does not include it, so it cannot change the verification.
    if certain_i != racy_i:  # the endpoint's calibration is its confirmation
        run.confirm(commits[certain_i], certain_i)

    p_hat, p_low = run.estimate()
    ev_u = store[commits[uncertain_i]]
    confidence = 1.0 - run.miss_bound(ev_u.clean - run.selected(ev_u))
    culprit = cands[0] if len(cands) == 1 else None
    total = sum(ev.cycles for c, ev in store.items() if c in run.in_range)
    if culprit is not None:
        run.log(f"answer: {_short(culprit)} is the {what} commit; confidence {confidence:.5f} "
                f"(p ~ {p_hat:.3f}, >= {p_low:.3f}); {total} cycles in all")
    else:
        run.log(f"answer: the {what} commit could be any of {len(cands)}; confidence "
                f"{confidence:.5f} that it is among them; {total} cycles in all")
    if confidence < cfg.confidence:
        run.log(f"warning: confidence {confidence:.5f} is below the target {cfg.confidence}")
    return BisectResult(
        candidates=cands,
        culprit=culprit,
        confidence=confidence,
        p_estimate=p_hat,
        p_lower=p_low,
        total_cycles=total,
        steps=run.steps,
        trace=run.trace,
        find_fix=fix,
        verified=commits[uncertain_i],
        confirmed=commits[certain_i],
        new_cycles=run.new_cycles,
        rounds=rounds,
    )


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
    p_lower: float | None = None,
    evidence: Evidence | None = None,
    on_cycle: Callable[[Any, Evidence], None] | None = None,
) -> PatchCheck:
    """Cycles on one build (the env decides what it builds: with or without the patch).

    Without `p_lower` (the build without the patch): calibrate, i.e. run until
    `calibration_hits` hits or `max_calibration_cycles` valid cycles; BAD with the hit-rate
    estimate and its lower bound, or GOOD (no claim: confidence 0) when it never hit.
    With `p_lower` (the patched build, p from the unpatched run): BAD at the first hit
    ("race present"), GOOD after clean_cycles_needed(p_lower, 1 - confidence) clean
    cycles ("cleared with confidence c"). `evidence` lets the caller resume.
    """
    cfg = config if config is not None else PolicyConfig()
    ev = evidence if evidence is not None else Evidence()
    run = _Run(env, cfg, {commit: ev}, None, on_cycle, {commit}, commit)
    ev.consecutive_infra = 0  # new session
    if p_lower is None:
        ev, new = run.cycle_until(
            commit, lambda e: e.hits >= cfg.calibration_hits or e.valid_cycles >= cfg.max_calibration_cycles)
        verdict = decide(ev, 0, cfg.max_consecutive_infra)  # SKIP, BAD, or GOOD (level 0: no claim)
        p_hat, p_low = run.estimate()
        ev.verdict = verdict
        run.log(f"check {_short(commit)} (calibrate): {verdict.value.upper()}: {ev.hits} hits in "
                f"{ev.valid_cycles} valid cycles ({ev.infra} infra; {new} new); p ~ {p_hat:.3f}, "
                f">= {p_low:.3f}")
        return PatchCheck(commit, verdict, ev, 0, p_hat, p_low, 0.0, run.trace)
    if not 0.0 < p_lower <= 1.0:
        raise UsageError(f"p_lower must be in (0, 1], got {p_lower!r}: calibrate on a build with the race first")
    need = clean_cycles_needed(p_lower, 1.0 - cfg.confidence)
    if cfg.max_verify_cycles is not None:
        need = min(need, cfg.max_verify_cycles)
    verdict = run.judge(commit, None, need, "check", f"; cleared needs {need} clean at p >= {p_lower:.3f}")
    confidence = 1.0 - (1.0 - p_lower) ** ev.clean if verdict is Verdict.GOOD else 1.0
    if verdict is Verdict.GOOD:
        run.log(f"check {_short(commit)}: race cleared with confidence {confidence:.5f}")
    elif verdict is Verdict.BAD:
        run.log(f"check {_short(commit)}: race present")
    return PatchCheck(commit, verdict, ev, need, None, p_lower, confidence, run.trace)
