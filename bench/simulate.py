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

Issue 18: `--order new` (default) is the policy as it runs now: lazy endpoints, a light
GOOD priced in builds, probes ordered by a prior and the build-cost model; `--order old`
the policy before it (both endpoints first, light level from the point estimate, git's
midpoint); `--order both` prints both. `--prior right` puts the culprit among 23 suspects
(as 923ad6af77 is among the 23 commits touching src/source-af-packet.c), `--prior wrong`
plants it outside them. Builds are counted FAR (no commit built within 16) or NEAR and
priced with the cost model fitted on the committed real-run reports; a cycle costs what
the real ones did (17 s clean, 5.3 s with a hit); `hours` is builds + cycles.

    python bench/simulate.py [--runs 1000] [--seed 8667] [--p 0.3 0.6 0.9] [--find-fix]
                             [--late-p Q --drift-after N] [--order old|new|both]
                             [--prior right|wrong|none] [--methods policy plain fixed-10 ...]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import glob  # noqa: E402
from dataclasses import replace  # noqa: E402

from afpbisect.core import cost, scenario  # noqa: E402
from afpbisect.core.errors import InfraError  # noqa: E402
from afpbisect.core.prior import SUSPECT_SHARE  # noqa: E402
from afpbisect.core.verdict import CycleOutcome  # noqa: E402
from afpbisect.policy import (  # noqa: E402
    Handler,
    PolicyConfig,
    RangeError,
    Undecided,
    bisect,
    bisect_fixed,
)
from bisection_model import report_samples  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODEL = cost.fit(report_samples(sorted(glob.glob(str(ROOT / "docs/results/*.json")))))
CLEAN_S, HIT_S = 17.0, 5.3   # seconds of a real cycle, clean and with a hit (reports)
N_SUSPECTS = 23              # commits touching src/source-af-packet.c in the real range
PRIOR = "right"              # set by --prior

N_COMMITS = 3071  # the good endpoint + the 3,070 commits of the range
UNBUILDABLE = 0.03
INFRA = 0.02
FIXED = (10, 20, 30)
MAX_RESUMES = 100
DRIFT: tuple = (None, 0)   # (late p, after how many cycles), set by --late-p / --drift-after
# Worlds the confidence model does not assume (issue 25), set by --world:
#   plain        one rate p on every racy commit (the model)
#   preexisting  the race already there PRE_DISTANCE commits before the culprit at rate
#                PRE_Q; the culprit raised it to p. Right: the first racy commit named as
#                "introduced", or the culprit named as "raised"; wrong: the culprit named
#                as "introduced" (its racy parent called clean)
#   load         the machine's load swings: the rate is p, then LOAD_LOW, each for about
#                LOAD_PERIOD cycles (a geometric length), on every racy commit alike
WORLD = {"kind": "plain", "pre_q": 0.25, "pre_distance": 300, "low": 0.1, "period": 30}


class World:
    """One run's ground truth: where the change is and what does not build."""

    def __init__(self, seed: str, n: int, find_fix: bool):
        rng = random.Random(f"world:{seed}")
        self.n = n
        self.find_fix = find_fix
        self.change = rng.randrange(1, n)  # first bad (regression) / first clean (fix)
        self.unbuildable = {i for i in range(1, n - 1) if rng.random() < UNBUILDABLE}
        others = rng.sample(range(1, n), N_SUSPECTS + 1)
        others = [i for i in others if i != self.change][:N_SUSPECTS]
        self.suspects = others[:N_SUSPECTS - 1] + [self.change] if PRIOR == "right" else others
        # where a pre-existing race begins (preexisting world; regression bisection only)
        self.origin = max(1, self.change - WORLD["pre_distance"]) \
            if WORLD["kind"] == "preexisting" and not find_fix else self.change

    def rate(self, i: int, p: float) -> float:
        """The per-cycle hit rate of commit i (0 on a clean one)."""
        if self.find_fix:
            return p if i < self.change else 0.0
        if i >= self.change:
            return p
        return WORLD["pre_q"] if i >= self.origin else 0.0

    def weights(self) -> list | None:
        """prior.weigh's shape: half the mass even, half on the suspects."""
        if PRIOR == "none":
            return None
        w = [0.0] + [(1.0 - SUSPECT_SHARE) / (self.n - 1)] * (self.n - 1)
        for i in self.suspects:
            w[i] += SUSPECT_SHARE / len(self.suspects)
        return w

    def racy(self, i: int) -> bool:
        return i < self.change if self.find_fix else i >= self.change

    def exact_possible(self) -> bool:
        """git bisect can name the change alone only if it and its parent both build."""
        return self.change not in self.unbuildable and self.change - 1 not in self.unbuildable

    def score(self, candidates: list, kind: str = "introduced") -> tuple[bool, bool]:
        if self.origin != self.change:   # preexisting: the first racy commit, or the raise
            right = self.change if kind == "raised" else self.origin
            return right not in candidates, candidates == [right]
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
        self.built: list = []
        self.far = self.near = 0
        self.seconds = 0.0
        self.low, self.phase_end = False, 0   # the load world's phase and its last cycle

    def _load_is_low(self) -> bool:
        """The load world: is this cycle in a low-rate phase? Phases alternate, each of a
        geometric length of mean WORLD["period"] cycles (the load of a shared machine)."""
        if self.cycles > self.phase_end:
            self.low = not self.low
            self.phase_end = self.cycles + int(self.rng.expovariate(1.0 / WORLD["period"]))
        return self.low

    def build(self, commit):
        self.builds += 1
        if commit not in self.built:   # a rebuild of a cached product is free
            d = cost.nearest(sorted(self.built), commit)
            if d is None or d > cost.FAR_WITHIN:
                self.far += 1
            else:
                self.near += 1
            self.seconds += MODEL.seconds(d)
            self.built.append(commit)
        return "simulated: does not compile" if commit in self.world.unbuildable else None

    def cycle(self, commit) -> CycleOutcome:
        self.cycles += 1
        if self.rng.random() < INFRA:
            return CycleOutcome.INFRA
        p = self.p if self.late_p is None or self.cycles <= self.drift_after else self.late_p
        if WORLD["kind"] == "load" and self._load_is_low():
            p = WORLD["low"]
        if self.rng.random() < self.world.rate(commit, p):
            self.seconds += HIT_S
            return CycleOutcome.HIT
        self.seconds += CLEAN_S
        return CycleOutcome.CLEAN

    def release(self, commit) -> None:
        pass


