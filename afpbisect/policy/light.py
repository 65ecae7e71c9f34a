"""The level of a light GOOD, priced in builds rather than in cycles (issue 18).

A light GOOD only steers the search (a false one costs time, never correctness: the clean
side of the final boundary is always verified), so its level is an economic choice, not a
statistical one. It used to be `clean_cycles_needed(p_hat, 0.1)`: with a calibration of 8
hits in 8 that is ONE clean cycle, and on the real range without the widener two racy
commits (idx 1726, 1774) were each called GOOD on one clean cycle; the search then spent
several far builds in a window without the culprit before a verification caught it.

A cycle costs seconds and a wrong GOOD costs builds, so the level is the k that minimises
    k * cycle_seconds + (1 - p_low) ** k * wasted_seconds
with p_low the calibration's LOWER bound (a lucky calibration must not make GOODs cheap)
and wasted_seconds what a false GOOD at this step throws away: the search goes on in a
window with no culprit, about log2(window) probes at the price of building them, until
the verification of its boundary catches it.
"""
from __future__ import annotations

import math

MAX_LEVEL = 64   # a level beyond this buys nothing a verification would not


def priced_level(p_low: float, cycle_seconds: float, wasted_seconds: float) -> int:
    """Clean cycles that minimise cycles spent + expected build time wasted (>= 1)."""
    if not 0.0 < p_low <= 1.0:
        raise ValueError(f"p_low must be in (0, 1], got {p_low!r}")
    miss = 1.0 - p_low

    def price(k: int) -> float:
        return k * cycle_seconds + miss ** k * wasted_seconds

    return min(range(1, MAX_LEVEL + 1), key=lambda k: (price(k), k))


def wasted_seconds(window: tuple[int, int], probe_cost, samples: int = 8) -> float:
    """What a false GOOD in `window` (lo, hi) costs: log2 of the window's size in probes,
    each priced at the mean of `probe_cost` over `samples` evenly spaced commits of it."""
    lo, hi = window
    size = max(2, hi - lo)
    inside = [lo + 1 + round(j * (size - 2) / max(1, samples - 1)) for j in range(samples)]
    inside = [i for i in inside if lo < i < hi] or [lo + 1]
    mean = sum(probe_cost(i) for i in inside) / len(inside)
    return math.log2(size) * mean
