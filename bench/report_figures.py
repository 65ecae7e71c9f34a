#!/usr/bin/env python3
"""The figures of docs/results/2026-12-01-time-to-answer.md, computed from the run report it
describes (docs/results/2026-12-01-run-v7.0.0..v8.0.3-lazy-weighted.json), so the document
cannot drift from its data. No Docker, no network:

    python bench/report_figures.py [REPORT.json]

prints each figure, then the lines the document (and the README's "Time and disk") state
them in; tests/test_report_figures.py checks that they contain each of those lines. What the
report does not hold (the naive method's measurements, `{naive}` and `{ratio}` in those
lines; the --restart and second runs; bench/plan.py's model) is not computed here.

    python bench/report_figures.py --check

does the same for every other document that states a committed report's figures (issue 27):
CLAIMS lists, per document section and report, the lines that state them (wall time, builds
and their seconds, cycles, answer, confidence, step tables, verify and nightly figures), each
filled in from the JSON; and the Markdown each report was committed with is checked against
its JSON (headline and step rows). It prints what disagrees and exits 1 if anything does.
"""
from __future__ import annotations

import json
import math
import re
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


# ---------------------------------------------------------------------------------------
# Every other document that cites a committed report (issue 27: "some committed figures do
# not match their JSON"). Each figure below is recomputed from the report it comes from;
# CLAIMS says where a document states it, as a line with {fields} filled from the report;
# tests/test_report_figures.py checks that each claim is in its section. A rounding of an
# exact .5 may have gone either way (the reports' own renderer rounds half to even), so
# every figure is computed twice, half up and half down, and either reading is accepted.

RESULTS = ROOT / "docs" / "results"


def _up(x: float) -> int:
    return math.floor(round(x, 6) + 0.5)


def _down(x: float) -> int:
    return math.ceil(round(x, 6) - 0.5)


ROUNDINGS = (_up, _down)


def _clock(seconds: float, rnd) -> str:
    s = rnd(seconds)
    return f"{s // 60} min {s % 60} s"


def _span(values, rnd, digits: int = 0, sep: str = ",") -> str:
    """'lo-hi' of values, to `digits` decimals, thousands separated by `sep`."""
    scale = 10 ** digits
    lo, hi = (rnd(v * scale) / scale for v in (min(values), max(values)))
    return f"{lo:{sep}.{digits}f}-{hi:{sep}.{digits}f}"


def _step_figures(s: dict, rnd) -> dict:
    cargo = (s.get("build_steps") or {}).get("cargo")
    return {"pos": s["position"], "role": s["role"], "verdict": s["verdict"], "c": s["new_cycles"],
            "b": rnd(s["build_seconds"]), "r": rnd(s["repro_seconds"]),
            "t": rnd(s["build_seconds"] + s["repro_seconds"]),
            "cargo": None if cargo is None else rnd(cargo)}


def _per_commit(steps: list) -> dict:
    """{commit[:10]: {"cycles": its new cycles in all, "hits": its hits}}: a step's `cycles` and
    `hits` count its commit's earlier ones again, `new_cycles` does not."""
    out: dict = {}
    for s in steps:
        d = out.setdefault(s["commit"][:10], {"cycles": 0, "hits": 0})
        d["cycles"] += s["new_cycles"]
        d["hits"] = max(d["hits"], s["hits"])
    return out


