"""Verification: the heavy test of the boundary's clean side, the one place where the error
budget is spent (the other side is proven by a hit).

Two assumptions of the bound against the calibration fail in real life (issue 25): a
race may have been there before the culprit at a LOWER rate (the culprit only raised it),
and the machine's load moves the rate while cycles run. So:
* the verification is sized against a stated rate floor as well (`rate_floor`): a race at
  any rate >= the floor on the clean side, constant or not, shows with probability >= 1 -
  budget (prod (1 - p_t) <= (1 - floor) ** C);
* its cycles alternate with the re-calibration's on the racy side, so both see the same
  load, and the re-calibration (the lower rate rules) can extend it;
* a proof that needs more than `cycle_cap` cycles ends "undecided" (exit 3), not in days.
"""
from __future__ import annotations

import math

from afpbisect.core.percent import up
from afpbisect.core.verdict import (
    Verdict,
    clean_cycles_needed,
    clean_cycles_needed_vs_reference,
    decide,
    miss_bound_vs_reference,
)
from afpbisect.policy import confirm
from afpbisect.policy.config import Undecided
from afpbisect.policy.session import Run, short


def references(run: Run, certain) -> list[tuple[int, int]]:
    """(hits, valid cycles) of every reference the verification is bounded against: the
    calibration, and the re-calibration on `certain` once it ran."""
    refs = [run.reference()]
    ev = run.store.get(certain)
    if ev is not None and ev.mark is not None:
        refs.append(ev.since_mark())
    return refs


def fresh_needed(run: Run, budget: float, refs: list[tuple[int, int]], commit) -> int | None:
    """Clean cycles that bound the miss by `budget` against EVERY reference in `refs` (the
    lower rate rules) and at the rate floor; None when a reference has no hit (nothing can
    be bounded against it). Above `cycle_cap`: Undecided."""
    if any(h == 0 for h, _ in refs):
        return None
    needs = [clean_cycles_needed_vs_reference(h, v, budget) for h, v in refs]
    floor = run.cfg.rate_floor
    if floor is not None:
        needs.append(clean_cycles_needed(floor, budget))
    need = max(needs)
    cap = run.cfg.max_verify_cycles
    if cap is not None:   # the naive --cycles N: capped, the confidence stated as it comes
        if need > cap:
            run.log(f"verify: {need} clean cycles needed; capped at max_verify_cycles={cap}: "
                    f"the confidence will be below the target")
        return min(need, cap)
    if run.cfg.cycle_cap is not None and need > run.cfg.cycle_cap and _fresh(run, commit) < need:
        _undecided(run, commit, need, budget, refs)
    return need


def _fresh(run: Run, commit) -> int:
    """Clean cycles of `commit` beyond those that selected it (a resume may have them)."""
    ev = run.ev(commit)
    return max(0, ev.clean - run.selected(ev))


def _undecided(run: Run, commit, need: int, budget: float, refs) -> None:
    have = _fresh(run, commit)
    said = " and ".join(f"{h} hits in {v} cycles" for h, v in refs)
    run.log(f"verify {short(commit)}: {need} clean cycles needed, above cycle_cap="
            f"{run.cfg.cycle_cap}: undecided")
    raise Undecided(
        f"undecided: {short(commit)} needs {need - have} more clean cycles ({need} in all) to "
        f"bound the miss by {up(budget)} against {said}"
        + (f" and the rate floor {run.cfg.rate_floor}" if run.cfg.rate_floor else "")
        + f"; the cap is {run.cfg.cycle_cap} (--cycle-cap). State kept: a run with a higher "
          f"cap goes on from here")


def miss_bound(run: Run, certain, fresh_clean: int) -> float:
    """The answer's miss bound: the largest against any reference (1 if one has no hit)
    and at the rate floor."""
    bounds = [miss_bound_vs_reference(h, v, fresh_clean) if h else 1.0
              for h, v in references(run, certain)]
    if run.cfg.rate_floor is not None:
        bounds.append((1.0 - run.cfg.rate_floor) ** fresh_clean)
    return max(bounds)


def budget_of(run: Run, r: int) -> float:
    """The r-th verification's share of the error: the misses of all add up to at most
    1 - confidence (union bound over 6/(pi r)^2). Half of it is the verification's miss,
    half the error of the rate test that follows a hit in it (policy/rates.py): in round r
    a wrong answer needs one or the other."""
    return (1.0 - run.cfg.confidence) * 3.0 / (math.pi * r) ** 2


def check_boundary(run: Run, certain, certain_i, uncertain, uncertain_i, side: str) -> Verdict:
    """Verify the clean side of the boundary heavily while re-calibrating on its racy side,
    then verify further when the rate measured now asks more. GOOD = the answer stands."""
    r = run.verify_round()
    budget = budget_of(run, r)
    # First against the calibration alone, whatever a killed run left of the
    # re-calibration: a resumed run then asks of each step what the first run asked.
    hits, valid = run.reference()
    need = fresh_needed(run, budget, [(hits, valid)], uncertain)
    ev_u = run.ev(uncertain)
    pre = run.selected(ev_u)
    level = pre + need
    if ev_u.rate is None:   # under test: a resumed run must find it so (Evidence.rate)
        ev_u.rate = []
        run.persist(uncertain, ev_u)
    maxi, lead = run.cfg.max_consecutive_infra, run.cfg.unhealthy_lead
    confirm.start(run, certain)
    new = run.alternate([
        (uncertain, lambda e: decide(e, level, maxi, lead) not in (None, Verdict.ERROR)),
        (certain, confirm.done(run))])
    floor = f" and any rate >= {run.cfg.rate_floor}" if run.cfg.rate_floor else ""
    v = run.judge(uncertain, uncertain_i, level, "verify",
                  f"; {need} clean beyond the {pre} of its light test ({side}); verification "
                  f"{r}: miss <= {up(budget)} for any p, against the calibration's {hits} hits "
                  f"in {valid} cycles{floor}, alternating with the re-calibration",
                  keep_level=True, fresh=need, before=new[uncertain])
    confirm.recalibrate(run, certain, certain_i, before=new[certain])
    if v is not Verdict.GOOD:
        return v   # a hit: the rate test (policy/rates.py) decides what it means
    refs = references(run, certain)
    again = fresh_needed(run, budget, refs, uncertain)
    if again is not None and again > need:
        said = " and ".join(f"{h} hits in {v} cycles" for h, v in refs)
        v = run.judge(uncertain, uncertain_i, pre + again, "verify",
                      f"; {again} clean beyond the {pre} of its light test ({side}); "
                      f"verification {r} extended: the re-calibration asks more (miss <= "
                      f"{up(budget)} against {said}{floor})", keep_level=True, fresh=again)
    if v is Verdict.GOOD:
        ev_u.rate = None
        run.persist(uncertain, ev_u)
    return v
