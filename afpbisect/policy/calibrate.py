"""Calibration: the reference sample every verification is bounded against.

Eager (`lazy_endpoints=False`): on the racy endpoint before the search, as git bisect users
check BAD first. Lazy (the default, issue 18): on the first commit the search sees racy,
which is built already, instead of a far build of the endpoint. Either way its cycles are
counted from `calib`'s start, so the hit that showed the commit racy (it selected the
commit) is left out and the sample stays an unselected negative-binomial one.
"""
from __future__ import annotations

from afpbisect.core.verdict import Verdict
from afpbisect.policy.config import EndpointUnbuildable, NotReproducible
from afpbisect.policy.session import Run, short


def calibrate(run: Run, commit, index, role: str) -> bool:
    """Run `commit` to `calibration_hits` fresh hits (or the cycle cap) and make it the
    reference. False when a commit of the search turned untestable meanwhile (it is then
    a SKIP, and the search goes on uncalibrated); the endpoint raises instead."""
    cfg = run.cfg
    ev = run.ev(commit)
    if ev.calib is None or len(ev.calib) != 2:
        ev.calib = [ev.hits, ev.valid_cycles]
        run.persist(commit, ev)
    h0, v0 = ev.calib
    target, cap = cfg.calibration_hits, cfg.max_calibration_cycles
    run.visited.add(commit)
    ev, new = run.cycle_until(commit, lambda e: e.hits - h0 >= target or e.valid_cycles - v0 >= cap)
    why = ev.skip_reason(cfg.unhealthy_lead)
    if why is not None:
        ev.calib, ev.verdict = None, Verdict.SKIP
        run.persist(commit, ev)
        if commit == run.racy:
            what = "does not build" if ev.build_error is not None else "cannot be tested"
            raise EndpointUnbuildable(f"the {role} {commit} {what}: {why}")
        run.log(f"calibrate {short(commit)} [{index}]: became untestable ({why.splitlines()[-1]}); "
                f"treated as a skip")
        return False
    hits, valid = ev.hits - h0, ev.valid_cycles - v0
    if hits == 0:
        _not_reproducible(run, commit, index, role, valid)
    ev.calib = [h0, v0, ev.hits, ev.valid_cycles]
    ev.verdict = Verdict.BAD
    run.calibrated = commit
    run.persist(commit, ev)
    _said(run, commit, index, role, hits, valid, new)
    return True


def _not_reproducible(run: Run, commit, index, role: str, valid: int) -> None:
    ev = run.store[commit]
    run.log(f"calibrate {short(commit)} [{index}]: no hit in {valid} valid cycles: "
            f"refusing to bisect")
    seen = "" if not ev.calib[0] else (f" (it hit {ev.calib[0]} time(s) before: the rate has "
                                       f"fallen to about nothing since)")
    raise NotReproducible(
        f"not reproducible on BAD: no hit at the {role} {commit} in {valid} healthy cycles"
        f"{seen} ({ev.infra} infrastructure errors and {ev.unhealthy} unhealthy cycles not "
        f"counted). Nothing to bisect: check that this commit has the bug, the scenario's hit "
        f"rule and test patches, or allow more calibration cycles "
        f"(max_calibration_cycles={run.cfg.max_calibration_cycles})."
    )


def _said(run: Run, commit, index, role: str, hits: int, valid: int, new: int) -> None:
    cfg = run.cfg
    p_hat, p_low = run.estimate()
    short_of = "" if hits >= cfg.calibration_hits else (
        f"; only {hits} of the {cfg.calibration_hits} hits wanted within the cap: the "
        f"verification will be long, and its bound assumes the reference ran to its last hit")
    run.log(f"calibrate {short(commit)} [{index}] ({role}): {hits} hits in {valid} valid cycles "
            f"({new} new, {run.store[commit].infra} infra in all): p ~ {p_hat:.3f}, "
            f"{cfg.bound_level:.0%} lower bound {p_low:.3f}{short_of}")
    run.record("calibrate", commit, index, Verdict.BAD, run.store[commit], 0, new,
               f"p_estimate={p_hat:.4f} p_lower={p_low:.4f}")