def run_figures(report: dict, rnd=_up) -> dict:
    """A `run` report's key figures, as the documents write them."""
    steps, result = report["steps"], report["result"]
    first = {}
    for s in steps:
        first.setdefault(s["commit"], s)
    fresh = [s for s in steps if s["build_ok"] and not s["build_cached"]]
    built: list = []
    far = 0
    for s in fresh:
        far += not built or min(abs(s["position"] - p) for p in built) > FAR_WITHIN
        built.append(s["position"])
    build_s = sum(s["build_seconds"] for s in steps)
    repro_s = sum(s["repro_seconds"] for s in steps)
    pairs = [v for s in steps for v in (s.get("pairs") or {}).values()]
    return {
        "answer": result["first_bad"][:12], "answer10": result["first_bad"][:10],
        "confidence": f"{100 * result['confidence']:.3f}%", "cycles": sum(s["new_cycles"] for s in steps),
        "wall": _clock(report["wall_seconds"], rnd), "wall_s": f"{rnd(report['wall_seconds']):,}",
        "steps": len(steps), "commits": len(first), "builds": len(fresh), "far": far,
        "cached": sum(1 for s in first.values() if s["build_cached"]),
        "build_s": f"{rnd(build_s):,}", "repro_s": f"{rnd(repro_s):,}",
        "build_repro_s": f"{rnd(build_s + repro_s):,}", "per_step": rnd((build_s + repro_s) / len(steps)),
        "fb": [rnd(s["build_seconds"]) for s in fresh], "s": [_step_figures(s, rnd) for s in steps],
        "unhealthy": sum(len(s.get("unhealthy") or []) for s in steps),
        "fwd": _span([p["forwarded_min"] for p in pairs], rnd, sep="") if pairs else None,
        "offered": _span([p["offered_min"] for p in pairs], rnd, sep="") if pairs else None,
        "cal": [dict(c, busy=rnd(100 * c["cpu_busy"])) for c in report.get("calibrations", [])],
        "size": f"{report['range']['size']:,}", "pc": _per_commit(steps),
    }


def _side(facts: dict, counts: dict, rnd) -> dict:
    return {"cycles": counts["cycles"], "hits": counts["hits"], "unhealthy": counts.get("unhealthy", 0),
            "start": _span(facts["start_seconds"], rnd, 2), "start1": _span(facts["start_seconds"], rnd, 1),
            "median": f"{rnd(10 * facts['start_median']) / 10:.1f}",
            "fwd": _span(facts["forwarded_after_start"], rnd), "build": rnd(facts["build_seconds"]),
            "cached": facts["build_cached"]}


def verify_figures(report: dict, rnd=_up) -> dict:
    """A `verify-patch` report's key figures."""
    return {"verdict": report["verdict"], "confidence": f"{100 * report['confidence']:.3f}%",
            "summary": report["summary"], "wall": _clock(report["wall_seconds"], rnd),
            "wall_s": f"{rnd(report['wall_seconds']):,}",
            "base": _side(report["baseline_facts"], report["baseline"], rnd),
            "patched": _side(report["patched_facts"], report["patched"], rnd)}


def nightly_figures(report: dict, rnd=_up) -> dict:
    """A `nightly` report's key figures; the clean confidence is 1 - (1 - p_assumed)^cycles
    where the report predates `clean_confidence`."""
    clean = report.get("clean_confidence")
    if clean is None and report["hits"] == 0:
        clean = 1 - (1 - report["p_assumed"]) ** report["cycles"]
    bis = report.get("bisection") or {}
    return {"status": report["status"], "exit_code": report["exit_code"], "cycles": report["cycles"],
            "hits": report["hits"], "unhealthy": report.get("unhealthy", 0), "infra": report.get("infra", 0),
            "clean_confidence": None if clean is None else f"{100 * clean:.3f}%",
            "wall": _clock(report["wall_seconds"], rnd), "wall_s": f"{rnd(report['wall_seconds']):,}",
            "answer": (bis.get("first_bad") or "")[:12],
            "confidence": f"{100 * bis['confidence']:.3f}%" if bis.get("confidence") else None}


FIGURES = {"run": run_figures, "verify-patch": verify_figures, "nightly": nightly_figures}


def report_figures(stem: str) -> list[dict]:
    """The figures of docs/results/STEM.json, once per rounding."""
    report = json.loads((RESULTS / f"{stem}.json").read_text())
    return [FIGURES[report["command"]](report, rnd) for rnd in ROUNDINGS]


def _row(i: int, *cells: str) -> str:
    """A step table row of docs/results/real-suricata.md: '| #i | idx | role | verdict | cells |'."""
    head = f"| {i + 1} | {{s[{i}][pos]}} | {{s[{i}][role]}} | {{s[{i}][verdict]}} |"
    return head + "".join(f" {c} |" for c in cells)


def _naive_row(i: int) -> str:
    """afpbisect's side of a 'naive against afpbisect' row (the naive side is not in a report)."""
    return (f"| {{s[{i}][pos]}} | `{{x}}` | {{s[{i}][verdict]}} | {{x}} | {{x}} | {{x}} | {{s[{i}][b]}} s "
            f"| {{s[{i}][r]}} s ({{s[{i}][c]}}) | {{s[{i}][t]}} s |")