def policy_config(config: PolicyConfig, order: str) -> PolicyConfig:
    """The policy before issue 18 (old) or now (new), with the caller's other knobs."""
    if order == "old":
        return replace(config, lazy_endpoints=False, priced_light=False)
    return config


def run_policy(world: World, p: float, seed: str, config: PolicyConfig,
               order: str = "new") -> tuple[list, SimEnv, int, float]:
    """One bisection through the real policy; resumed with the same store after an abort.

    Also returns the chance, given everything that happened, that the run ended wrong:
    the sum over verifications of a racy commit of (1 - p) ** fresh cycles asked. Its mean
    over runs estimates the wrong rate with far less noise than counting (a wrong answer
    is a rare event: one more or less in 1,000 runs moves the count by 0.1%).
    """
    env = SimEnv(world, p, random.Random(f"policy:{seed}"))
    store: dict = {}
    racy_verifies: dict = {}
    config = policy_config(config, order)
    weights = world.weights() if order == "new" else None
    price = cost.pricer(MODEL, lambda: env.built) if order == "new" else None

    class Verifies(Handler):
        def on_step(self, rec) -> None:
            if rec.phase == "verify" and world.racy(rec.commit):
                racy_verifies[rec.commit] = rec.fresh_needed

    for resumes in range(MAX_RESUMES):
        try:
            res = bisect(list(range(world.n)), env, config, store, handler=Verifies(),
                         weights=weights, cost=price)
            # Under drift a verification that passed is extended after the re-calibration,
            # which this sum does not model: no estimate then (main prints n/a).
            expected = sum((1 - p) ** f for f in racy_verifies.values()) if modelled() else 0.0
            return res.candidates, env, resumes, expected, res.kind
        except (Undecided, RangeError):   # no answer claimed (undecided, not reproducible)
            return None, env, resumes, 0.0, "undecided"
        except InfraError:
            continue
    raise RuntimeError(f"gave up after {MAX_RESUMES} resumes")


def modelled() -> bool:
    """The world the confidence model assumes (one constant rate): only there is the
    expected wrong rate computed."""
    return DRIFT[0] is None and WORLD["kind"] == "plain"


def run_fixed(world: World, p: float, seed: str, k: int) -> tuple[list, SimEnv]:
    """git bisect with up to k valid cycles per step (early stop on a hit): policy.bisect_fixed,
    the same code `afpbisect run --cycles K` runs."""
    env = SimEnv(world, p, random.Random(f"fixed{k}:{seed}"))
    store: dict = {}
    while True:   # an infrastructure abort is resumed, as a user would
        try:
            res = bisect_fixed(list(range(world.n)), env, k, find_fix=world.find_fix, store=store)
            return res.candidates, env
        except InfraError:
            continue


