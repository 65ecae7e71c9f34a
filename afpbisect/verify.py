"""`afpbisect verify-patch`: the race is present on TARGET + widener, and gone on
TARGET + widener + PATCHES, each with a stated confidence.

Baseline first: it calibrates the per-cycle hit rate p on this very build.  The patched
build is then run until a hit (the patch does not remove the race) or until enough clean
cycles that a race still present at rate >= p_lower would have shown with probability
>= the target confidence.  The same verdict rule as the bisection decides."""
from __future__ import annotations

import time

from . import __version__, policy
from .context import Context
from .pipeline import PipelineEnv, Variant, evidence_store, save_evidence
from .refs import resolve
from .report import write_reports
from .state import State
from .worktree import BuildTree, Patch, check_patches_apply
from .bisection import widener


def run_verify(ctx: Context, target: str, patches: list[Patch], confidence: float = 0.999) -> dict:
    t0 = time.time()
    fixed_cycles = ctx.opts.fixed_cycles
    ref = resolve(ctx.repo, target)
    if ref.note:
        ctx.say(f"note: {ref.note}")
    # Fail fast, naming file and hunk, before any build.
    check_patches_apply(BuildTree(ctx.repo, ctx.workdir / "trees" / "check"), ref.sha, [widener(), *patches])
    s = ctx.opts.settings
    identity = {"command": "verify-patch", "repo": ctx.opts.repo, "target": ref.sha,
                "patches": [p.digest() for p in patches], "pairs": s.pairs, "threads": s.threads,
                "widen_us": s.widen_us, "confidence": confidence, "cycles": fixed_cycles}
    stem = f"verify-{ref.sha[:10]}-{'-'.join(p.path.stem for p in patches)}"
    state = State.load_or_new(ctx.workdir / "state" / f"{stem}.json", "verify", identity,
                              restart=ctx.opts.restart, say=ctx.say)
    config = policy.PolicyConfig(confidence=confidence, fixed_cycles=fixed_cycles)
    ctx.docker()
    res = check_variants(ctx, ref.sha, patches, state, config, label="+".join(p.path.stem for p in patches))
    result = {"afpbisect": __version__, "command": "verify-patch", "repo": ctx.opts.repo,
              "target": {"typed": ref.typed, "name": ref.name, "sha": ref.sha, "note": ref.note},
              "patches": [str(p.path) for p in patches],
              "settings": {"pairs": s.pairs, "threads": s.threads, "widen_us": s.widen_us,
                           "confidence": confidence},
              **res, "wall_seconds": round(time.time() - t0, 1)}
    state.data["result"] = result
    state.save()
    result = write_reports(ctx.workdir / "reports", stem, result, "verify.md.j2")
    ctx.say(result["summary"])
    ctx.say(f"report: {result['reports']['markdown']}")
    return result


def check_variants(ctx: Context, sha: str, patches: list[Patch], state: State, config,
                   label: str) -> dict:
    """Baseline (widener) then patched (widener + patches) on one commit."""
    base_env = PipelineEnv(ctx.repo, ctx.builder, ctx.repro, state, ctx.workdir,
                           Variant("widener", [widener()]), say=ctx.say)
    fix_env = PipelineEnv(ctx.repo, ctx.builder, ctx.repro, state, ctx.workdir,
                          Variant(f"widener+{label}", [widener(), *patches]), say=ctx.say)
    store = evidence_store(state)
    base_store = {k[5:]: v for k, v in store.items() if k.startswith("base:")}
    fix_store = {k[4:]: v for k, v in store.items() if k.startswith("fix:")}

    def persist(*_a, **_k):
        merged = {f"base:{k}": v for k, v in base_store.items()}
        merged.update({f"fix:{k}": v for k, v in fix_store.items()})
        save_evidence(state, merged)

    try:
        outcome = policy.check_patch(sha, base_env, fix_env, config, base_store=base_store,
                                     fix_store=fix_store, on_step=persist)
    finally:
        persist()
        base_env.close()
        fix_env.close()
    out = outcome.to_dict() if hasattr(outcome, "to_dict") else dict(outcome)
    out["baseline_facts"] = base_env.step_facts(sha)
    out["patched_facts"] = fix_env.step_facts(sha)
    return out
