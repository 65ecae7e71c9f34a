#!/usr/bin/env python3
"""Simulated bisections (no Docker): is the policy right often enough, and cheap enough?

Model (ticket 8667, NOTES.md): the 3,070 commits of suricata-7.0.0..suricata-8.0.3 after
the good endpoint (index 0), so 3,071 indexes; culprit uniform over 1..3070 (it may be the
bad endpoint itself); 3% of the commits unbuildable (never the endpoints); every cycle an
infrastructure error with probability 2% (no evidence, retried); on a bad commit the
signature with probability p per valid cycle, never on a good one. A run is WRONG when
its answer set misses the culprit, EXACT when it is the culprit alone ("exact possible"
is the share of worlds where the culprit and its parent both build).
For the policy it also prints the EXPECTED wrong rate: per run, the chance that one of
its verifications of a racy commit passed, given the run, averaged (see run_policy).

Methods, all over the same worlds (same culprit and unbuildable set per run):
  policy    the real `afpbisect.policy.bisect` with a simulated Env (same code path as a
            real run). When it aborts on an infrastructure streak the simulation resumes it
            with the same store, as a user would (counted in `resumes`).
  plain     git bisect with 1 cycle per step.
  fixed-K   K cycles per step, stop early on a hit; no calibration, no confirmation.
Cycles are all cycles run, infrastructure failures, calibration and confirmation included.

With --late-p Q the hit rate falls from p to Q after the first --drift-after cycles (the
calibration ran under load, the rest on a quiet machine: NOTES measured 8 of 8 beside a
build and about 1 in 4 alone), which is what the re-calibration at the end is for.

    python bench/simulate.py [--runs 1000] [--seed 8667] [--p 0.3 0.6 0.9] [--find-fix]
                             [--late-p Q --drift-after N]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from afpbisect.errors import InfraError  # noqa: E402
from afpbisect.policy import PolicyConfig, bisect, bisect_fixed  # noqa: E402
from afpbisect.verdict import CycleOutcome  # noqa: E402

N_COMMITS = 3071  # the good endpoint + the 3,070 commits of the range
UNBUILDABLE = 0.03
INFRA = 0.02
FIXED = (10, 20, 30)
MAX_RESUMES = 100
DRIFT: tuple = (None, 0)   # (late p, after how many cycles), set by --late-p / --drift-after


class World:
    """One run's ground truth: where the change is and what does not build."""

    def __init__(self, seed: str, n: int, find_fix: bool):
        rng = random.Random(f"world:{seed}")
        self.n = n
        self.find_fix = find_fix
        self.change = rng.randrange(1, n)  # first bad (regression) / first clean (fix)
        self.unbuildable = {i for i in range(1, n - 1) if rng.random() < UNBUILDABLE}

    def racy(self, i: int) -> bool:
        return i < self.change if self.find_fix else i >= self.change

    def exact_possible(self) -> bool:
        """git bisect can name the change alone only if it and its parent both build."""
        return self.change not in self.unbuildable and self.change - 1 not in self.unbuildable

    def score(self, candidates: list) -> tuple[bool, bool]:
        wrong = self.change not in candidates
        exact = candidates == [self.change]
        return wrong, exact


class SimEnv:
    """The Env protocol over a World; commits are the indexes themselves."""

    def __init__(self, world: World, p: float, rng: random.Random):
        self.world, self.p, self.rng = world, p, rng
        self.late_p, self.drift_after = DRIFT
        self.cycles = 0
        self.builds = 0

    def build(self, commit):
        self.builds += 1
        return "simulated: does not compile" if commit in self.world.unbuildable else None

    def cycle(self, commit) -> CycleOutcome:
        self.cycles += 1
        if self.rng.random() < INFRA:
            return CycleOutcome.INFRA
        p = self.p if self.late_p is None or self.cycles <= self.drift_after else self.late_p
        if self.world.racy(commit) and self.rng.random() < p:
            return CycleOutcome.HIT
        return CycleOutcome.CLEAN

    def release(self, commit) -> None:
        pass


def run_policy(world: World, p: float, seed: str, config: PolicyConfig) -> tuple[list, int, int, float]:
    """One bisection through the real policy; resumed with the same store after an abort.

    Also returns the chance, given everything that happened, that the run ended wrong:
    the sum over verifications of a racy commit of (1 - p) ** fresh cycles asked. Its mean
    over runs estimates the wrong rate with far less noise than counting (a wrong answer
    is a rare event: one more or less in 1,000 runs moves the count by 0.1%).
    """
    env = SimEnv(world, p, random.Random(f"policy:{seed}"))
    store: dict = {}
    racy_verifies: dict = {}

    def on_step(rec) -> None:
        if rec.phase == "verify" and world.racy(rec.commit):
            racy_verifies[rec.commit] = rec.fresh_needed

    for resumes in range(MAX_RESUMES):
        try:
            res = bisect(list(range(world.n)), env, config, store, on_step=on_step)
            # Under drift a verification that passed is extended after the re-calibration,
            # which this sum does not model: no estimate then (main prints n/a).
            expected = sum((1 - p) ** f for f in racy_verifies.values()) if DRIFT[0] is None else 0.0
            return res.candidates, env.cycles, resumes, expected
        except InfraError:
            continue
    raise RuntimeError(f"gave up after {MAX_RESUMES} resumes")


