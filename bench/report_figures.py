#!/usr/bin/env python3
"""The figures of docs/results/2026-12-01-time-to-answer.md, computed from the run report it
describes (docs/results/2026-12-01-run-v7.0.0..v8.0.3-lazy-weighted.json), so the document
cannot drift from its data. No Docker, no network:

    python bench/report_figures.py [REPORT.json]

prints each figure, then the lines the document (and the README's "Time and disk") state
them in; tests/test_report_figures.py checks that they contain each of those lines. What the
report does not hold (the naive method's measurements, `{naive}` and `{ratio}` in those
lines; the --restart and second runs; bench/plan.py's model) is not computed here.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from afpbisect.core.cost import FAR_WITHIN  # noqa: E402

REPORT = ROOT / "docs" / "results" / "2026-12-01-run-v7.0.0..v8.0.3-lazy-weighted.json"
DOCUMENT = ROOT / "docs" / "results" / "2026-12-01-time-to-answer.md"


def _r(x: float) -> int:
    """Half up, as people round (Python's round() takes 176.5 to 176)."""
    return int(x + 0.5)


def _mmss(seconds: float) -> str:
    s = _r(seconds)
    return f"{s // 60} min {s % 60} s"


def figures(report: dict) -> dict:
    steps = report["steps"]
    builds = []   # (position, commit, seconds, nearest built before or None)
    for s in steps:
        if not s["build_cached"] and s["build_ok"]:
            before = [b[0] for b in builds]
            nearest = min((abs(s["position"] - p) for p in before), default=None)
            builds.append((s["position"], s["commit"], s["build_seconds"], nearest))
    far = [b for b in builds if b[3] is None or b[3] > FAR_WITHIN]
    clean = [s for s in steps if s["new_cycles"] and s["hits"] == 0]
    hit = [s for s in steps if s["new_cycles"] and s["hits"] == s["cycles"]]
    busy = [s["cpu_busy"] for s in steps if s.get("cpu_busy") is not None and s["new_cycles"]]
    by_commit = {}
    for s in steps:
        by_commit.setdefault(s["commit"], []).append(s)
    def fresh(role):   # (position, hits, cycles) a step added to what its commit had before
        i, s = next((i, s) for i, s in enumerate(steps) if s["role"] == role)
        had = max((t["hits"] for t in steps[:i] if t["commit"] == s["commit"]), default=0)
        return s["position"], s["hits"] - had, s["new_cycles"]
    calib, confirm = fresh("calibrate"), fresh("confirm")
    verify = next(s for s in steps if s["role"] == "verify")
    first_search = [s for s in steps if s["role"] == "search" and s["new_cycles"]]
    per_step = {}
    for s in first_search:   # the first time each probe was asked (build + its first cycles)
        per_step.setdefault(s["position"], (s["build_seconds"], s["repro_seconds"], s["new_cycles"]))
    return {
        "wall_seconds": report["wall_seconds"],
        "confidence": report["result"]["confidence"],
        "culprit": report["result"]["first_bad"],
        "cost_model": report["search_order"]["cost_model"],
        "builds": builds,
        "far_builds": len(far),
        "near_builds": len(builds) - len(far),
        "build_seconds": sum(b[2] for b in builds),
        "cycles": sum(s["new_cycles"] for s in steps),
        "repro_seconds": sum(s["repro_seconds"] for s in steps),
        "unhealthy": sum(s["unhealthy"] or 0 for s in steps) if all(
            isinstance(s.get("unhealthy"), int) for s in steps) else sum(bool(s.get("unhealthy")) for s in steps),
        "busy_min": min(busy), "busy_max": max(busy),
        "clean_cycle_seconds": sum(s["repro_seconds"] for s in clean) / sum(s["new_cycles"] for s in clean),
        "hit_cycle_seconds": sum(s["repro_seconds"] for s in hit) / sum(s["new_cycles"] for s in hit),
        "calibration": calib,
        "verify": (verify["position"], verify["new_cycles"]),
        "confirm": confirm[1:],
        "per_step": per_step,
        "verdicts": {s["position"]: s["verdict"] for s in steps},
    }


def document_lines(f: dict) -> list[str]:
    """The lines of the document that state these figures, exactly."""
    cal_pos, cal_hits, cal_cycles = f["calibration"]
    ver_pos, ver_cycles = f["verify"]
    rows = []
    for pos, commit, seconds, nearest in f["builds"]:
        verdict = f["verdicts"][pos]
        if pos == cal_pos:
            verdict += f" (calibrated here: {cal_hits} of {cal_cycles})"
        if pos == ver_pos:
            verdict += f", verified ({ver_cycles} fresh clean)"
        kind = "far" if nearest is None or nearest > FAR_WITHIN else "near"
        rows.append(f"| {pos} | `{commit[:10]}` | {verdict} | {nearest if nearest is not None else 'none'} "
                    f"| {kind} | {_r(seconds)} s |")
    cm = f["cost_model"]
    steps = list(f["per_step"].items())   # in the order they were asked
    first, last = steps[0], steps[-1]
    ours = [(p, _r(b), _r(r), c, _r(b + r)) for p, (b, r, c) in (first, last)]
    return [
        f"- **{f['culprit'][:10]} at {100 * f['confidence']:.3f}%**, the same answer and confidence as every run before. Wall time",
        f"  **{_mmss(f['wall_seconds'])}** ({_r(f['wall_seconds']):,} s; the report's `wall_seconds`).",
        *rows,
        f"- **Builds: {f['far_builds']} far and {f['near_builds']} near, {_r(f['build_seconds'])} s of building in all.** The issue's target was at most 6 far",
        f"- **Cycles: {f['cycles']}**, taking {f['repro_seconds']:.1f} s in the repro stage (the steps' `repro_seconds`):",
        f"  - the calibration on {cal_pos}: {cal_hits} hits in {cal_cycles} cycles;",
        f"  - its verification: {ver_cycles} fresh clean cycles;",
        f"  - the re-calibration on {f['culprit'][:10]}: {f['confirm'][0]} hits in {f['confirm'][1]} cycles;",
        f"- **Health:** {'no' if f['unhealthy'] == 0 else f['unhealthy']} cycle was unhealthy. The machine was "
        f"{_r(100 * f['busy_min'])}-{_r(100 * f['busy_max'])}% busy during cycles.",
        f"  nearest commit built in the workdir. In this run it was the model's defaults, {cm['near']:g} s near and "
        f"{cm['far']:g} s",
        f"  far (horizon {cm['horizon']}; the report's `search_order.cost_model`): no build had been recorded in its new",
        *(f"| {p} | `{next(b[1] for b in f['builds'] if b[0] == p)[:10]}` | {f['verdicts'][p]} | {{naive}} | "
          f"{b} s | {r} s ({c}) | {t} s | {{ratio}} |" for p, b, r, c, t in ours),
        f"- The measured steps: naive {{naive}} s against afpbisect's {ours[0][4] + ours[1][4]} s",
        f"a clean cycle takes {f['clean_cycle_seconds']:.1f} s and one with a hit {f['hit_cycle_seconds']:.1f} s in the repro stage",
    ]


def readme_lines(f: dict) -> list[str]:
    """What the README's "Time and disk" section repeats of them."""
    return [
        f"| first run, empty workdir (no clone, no build cache), images present | **{_mmss(f['wall_seconds'])}** "
        f"({f['far_builds']} far builds + {f['near_builds']} near, {f['cycles']} cycles) |",
        f"a warm run is bound by cycles (about {_r(f['clean_cycle_seconds'])} s each",
    ]


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else REPORT
    f = figures(json.loads(path.read_text()))
    for k, v in f.items():
        if k not in ("builds", "per_step", "verdicts"):
            print(f"{k}: {v}")
    for b in f["builds"]:
        print(f"build: position {b[0]} {b[1][:10]} {b[2]:.1f} s, nearest built before: {b[3]}")
    print("\nthe document's lines:")
    for line in document_lines(f):
        print(line)
    print("\nthe README's lines:")
    for line in readme_lines(f):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
