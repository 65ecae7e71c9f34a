"""Pure bisection over indexes 0..n-1 with an oracle, skips handled like `git bisect skip`.

Modelled on cargo-bisect-rustc's `least_satisfying`: generic, memoized, nothing in it knows
about builds, containers or hit rates. Index 0 is known GOOD and n-1 known BAD; neither is
asked. The answer is git bisect's: the commits in (last good, first bad]; more than one
when every commit between them was skipped ("The first bad commit could be any of").
"""
from __future__ import annotations

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
