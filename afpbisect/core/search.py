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

from afpbisect.core.verdict import Verdict


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


def after_answer(verdict: Verdict, i: int, lo: int, hi: int, skipped: set) -> tuple[int, int]:
    """The window after `i` answered `verdict` (a SKIP is remembered in `skipped`)."""
    if verdict is Verdict.GOOD:
        return i, hi
    if verdict is Verdict.BAD:
        return lo, i
    if verdict is Verdict.SKIP:
        skipped.add(i)
        return lo, hi
    raise ValueError(f"oracle returned {verdict!r} for index {i}; want GOOD, BAD or SKIP")


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
        lo, hi = after_answer(verdict, i, lo, hi, skipped)
    return SearchResult(
        candidates=list(range(lo + 1, hi + 1)),
        first_bad_index=hi,
        last_good_index=lo,
        steps=steps,
    )


# --- weighted, cost-aware search (issue 18) ---------------------------------------------

def _divergence(q: float, t: float) -> float:
    """Bits a probe gives up when it sends the culprit left with probability q where the
    split wanted sends it left with probability t: the relative entropy D(q || t) of the
    two-way split. At t = 1/2 it is 1 - H(q), the bits short of a full bit that
    `weighted_pick` has always ranked by; for t != 1/2 (the k-ary search's cuts) it is the
    same kind of loss, so one `slack` in bits means the same thing for every cut."""
    loss = 0.0
    for a, b in ((q, t), (1.0 - q, 1.0 - t)):
        if a > 0.0:
            loss += a * math.log2(a / b)
    return max(0.0, loss)


def quantile_pick(lo: int, hi: int, skipped: set, prefix: list, t: float, point: int,
                  cost=None, slack: float = 0.0) -> int | None:
    """The probe in (lo, hi), not in `skipped`, that sends a fraction `t` of the window's
    prior mass to its left (mass of (a, b] = prefix[b] - prefix[a]).

    With `cost(i)` the cheapest probe among those that lose at most `slack` bits against
    the best cut is taken (`_divergence`). Ties: the better cut, then the one nearest the
    count `point` (git's midpoint for t = 1/2, so a uniform prior asks what git asks).
    """
    total = prefix[hi] - prefix[lo]
    cands = [i for i in range(lo + 1, hi) if i not in skipped]
    if not cands:
        return None
    if total <= 0.0:   # no mass left in the window: cut by count
        return min(cands, key=lambda i: (abs(i - point), i))
    # rounded: equal cuts must tie exactly, whatever the float sums did
    loss = {i: round(_divergence((prefix[i] - prefix[lo]) / total, t), 9) for i in cands}
    best = min(loss.values())
    pool = [i for i in cands if loss[i] <= best + (slack if cost is not None else 0.0) + 1e-9]
    return min(pool, key=lambda i: (cost(i) if cost is not None else 0.0, loss[i],
                                    abs(i - point), i))


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
    return quantile_pick(lo, hi, skipped, prefix, 0.5, midpoint(lo, hi), cost, slack)


def _prefix(n: int, weights) -> list:
    """Cumulative prior mass over 0..n-1 (index 0, the known-good endpoint, gets none)."""
    w = [1.0] * n if weights is None else [max(0.0, float(x)) for x in weights]
    if len(w) != n:
        raise ValueError(f"need {n} weights, got {len(w)}")
    prefix = [0.0]
    for i in range(1, n):
        prefix.append(prefix[-1] + w[i])
    return prefix


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
    prefix = _prefix(n, weights)
    lo, hi = 0, n - 1
    skipped: set = set()
    steps: list = []
    while (i := weighted_pick(lo, hi, skipped, prefix, cost, slack)) is not None:
        verdict = oracle(i, (lo, hi))
        steps.append((i, verdict))
        lo, hi = after_answer(verdict, i, lo, hi, skipped)
    return SearchResult(candidates=list(range(lo + 1, hi + 1)), first_bad_index=hi,
                        last_good_index=lo, steps=steps)


# --- k-ary search: k engines probe in parallel (issue 20) --------------------------------

@dataclass
class BatchSearchResult(SearchResult):
    rounds: list = field(default_factory=list)    # the batches asked, one per round
    overruled: list = field(default_factory=list)  # GOODs a lower BAD of the same round overruled