def _builds(first: int, last: int) -> str:
    return ", ".join(f"{{fb[{i}]}}" for i in range(first, last + 1))


R1, R2, R2B = ("2026-11-25-run-v7.0.0..v8.0.3", "2026-11-25-run-v7.0.0..v8.0.3-cold-machine",
               "2026-11-25-run-v7.0.0..v8.0.3-second-run")
R3, R4, R5 = ("2026-11-25-run-v7.0.0..v8.0.3-final-recipe", "2026-11-25-run-v7.0.0..v8.0.3-depend-mode",
              "2026-11-25-run-v7.0.0..v8.0.3-rust-incremental")
R6B, RS, RL = ("2026-11-28-run-v7.0.0..v8.0.3-second-run", "2026-12-01-run-v7.0.0..v8.0.3-scenario-8667",
               "2026-12-01-run-v7.0.0..v8.0.3-lazy-weighted")
N1, N2, NB, N3 = ("2026-11-25-nightly-main", "2026-11-25-nightly-replay-8.0.3",
                  "2026-11-25-nightly-replay-bisection", "2026-12-01-nightly-main")
V1A, V1B, V2A, V2B, V3A, V3B = (f"2026-{d}-verify-fix{x}" for d in ("11-25", "11-28", "12-01") for x in "AB")
ANSWER = "Answer: **{answer}**, confidence **{confidence}**"
REAL = "docs/results/real-suricata.md"
SECTION = {k: v for k, v in [
    ("first", "## `afpbisect run v7.0.0..v8.0.3` (issue 6)"), ("cold", "## Again on a machine"),
    ("third", "## Third run"), ("fourth", "## Fourth run"), ("fifth", "## Fifth run"),
    ("sixth", "## Sixth run"), ("verify", "## verify-patch on suricata-8.0.3"),
    ("nightly", "## The nightly job"), ("naive", "## Naive method against afpbisect"),
    ("bound", "## Why 4x per step")]}

