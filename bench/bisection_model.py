"""Shared by bench/plan.py and bench/simulate.py: the build-cost samples of the committed
real-run reports."""
from __future__ import annotations

import json

from afpbisect.core import cost


def report_samples(paths: list) -> list:
    """(distance, build seconds) of every fresh build in the run reports among `paths`."""
    out = []
    for p in paths:
        try:
            d = json.load(open(p))
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and d.get("command", "").startswith("run") or "steps" in d:
            out += cost.samples_from_steps(d.get("steps", []) if isinstance(d, dict) else [])
    return out


def range_args(ap) -> None:
    """The arguments bench/plan.py and bench/engines.py share."""
    ap.add_argument("range")
    ap.add_argument("--repo", required=True)
    ap.add_argument("--culprit", default="923ad6af77")
    ap.add_argument("--positions", type=int, default=20)
    ap.add_argument("--suspect", action="append", default=[])


def real_range(args, results_glob: str):
    """(range, commits, prior, cost model, recorded samples, culprit index, planted indexes)
    as afpbisect computes them for `args.range` with the built-in scenario; `planted` are
    `args.positions` culprits spread over the commits that touch no suspect path."""
    import glob

    import git

    from afpbisect.core import prior
    from afpbisect.machinery.pipeline_env import Variant
    from afpbisect.core.refs import commit_range, split_range
    from afpbisect.core.scenario import load

    repo = git.Repo(args.repo)
    rng = commit_range(repo, *split_range(args.range))
    commits = list(rng.commits)
    sc = load()
    patches = [f for p in Variant.of(sc).patches for f in p.files]
    pr = prior.for_range(repo, commits, commits[-1], list(sc.hit.console), patches, args.suspect)
    samples = report_samples(sorted(glob.glob(results_glob)))
    culprit = next(i for i, c in enumerate(commits) if c.startswith(args.culprit))
    outside = [i for i in range(1, len(commits)) if i not in pr.suspects]
    planted = [outside[round(j * (len(outside) - 1) / max(1, args.positions - 1))]
               for j in range(args.positions)]
    return rng, commits, pr, cost.fit(samples), samples, culprit, planted
