"""A race that was there before: the boundary's clean side hit in its verification. Was
its light GOOD a miss at the same rate (search again), or does it carry the race at a
LOWER rate than the commit after it (issue 25: that commit then raised the rate; it did
not bring the race)?

Simulated (bench/simulate.py --world preexisting): the race already there 300 commits
earlier at q = 0.25 and raised to p = 1 by the culprit made the policy name the culprit
with a "clean" parent in 2% of runs (17.5% at q = 0.1) while it printed 99.969%. The
verification is now sized against a rate floor, so such a parent hits; this module then
tells the two cases apart with both rates measured side by side.
"""
from __future__ import annotations

from afpbisect.core.percent import up
from afpbisect.core.verdict import rate_is_lower
from afpbisect.policy import confirm
from afpbisect.policy.session import Run, short


def lower_rate(run: Run, certain, certain_i, uncertain, uncertain_i, alpha: float) -> bool:
    """Sample `uncertain` afresh (its hit selected it) to the calibration's stopping rule,
    with a cycle of `certain` after each of its cycles, so the two samples are as long and
    see the same load (a swing then moves both). True, with both samples kept in `lower`,
    when the rates differ at error `alpha` (`verdict.rate_is_lower`), tested once, at the
    end: no look in between, so no optional stopping. The racy side needs no more cycles
    than the low one to be told apart: when the low one is slow to reach its hits, the
    racy side's sample grows with it (8 of 32 at q = 0.25 against 32 of 32 at p = 1)."""
    ev_u, ev_c = run.ev(uncertain), run.ev(certain)
    if ev_u.lower is not None:
        return True   # decided before (a resumed run)
    confirm.start(run, uncertain)
    if not ev_u.rate:   # the racy side's counts when the pairs began, kept for a resume
        ev_u.rate = [ev_c.hits, ev_c.valid_cycles]
        run.persist(uncertain, ev_u)
    start = tuple(ev_u.rate)

    def paired() -> tuple[int, int]:
        return ev_c.hits - start[0], ev_c.valid_cycles - start[1]

    keep_pace = lambda e: paired()[1] >= ev_u.since_mark()[1]  # noqa: E731
    new = run.alternate([(uncertain, confirm.done(run)), (certain, keep_pace)])
    low, high = ev_u.since_mark(), paired()
    lower = ev_u.skip_reason(run.cfg.unhealthy_lead) is None and rate_is_lower(low, high, alpha)
    note = (f"rate {low[0]} hits in {low[1]} fresh cycles against {high[0]} in {high[1]} at "
            f"{short(certain)}, cycle by cycle: {'lower' if lower else 'not shown lower'} "
            f"(error <= {up(alpha)})")
    run.log(f"rate {short(uncertain)} [{uncertain_i}]: {note} ({new[uncertain]} + "
            f"{new[certain]} new cycle(s))")
    run.record("rate", uncertain, uncertain_i, ev_u.verdict, ev_u, 0, new[uncertain], note)
    ev_u.rate = None
    if lower:
        ev_u.lower = [*low, *high]
    run.persist(uncertain, ev_u)
    return lower
