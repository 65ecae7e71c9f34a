"""Verification: the heavy test of the boundary's clean side, the one place where the error
budget is spent (the other side is proven by a hit)."""
from __future__ import annotations

import math

from ..verdict import Verdict, clean_cycles_needed_vs_reference, miss_bound_vs_reference
from .confirm import recalibrate
from .run import Run


def references(run: Run, certain) -> list[tuple[int, int]]:
    """(hits, valid cycles) of every reference the verification is bounded against: the
    calibration, and the re-calibration on `certain` once it ran."""
    refs = [run.reference()]
    ev = run.store.get(certain)
    if ev is not None and ev.mark is not None:
        refs.append(ev.since_mark())
    return refs


def fresh_needed(run: Run, budget: float, refs: list[tuple[int, int]]) -> int | None:
    """Clean cycles that bound the miss by `budget` against EVERY reference in `refs`
    (the lower rate rules); None when one has no hit (nothing can be bounded)."""
    if any(h == 0 for h, _ in refs):
        return None
    need = max(clean_cycles_needed_vs_reference(h, v, budget) for h, v in refs)
    cap = run.cfg.max_verify_cycles
    if cap is not None and need > cap:
        run.log(f"verify: {need} clean cycles needed; capped at max_verify_cycles={cap}: "
                f"the confidence will be below the target")
        need = cap
    return need


def miss_bound(run: Run, certain, fresh_clean: int) -> float:
    """The answer's miss bound: the largest against any reference (1 if one has no hit)."""
    return max(miss_bound_vs_reference(h, v, fresh_clean) if h else 1.0
               for h, v in references(run, certain))


def heavy(run: Run, commit, index, fresh: int, why: str) -> Verdict:
    """The heavy test: `fresh` clean cycles beyond the selected ones, or a hit."""
    pre = run.selected(run.ev(commit))
    return run.judge(commit, index, pre + fresh, "verify",
                     f"; {fresh} clean beyond the {pre} of its light test{why}",
                     keep_level=True, fresh=fresh)


def check_boundary(run: Run, certain, certain_i, uncertain, uncertain_i, side: str) -> Verdict:
    """Verify the clean side of the boundary heavily, re-calibrate on its racy side, and
    verify further when the rate measured now asks more. GOOD = the answer stands.

    The r-th verification gets 6/(pi r)^2 of the budget, so the misses of all
    verifications add up to at most 1 - confidence (union bound)."""
    r = run.verify_round()
    budget = (1.0 - run.cfg.confidence) * 6.0 / (math.pi * r) ** 2
    # First against the calibration alone, whatever a killed run left of the
    # re-calibration: a resumed run then asks of each step what the first run asked.
    hits, valid = run.reference()
    need = fresh_needed(run, budget, [(hits, valid)])
    v = heavy(run, uncertain, uncertain_i, need, f" ({side}); verification {r}: miss <= "
              f"{budget:.2g} for any p, against the calibration's {hits} hits in {valid} cycles")
    if v is not Verdict.GOOD:
        return v
    recalibrate(run, certain, certain_i)
    refs = references(run, certain)
    again = fresh_needed(run, budget, refs)
    if again is not None and again > need:
        said = " and ".join(f"{h} hits in {v} cycles" for h, v in refs)
        v = heavy(run, uncertain, uncertain_i, again,
                  f" ({side}); verification {r} extended: the re-calibration asks more "
                  f"(miss <= {budget:.2g} against {said})")
    return v
