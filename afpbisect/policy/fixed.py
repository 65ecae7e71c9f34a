"""The naive method, kept for comparison: git bisect with a fixed number of cycles per step."""
from __future__ import annotations

from afpbisect.core.errors import InfraError
from afpbisect.core.search import least_satisfying
from afpbisect.core.verdict import CycleOutcome, Evidence, Verdict, decide
from afpbisect.policy.config import Env, Handler, NotReproducible
from afpbisect.policy.records import BisectResult, StepRecord
from afpbisect.policy.session import short


def _proven(commits: list, res, store: dict, oracle, find_fix: bool) -> None:
    """The answer's racy side must have shown the race: git's search takes the BAD endpoint
    as bad without asking, and a range where no cycle ever hit named it "first bad" with
    exit 0 (issue 25's hostile tour). Test it as any step; no hit: not reproducible."""
    racy_i = res.last_good_index if find_fix else res.first_bad_index
    racy = commits[racy_i]
    if not (racy in store and store[racy].hits):
        oracle(racy_i)
    if not store[racy].hits:
        raise NotReproducible(
            f"not reproducible: no hit at {short(racy)} ({'old' if find_fix else 'BAD'} side of "
            f"the answer) in {store[racy].valid_cycles} valid cycles, none anywhere in the "
            f"range: nothing was bisected")


def bisect_fixed(
    commits: list,
    env: Env,
    cycles: int,
    find_fix: bool = False,
    store: dict | None = None,
    handler: Handler | None = None,
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
            if handler is not None:
                handler.on_cycle(c, ev)
        env.release(c)
        if v is Verdict.ERROR:
            raise InfraError(f"{max_consecutive_infra} infrastructure failures in a row on {short(c)}")
        ev.verdict, ev.clean_needed = v, cycles
        steps.append(StepRecord("search", c, i, v, ev.cycles, ev.hits, ev.infra, cycles, new))
        trace.append(f"search {short(c)} [{i}]: {v.value.upper()} ({ev.hits} hit(s) in {ev.valid_cycles} valid cycles)")
        if find_fix and v in (Verdict.GOOD, Verdict.BAD):
            return Verdict.GOOD if v is Verdict.BAD else Verdict.BAD
        return v

    res = least_satisfying(len(commits), oracle)
    cands = [commits[i] for i in res.candidates]
    _proven(commits, res, store, oracle, find_fix)
    in_range = set(commits)
    total = sum(e.cycles for k, e in store.items() if k in in_range)
    bad_ev = [e for e in store.values() if e.hits]
    hits, valid = sum(e.hits for e in bad_ev), sum(e.valid_cycles for e in bad_ev)
    trace.append(f"answer: {' '.join(short(c) for c in cands)}; {total} cycles in all")
    return BisectResult(candidates=cands, culprit=cands[0] if len(cands) == 1 else None, confidence=0.0,
                        p_estimate=hits / valid if valid else 0.0, p_lower=0.0, total_cycles=total,
                        steps=steps, trace=trace, find_fix=find_fix)