# (document, the heading its section starts with (None: the whole document), report stem,
#  the lines stating the report's figures; {x} stands for a figure no report holds)
CLAIMS = [
    (REAL, SECTION["first"], R1, [
        "Answer: **{answer}**", "confidence **{confidence}**", "{steps} steps (calibration",
        "**{cycles} cycles**, **{wall} wall**", "{build_s} s of compile against {repro_s} s of repro",
        "Builds in order: {fb[0]} s (8.0.3, cold), {fb[1]} s (7.0.0, cold, other era), then "
        + _builds(2, 11) + " s as the steps close in, and **{fb[12]} s** for each of the last two",
        "**{fb[13]} s** for each of the last two"]),
    (REAL, SECTION["cold"], R2, [
        ANSWER + ", the same {steps} steps and {cycles} cycles", "**{wall} wall**",
        "Builds {build_s} s, repro {repro_s} s", "Builds in step order: {fb[0]} s (8.0.3, cold), {fb[1]} s "
        "(7.0.0, cold, other era), " + _builds(2, 11) + ", then {fb[12]} s and {fb[13]} s"]),
    (REAL, SECTION["cold"], R2B, [
        "**{wall} wall**: {commits} builds, all product cache hits ({build_s} s), and the same "
        "{cycles} cycles anew ({repro_s} s of repro)"]),
    (REAL, SECTION["third"], R3, [
        ANSWER + "; the same {steps} steps through the same commits, {cycles} cycles",
        "**{wall} wall**; builds {build_s} s, repro {repro_s} s", "builds of " + _builds(10, 13) + " s",
        "Builds in step order: {fb[0]} s (8.0.3, cold), {fb[1]} s (7.0.0, cold, other era), "
        + _builds(2, 13) + " s", "({build_s} + {repro_s}) / {steps} = {per_step} s a step"]),
    (REAL, SECTION["third"], R2, ["info: " + _builds(0, 13) + " s"]),
    (REAL, SECTION["fourth"], R4, [
        ANSWER + "; the same {steps} steps",
        "**{wall} wall**; builds {build_s} s, repro {repro_s} s, ({build_s} + {repro_s}) / {steps} = "
        "{per_step} s a step", "(8.0.3 {fb[0]} s against {x} s, 7.0.0 {fb[1]} s against {x} s, "
        "idx 1535 {fb[2]} s against", "against this run's {build_repro_s} s of build and repro",
        *(_naive_row(i) for i in (2, 8, 13))]),
    (REAL, SECTION["fourth"], R3, ["against {fb[0]} s, 7.0.0 {x} s against {fb[1]} s, idx 1535 {x} s "
                                   "against {fb[2]} s)"]),
    (REAL, SECTION["fifth"], R5, [
        ANSWER + "; the same {steps} steps",
        "**{wall} wall** on this machine (image build included); builds {build_s} s, repro {repro_s} s",
        "(8.0.3 {fb[0]} s against {x} s, 7.0.0 {fb[1]} s against {x} s, idx 1535 {fb[2]} s against",
        "against this run's {build_repro_s} s of build and repro",
        *(_row(i, "{x}", f"{{s[{i}][b]}} s", "{x}", "{x}", f"{{s[{i}][cargo]}}") for i in range(14)),
        *(_naive_row(i) for i in (2, 8, 13))]),
    (REAL, SECTION["fifth"], R4, [
        "against {fb[0]} s, 7.0.0 {x} s against {fb[1]} s, idx 1535 {x} s against {fb[2]} s;",
        *(_row(i, f"{{s[{i}][b]}} s", "{x}", "{x}", f"{{s[{i}][cargo]}}") for i in range(14))]),
    (REAL, SECTION["sixth"], R5, [
        _row(i, f"{{s[{i}][b]}} s", "{x}", "{x}", f"{{s[{i}][cargo]}}") for i in range(14)]),
    (REAL, SECTION["sixth"], R6B, [
        *(_row(i, "{x}", "{x}", "{x}", "{x}", f"{{s[{i}][cargo]}}") for i in range(14)),
        "the {cycles} cycles re-run, all {steps} builds product cache hits): **{wall}**"]),
    (REAL, SECTION["verify"], V1A, [
        "| 8.0.3 + widener + fixA.patch | {patched[cycles]} | {patched[hits]} | {patched[start]} | "
        "{patched[fwd]} |", "**{verdict}, confidence {confidence}**"]),
    (REAL, SECTION["verify"], V1B, [
        "| 8.0.3 + widener + fixB.patch | {patched[cycles]} | {patched[hits]} | {patched[start1]} | "
        "{patched[fwd]} |"]),
    (REAL, SECTION["verify"], V2A, [
        "| 8.0.3 + widener + fixA.patch | {patched[cycles]} | {patched[hits]} | {patched[start]} | "
        "{patched[fwd]} | {patched[build]} s (1 C unit) |", "| {base[build]} s clean, then cache hit |",
        "Wall time {wall} for fixA (the clean 8.0.3 build is {base[build]} s of it)"]),
    (REAL, SECTION["verify"], V2B, [
        "| 8.0.3 + widener + fixB.patch | {patched[cycles]} | {patched[hits]} | {patched[start]} | "
        "{patched[fwd]} | {patched[build]} s |", "{wall} for fixB", "both **{verdict}, confidence {confidence}**"]),
    (REAL, SECTION["nightly"], N1, [
        "{cycles} cold starts, **{hits} with the signature**", "Status **{status}, exit {exit_code}**",
        "{wall_s} s wall", "{cycles} clean cycles put it at {clean_confidence}"]),
    (REAL, SECTION["nightly"], N2, ["status **{status}, exit {exit_code}**"]),
    (REAL, SECTION["nightly"], NB, [
        "({size} commits) and named **{answer}**", "confidence **{confidence}**, {cycles} cycles",
        "{wall} for the bisection", "Builds of commits not built before: " + _builds(0, 7) + " s"]),
    (REAL, "## The two signals", R1, [
        "923ad6af77: {pc[923ad6af77][hits]} of {pc[923ad6af77][cycles]};",
        "7.0.0 {pc[21ec99aa76][hits]} of {pc[21ec99aa76][cycles]}; the parent b58b886db7 "
        "{pc[b58b886db7][hits]} of {pc[b58b886db7][cycles]};"]),
    (REAL, SECTION["naive"], R2, [*(_naive_row(i) for i in (2, 8, 13)),
                                  "against {build_repro_s} s of build and repro",
                                  "build cost {s[2][b]} s in the reused tree"]),
    (REAL, SECTION["bound"], R5, ["| fifth run: build + repro | " + " | ".join(
        f"{{s[{i}][t]}} s" for i in range(2, 9)) + " |"]),
]
NOTEBOOK, TRUST = "docs/results/lab-notebook.md", "docs/results/2026-12-01-trust-and-scenarios.md"
VERIFY_ROW = ("| fix{0} | {{verdict}}, {{confidence}} | {{base[hits]}} of {{base[cycles]}} hit | {{patched[hits]}} "
              "of {{patched[cycles]}} | {{base[unhealthy]}} / {{patched[unhealthy]}} | {{base[median]}} s / "
              "{{patched[median]}} s | {{wall_s}} s")