def run_fixed(world: World, p: float, seed: str, k: int) -> tuple[list, int]:
    """git bisect with up to k valid cycles per step (early stop on a hit): policy.bisect_fixed,
    the same code `afpbisect run --cycles K` runs."""
    env = SimEnv(world, p, random.Random(f"fixed{k}:{seed}"))
    store: dict = {}
    while True:   # an infrastructure abort is resumed, as a user would
        try:
            res = bisect_fixed(list(range(world.n)), env, k, find_fix=world.find_fix, store=store)
            return res.candidates, env.cycles
        except InfraError:
            continue


def simulate(p: float, runs: int, seed: int, find_fix: bool, config: PolicyConfig) -> list:
    methods = ["policy", "plain"] + [f"fixed-{k}" for k in FIXED]
    stats = {m: {"wrong": 0, "exact": 0, "cycles": 0} for m in methods}
    resumes = exact_possible = 0
    expected_wrong = 0.0
    for r in range(runs):
        key = f"{seed}:{p}:{r}:{int(find_fix)}"
        world = World(key, N_COMMITS, find_fix)
        exact_possible += world.exact_possible()
        cands, cycles, res, exp = run_policy(world, p, key, config)
        resumes += res
        expected_wrong += exp
        outcomes = {"policy": (cands, cycles)}
        outcomes["plain"] = run_fixed(world, p, key, 1)
        for k in FIXED:
            outcomes[f"fixed-{k}"] = run_fixed(world, p, key, k)
        for m, (c, cyc) in outcomes.items():
            wrong, exact = world.score(c)
            stats[m]["wrong"] += wrong
            stats[m]["exact"] += exact
            stats[m]["cycles"] += cyc
    rows = []
    for m in methods:
        s = stats[m]
        rows.append((m, 100.0 * s["wrong"] / runs, 100.0 * s["exact"] / runs, s["cycles"] / runs))
    return rows, 100.0 * exact_possible / runs, resumes, 100.0 * expected_wrong / runs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=8667)
    ap.add_argument("--p", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--find-fix", action="store_true", help="simulate fix bisection instead")
    ap.add_argument("--confidence", type=float, default=PolicyConfig.confidence)
    ap.add_argument("--light-miss", type=float, default=PolicyConfig.light_miss)
    ap.add_argument("--calibration-hits", type=int, default=PolicyConfig.calibration_hits)
    ap.add_argument("--bound-level", type=float, default=PolicyConfig.bound_level)
    ap.add_argument("--late-p", type=float, default=None, help="hit rate after --drift-after cycles")
    ap.add_argument("--drift-after", type=int, default=30)
    args = ap.parse_args(argv)
    global DRIFT
    DRIFT = (args.late_p, args.drift_after)
    config = PolicyConfig(confidence=args.confidence, find_fix=args.find_fix,
                          light_miss=args.light_miss, calibration_hits=args.calibration_hits,
                          bound_level=args.bound_level)
    print(f"{args.runs} runs per p, seed {args.seed}, {N_COMMITS} commits, "
          f"{UNBUILDABLE:.0%} unbuildable, {INFRA:.0%} infra cycles, "
          f"{'fix' if args.find_fix else 'regression'} bisection; policy: {config}"
          + (f"; hit rate {args.late_p} after {args.drift_after} cycles" if args.late_p is not None else ""))
    for p in args.p:
        t0 = time.monotonic()
        rows, exact_bound, resumes, expected = simulate(p, args.runs, args.seed, args.find_fix, config)
        exp = "n/a (drift)" if args.late_p is not None else f"{expected:.3f}%"
        print(f"\np = {p}   (exact possible at most {exact_bound:.2f}%; policy: expected wrong "
              f"{exp}, resumed after infra aborts {resumes} times; "
              f"{time.monotonic() - t0:.1f} s)")
        print(f"  {'method':<10} {'wrong':>8} {'exact':>8} {'mean cycles':>12}")
        for m, wrong, exact, cycles in rows:
            print(f"  {m:<10} {wrong:7.2f}% {exact:7.2f}% {cycles:12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
