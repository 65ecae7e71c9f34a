#!/usr/bin/env python3
"""Two `afpbisect run` reports of the same range, step by step: what a change to the recipe
did to each step's build, when the two runs took the same steps.

    python bench/compare_runs.py OLD.json NEW.json

Prints a Markdown table (build and cargo seconds of both, their ratio) and the sums.  Runs on
different machines differ by the machine's speed too: the far jumps, which no recipe change
reaches, show that factor (docs/results/real-suricata.md, fifth run)."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def cargo(step: dict) -> str:
    c = (step.get("build_steps") or {}).get("cargo")
    return "-" if c is None else f"{c:.0f}"


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    old, new = (json.loads(Path(p).read_text()) for p in args)
    pairs = list(zip(old["steps"], new["steps"]))
    if len(old["steps"]) != len(new["steps"]) or any(a["commit"] != b["commit"] for a, b in pairs):
        print("the two runs did not take the same steps: a per-step comparison would mislead", file=sys.stderr)
        return 1
    print("| # | idx | role | verdict | old build | new build | new/old | old cargo | new cargo |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, (a, b) in enumerate(pairs, 1):
        if not (a["build_seconds"] and b["build_seconds"]):   # reused product: no build in this step
            continue
        print(f"| {i} | {b['position']} | {b['role']} | {b['verdict']} | {a['build_seconds']:.0f} s | "
              f"{b['build_seconds']:.0f} s | {b['build_seconds'] / a['build_seconds']:.2f} | {cargo(a)} | {cargo(b)} |")
    for name, run in (("old", old), ("new", new)):
        builds = sum(s["build_seconds"] or 0 for s in run["steps"])
        repro = sum(s["repro_seconds"] or 0 for s in run["steps"])
        print(f"\n{name}: {run['result']['first_bad']} at {run['result']['confidence']:.3%}; builds {builds:.0f} s, "
              f"repro {repro:.0f} s, wall {run['wall_seconds']:.0f} s", end="")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
