#!/usr/bin/env python3
"""Issue 6's comparison, on the same steps: the naive method (a clean container build and a
fixed 10 cycles per step, as the ticket did by hand) against what afpbisect spent.

    python bench/naive_vs_afpbisect.py --report WORKDIR/reports/run-....json --repo SURICATA.git \
        --workdir /scratch/naive [--steps 2]

afpbisect's side is read from the run's report (per step: build seconds + repro seconds).
The naive side is measured now, for --steps search steps of that report spread evenly over
the search (the first, far jumps, cost afpbisect the most; the last, neighbours, the least;
taking only one end would flatter or wrong either method): each in
its own fresh workdir (no ccache, no cargo cache, no reused tree: what a from-scratch
`docker build` does) and upstream's default compiler flags (what a developer gets by hand;
--naive-flags afpbisect gives it afpbisect's leaner recipe instead), then 10 cold-start cycles.  Prints both per step and the ratio;
nothing is extrapolated without saying so."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from afpbisect import PATCHES_DIR
from afpbisect.commands.context import Options, open_context
from afpbisect.core.eras import DEFAULT_RULES, load_rules
from afpbisect.core.scenario import load as load_scenario
from afpbisect.core.search import least_satisfying
from afpbisect.core.verdict import Verdict
from afpbisect.machinery.repro_session import ReproEnv
from afpbisect.machinery.repro_settings import ReproSettings
from afpbisect.core.patch import load_patch


def spread(items: list, k: int) -> list:
    """k items evenly spaced from first to last (all of them when k >= len)."""
    if k >= len(items):
        return items
    if k == 1:
        return items[:1]
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def step_cost(st: dict) -> float:
    """What a step of the afpbisect run cost: its build plus its cycles."""
    return (st["build_seconds"] or 0) + (st["repro_seconds"] or 0)


# afpbisect's own build settings, which a developer building by hand does not have.
OWN_RULES = ("no-debuginfo", "no-git-revision", "rust-incremental")


def upstream_flags_rules(dest: Path) -> Path:
    """The shipped era rules without OWN_RULES: a developer building by hand gets upstream's
    defaults (C -g -O2, Rust release with debug = true and not incremental, the git revision
    in autoconf.h), so the naive method does too.  What afpbisect saves by them is counted as
    its own."""
    rules = load_rules(DEFAULT_RULES)
    text = DEFAULT_RULES.read_text()
    for rid in OWN_RULES:
        assert any(r.id == rid for r in rules), f"rule {rid} renamed: update this bench"
        start = text.index(f'[[rule]]\nid = "{rid}"')
        text = text[:start] + text[text.index("[[rule]]", start + 1):]
    dest.write_text(text)
    assert [r.id for r in load_rules(dest)] == [r.id for r in rules if r.id not in OWN_RULES]
    return dest


def naive_step(repo, workdir: Path, sha: str, cycles: int, settings: ReproSettings, say,
               eras_file: Path | None) -> dict:
    shutil.rmtree(workdir, ignore_errors=True)
    with open_context(Options(repo, workdir, "debian:bookworm", 2, settings, eras_file=eras_file,
                              scenario=load_scenario()), say=say) as ctx:
        ctx.docker()
        ctx.builder.image_for(ctx.builder.recipe_for(ctx.repo, sha))   # images exist in both methods
        t0 = time.time()
        b = ctx.builder.build(ctx.repo, sha, [load_patch(PATCHES_DIR / "widener.patch")], label="naive")
        build_s = time.time() - t0
        t0 = time.time()
        if b.ok:
            logs = workdir / "logs" / "naive"
            logs.mkdir(parents=True, exist_ok=True)
            with ReproEnv(ctx.engine, settings).session(b.image, Path(b.product_dir), logs) as s:
                for i in range(1, cycles + 1):
                    s.cycle(i)
        repro_s = time.time() - t0
    shutil.rmtree(workdir, ignore_errors=True)
    return {"build": build_s, "repro": repro_s, "ok": b.ok}


def settings_of(rep: dict) -> ReproSettings:
    """The repro settings the report's run used, for the naive cycles."""
    s = rep["settings"]
    # Reports before scenarios said widen_us; later ones carry the environment itself.
    env = s.get("env") or {"SURICATA_RING_SETUP_DELAY_US": str(s.get("widen_us", 500000))}
    return ReproSettings.from_scenario(load_scenario(), pairs=s["pairs"], threads=s["threads"], env=env)


