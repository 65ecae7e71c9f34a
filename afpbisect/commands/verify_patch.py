"""`afpbisect verify-patch`: the bug is present on TARGET + the scenario's test patches, and
gone on TARGET + test patches + PATCHES, each with a stated confidence.

Baseline first: it calibrates the per-cycle hit rate p on this very build.  The patched
build is then run until a hit (the patch does not remove the race) or until enough clean
cycles that a race still present at rate >= p_lower would have shown with probability
>= the target confidence.  The same verdict rule as the bisection decides."""
from __future__ import annotations

import time
from dataclasses import replace

from afpbisect import __version__, policy
from afpbisect.commands.context import Context
from afpbisect.commands.progress import PolicyEvents
from afpbisect.core.errors import UsageError
from afpbisect.core.outcome import Outcome
from afpbisect.core.patch import Patch
from afpbisect.core.percent import pct
from afpbisect.core.refs import resolve
from afpbisect.core.scenario import NightlySection
from afpbisect.core.state import State
from afpbisect.core.state import identity_digest
from afpbisect.core.store import evidence_store, save_evidence
from afpbisect.core.verdict import Evidence, Verdict
from afpbisect.machinery.pipeline_env import PipelineEnv, Variant
from afpbisect.machinery.placement import prepare_builds
from afpbisect.machinery.worktree import BuildTree, check_patches_apply, source_repo
from afpbisect.reports.facts import step_facts
from afpbisect.reports.provenance import stamp
from afpbisect.reports.report import write_command_reports
from afpbisect.reports.results import Made, Ref, ScenarioInfo, VerifyResult


def check_target_at_source(source: str, target: str | None, sc) -> None:
    """An unknown target of a local --repo is refused before the workdir is touched
    (issue 25); a URL's is found once cloned (the clone is a cache)."""
    repo = source_repo(source)
    if repo is not None and (target or sc.verify.target):
        resolve(repo, target or sc.verify.target)


def run_verify(ctx: Context, target: str | None, patches: list[Patch],
               confidence: float = NightlySection.confidence) -> VerifyResult:
    t0 = time.time()
    sc = ctx.opts.scenario
    target = target or sc.verify.target
    if not target:
        raise UsageError(f"scenario {sc.name} names no [verify] target: give --target")
    fixed_cycles = ctx.opts.fixed_cycles
    ref = ctx.resolving(lambda: resolve(ctx.repo, target))
    if ref.note:
        ctx.say(f"note: {ref.note}")
    # Fail fast, naming file and hunk, before any build.
    check_patches_apply(BuildTree(ctx.repo, ctx.workdir / "trees" / "check"), ref.sha,
                        [*Variant.of(sc).patches, *patches])
    s = ctx.opts.settings
    identity = {"command": "verify-patch", "repo": ctx.opts.repo, "target": ref.sha,
                "patches": [p.digest() for p in patches], "pairs": s.pairs, "threads": s.threads,
                "env": s.env, "scenario": sc.digest(), "confidence": confidence, "cycles": fixed_cycles}
    stem = f"verify-{ref.sha[:10]}-{'-'.join(p.path.stem for p in patches)}-{sc.name}"
    state = State.load_or_new(ctx.state_dir / "state" / f"{stem}-{identity_digest(identity)}.json",
                              "verify", identity, restart=ctx.opts.restart, say=ctx.say, set_aside=True)
    state.data["about"] = {"scenario": sc.name, "target": ref.name,
                           "patches": [p.path.name for p in patches]}
    # --cycles N caps both sides at N cycles; the confidence reported is what N gives.
    config = policy.PolicyConfig(confidence=confidence, **ctx.opts.verdict_knobs(), **(
        {"max_verify_cycles": fixed_cycles, "max_calibration_cycles": fixed_cycles} if fixed_cycles else {}))
    ctx.docker()
    if ctx.fetched_note:
        ctx.say(ctx.fetched_note)
    ctx.say(f"{ref.typed} is {ref.name} {ref.sha}")
    res = check_variants(ctx, ref.sha, patches, state, config, label="+".join(p.path.stem for p in patches))
    # The check's keys (check_variants) are the result's; the same dict is --confirm-revert's.
    result = replace(
        VerifyResult.from_dict(res), afpbisect=__version__, command="verify-patch", repo=ctx.opts.repo,
        target=Ref(typed=ref.typed, name=ref.name, sha=ref.sha, note=ref.note),
        patches=[str(p.path) for p in patches], scenario=ScenarioInfo.from_dict(sc.summary()),
        test_patches=[p.name for p in Variant.of(sc).patches],
        settings={"pairs": s.pairs, "threads": s.threads, "env": s.env, "confidence": confidence},
        wall_seconds=round(time.time() - t0, 1),
        made=Made.from_dict(stamp(ctx.opts, command="verify-patch", target=target,
                                  patches=[p.path.name for p in patches], confidence=confidence)))
    state.data["result"] = result.to_dict()
    state.save()
    result = write_command_reports(ctx.state_dir / "reports", stem, result)
    ctx.result(result.summary)
    ctx.result(f"report: {result.reports['markdown']} (also .html, .junit.xml, .json)")
    return result