def simulate(p: float, runs: int, seed: int, find_fix: bool, config: PolicyConfig,
             methods: list) -> tuple:
    stats = {m: {"wrong": 0, "exact": 0, "cycles": 0, "far": 0, "near": 0, "seconds": 0.0,
                 "undecided": 0, "raised": 0} for m in methods}
    resumes = exact_possible = 0
    expected_wrong = {m: 0.0 for m in methods}
    for r in range(runs):
        key = f"{seed}:{p}:{r}:{int(find_fix)}"
        world = World(key, N_COMMITS, find_fix)
        exact_possible += world.exact_possible()
        for m in methods:
            kind = "introduced"
            if m.startswith("policy"):
                cands, env, res, exp, kind = run_policy(world, p, key, config, m.split("-")[1])
                resumes += res
                expected_wrong[m] += exp
            else:
                cands, env = run_fixed(world, p, key, 1 if m == "plain" else int(m.split("-")[1]))
            st = stats[m]
            if kind == "undecided":   # no answer claimed: not wrong, not exact
                st["undecided"] += 1
            else:
                wrong, exact = world.score(cands, kind)
                st["wrong"] += wrong
                st["exact"] += exact
                st["raised"] += kind in ("raised", "lowered")
            for k, v in (("cycles", env.cycles), ("far", env.far), ("near", env.near),
                         ("seconds", env.seconds)):
                st[k] += v
    rows = [(m, 100.0 * s["wrong"] / runs, 100.0 * s["exact"] / runs, s["cycles"] / runs,
             s["far"] / runs, s["near"] / runs, s["seconds"] / runs / 3600.0,
             100.0 * expected_wrong[m] / runs, s["undecided"], s["raised"])
            for m, s in stats.items()]
    return rows, 100.0 * exact_possible / runs, resumes


def _floor(text: str) -> float | None:
    return None if text == "none" else float(text)


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
    ap.add_argument("--order", choices=["old", "new", "both"], default="both")
    ap.add_argument("--prior", choices=["right", "wrong", "none"], default="right")
    ap.add_argument("--methods", nargs="+", default=["plain"] + [f"fixed-{k}" for k in FIXED])
    ap.add_argument("--world", choices=["plain", "preexisting", "load"], default="plain",
                    help="a world the model does not assume (see WORLD)")
    ap.add_argument("--pre-q", type=float, default=WORLD["pre_q"],
                    help="preexisting: the earlier race's rate")
    ap.add_argument("--pre-distance", type=int, default=WORLD["pre_distance"],
                    help="preexisting: how many commits before the culprit it began")
    ap.add_argument("--load-low", type=float, default=WORLD["low"], help="load: the low phases' rate")
    ap.add_argument("--load-period", type=float, default=WORLD["period"],
                    help="load: mean cycles of a phase")
    ap.add_argument("--rate-floor", type=_floor, default=scenario.load(scenario.DEFAULT).verdict.rate_floor,
                    help="the policy's rate floor (default the built-in scenario's [verdict] "
                         "rate_floor; 'none': the rule before issue 25)")
    ap.add_argument("--cycle-cap", type=int, default=PolicyConfig.cycle_cap)
    args = ap.parse_args(argv)
    global DRIFT, PRIOR
    DRIFT = (args.late_p, args.drift_after)
    PRIOR = args.prior
    WORLD.update(kind=args.world, pre_q=args.pre_q, pre_distance=args.pre_distance,
                 low=args.load_low, period=args.load_period)
    orders = ["old", "new"] if args.order == "both" else [args.order]
    methods = [f"policy-{o}" for o in orders] + [m for m in args.methods if not m.startswith("policy")]
    config = PolicyConfig(confidence=args.confidence, find_fix=args.find_fix,
                          light_miss=args.light_miss, calibration_hits=args.calibration_hits,
                          bound_level=args.bound_level, rate_floor=args.rate_floor,
                          cycle_cap=args.cycle_cap)
    print(f"world {WORLD}")
    print(f"{args.runs} runs per p, seed {args.seed}, {N_COMMITS} commits, "
          f"{UNBUILDABLE:.0%} unbuildable, {INFRA:.0%} infra cycles, "
          f"{'fix' if args.find_fix else 'regression'} bisection; policy: {config}"
          + (f"; hit rate {args.late_p} after {args.drift_after} cycles" if args.late_p is not None else ""))
    print(f"prior {args.prior}; cost model {MODEL.near:.0f}..{MODEL.far:.0f} s; a cycle "
          f"{CLEAN_S} s clean, {HIT_S} s with a hit")
    for p in args.p:
        t0 = time.monotonic()
        rows, exact_bound, resumes = simulate(p, args.runs, args.seed, args.find_fix, config, methods)
        print(f"\np = {p}   (exact possible at most {exact_bound:.2f}%; policy resumed after "
              f"infra aborts {resumes} times; {time.monotonic() - t0:.1f} s)")
        print(f"  {'method':<12} {'wrong':>8} {'exp.wrong':>9} {'exact':>8} {'cycles':>8} "
              f"{'far':>6} {'near':>6} {'hours':>6} {'no answer':>9} {'raised':>6}")
        for m, wrong, exact, cycles, far, near, hours, exp, undecided, raised in rows:
            e = (f"{exp:.3f}%" if modelled() else "n/a") if m.startswith("policy") else ""
            print(f"  {m:<12} {wrong:7.2f}% {e:>9} {exact:7.2f}% {cycles:8.1f} {far:6.2f} "
                  f"{near:6.2f} {hours:6.2f} {undecided:9d} {raised:6d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