def count_point(lo: int, hi: int, j: int, k: int) -> int:
    """The index that cuts (lo, hi] at j/(k+1) by count; the middle cut is git's midpoint,
    so that k = 1 (and any odd k's middle probe) asks where git would."""
    if 2 * j == k + 1:
        return midpoint(lo, hi)
    return lo + (hi - lo) * j // (k + 1)


def batch_pick(lo: int, hi: int, skipped: set, prefix: list, k: int, cost=None,
               slack: float = 0.0) -> list[int]:
    """Up to k distinct probes in (lo, hi) that cut the window's prior mass into k + 1
    parts (each by `quantile_pick`, at j/(k+1) for j = 1..k), oldest first. A cut whose
    best probe is already taken takes its next best, so a window with at most k untested
    commits is asked whole in one round."""
    chosen: list = []
    for j in range(1, k + 1):
        i = quantile_pick(lo, hi, skipped | set(chosen), prefix, j / (k + 1),
                          count_point(lo, hi, j, k), cost, slack)
        if i is None:
            break
        chosen.append(i)
    return sorted(chosen)


def narrow(lo: int, hi: int, answers: list) -> tuple[int, int, list]:
    """The window (lo, hi) left by one round's answers [(index, Verdict)], and the GOODs
    it overrules.

    The first BAD bounds the window above; the last GOOD below it bounds it below. A GOOD
    above a BAD cannot happen with a monotone oracle; when a noisy one gives it, the BAD
    is trusted and the GOOD overruled: in afpbisect a BAD is a hit, and a hit is proof
    (verdict.py), while a GOOD is only "no hit in enough clean cycles", a light level that
    may be wrong. One engine would never have asked that GOOD (the BAD would have cut it
    off first), so overruling it gives the answer one engine gives; the boundary's clean
    side is still verified after the search. The caller may count it as a false GOOD met.
    """
    for i, v in answers:
        if v not in (Verdict.GOOD, Verdict.BAD, Verdict.SKIP):
            raise ValueError(f"oracle returned {v!r} for index {i}; want GOOD, BAD or SKIP")
    new_hi = min((i for i, v in answers if v is Verdict.BAD), default=hi)
    goods = [i for i, v in answers if v is Verdict.GOOD]
    new_lo = max((i for i in goods if i < new_hi), default=lo)
    return new_lo, new_hi, sorted(i for i in goods if i > new_hi)


def kary_least_satisfying(n: int, oracle: Callable[[list, tuple], list], k: int,
                          weights=None, cost=None, slack: float = 0.0) -> BatchSearchResult:
    """`weighted_least_satisfying` for k engines: each round asks up to k commits at once,
    `oracle(batch, (lo, hi)) -> [Verdict per index of batch]`, at the cuts that split the
    window's prior mass into k + 1 parts (`batch_pick`), and narrows the window on all the
    answers (`narrow`). k = 1 asks exactly what `weighted_least_satisfying` asks. Same
    answer as `least_satisfying` for every monotone oracle, skips included
    (tests/test_search.py, against brute force); each index is asked at most once.
    """
    if n < 2:
        raise ValueError(f"need at least the two endpoints, got n={n}")
    if k < 1:
        raise ValueError(f"need at least one engine, got k={k}")
    prefix = _prefix(n, weights)
    lo, hi = 0, n - 1
    skipped: set = set()
    res = BatchSearchResult(candidates=[], first_bad_index=hi, last_good_index=lo)
    while batch := batch_pick(lo, hi, skipped, prefix, k, cost, slack):
        verdicts = list(oracle(batch, (lo, hi)))
        if len(verdicts) != len(batch):
            raise ValueError(f"oracle answered {len(verdicts)} of a batch of {len(batch)}")
        answers = list(zip(batch, verdicts))
        res.rounds.append(batch)
        res.steps += answers
        lo, hi, overruled = narrow(lo, hi, answers)
        res.overruled += overruled
        skipped |= {i for i, v in answers if v is Verdict.SKIP}
    res.candidates = list(range(lo + 1, hi + 1))
    res.first_bad_index, res.last_good_index = hi, lo
    return res
