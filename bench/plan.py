#!/usr/bin/env python3
"""How many far builds each search strategy needs on a real commit graph (issue 18).

No Docker, seconds: a deterministic oracle (the culprit is known; every commit builds) over
the first-parent range, the prior afpbisect computes for it (scenario signature + test
patches + --suspect) and the build-cost model fitted on the builds recorded in the
committed run reports (docs/results/*.json). A probe is FAR when no commit built before it
is within 16 commits (cost.FAR_WITHIN), NEAR otherwise; build_s prices every build with
the model at the distance it was built at.

    python bench/plan.py --repo SURICATA.git suricata-7.0.0..suricata-8.0.3 \
        [--culprit 923ad6af77] [--positions 20] [--suspect PATH ...]

Strategies: plain (git's midpoint) or weighted (Bayesian: half the prior mass each way),
with "+cost" the cheapest probe within the policy's slack (PolicyConfig.slack_bits), and
"eager" (both endpoints built first, as before issue 18) or "lazy" (an endpoint is built
only when the answer needs it). Prints one line per strategy for the culprit given
(prior right when it touches a suspect path) and the mean and worst over --positions
culprits planted evenly among the commits that touch NO suspect path (prior wrong).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from afpbisect.core import cost  # noqa: E402
from afpbisect.core.search import least_satisfying, weighted_least_satisfying  # noqa: E402
from afpbisect.core.verdict import Verdict  # noqa: E402
from afpbisect.policy import PolicyConfig  # noqa: E402
from bisection_model import range_args, real_range  # noqa: E402

STRATEGIES = ("plain eager", "plain lazy", "weighted eager", "weighted lazy",
              "weighted+cost eager", "weighted+cost lazy")


def simulate(strategy: str, n: int, culprit: int, weights: list, model, slack: float) -> dict:
    """Probes of one strategy for one culprit: far and near builds and their price."""
    built: list = []
    spent = {"far": 0, "near": 0, "build_s": 0.0, "probes": 0}

    def build(i: int) -> None:
        if i in built:
            return
        d = cost.nearest(sorted(built), i)
        spent["far" if d is None or d > cost.FAR_WITHIN else "near"] += 1
        spent["build_s"] += model.seconds(d)
        built.append(i)

    if "eager" in strategy:
        build(n - 1)
        build(0)

    def ask(i: int, *_window) -> Verdict:
        spent["probes"] += 1
        build(i)
        return Verdict.BAD if i >= culprit else Verdict.GOOD

    if strategy.startswith("plain"):
        res = least_satisfying(n, ask)
    else:
        price = cost.pricer(model, lambda: built) if "+cost" in strategy else None
        res = weighted_least_satisfying(n, ask, weights, price, slack)
    assert res.candidates == [culprit], (strategy, culprit, res.candidates)
    # lazily an endpoint is built when the boundary ends on it (verification, calibration)
    build(res.last_good_index)
    build(res.first_bad_index)
    return spent


def line(name: str, runs: list) -> str:
    def mean(k):
        return sum(r[k] for r in runs) / len(runs)
    worst = max(runs, key=lambda r: (r["far"], r["build_s"]))
    if len(runs) == 1:
        return (f"{name:<22} far={runs[0]['far']} near={runs[0]['near']} "
                f"build_s={runs[0]['build_s']:.0f} probes={runs[0]['probes']}")
    return (f"{name:<22} far={mean('far'):.1f} near={mean('near'):.1f} build_s={mean('build_s'):.0f} "
            f"probes={mean('probes'):.1f}  (worst far={worst['far']} build_s={worst['build_s']:.0f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    range_args(ap)
    args = ap.parse_args(argv)
    rng, commits, pr, model, samples, culprit, planted = real_range(
        args, str(ROOT / "docs/results/*.json"))
    n, slack = len(commits), PolicyConfig.slack_bits
    print(f"{rng.good.name}..{rng.bad.name}: {n - 1} commits; suspects: {len(pr.suspects)} "
          f"({', '.join(sorted(pr.paths))}); cost model fitted on {len(samples)} recorded builds: "
          f"{model.near:.0f} s near .. {model.far:.0f} s far (horizon {model.horizon}); slack {slack} bit")
    print(f"\nculprit {commits[culprit][:10]} [idx {culprit}], "
          f"prior {'right' if culprit in pr.suspects else 'wrong'}:")
    for s in STRATEGIES:
        print(line(s, [simulate(s, n, culprit, pr.weights, model, slack)]))
    print(f"\nprior wrong: culprit planted at {len(planted)} positions outside the suspects "
          f"(idx {planted[0]}..{planted[-1]}), mean (worst):")
    for s in STRATEGIES:
        print(line(s, [simulate(s, n, c, pr.weights, model, slack) for c in planted]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