def naive_steps(rep: dict) -> int:
    """Builds of git bisect's walk to the report's answer: 2 endpoints + its midpoints."""
    size = rep["range"]["size"]
    culprit = rep["result"]["candidates"][0]
    at = next(st["position"] for st in rep["steps"] if st["commit"] == culprit)
    walk = least_satisfying(size + 1, lambda i: Verdict.BAD if i >= at else Verdict.GOOD)
    return 2 + len(walk.steps)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", type=Path, required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--naive-flags", choices=("upstream", "afpbisect"), default="upstream",
                    help="naive builds with upstream's default flags (debug info on: what a developer "
                         "gets by hand; default) or with afpbisect's recipe")
    a = ap.parse_args(argv)
    say = lambda m: print(m, file=sys.stderr, flush=True)
    rep = json.loads(a.report.read_text())
    settings = settings_of(rep)
    steps = spread([st for st in rep["steps"] if st["role"] == "search"], a.steps)
    a.workdir.mkdir(parents=True, exist_ok=True)
    eras_file = upstream_flags_rules(a.workdir / "eras-upstream-flags.toml") if a.naive_flags == "upstream" else None
    say(f"naive builds use {'upstream default flags (debug info on)' if eras_file else 'afpbisect recipe'}")
    rows = []
    for st in steps:
        say(f"== naive step on {st['commit'][:10]}")
        n = naive_step(a.repo, a.workdir / f"naive-{st['commit'][:10]}", st["commit"], a.cycles, settings, say,
                       eras_file)
        ours = step_cost(st)
        rows.append((st, n, ours))
    print(f"naive: clean build ({a.naive_flags} flags) + {a.cycles} cycles; afpbisect: from {a.report.name}\n")
    print("| step | commit | verdict | naive build | naive 10 cycles | naive total | afpbisect build | afpbisect repro (cycles) | afpbisect total | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for st, n, ours in rows:
        naive = n["build"] + n["repro"]
        print(f"| {st['position']} | `{st['commit'][:10]}` | {st['verdict']} | {n['build']:.0f} s | {n['repro']:.0f} s | "
              f"{naive:.0f} s | {st['build_seconds'] or 0:.0f} s | {st['repro_seconds'] or 0:.0f} s ({st['cycles']}) | "
              f"{ours:.0f} s | {naive / ours if ours else float('inf'):.1f}x |")
    tn = sum(n["build"] + n["repro"] for _, n, _ in rows)
    to = sum(o for _, _, o in rows)
    print(f"\nmeasured steps: naive {tn:.0f} s, afpbisect {to:.0f} s: {tn / to if to else float('inf'):.1f}x less time per step")
    all_ours = sum(step_cost(st) for st in rep["steps"])
    print(f"whole afpbisect run: {len(rep['steps'])} steps, {all_ours:.0f} s of build+repro, wall {rep['wall_seconds']:.0f} s")
    # Extrapolated, and said so: a naive run is git bisect's own walk over the range (both
    # endpoints checked first, then git's midpoints down to the same answer), each step a
    # clean build plus 10 cycles; the measured naive steps give its mean cost. Not
    # afpbisect's step count: since issue 18 it asks fewer and other questions.
    mean_naive = tn / len(rows) if rows else 0
    n_steps = naive_steps(rep)
    print(f"extrapolated naive run: {n_steps} steps x {mean_naive:.0f} s (mean of the {len(rows)} measured) = "
          f"{n_steps * mean_naive:.0f} s, {n_steps * mean_naive / all_ours if all_ours else float('inf'):.1f}x the afpbisect run's build+repro")
    return 0


if __name__ == "__main__":
    sys.exit(main())