def check_variants(ctx: Context, sha: str, patches: list[Patch], state: State, config,
                   label: str) -> dict:
    """Baseline (the scenario's test patches) then patched (test patches + patches) on one commit."""
    sc = ctx.opts.scenario
    base_env, fix_env = (PipelineEnv(ctx.repo, ctx.builder, ctx.repro, state, ctx.workdir, v,
                                     say=ctx.say, progress=ctx.progress, lanes=ctx.lanes)
                         for v in (Variant.of(sc), Variant.of(sc, patches, label)))
    store = evidence_store(state)
    base_ev = store.setdefault(f"base:{sha}", Evidence())
    fix_ev = store.setdefault(f"{label}:{sha}", Evidence())

    def persist(*_a):
        save_evidence(state, store)

    events = PolicyEvents(ctx.progress, persist)
    trace: list[str] = []
    undecided = None
    try:
        # With several engines both are built at once; the patched build is wasted only
        # when the baseline does not reproduce, and then it cost no wall time.
        prepare_builds([(base_env, sha), (fix_env, sha)])
        base = policy.check_patch(sha, base_env, config, evidence=base_ev, handler=events)
        trace += base.trace
        base_env.release(sha)
        fixed = None
        if base.verdict is Verdict.BAD:
            # Judged against the baseline's own evidence: the guarantee then holds for any
            # per-cycle hit rate, not only at the lower bound's level.
            try:
                fixed = policy.check_patch(sha, fix_env, config, reference=base.evidence,
                                           evidence=fix_ev, handler=events)
                trace += fixed.trace
            except policy.Undecided as exc:
                undecided = str(exc)
    finally:
        persist()
        base_env.close()
        fix_env.close()
    verdict, summary = _verdict(base, fixed, undecided, base_ev, fix_ev, sha, label, sc.name)
    return {"verdict": verdict, "summary": summary,
            "confidence": fixed.confidence if fixed is not None and verdict == "cleared" else None,
            "p_estimate": base.p_estimate, "p_lower": base.p_lower,
            "clean_needed": fixed.clean_needed if fixed is not None else None,
            "baseline": _side(base_ev), "patched": _side(fix_ev), "trace": trace,
            "baseline_facts": step_facts(base_env.state, base_env.key_of(sha)),
            "patched_facts": step_facts(fix_env.state, fix_env.key_of(sha))}


def _verdict(base, fixed, undecided: str | None, base_ev: Evidence, fix_ev: Evidence, sha: str,
             label: str, scenario: str) -> tuple[str, str]:
    """verify-patch's verdict and its one-line summary, from the baseline's check and the
    patched build's (None when the baseline did not reproduce, or it ended undecided)."""
    if base.verdict is Verdict.SKIP:
        verdict, summary = "error", f"the target cannot be tested with the test patches: {base_ev.skip_reason()}"
    elif undecided is not None:
        verdict, summary = "undecided", undecided
    elif base.verdict is not Verdict.BAD:
        verdict = "not-reproduced"
        summary = (f"the bug did not reproduce on {sha[:10]} without the patch ({base_ev.valid_cycles} "
                   "clean cycles): nothing to verify; pick a target with the bug, or check the "
                   "scenario's hit rule and test patches")
    elif fixed.verdict is Verdict.SKIP:
        verdict, summary = "error", f"the target cannot be tested with the patch: {fix_ev.skip_reason()}"
    elif fixed.verdict is Verdict.BAD:
        verdict = "present"
        summary = (f"bug PRESENT with {label} (scenario {scenario}): {fix_ev.hits} of {fix_ev.valid_cycles} "
                   f"cycles show a hit (baseline {base_ev.hits} of {base_ev.valid_cycles})")
    else:
        verdict = "cleared"
        summary = (f"bug CLEARED by {label} (scenario {scenario}): 0 of {fix_ev.valid_cycles} cycles "
                   f"show a hit, confidence {pct(fixed.confidence)}; without the patch {base_ev.hits} of "
                   f"{base_ev.valid_cycles} cycles do")
    return verdict, summary


def _side(ev: Evidence) -> dict:
    return {"cycles": ev.valid_cycles, "hits": ev.hits, "infra": ev.infra, "unhealthy": ev.unhealthy,
            "build_error": ev.build_error}


def verify_outcome(verdict: str) -> Outcome:
    try:
        return Outcome.of(verdict)
    except ValueError:
        return Outcome.ERROR
