"""Where the builds of a round go when there are several engines (issue 20): one queue per
engine, each probe where the slowest build of the round is shortest (farm.assign)."""
from __future__ import annotations

import git

from afpbisect.core import cost as cost_mod
from afpbisect.core.errors import AfpError, InfraError
from afpbisect.machinery.build import BuildResult
from afpbisect.machinery.farm import Lane, assign, ranked
from afpbisect.machinery.parallel import run_all


def prepare_builds(jobs: list) -> None:
    """Build each (env, commit) of `jobs` at once, one engine each, when the envs have
    several engines (they share them): the builds are the long part of a probe. A build
    an engine fails on infrastructure is only said here: `build` asks another engine for it
    when the policy needs it (farm.pick puts the failed engine last)."""
    todo = [(env, c) for env, c in jobs if env.key_of(c) not in env.builds]
    lanes = todo[0][0].lanes if todo else []
    if len(lanes) < 2 or len(todo) < 2:
        return
    order = [ln for ln in ranked(lanes) if _has_base_image(ln, todo[0][0].say)]
    if not order:
        return   # every engine failed: the policy's own build calls say so, and retry
    queues: dict = {}   # one thread per engine, its builds one after the other (one tree each)
    for lane, job in zip(_placement(todo, order), todo):
        queues.setdefault(id(lane), (lane, []))[1].append(job)
    outcomes: dict = {}
    run_all([lambda lane=lane, q=q: _build_queue(lane, q, outcomes) for lane, q in queues.values()])
    for env, commit in todo:
        out = outcomes.get((id(env), commit))
        if isinstance(out, BuildResult):
            env._record_build(env.key_of(commit), out)
        elif isinstance(out, InfraError):
            env.say(f"  {commit[:10]}: the build failed on infrastructure ({out}); "
                    "another engine will build it")
        elif out is not None:
            raise out


def _placement(todo: list, order: list) -> list:
    """The engine of each build of a round. When there are engines enough, each probe goes
    where the slowest build of the round is shortest (`farm.assign`, as bench/engines.py
    simulates): priced by the commits between it and the engine's last build, the engine's
    tree; an engine that failed lately counts as far. Else in turn, in `order`."""
    if len(todo) > len(order):
        return [order[i % len(order)] for i in range(len(todo))]
    costs = [[_distance(env.repo, lane.last_built, c) + (FAR + 1) * lane.strikes for lane in order]
             for env, c in todo]
    return [order[e] for e in assign(costs)]


FAR = cost_mod.FAR_WITHIN + 1   # commits: beyond the cost model's near horizon a build is far


def _distance(repo, a, b) -> int:
    """Commits between two builds, capped at FAR (the price of a build in a tree at `a`)."""
    if a is None or repo is None:
        return FAR
    if a == b:
        return 0
    try:
        return min(FAR, int(repo.git.rev_list("--count", f"{a}...{b}")))
    except (git.GitCommandError, ValueError):
        return FAR


def _has_base_image(lane: Lane, say) -> bool:
    """Base images first, one engine at a time (an import is slow). An engine that cannot
    make one takes a strike and no build of this round, instead of ending the run."""
    try:
        lane.builder.base_image
        return True
    except AfpError as exc:   # InfraError, or the engine unreachable (a UsageError)
        lane.strikes += 1
        say(f"  engine {lane.name}: no base image ({exc}); no build of this round goes there")
        return False


def _build_queue(lane: Lane, jobs: list, outcomes: dict) -> None:
    """One engine's builds of a round; each result or exception kept for the main thread."""
    for env, commit in jobs:
        try:
            outcomes[(id(env), commit)] = env._build(commit, lane, False)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread as it is
            outcomes[(id(env), commit)] = exc
