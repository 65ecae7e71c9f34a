#!/usr/bin/env python3
"""Rounds and wall time of one bisection with k Docker engines probing in parallel (issue 20).

No Docker, seconds. The search is afpbisect's k-ary one (`search.kary_least_satisfying`:
each round probes up to k commits at the cuts that split the prior mass into k + 1 parts,
cost-aware within the policy's slack), over the real first-parent range with the prior
afpbisect computes for it and the build-cost model fitted on the committed run reports
(docs/results/*.json), as bench/plan.py does. The oracle is deterministic (the culprit is
known, every commit builds, the race shows on the first cycle of a racy commit).

Engines: each keeps its own build trees, ccache and products, so a probe's build costs
the model at the distance to the nearest commit built ON THAT ENGINE, and it is FAR when
none is within 16 commits (cost.FAR_WITHIN). A round's probes go one to an engine, chosen
to make the slowest build of the round as short as possible and then the builds' sum
(`assign`, exact over all assignments: k <= 8 engines). The price the search sees is the
cheapest engine's.

Time: a round lasts as long as its slowest engine's build + cycles. Cycles (the real
ones, docs/results): 17 s clean, 5.3 s with a hit. A light GOOD runs 4 clean cycles, a
light BAD stops at its hit; the first commit seen racy is calibrated (8 more hits, policy
calibrate.py); after the search the boundary's clean side is verified (7 more clean
cycles) and then the culprit re-calibrated (8 hits), one after the other as
policy/verify.py does, each on the engine that built the commit (built there first when
the boundary ends on a range endpoint: the endpoints are lazy).

    python bench/engines.py --repo SURICATA.git suricata-7.0.0..suricata-8.0.3 \
        [--culprit 923ad6af77] [--positions 20] [--engines 1 2 4 8] [--suspect PATH ...]
        [--slack BITS ...]

Prints one line per k for the culprit given (prior right when it touches a suspect path)
and the mean and worst over --positions culprits planted evenly among the commits that
touch no suspect path (prior wrong), as bench/plan.py does; once for each --slack (by
default the policy's and none: a cheaper probe shortens a round only if it is the
round's slowest, so the slack that pays with one engine need not pay with several).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from afpbisect.core import cost  # noqa: E402
from afpbisect.core.search import kary_least_satisfying  # noqa: E402
from afpbisect.core.verdict import Verdict  # noqa: E402
from afpbisect.machinery.farm import assign  # noqa: E402,F401 - the live policy's assignment, shared
from afpbisect.policy import PolicyConfig  # noqa: E402
from bisection_model import range_args, real_range  # noqa: E402

CLEAN_S, HIT_S = 17.0, 5.3   # seconds of a real cycle, clean and with a hit (reports)
LIGHT_GOOD = 4               # clean cycles of a light GOOD
CALIBRATION_HITS = 8         # the calibration's and the re-calibration's hits
VERIFY_CLEAN = 7             # clean cycles beyond the light ones on the boundary's clean side


class Farm:
    """k engines, each with the commits built on it (its own trees, ccache and products)."""

    def __init__(self, k: int, model: cost.BuildCostModel):
        self.built: list = [[] for _ in range(k)]
        self.model = model
        self.far = self.near = 0
        self.where: dict = {}    # index -> the engine that built it

    def price(self, e: int, i: int) -> float:
        if i in self.built[e]:
            return 0.0
        return self.model.seconds(cost.nearest(sorted(self.built[e]), i))

    def cheapest(self, i: int) -> float:
        """What the search is told a probe costs: its build on the best-placed engine."""
        return min(self.price(e, i) for e in range(len(self.built)))

    def build(self, e: int, i: int) -> float:
        if i in self.built[e]:
            return 0.0
        d = cost.nearest(sorted(self.built[e]), i)
        if d is None or d > cost.FAR_WITHIN:
            self.far += 1
        else:
            self.near += 1
        self.built[e].append(i)
        self.where.setdefault(i, e)
        return self.model.seconds(d)

    def ensure(self, i: int) -> tuple[int, float]:
        """(engine, build seconds) for a commit the end needs: where it was built, else
        on the engine that builds it cheapest."""
        if i in self.where:
            return self.where[i], 0.0
        e = min(range(len(self.built)), key=lambda e: (self.price(e, i), e))
        return e, self.build(e, i)


def simulate(k: int, n: int, culprit: int, weights: list, model, slack: float) -> dict:
    """One bisection with k engines: rounds, probes, far and near builds, wall seconds."""
    farm = Farm(k, model)
    spent = {"wall_s": 0.0, "calibrated": False}

    def oracle(batch: list, window: tuple) -> list:
        plan = assign([[farm.price(e, i) for e in range(k)] for i in batch])
        verdicts = [Verdict.BAD if i >= culprit else Verdict.GOOD for i in batch]
        busy = [0.0] * k
        for i, e, v in zip(batch, plan, verdicts):
            busy[e] += farm.build(e, i) + (HIT_S if v is Verdict.BAD else LIGHT_GOOD * CLEAN_S)
        bads = [i for i, v in zip(batch, verdicts) if v is Verdict.BAD]
        if bads and not spent["calibrated"]:   # calibrated on the first commit seen racy
            busy[plan[batch.index(min(bads))]] += CALIBRATION_HITS * HIT_S
            spent["calibrated"] = True
        spent["wall_s"] += max(busy)
        return verdicts

    res = kary_least_satisfying(n, oracle, k, weights, farm.cheapest, slack)
    assert res.candidates == [culprit], (k, culprit, res.candidates)
    wall = spent["wall_s"]
    if not spent["calibrated"]:   # the search never saw the race: the racy endpoint is calibrated
        _, secs = farm.ensure(res.first_bad_index)
        wall += secs + CALIBRATION_HITS * HIT_S
    _, secs = farm.ensure(res.last_good_index)          # verification of the clean side
    wall += secs + VERIFY_CLEAN * CLEAN_S
    _, secs = farm.ensure(res.first_bad_index)          # re-calibration on the culprit
    wall += secs + CALIBRATION_HITS * HIT_S
    return {"rounds": len(res.rounds), "probes": len(res.steps), "far": farm.far,
            "near": farm.near, "wall_s": wall}


def line(k: int, runs: list) -> str:
    def mean(key):
        return sum(r[key] for r in runs) / len(runs)
    if len(runs) == 1:
        r = runs[0]
        return (f"k={k:<2} rounds={r['rounds']} probes={r['probes']} far={r['far']} "
                f"near={r['near']} wall_min={r['wall_s'] / 60:.1f}")
    worst = max(runs, key=lambda r: r["wall_s"])
    return (f"k={k:<2} rounds={mean('rounds'):.1f} probes={mean('probes'):.1f} "
            f"far={mean('far'):.1f} near={mean('near'):.1f} wall_min={mean('wall_s') / 60:.1f}  "
            f"(worst: rounds={max(r['rounds'] for r in runs)} far={max(r['far'] for r in runs)} "
            f"wall_min={worst['wall_s'] / 60:.1f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    range_args(ap)
    ap.add_argument("--engines", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--slack", type=float, nargs="+", default=[PolicyConfig.slack_bits, 0.0],
                    help="bits a probe may give up to be cheaper (the policy's, and none)")
    args = ap.parse_args(argv)
    if any(not 1 <= k <= 12 for k in args.engines):
        ap.error("--engines: 1..12 each (the assignment is exponential in k)")
    rng, commits, pr, model, samples, culprit, planted = real_range(
        args, str(ROOT / "docs/results/*.json"))
    n = len(commits)
    print(f"{rng.good.name}..{rng.bad.name}: {n - 1} commits; suspects: {len(pr.suspects)} "
          f"({', '.join(sorted(pr.paths))}); cost model fitted on {len(samples)} recorded builds: "
          f"{model.near:.0f} s near .. {model.far:.0f} s far (horizon {model.horizon}); "
          f"cycles {CLEAN_S} s clean, {HIT_S} s with a hit")
    for slack in args.slack:
        print(f"\nslack {slack} bit; culprit {commits[culprit][:10]} [idx {culprit}], "
              f"prior {'right' if culprit in pr.suspects else 'wrong'}:")
        for k in args.engines:
            print(line(k, [simulate(k, n, culprit, pr.weights, model, slack)]))
        print(f"slack {slack} bit; prior wrong: culprit planted at {len(planted)} positions "
              f"outside the suspects (idx {planted[0]}..{planted[-1]}), mean (worst):")
        for k in args.engines:
            print(line(k, [simulate(k, n, c, pr.weights, model, slack) for c in planted]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
