"""Pure bisection over indexes 0..n-1 with an oracle, skips handled like `git bisect skip`.

Modelled on cargo-bisect-rustc's `least_satisfying`: generic, memoized, nothing in it knows
about builds, containers or hit rates. Index 0 is known GOOD and n-1 known BAD; neither is
asked. The answer is git bisect's: the commits in (last good, first bad]; more than one
when every commit between them was skipped ("The first bad commit could be any of").
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from .verdict import Verdict


@dataclass
class SearchResult:
    candidates: list  # indexes (last_good_index, first_bad_index]
    first_bad_index: int
    last_good_index: int
    steps: list = field(default_factory=list)  # (index, Verdict) in test order

    @property
    def exact(self) -> bool:
        return len(self.candidates) == 1

    @property
    def skipped(self) -> list:
        return [i for i, v in self.steps if v is Verdict.SKIP]


def midpoint(lo: int, hi: int) -> int:
    """The index git bisect tests first between known-good `lo` and known-bad `hi`.

    Measured against git 2.47 on a linear history (tests/test_search.py re-checks it):
    lo + (hi - lo) // 2, except that with two commits left git takes the newer one.
    """
    if hi - lo == 3:
        return lo + 2
    return lo + (hi - lo) // 2


def _pick(lo: int, hi: int, skipped: set) -> int | None:
    """The untested, unskipped index in (lo, hi) nearest git's midpoint (ties: older)."""
    mid = midpoint(lo, hi)
    for d in range(0, hi - lo):
        for i in (mid - d, mid + d) if d else (mid,):
            if lo < i < hi and i not in skipped:
                return i
        if mid - d <= lo and mid + d >= hi:
            break
    return None


def least_satisfying(n: int, oracle: Callable[[int], Verdict]) -> SearchResult:
    """Find the first BAD index of a monotone GOOD...BAD sequence of length n.

    `oracle(i)` returns GOOD, BAD or SKIP and is asked at most once per index. A skipped
    index is never asked again; the next pick is the nearest unskipped index to the middle.
    """
    if n < 2:
        raise ValueError(f"need at least the two endpoints, got n={n}")
    lo, hi = 0, n - 1
    skipped: set = set()
    memo: dict = {}
    steps: list = []
    while True:
        i = _pick(lo, hi, skipped)
        if i is None:
            break
        if i in memo:  # cannot happen with the rules above; kept as the memo's contract
            verdict = memo[i]
        else:
            verdict = oracle(i)
            memo[i] = verdict
            steps.append((i, verdict))
        if verdict is Verdict.GOOD:
            lo = i
        elif verdict is Verdict.BAD:
            hi = i
        elif verdict is Verdict.SKIP:
            skipped.add(i)
        else:
            raise ValueError(f"oracle returned {verdict!r} for index {i}; want GOOD, BAD or SKIP")
    return SearchResult(
        candidates=list(range(lo + 1, hi + 1)),
        first_bad_index=hi,
        last_good_index=lo,
        steps=steps,
    )


# --- weighted, cost-aware search (issue 18) ---------------------------------------------

def _entropy(q: float) -> float:
    """Bits a probe gives when it sends the culprit left with probability q."""
    if q <= 0.0 or q >= 1.0:
        return 0.0
    return -(q * math.log2(q) + (1.0 - q) * math.log2(1.0 - q))


def weighted_pick(lo: int, hi: int, skipped: set, prefix: list, cost=None,
                  slack: float = 0.0) -> int | None:
    """The probe in (lo, hi) for a culprit in (lo, hi] with prior mass `prefix` (cumulative:
    mass of (a, b] = prefix[b] - prefix[a]).

    Bayesian bisection: the best probe sends half the window's mass each way (its answer
    is then worth a full bit). With `cost(i)` (build seconds) the cheapest probe among
    those that lose at most `slack` bits against the best is taken: a cached or
    near-built commit is worth a slightly worse split. Ties: the better split, then the
    one nearest the window's middle by count (so a uniform prior gives git's midpoint).
    """
    total = prefix[hi] - prefix[lo]
    cands = [i for i in range(lo + 1, hi) if i not in skipped]
    if not cands:
        return None
    if total <= 0.0:   # no mass left in the window: plain bisection by count
        return min(cands, key=lambda i: (abs(i - midpoint(lo, hi)), i))
    # rounded: equal splits must tie exactly, whatever the float sums did
    info = {i: round(_entropy((prefix[i] - prefix[lo]) / total), 9) for i in cands}
    best = max(info.values())
    mid = midpoint(lo, hi)
    pool = [i for i in cands if info[i] >= best - (slack if cost is not None else 0.0) - 1e-9]
    return min(pool, key=lambda i: (cost(i) if cost is not None else 0.0, -info[i],
                                    abs(i - mid), i))


def weighted_least_satisfying(n: int, oracle: Callable[[int, tuple], Verdict], weights=None,
                              cost=None, slack: float = 0.0) -> SearchResult:
    """`least_satisfying` with a prior and a price: `weights[i]` is the prior mass that
    index i is the first BAD one (index 0 cannot be; None = uniform), `cost(i)` what
    asking i costs now. `oracle(i, (lo, hi))` also gets the window the answer splits, so
    the caller can price a wrong answer. Same answer as `least_satisfying` for every
    monotone oracle, and the same skip rule (tests/test_search.py, against brute force);
    only the order of the questions changes.
    """
    if n < 2:
        raise ValueError(f"need at least the two endpoints, got n={n}")
    w = [1.0] * n if weights is None else [max(0.0, float(x)) for x in weights]
    if len(w) != n:
        raise ValueError(f"need {n} weights, got {len(w)}")
    prefix = [0.0]
    for i in range(1, n):
        prefix.append(prefix[-1] + w[i])
    prefix[0] = 0.0
    lo, hi = 0, n - 1
    skipped: set = set()
    steps: list = []
    while (i := weighted_pick(lo, hi, skipped, prefix, cost, slack)) is not None:
        verdict = oracle(i, (lo, hi))
        steps.append((i, verdict))
        if verdict is Verdict.GOOD:
            lo = i
        elif verdict is Verdict.BAD:
            hi = i
        elif verdict is Verdict.SKIP:
            skipped.add(i)
        else:
            raise ValueError(f"oracle returned {verdict!r} for index {i}; want GOOD, BAD or SKIP")
    return SearchResult(candidates=list(range(lo + 1, hi + 1)), first_bad_index=hi,
                        last_good_index=lo, steps=steps)
