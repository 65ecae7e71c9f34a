"""Confirmation: the commit proven racy at the boundary, re-tested, and the rate measured
again where it is used (issue 16), alternately with the verification (issue 25)."""
from __future__ import annotations

from afpbisect.core.verdict import Evidence, Verdict
from afpbisect.policy.session import Run, short


def start(run: Run, commit) -> None:
    """Open a fresh sample on `commit`: the cycles before `mark` selected it (it hit in
    the search, or calibrated) and are left out."""
    ev = run.ev(commit)
    if ev.mark is None:
        ev.mark = [ev.hits, ev.valid_cycles]
        run.persist(commit, ev)
    run.visited.add(commit)


def done(run: Run):
    """The stopping rule of every rate sample: `calibration_hits` hits or
    `max_calibration_cycles` valid cycles, the calibration's, so `miss_bound_vs_reference`
    holds against it too."""
    cfg = run.cfg
    return lambda e: (e.since_mark()[0] >= cfg.calibration_hits
                      or e.since_mark()[1] >= cfg.max_calibration_cycles)


def recalibrate(run: Run, commit, index, before: int = 0) -> tuple[int, int]:
    """Fresh cycles on the commit proven racy at the boundary, to `done`. Returns (hits,
    valid cycles); `before` counts the cycles already run for it alternately.

    The hit rate is not a constant of the build (ticket 8667 without its widener hit
    about 1 cycle in 4 on a quiet machine and 8 of 8 beside a build: NOTES), so a
    calibration made earlier may not hold at the end.
    """
    start(run, commit)
    ev, new = run.cycle_until(commit, done(run))
    return said(run, commit, index, ev, new + before)


def said(run: Run, commit, index, ev: Evidence, new: int) -> tuple[int, int]:
    h, v = ev.since_mark()
    note = f"re-calibration: {h} hits in {v} fresh valid cycles"
    if h == 0:
        note += ": the race no longer shows at this commit, so no bound holds against it"
    run.log(f"confirm {short(commit)} [{index}]: race present (proven by a hit); {note} "
            f"({new} new cycle(s))")
    run.record("confirm", commit, index, Verdict.BAD, ev, 0, new, note)
    return h, v