CLAIMS += [
    (NOTEBOOK, None, RL, ["named {answer10} at {confidence} in {wall} with {far} far builds"]),
    (NOTEBOOK, None, R2, ["named **{answer10}** at {confidence} in {wall}"]),
    (NOTEBOOK, None, R2B, ["a second run on the same workdir took {wall}"]),
    (NOTEBOOK, None, R3, ["a run from empty caches took {wall}"]),
    (NOTEBOOK, None, R4, ["a fourth run gave the same answer in {wall}"]),
    (NOTEBOOK, None, R5, ["gave the same answer in {wall} on a machine"]),
    (NOTEBOOK, None, R6B, ["a second run took {wall}"]),
    (NOTEBOOK, None, V2A, ["cleared fixA and fixB at {confidence} again (baseline {base[hits]} of {base[cycles]})"]),
    (NOTEBOOK, None, V2B, ["cleared fixA and fixB at {confidence} again (baseline {base[hits]} of {base[cycles]})"]),
    (NOTEBOOK, None, RS, ["named {answer10} at {confidence} in the same {steps} steps with {unhealthy} unhealthy "
                          "cycles ({wall}, {cached} of {commits} builds cached"]),
    (NOTEBOOK, None, V3A, ["cleared fixA and fixB at {confidence} again:"]),
    (NOTEBOOK, None, V3B, ["cleared fixA and fixB at {confidence} again:"]),
    (TRUST, None, RS, [
        "**{answer10} at {confidence}**, the same {steps} steps", "{unhealthy} unhealthy cycles in the run",
        "forwarded {fwd} frames after start, of {offered} offered",
        "calibration on suricata-8.0.3 {cal[0][hits]} hits in {cal[0][cycles]} cycles (machine {cal[0][busy]}% "
        "busy), re-calibration on 923ad6af77 at the end {cal[1][hits]} hits in {cal[1][cycles]} ({cal[1][busy]}% busy)",
        "{wall} wall: {cached} of the {commits} builds were product-cache hits",
        "{builds} were built, {build_s} s of building in all"]),
    (TRUST, None, V3A, [VERIFY_ROW.format("A")]),
    (TRUST, None, V3B, [VERIFY_ROW.format("B")]),
    (TRUST, None, N3, [
        "**{status}, exit {exit_code}**; {cycles} cycles, {hits} hits, {unhealthy} unhealthy, {infra} "
        "infrastructure failures, clean at {clean_confidence}", "{wall}, a cold build of main included"]),
    ("docs/results/2026-12-01-time-to-answer.md", None, R6B, ["slower than the {wall} of 2026-11-28"]),
    ("README.md", None, RL, ["(confidence {confidence})", "{answer10}** (af-packet: speed up thread sync "
                             "during startup) at {confidence}"]),
    ("README.md", None, V3A, ["{summary}", "fixA and fixB each clear the race at {confidence}"]),
    ("README.md", None, V3B, ["fixA and fixB each clear the race at {confidence}"]),
]


def section(text: str, heading: str | None) -> str:
    """The part of a document from `heading` to the next '## ' heading (all of it for None)."""
    if heading is None:
        return text
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def claim_pattern(line: str) -> re.Pattern:
    """The line as a regex: any run of whitespace (a line break and its indent) matches any
    other, and {x} (a figure no report holds) matches anything within a line."""
    words = [re.escape(w).replace(re.escape("{x}"), r"[^\n]+?") for w in line.split()]
    return re.compile(r"\s+".join(words))


