"""Geometry of the reports' pictures (issue 19), drawn as inline SVG by the HTML templates.

Pure: a saved result in, numbers and labels out, so a plot can be tested without a browser
and a report re-rendered from its JSON.  No JavaScript and nothing fetched: a report is
read on a CI artifact page or offline, years later.

The run plot is the classic bisection picture: one row per probe, top to bottom in the
order the policy made them; x is the commit's index in GOOD..BAD (first-parent, as the
range is), a grey bar is the window the probe was made in, the dot its verdict; the final
window (last good .. first bad) is a band across every row.
"""
from __future__ import annotations

from afpbisect.reports.results import RunResult, Side, Step, VerifyResult, given

COLORS = {"bad": "#c62828", "good": "#2e7d32", "skip": "#ef6c00"}
OTHER = "#757575"

# Pixels.  The labels' columns are fixed so that a commit at index 0 and one at the far end
# never run into their text.
WIDTH, LEFT, RIGHT, TOP, ROW, BOTTOM = 1100, 250, 190, 34, 24, 56


def _narrow(window: tuple[int, int], step: Step) -> tuple[int, int]:
    """The window after a search step: GOOD moves the low end up, BAD the high end down.
    Only search steps narrow it: the endpoints are its ends already and verify/confirm
    re-test what the search decided."""
    lo, hi = window
    if step.role != "search":
        return window
    if step.verdict == "good":
        return max(lo, step.position), hi
    if step.verdict == "bad":
        return lo, min(hi, step.position)
    return window


def _final_window(result: RunResult) -> tuple[int, int] | None:
    """(last good, first bad) positions when the run found one commit."""
    r = result.answer
    if r.status != "found" or len(given(r.candidates, [])) != 1:
        return None
    culprit = r.candidates[0]
    bad = next((s.position for s in result.steps if s.commit == culprit), None)
    if bad is None:
        return None
    goods = [s.position for s in result.steps if s.verdict == "good" and s.position < bad]
    return (max(goods) if goods else 0), bad


def _ticks(lo: int, hi: int, x) -> list[dict]:
    """About five round ticks over [lo, hi]."""
    if hi <= lo:
        return [{"x": x(lo), "label": str(lo)}]
    raw = (hi - lo) / 5
    mag = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 1
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = -(-lo // step) * step
    return [{"x": x(v), "label": str(v)} for v in range(first, hi + 1, step)]


def _windows(steps: tuple[Step, ...], size: int) -> list[tuple[int, int]]:
    """The window each step was made in."""
    out, window = [], (0, size)
    for s in steps:
        out.append(window)
        window = _narrow(window, s)
    return out


def _panel(result: RunResult, first: int, lo: int, hi: int) -> dict:
    """Rows of steps[first:] drawn over commit indices [lo, hi]."""
    size = max(1, int(result.range.size))
    span, width = WIDTH - LEFT - RIGHT, max(1, hi - lo)
    steps = given(result.steps, ())
    windows = _windows(steps, size)

    def x(pos):
        return round(LEFT + span * (min(max(pos, lo), hi) - lo) / width, 1)

    rows = []
    for k, s in enumerate(steps[first:]):
        i, y = first + k, TOP + ROW * k + ROW // 2
        verdict = given(s.verdict, "")
        hits, cycles = given(s.hits, 0), given(s.cycles, 0)
        rows.append({"y": y, "x": x(s.position), "x_lo": x(windows[i][0]), "x_hi": x(windows[i][1]),
                     "color": COLORS.get(verdict, OTHER), "verdict": verdict, "n": i + 1,
                     "label": f"{i + 1}. {given(s.role, '')} {s.commit[:10]} [{s.position}]",
                     "value": f"{verdict.upper()} {hits} hit{'s' if hits != 1 else ''}"
                              f" / {cycles} cycle{'s' if cycles != 1 else ''}",
                     "step": s.to_dict()})   # the templates read the JSON form
    height = TOP + ROW * max(1, len(rows)) + BOTTOM
    final = _final_window(result)
    band = None
    if final is not None:
        a, b = x(final[0]), x(final[1])
        band = {"x": a - 2, "width": max(b - a, 0) + 4, "label": f"[{final[0]}] .. [{final[1]}]"}
    return {"width": WIDTH, "height": height, "left": LEFT, "right": WIDTH - RIGHT, "top": TOP,
            "axis_y": height - BOTTOM + 8, "rows": rows, "ticks": _ticks(lo, hi, x), "band": band,
            "lo": lo, "hi": hi, "size": size}


def run_plot(result: RunResult) -> dict:
    """The bisection of a `run` result over the whole range, and a zoom on the steps made
    once the window was under 1/16 of it: on 3070 commits the last eight probes of the real
    run fall within 12 commits, one pixel apart at full scale."""
    size = max(1, int(result.range.size))
    whole = _panel(result, 0, 0, size)
    steps = given(result.steps, ())
    windows = _windows(steps, size)
    first = next((i for i, (a, b) in enumerate(windows) if b - a <= size / 16), None)
    if first is None or len(steps) - first < 3:
        return dict(whole, zoom=None)
    pos = [s.position for s in steps[first:]] + list(windows[first])
    pad = max(1, (max(pos) - min(pos)) // 10)
    zoom = _panel(result, first, max(0, min(pos) - pad), min(size, max(pos) + pad))
    return dict(whole, zoom=zoom)


def _cells(side: Side, facts: dict) -> list[dict]:
    """One cell per valid cycle: hit or clean, with its signature lines when recorded.

    Results written before the per-cycle outcomes were kept (2026-12-01 and older) have only
    the totals: then the cells say only how many hit, not which ones ("order" False)."""
    outcomes = facts.get("cycle_outcomes")
    counts = facts.get("signature_counts") or []
    if outcomes:
        cells = [{"hit": o == "hit", "lines": counts[i] if i < len(counts) else None, "outcome": o}
                 for i, o in enumerate(outcomes) if o in ("hit", "clean")]
        return [dict(c, order=True) for c in cells]
    n, hits = int(side.cycles or 0), int(side.hits or 0)
    known = hits in (0, n)   # all hit or all clean: the order is known after all
    return [{"hit": i < hits, "lines": None, "outcome": "hit" if i < hits else "clean", "order": known}
            for i in range(n)]


def verify_plot(result: VerifyResult) -> dict:
    """Hits per cycle of a verify-patch result: the baseline row, then the patched row."""
    cell, gap, left = 26, 4, 250
    rows = []
    for i, (name, side, facts) in enumerate((
            ("baseline (test patches)", result.baseline, given(result.baseline_facts, {})),
            ("patched", result.patched, given(result.patched_facts, {})))):
        cells = _cells(side, facts)
        y = 8 + i * (cell + 26)
        rows.append({"name": name, "y": y, "hits": given(side.hits, 0), "cycles": given(side.cycles, 0),
                     "cells": [dict(c, x=left + k * (cell + gap), n=k + 1,
                                    color=COLORS["bad"] if c["hit"] else COLORS["good"])
                               for k, c in enumerate(cells)]})
    n = max((len(r["cells"]) for r in rows), default=0)
    width = max(600, left + n * (cell + gap) + 40)
    ordered = all(c["order"] for r in rows for c in r["cells"])
    return {"width": width, "height": 8 + 2 * (cell + 26), "cell": cell, "left": left,
            "rows": rows, "ordered": ordered}
