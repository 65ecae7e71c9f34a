"""Confirmation: the commit proven racy at the boundary, re-tested, and the rate measured
again where it is used (issue 16)."""
from __future__ import annotations

from ..verdict import Verdict
from .run import Run, short


def recalibrate(run: Run, commit, index) -> tuple[int, int]:
    """Fresh cycles on the commit proven racy at the boundary, until `calibration_hits`
    hits or `max_calibration_cycles` valid cycles. Returns (hits, valid cycles).

    The hit rate is not a constant of the build (ticket 8667 without its widener hit
    about 1 cycle in 4 on a quiet machine and 8 of 8 beside a build: NOTES), so a
    calibration made earlier may not hold at the end. The same stopping rule as the
    calibration, so `miss_bound_vs_reference` holds against it too. The cycles before
    `mark` selected the commit (it hit in the search, or calibrated) and are left out.
    """
    cfg = run.cfg
    ev = run.ev(commit)
    if ev.mark is None:
        ev.mark = [ev.hits, ev.valid_cycles]
        run.persist(commit, ev)
    run.visited.add(commit)
    ev, new = run.cycle_until(commit, lambda e: e.since_mark()[0] >= cfg.calibration_hits
                              or e.since_mark()[1] >= cfg.max_calibration_cycles)
    h, v = ev.since_mark()
    note = f"re-calibration: {h} hits in {v} fresh valid cycles"
    if h == 0:
        note += ": the race no longer shows at this commit, so no bound holds against it"
    run.log(f"confirm {short(commit)} [{index}]: race present (proven by a hit); {note} "
            f"({new} new cycle(s))")
    run.record("confirm", commit, index, Verdict.BAD, ev, 0, new, note)
    return h, v
