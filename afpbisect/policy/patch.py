"""verify-patch's policy: one build, calibrated (without the patch) or checked against that
calibration (with it)."""
from __future__ import annotations

from afpbisect.core.percent import up, down
from afpbisect.core.errors import UsageError
from afpbisect.core.percent import pct
from afpbisect.core.verdict import (
    Evidence,
    Verdict,
    clean_cycles_needed,
    clean_cycles_needed_vs_reference,
    decide,
    hit_rate_lower_bound,
    miss_bound_vs_reference,
)
from afpbisect.policy.config import Env, Handler, PolicyConfig, Undecided
from afpbisect.policy.records import PatchCheck
from afpbisect.policy.session import Run, short


def _floored(cfg: PolicyConfig, need: int, bound, how: str, miss: float):
    """The check also rules out a patch that only LOWERED the rate (issue 25): at least
    the clean cycles that catch a race at `rate_floor` with probability 1 - miss."""
    floor = cfg.rate_floor
    if floor is None:
        return need, bound, how
    need = max(need, clean_cycles_needed(floor, miss))
    return (need, lambda clean: max(bound(clean), (1.0 - floor) ** clean),
            f"{how}, and at any rate >= {floor}")


def _rate(ev: Evidence, level: float) -> tuple[float, float]:
    """(hits / valid cycles, `level` lower bound) of one build's cycles (0, 0 without a hit)."""
    if not ev.hits:
        return 0.0, 0.0
    return ev.hits / ev.valid_cycles, hit_rate_lower_bound(ev.hits, ev.valid_cycles, level)


def check_patch(
    commit,
    env: Env,
    config: PolicyConfig | None = None,
    reference: Evidence | None = None,
    evidence: Evidence | None = None,
    handler: Handler | None = None,
    p_lower: float | None = None,
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
    run = Run(env, cfg, {commit: ev}, [commit], commit, handler)
    ev.consecutive_infra = 0  # a new session
    if ev.verdict is Verdict.ERROR:
        ev.verdict = None
    if reference is None and p_lower is None:
        return _calibrate(run, commit, ev, cfg)
    need, bound, how, p_hat, p_low = _clean_cycles_to_clear(cfg, reference, p_lower)
    need = _capped(cfg, need, ev, commit, how)
    verdict = run.judge(commit, None, need, "check", f"; cleared after {need} clean ({how})")
    confidence = 1.0
    if verdict is Verdict.GOOD:
        confidence = 1.0 - bound(ev.clean)
        run.log(f"check {short(commit)}: race cleared with confidence {pct(confidence)}")
    elif verdict is Verdict.BAD:
        run.log(f"check {short(commit)}: race present")
    return PatchCheck(commit, verdict, ev, need, p_hat, p_low, confidence, run.trace)


def _calibrate(run: Run, commit, ev: Evidence, cfg: PolicyConfig) -> PatchCheck:
    """Step 1 (no reference): cycles until `calibration_hits` hits or
    `max_calibration_cycles` valid cycles; BAD = the race is there, GOOD = it never showed."""
    ev, new = run.cycle_until(
        commit, lambda e: e.hits >= cfg.calibration_hits or e.valid_cycles >= cfg.max_calibration_cycles)
    verdict = decide(ev, 0, cfg.max_consecutive_infra)  # SKIP, BAD, or GOOD at level 0
    ev.verdict = verdict
    p_hat, p_low = _rate(ev, cfg.bound_level)
    if verdict is Verdict.GOOD:
        note = f"no race signature in {ev.valid_cycles} valid cycles: nothing to verify against"
    else:
        note = f"{ev.hits} hits in {ev.valid_cycles} valid cycles: p ~ {p_hat:.3f} (>= {p_low:.3f})"
    run.log(f"check {short(commit)} (calibration): {verdict.value.upper()}: {note} "
            f"({new} new cycle(s))")
    return PatchCheck(commit, verdict, ev, 0, p_hat, p_low, 0.0, run.trace)


def _clean_cycles_to_clear(cfg: PolicyConfig, reference: Evidence | None, p_lower: float | None):
    """Step 2: the clean cycles that clear the patch, against the reference (or a rate
    bound), floored at `rate_floor`; with the miss bound, how it was reached, p and its bound."""
    miss = 1.0 - cfg.confidence
    if reference is not None:
        if reference.hits < 1:
            raise UsageError("the reference shows no race: calibrate on a build that has it first")
        h, v = reference.hits, reference.valid_cycles
        need = clean_cycles_needed_vs_reference(h, v, miss)
        how = f"miss <= {up(miss)} for any p, against {h} hits in {v} cycles"
        p_hat, p_low = h / v, hit_rate_lower_bound(h, v, cfg.bound_level)
        bound = lambda clean: miss_bound_vs_reference(h, v, clean)  # noqa: E731
    else:
        if not 0.0 < p_lower <= 1.0:
            raise UsageError(f"p_lower must be in (0, 1], got {p_lower!r}: calibrate on a build "
                             f"that has the race first")
        need = clean_cycles_needed(p_lower, miss)
        how = f"miss <= {up(miss)} at p >= {down(p_lower)}"
        p_hat, p_low = p_lower, p_lower
        bound = lambda clean: (1.0 - p_lower) ** clean  # noqa: E731
    need, bound, how = _floored(cfg, need, bound, how, miss)
    return need, bound, how, p_hat, p_low


def _capped(cfg: PolicyConfig, need: int, ev: Evidence, commit, how: str) -> int:
    """`max_verify_cycles` caps what is asked; else past `cycle_cap` the run is undecided."""
    if cfg.max_verify_cycles is not None:
        return min(need, cfg.max_verify_cycles)
    if cfg.cycle_cap is not None and need > cfg.cycle_cap and ev.clean < need:
        raise Undecided(f"undecided: {short(commit)} needs {need - ev.clean} more clean cycles "
                        f"({need} in all; {how}); the cap is {cfg.cycle_cap} (--cycle-cap). "
                        f"State kept: a run with a higher cap goes on from here")
    return need
