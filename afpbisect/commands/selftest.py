"""`afpbisect selftest`: the whole pipeline on a generated synthetic target.

The synthetic repo has the bug's mechanism and one planted bad commit; the run goes
through exactly the code path a Suricata run takes (clone, refs, build containers, repro
containers, policy, report).  Small settings keep it to a few minutes."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from afpbisect.commands.context import Options, open_context
from afpbisect.commands.run import run_bisection
from afpbisect.commands.verify_patch import run_verify
from afpbisect.core.errors import UsageError
from afpbisect.core.patch import load_patch
from afpbisect.core.scenario import load as load_scenario
from afpbisect.machinery.repro_settings import ReproSettings
from afpbisect.machinery.storage import remove_volumes
from afpbisect.reports.results import given
from afpbisect.synthetic.target import make_synthetic_repo

# 2 pairs x 2 threads; the test patches read what the scenario states for a selftest
# (its [[patch]] selftest_env, docs/scenarios.md), not a scaled guess at their values.
SMALL = dict(pairs=2, threads=2)


def _remove_caches(lanes, say) -> None:
    """Best effort: an engine gone by now must not hide the selftest's own result."""
    for lane in lanes:
        if lane.remote:
            try:
                remove_volumes(lane.engine)
            except Exception as exc:  # noqa: BLE001 - said, and `clean --caches` can finish it
                say(f"could not remove the volumes of engine {lane.name} ({exc}); "
                    "`afpbisect clean --caches --engine ...` removes them")


def run_selftest(commits: int = 80, workdir: Path | None = None, keep: bool = False, say=print,
                 scenario: str | None = None, progress=None, engines: tuple = ()) -> dict:
    """The synthetic target plants the default scenario's bug and, for a second scenario,
    a block-size start-up bug (afpbisect/synthetic/target.py): the run must name the one its
    scenario is about. `engines`: (name, URL) of each --engine (farm.resolve_all)."""
    t0 = time.time()
    if workdir is not None and Path(workdir).exists() and not Path(workdir).is_dir():
        # checked before the target is generated: bad input touches nothing (third tour)
        raise UsageError(f"--workdir {workdir} is not a directory")
    tmp = Path(tempfile.mkdtemp(prefix="afpbisect-selftest-"))
    own_workdir, lanes = workdir is None, []
    workdir = Path(workdir) if workdir else tmp / "work"
    try:
        sc = load_scenario(scenario)
        syn = make_synthetic_repo(tmp / "target", n_commits=commits)
        say(f"synthetic target: {len(syn.commits)} commits, planted bad commit {syn.planted[:10]}; "
            f"scenario {sc.name}")
        # restart: the target is generated anew at a new path each time, so the saved state
        # of an earlier selftest in this workdir belongs to another repository; and a self-test
        # should decide every step again anyway. Builds still hit the product cache, and the
        # earlier reports are kept in reports/previous/.
        opts = Options(repo=str(syn.path), workdir=workdir, base_image="debian:bookworm", jobs=2,
                       settings=ReproSettings.from_scenario(sc, env=sc.selftest_env, **SMALL),
                       restart=True, scenario=sc, engines=tuple(engines))
        with open_context(opts, say=say, progress=progress) as ctx:
            lanes = ctx.lanes
            run = run_bisection(ctx, f"{syn.good_ref}..{syn.bad_ref}")
            fix = run_verify(ctx, syn.bad_ref, [load_patch(syn.fixA_patch)])
        named = run.answer.first_bad
        ok = named == syn.planted and fix.verdict == "cleared"
        (progress.result if progress is not None else say)(f"selftest: planted {syn.planted[:10]}, named {str(named)[:10]}; fixA: {fix.verdict}"
            f" -> {'PASS' if ok else 'FAIL'} in {time.time() - t0:.0f}s")
        return {"ok": ok, "planted": syn.planted, "named": named, "fixA": fix.verdict,
                "engines": [name for name, _ in engines] or ["local"],
                # which engine built and ran each probe of the bisection
                "probes": [{"commit": st.commit, "role": st.role, "built_on": given(st.build_engine),
                            "cycles_on": given(st.cycle_engines, [])} for st in given(run.steps, ())],
                "run": run.reports, "verify": fix.reports, "seconds": round(time.time() - t0, 1)}
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
            if own_workdir:   # the named engines' volumes are caches of that workdir only
                _remove_caches(lanes, say)
        else:
            say(f"kept {tmp}")
