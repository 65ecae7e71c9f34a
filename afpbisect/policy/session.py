"""One call of the policy: the store, builds and cycles, THE rule applied, the trace.

Phases (calibrate, endpoint, search, verify, confirm) are functions over a `_Run` in their
own modules; this one holds what they share.
"""
from __future__ import annotations

from typing import Callable

from afpbisect.core.errors import InfraError
from afpbisect.core.verdict import (
    CycleOutcome,
    Evidence,
    Verdict,
    clean_cycles_needed,
    decide,
    hit_rate_lower_bound,
)
from afpbisect.policy import light
from afpbisect.policy.config import Env, Handler, PolicyConfig
from afpbisect.policy.records import StepRecord


def short(commit) -> str:
    return str(commit)[:12]


def is_false_good(ev: Evidence) -> bool:
    """Judged GOOD at some level (clean_needed kept) and caught with the race since; not
    one found racy at a lower rate, nor one whose rate test is pending (policy/rates.py)."""
    return bool(ev.hits and ev.clean_needed) and ev.lower is None and ev.rate is None


def on_clean_side(ev: Evidence) -> bool:
    """Seen as the search saw it before a verification caught the race on it: the clean
    side of a rate step (`lower`), or a rate test under way (`rate`, a resumed run)."""
    return ev.lower is not None or (ev.rate is not None and ev.hits > 0)