def claim_problems(claims=None) -> list[str]:
    """Every claim of CLAIMS that its document's section does not state, as the report has it
    under both roundings: 'document: line (from STEM)'."""
    problems = []
    for doc, heading, stem, lines in claims or CLAIMS:
        text = section((ROOT / doc).read_text(), heading)
        variants = report_figures(stem)
        for line in lines:
            wanted = [line.format(**f, x="{x}") for f in variants]
            if not any(claim_pattern(w).search(text) for w in wanted):
                problems.append(f"{doc}: {wanted[0]} (from {stem}.json)")
    return problems


# The reports' own Markdown (written by afpbisect from the same result, then committed beside
# it): their headline figures and step rows must be the JSON's too.

def _secs(x: float) -> str:
    """As the report templates print seconds (afpbisect/reports/report.py, `secs`)."""
    return f"{x:.0f}s" if x < 120 else f"{x // 60:.0f}m{x % 60:02.0f}s"


def generated_lines(report: dict) -> list[str]:
    """Lines a report's own Markdown states, exactly, from its JSON."""
    cmd, wall = report["command"], _secs(report["wall_seconds"])
    if cmd == "run":
        r = report["result"]
        return [f"**First bad commit: `{r['first_bad'][:10]}`**", f"Confidence: **{100 * r['confidence']:.3f}%**",
                f"| total cycles | {r['total_cycles']} |",
                f"| total cycles | {sum(s['new_cycles'] for s in report['steps'])} |",
                f"| wall time | {wall} |"]
    if cmd == "verify-patch":
        return [f"**{report['summary']}**", f"- wall time {wall}.", f"confidence {100 * report['confidence']:.3f}%",
                *(f"| {report[k]['cycles']} | {report[k]['hits']} |" for k in ("baseline", "patched"))]
    return [f"| exit code | {report['exit_code']} |", f"{report['verdict']}: {report['cycles']} cycles, "
            f"{report['hits']} with"]


def step_row_problems(report: dict, text: str) -> list[str]:
    """Each row of a run report's step table against its step in the JSON, by column name."""
    lines = text.splitlines()
    head = next(i for i, l in enumerate(lines) if l.startswith("| # | commit | position |"))
    names = [c.strip() for c in lines[head].strip("|").split("|")]
    rows = [l for l in lines[head + 2:head + 2 + len(report["steps"])]]
    problems = []
    for n, (row, s) in enumerate(zip(rows, report["steps"]), 1):
        cells = dict(zip(names, (c.strip() for c in row.strip("|").split("|"))))
        want = {"#": str(n), "commit": f"`{s['commit'][:10]}`", "position": str(s["position"]),
                "role": s["role"], "verdict": s["verdict"], "cycles": str(s["cycles"]), "hits": str(s["hits"]),
                "build": _secs(s["build_seconds"]), "repro": _secs(s["repro_seconds"])}
        problems += [f"step {n} {k}: {cells.get(k)!r}, the JSON {v!r}" for k, v in want.items() if cells.get(k) != v]
    return problems


def generated_problems(path: Path) -> list[str]:
    """What the Markdown beside a committed report (same stem) states otherwise than its JSON."""
    report = json.loads(path.read_text())
    md = path.with_suffix(".md")
    if report.get("command") not in FIGURES or not md.exists():
        return []
    text = md.read_text()
    problems = [f"{md.name}: no {line!r}" for line in generated_lines(report) if line not in text]
    if report["command"] == "run":
        problems += [f"{md.name}: {p}" for p in step_row_problems(report, text)]
    return problems


def check() -> int:
    """`--check`: every document's claims and every report's own Markdown against the JSON."""
    problems = claim_problems() + [p for j in sorted(RESULTS.glob("*.json")) for p in generated_problems(j)]
    for p in problems:
        print(p)
    print(f"{sum(len(c[3]) for c in CLAIMS)} claims in {len({c[0] for c in CLAIMS})} documents, "
          f"{len(list(RESULTS.glob('*.json')))} reports: {len(problems)} disagree with their JSON")
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        return check()
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