class Run:
    """Cycles, builds, the trace and the store for one call.

    `racy` is the endpoint racy by assumption (BAD, or the old one with find_fix);
    `calibrated` the commit whose calibration is the reference (None until one ran).
    `cost(i)` prices a probe's build now (None: `build_seconds` each).
    """

    def __init__(self, env: Env, config: PolicyConfig, store: dict, commits: list, racy,
                 handler: Handler | None = None, cost=None):
        self.env = env
        self.cfg = config
        self.store = store
        self.commits = commits
        self.in_range = set(commits)
        self.racy = racy
        self.handler = handler if handler is not None else Handler()   # cycles, steps, trace lines
        self.cost = cost
        self.trace: list = []
        self.steps: list = []
        self.new_cycles = 0
        self.built: set = set()
        self.visited: set = set()  # commits judged in this call
        self.calibrating = False   # a round's probe is calibrating (several engines)
        self._bound: tuple | None = None
        # a resumed run finds its calibration in the store
        self.calibrated = next((c for c in commits if c in store
                                and store[c].calibration() is not None), None)

    def log(self, line: str) -> None:
        self.trace.append(line)
        self.handler.on_trace(line)   # decisions shown live (syzkaller traces as it goes)

    def ev(self, commit) -> Evidence:
        ev = self.store.get(commit)
        if ev is None:
            ev = self.store[commit] = Evidence()
        return ev

    def persist(self, commit, ev: Evidence) -> None:
        self.handler.on_cycle(commit, ev)

    def record(self, phase, commit, index, verdict, ev, level, new, note="", fresh=0) -> StepRecord:
        rec = StepRecord(phase, commit, index, verdict, ev.cycles, ev.hits, ev.infra, level, new,
                         note, fresh)
        self.steps.append(rec)
        self.handler.on_step(rec)
        return rec

    # -- estimates and levels --

    def reference(self) -> tuple[int, int] | None:
        """(hits, valid cycles) of the calibration: the reference sample, or None before one.

        Run to a fixed number of hits after the cycles that selected the commit, so its
        cycles are an unselected negative-binomial sample, which `miss_bound_vs_reference`
        needs. Left out on purpose, the other commits the search found racy: one is "known
        racy" only because it hit within its light budget, so their hits / cycles is
        biased upwards (pooling them gave 1% wrong answers in bench/simulate.py).
        """
        if self.calibrated is None:
            return None
        return self.store[self.calibrated].calibration()

    def estimate(self) -> tuple[float, float]:
        """(hits / cycles, `bound_level` lower bound) of the calibration (0, 0 before one)."""
        ref = self.reference()
        if not ref or not ref[0]:
            return 0.0, 0.0
        if self._bound is None or self._bound[0] != ref:
            self._bound = (ref, hit_rate_lower_bound(ref[0], ref[1], self.cfg.bound_level))
        return ref[0] / ref[1], self._bound[1]

    def probe_cost(self, i: int) -> float:
        return self.cfg.build_seconds if self.cost is None else self.cost(i)

    def light_level(self, window: tuple[int, int]) -> int:
        """Clean cycles for a light GOOD in `window` (`light.priced_level`).

        Before any calibration: 1. Such a GOOD only steers, and the search is run again
        once the calibration exists, so every GOOD it still relies on is judged again at
        the calibrated level. Each false GOOD met in THIS call doubles the price of a wrong
        one (`light_tighten`): it says the level is short. Counting only this call's
        commits keeps a resumed run from asking more of a step than the original did.
        """
        p_hat, p_low = self.estimate()
        if p_low <= 0.0:
            return 1
        k = sum(1 for c in self.visited if is_false_good(self.store[c]))
        if not self.cfg.priced_light:   # the rule before issue 18, for comparison
            return clean_cycles_needed(p_hat, self.cfg.light_miss * self.cfg.light_tighten ** k)
        wasted = light.wasted_seconds(window, self.probe_cost) / self.cfg.light_tighten ** k
        return light.priced_level(p_low, self.cfg.cycle_seconds, wasted)

    def verify_round(self) -> int:
        """1 + false GOODs caught in the store: grows with every verification that hits."""
        return 1 + sum(1 for c, ev in self.store.items()
                       if c in self.in_range and c != self.calibrated and is_false_good(ev))

    # -- builds and cycles --

    def _build(self, commit, ev: Evidence) -> bool:
        last = None
        for attempt in range(1, self.cfg.max_consecutive_infra + 1):
            try:
                error = self.env.build(commit)
            except InfraError as exc:
                last = exc
                self.log(f"{short(commit)}: build attempt {attempt}: infrastructure error: {exc}")
                continue
            if error is not None:
                if ev.valid_cycles:
                    # It built and ran before: the environment changed, not the commit (a
                    # SKIP now would undo a verdict, e.g. the race proven on it).
                    raise InfraError(f"{short(commit)} built and ran before and does not build "
                                     f"now: {str(error).strip().splitlines()[-1:] or ['?']}")
                ev.build_error = str(error) or "build failed"
                self.persist(commit, ev)
                return False
            self.built.add(commit)
            return True
        raise InfraError(
            f"{short(commit)}: {self.cfg.max_consecutive_infra} build attempts in a row failed "
            f"on infrastructure (last: {last}); state kept, resume when it is fixed"
        )

    def _release(self, commit) -> None:
        if commit in self.built:
            self.built.discard(commit)
            self.env.release(commit)

    def _infra_streak(self, commit, ev: Evidence) -> None:
        if ev.verdict is None:  # a decided verdict (a light GOOD) stays
            ev.verdict = Verdict.ERROR
        self.persist(commit, ev)
        self.log(f"{short(commit)}: {ev.consecutive_infra} infrastructure errors in a row: "
                 f"abort (resumable)")
        raise InfraError(f"{short(commit)}: {ev.consecutive_infra} cycles in a row failed on "
                         f"infrastructure; state kept, resume when it is fixed")

    def cycle_until(self, commit, stop: Callable[[Evidence], bool]) -> tuple[Evidence, int]:
        """Run cycles on `commit` until `stop(evidence)` or a build error; returns the new count."""
        ev = self.ev(commit)
        new = 0   # counted here: a round's other probes add to self.new_cycles meanwhile
        try:
            while self._wants(commit, ev, stop):
                if not self._one_cycle(commit, ev):
                    break
                new += 1
        finally:
            self._release(commit)
        return ev, new

    def alternate(self, wants: list) -> dict:
        """One cycle on each of `wants` [(commit, stop)] in turn while its `stop` is false:
        the commits share the machine's load of the moment (issue 25: a calibration and a
        verification run at different times let a load swing pass). Returns the new
        cycles of each commit."""
        new = {c: 0 for c, _ in wants}
        try:
            while True:
                busy = [(c, stop) for c, stop in wants if self._wants(c, self.ev(c), stop)]
                if not busy:
                    break
                for c, _ in busy:
                    if not self._one_cycle(c, self.ev(c)):
                        wants = [(w, s) for w, s in wants if w != c]
                        continue
                    new[c] += 1
        finally:
            for c in new:
                self._release(c)
        return new

    def _wants(self, commit, ev: Evidence, stop) -> bool:
        return ev.skip_reason(self.cfg.unhealthy_lead) is None and not stop(ev)

    def _one_cycle(self, commit, ev: Evidence) -> bool:
        """One cycle (built first when needed); False when the build failed (a SKIP)."""
        if ev.consecutive_infra >= self.cfg.max_consecutive_infra:
            self._infra_streak(commit, ev)
        if commit not in self.built and not self._build(commit, ev):
            return False
        try:
            outcome = self.env.cycle(commit)
        except InfraError as exc:
            self.log(f"{short(commit)}: cycle failed on infrastructure: {exc}")
            outcome = CycleOutcome.INFRA
        ev.add(outcome)
        self.new_cycles += 1
        self.persist(commit, ev)
        return True

    def judge(self, commit, index, level: int, phase: str, why: str = "",
              keep_level: bool = False, fresh: int = 0, before: int = 0) -> Verdict:
        """Apply THE rule (`decide`) at `level`, running cycles until it answers.

        A new (or extended) GOOD records its clean count in `clean_needed`; a reused one
        and the verification (`keep_level`) leave it alone: see `selected`.
        """
        maxi, lead = self.cfg.max_consecutive_infra, self.cfg.unhealthy_lead
        self.visited.add(commit)
        ev, new = self.cycle_until(commit,
                                   lambda e: decide(e, level, maxi, lead) not in (None, Verdict.ERROR))
        new += before   # cycles run for this decision alternately with another commit's
        verdict = decide(ev, level, maxi, lead)
        if verdict is Verdict.GOOD and not keep_level and (ev.verdict is not Verdict.GOOD or new):
            # every clean cycle so far is part of why it is GOOD (usually exactly `level`)
            ev.clean_needed = ev.clean
        ev.verdict = verdict
        self.persist(commit, ev)
        self.log(f"{phase} {short(commit)}{'' if index is None else f' [{index}]'}: "
                 f"{verdict.value.upper()}: {self._detail(ev, verdict, level, new)}{why}")
        self.record(phase, commit, index, verdict, ev, level, new, why.strip(" ;"), fresh)
        return verdict

    def _detail(self, ev: Evidence, verdict: Verdict, level: int, new: int) -> str:
        lead = self.cfg.unhealthy_lead
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
        return f"{detail} ({reuse})"

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

    def clear_streaks(self) -> None:
        """A new call is a new session: an infrastructure streak recorded by an aborted run
        is about that run's infrastructure, not about the commit."""
        for commit, ev in self.store.items():
            if commit in self.in_range and (ev.consecutive_infra or ev.verdict is Verdict.ERROR):
                ev.consecutive_infra = 0
                if ev.verdict is Verdict.ERROR:
                    ev.verdict = None
                self.log(f"resume: cleared the infrastructure-error streak on {short(commit)}")
