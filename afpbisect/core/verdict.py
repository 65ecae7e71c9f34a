"""Verdicts, per-commit evidence and THE good/bad rule.

The facts the rule rests on (NOTES.md, "The repro"; docs/scenarios.md):

* a scenario's hit (for ticket 8667, the ENOTSOCK line on fd 0) never appears on a commit
  without the bug: ONE hit is definitive proof of BAD;
* on a commit with a flaky bug a cycle shows it only with probability p (8667: about 0.25
  without the test-only widener, about 1 with it), so "no hit" is only evidence,
  never proof: GOOD needs enough clean cycles that a bad commit would have shown a hit by
  then, except with a small probability `miss` = (1 - p) ** clean;
* an infrastructure error (Docker, the container, the driver) is no evidence at all;
  it is retried, and too many in a row abort the run (syzkaller's rule: an infrastructure
  error never becomes a verdict);
* a cycle in which the target itself did not run as the health rule asks (no start
  marker, an exit of its own, no traffic forwarded on a pair) proves nothing either: a
  commit whose IPS path never comes up cannot show the signature, so counting it clean
  would call it GOOD (issue 16). It is UNHEALTHY, not counted; a commit that keeps being
  unhealthy is SKIP, as is one that does not build (`git bisect skip`).

Everything here is pure: no I/O, no Docker, no git.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass


class Verdict(enum.Enum):
    """The verdict on one commit, in race terms: BAD = the race is there."""

    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"
    ERROR = "error"


class CycleOutcome(enum.Enum):
    """What one cold start of the target showed."""

    HIT = "hit"  # the exact race signature appeared
    CLEAN = "clean"  # healthy (started, forwarded on every pair, stopped), no signature
    UNHEALTHY = "unhealthy"  # the target ran but not as the health rule asks: not evidence
    INFRA = "infra"  # the machinery (Docker, container, driver) failed: not evidence


# How far unhealthy cycles may lead healthy ones before a commit is SKIP (`untestable`).
UNHEALTHY_LEAD = 3


_FIELDS = ("cycles", "hits", "infra", "consecutive_infra", "build_error", "verdict", "clean_needed",
           "unhealthy", "mark", "calib", "lower", "rate")
# Keys a state file written before they existed may lack, with the value they then had.
_OPTIONAL = {"unhealthy": 0, "mark": None, "calib": None, "lower": None, "rate": None}


@dataclass
class Evidence:
    """Everything learnt about one commit; the unit of the resumable state.

    `cycles` counts every cycle run, infrastructure failures and unhealthy cycles included
    (they cost time); `clean` (derived) is the healthy cycles that showed no signature.
    `verdict` is the last decision. `clean_needed` is the level a GOOD was judged at: the
    clean cycles the search saw when it called the commit GOOD. A later verification of
    the same commit counts only clean cycles beyond it and leaves it alone (policy.py), so
    a resumed run knows which cycles were fresh.
    """

    cycles: int = 0
    hits: int = 0
    infra: int = 0
    consecutive_infra: int = 0
    build_error: str | None = None
    verdict: Verdict | None = None
    clean_needed: int = 0
    unhealthy: int = 0
    # [hits, valid cycles] when a re-calibration of this commit began (policy.py): the
    # cycles after it are a fresh sample, unselected by the search that chose the commit.
    mark: list | None = None
    # [hits, valid] when this commit's calibration began, then [.., .., hits, valid] when it
    # ended (policy/calibrate.py): the reference sample of every verification. Cycles
    # before its start (the hit that showed the commit racy) selected it and are left out.
    calib: list | None = None
    # [hits, valid, other's hits, other's valid]: this commit's fresh sample and the one of
    # the commit on the other side of the boundary, taken cycle by cycle, once this one was
    # shown racy at a LOWER rate (policy/rates.py, issue 25): the
    # race was there already, and that commit only changed its rate. The search then
    # places it on the clean side of the rate step, so a resumed run ends where this did.
    lower: list | None = None
    # Set while this commit is the clean side of a boundary under test (policy/verify.py,
    # rates.py): [] during its verification, [hits, valid] of the other side when their
    # cycle-by-cycle rate samples began. A run killed meanwhile finds the test pending: the
    # search sees the commit as it did (GOOD), and the test goes on where it stopped.
    rate: list | None = None

    @property
    def clean(self) -> int:
        return self.cycles - self.hits - self.infra - self.unhealthy

    @property
    def valid_cycles(self) -> int:
        """Cycles that count as evidence (hits + clean)."""
        return self.hits + self.clean

    def add(self, outcome: CycleOutcome) -> None:
        self.cycles += 1
        if outcome is CycleOutcome.HIT:
            self.hits += 1
            self.consecutive_infra = 0
        elif outcome is CycleOutcome.CLEAN:
            self.consecutive_infra = 0
        elif outcome is CycleOutcome.UNHEALTHY:
            # The machinery worked (the target ran and was watched): not an infra streak.
            self.unhealthy += 1
            self.consecutive_infra = 0
        elif outcome is CycleOutcome.INFRA:
            self.infra += 1
            self.consecutive_infra += 1
        else:
            raise TypeError(f"not a CycleOutcome: {outcome!r}")

    def to_dict(self) -> dict:
        return {
            "cycles": self.cycles,
            "hits": self.hits,
            "infra": self.infra,
            "consecutive_infra": self.consecutive_infra,
            "build_error": self.build_error,
            "verdict": None if self.verdict is None else self.verdict.value,
            "clean_needed": self.clean_needed,
            "unhealthy": self.unhealthy,
            "mark": None if self.mark is None else list(self.mark),
            "calib": None if self.calib is None else list(self.calib),
            "lower": None if self.lower is None else list(self.lower),
            "rate": None if self.rate is None else list(self.rate),
        }

    def calibration(self) -> tuple[int, int] | None:
        """(hits, valid cycles) of the finished calibration on this commit, else None."""
        if self.calib is None or len(self.calib) != 4:
            return None
        return self.calib[2] - self.calib[0], self.calib[3] - self.calib[1]

    def since_mark(self) -> tuple[int, int]:
        """(hits, valid cycles) after `mark`: the re-calibration's own sample."""
        if self.mark is None:
            return 0, 0
        return self.hits - self.mark[0], self.valid_cycles - self.mark[1]

    def untestable(self, lead: int = UNHEALTHY_LEAD) -> bool:
        """True once unhealthy cycles outnumber healthy ones (hits and clean) by `lead`:
        SKIP (see `decide`)."""
        return self.unhealthy - self.valid_cycles >= lead

    def skip_reason(self, lead: int = UNHEALTHY_LEAD) -> str | None:
        """Why this commit is SKIP (None while it is testable)."""
        if self.build_error is not None:
            return self.build_error
        if self.untestable(lead):
            return (f"untestable: {self.unhealthy} unhealthy cycle(s) against {self.valid_cycles} healthy "
                    f"(the target did not start, exited, or forwarded nothing)")
        return None

    @classmethod
    def from_dict(cls, data: dict) -> "Evidence":
        """Strict: unknown or missing keys, wrong types, impossible counts -> ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"evidence must be an object, got {type(data).__name__}")
        data = {**_OPTIONAL, **data}
        keys = set(data)
        if keys != set(_FIELDS):
            extra, missing = sorted(keys - set(_FIELDS)), sorted(set(_FIELDS) - keys)
            raise ValueError(f"evidence keys: unexpected {extra}, missing {missing}")
        counts = {}
        for name in ("cycles", "hits", "infra", "consecutive_infra", "clean_needed", "unhealthy"):
            value = data[name]
            if type(value) is not int or value < 0:
                raise ValueError(f"evidence {name!r} must be a non-negative integer, got {value!r}")
            counts[name] = value
        if counts["hits"] + counts["infra"] + counts["unhealthy"] > counts["cycles"]:
            raise ValueError(f"evidence counts are inconsistent: {data!r}")
        if counts["consecutive_infra"] > counts["infra"]:
            raise ValueError(f"evidence consecutive_infra > infra: {data!r}")
        build_error = data["build_error"]
        if build_error is not None and not isinstance(build_error, str):
            raise ValueError(f"evidence 'build_error' must be a string or null, got {build_error!r}")
        mark = data["mark"]
        if mark is not None and not (isinstance(mark, list) and len(mark) == 2
                                     and all(type(m) is int and m >= 0 for m in mark)):
            raise ValueError(f"evidence 'mark' must be null or [hits, valid cycles], got {mark!r}")
        calib = data["calib"]
        if calib is not None and not (isinstance(calib, list) and len(calib) in (2, 4)
                                      and all(type(m) is int and m >= 0 for m in calib)):
            raise ValueError(f"evidence 'calib' must be null or [hits, valid(, hits, valid)], got {calib!r}")
        lower = data["lower"]
        if lower is not None and not (isinstance(lower, list) and len(lower) == 4
                                      and all(type(m) is int and m >= 0 for m in lower)
                                      and lower[0] <= lower[1] and lower[2] <= lower[3]):
            raise ValueError(f"evidence 'lower' must be null or [hits, valid cycles, the other "
                             f"side's hits, valid cycles], got {lower!r}")
        rate = data["rate"]
        if rate is not None and not (isinstance(rate, list) and len(rate) in (0, 2)
                                     and all(type(m) is int and m >= 0 for m in rate)):
            raise ValueError(f"evidence 'rate' must be null, [] or [hits, valid cycles], got {rate!r}")
        verdict = data["verdict"]
        if verdict is not None:
            try:
                verdict = Verdict(verdict)
            except ValueError:
                raise ValueError(f"evidence 'verdict' is not a verdict: {verdict!r}") from None
        return cls(build_error=build_error, verdict=verdict, mark=mark, calib=calib, lower=lower,
                   rate=rate, **counts)


def decide(ev: Evidence, clean_needed: int, max_consecutive_infra: int = 3,
           unhealthy_lead: int = UNHEALTHY_LEAD) -> Verdict | None:
    """THE rule. None means: run another cycle.

    In this order:
      1. the commit did not build             -> SKIP
      2. at least one hit                      -> BAD   (the signature is specific: proof)
      3. `max_consecutive_infra` infra in a row -> ERROR (the caller aborts; not a verdict)
      4. unhealthy cycles lead healthy ones by `unhealthy_lead` -> SKIP (untestable)
      5. at least `clean_needed` clean cycles  -> GOOD
      6. otherwise                             -> None

    A hit wins over an infrastructure streak and over unhealthy cycles: evidence already
    gathered stays valid. Rule 4 is a random walk (+1 unhealthy, -1 healthy) reaching
    `lead`: a commit that never comes up healthy is SKIP after `lead` cycles, and one that
    is unhealthy with probability u < 1/2 per cycle is skipped by it at all with
    probability at most (u / (1 - u)) ** lead (gambler's ruin): 3.7% at u = 0.25, 0.14%
    at u = 0.1 for lead 3. A wrong SKIP costs a wider answer, never a wrong one.
    `clean_needed` comes from `clean_cycles_needed(p, miss)` for the miss probability the
    caller can afford at this step.
    """
    if ev.build_error is not None:
        return Verdict.SKIP
    if ev.hits > 0:
        return Verdict.BAD
    if ev.consecutive_infra >= max_consecutive_infra:
        return Verdict.ERROR
    if ev.untestable(unhealthy_lead):
        return Verdict.SKIP
    if ev.clean >= clean_needed:
        return Verdict.GOOD
    return None


def miss_probability(p: float, clean: int) -> float:
    """Chance that a bad commit (hit rate p per cycle) shows no signature in `clean` cycles.
    Through log1p: (1.0 - p) rounds for a tiny p, and the rounded value made
    `clean_cycles_needed` count up one by one for ever (issue 25, --rate-floor 1e-12)."""
    return math.exp(clean * math.log1p(-p)) if p < 1.0 else float(clean == 0)


def clean_cycles_needed(p: float, miss: float) -> int:
    """Smallest n with (1 - p) ** n <= miss.

    A bad commit (hit rate p per cycle) survives n clean cycles with probability
    (1 - p) ** n; this is how many clean cycles make a false GOOD at most `miss` likely.
    """
    if not 0.0 < p <= 1.0:
        raise ValueError(f"hit rate must be in (0, 1], got {p!r}")
    if not miss > 0.0:
        raise ValueError(f"miss probability must be > 0, got {miss!r}")
    if miss >= 1.0:
        return 0
    if p >= 1.0:
        return 1
    n = max(1, math.ceil(math.log(miss) / math.log1p(-p)))
    # Guard the float rounding of the logarithms on both sides.
    while miss_probability(p, n) > miss:
        n += 1
    while n > 1 and miss_probability(p, n - 1) <= miss:
        n -= 1
    return n


def _binom_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (no scipy)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    lgn = math.lgamma(n + 1)
    terms = [
        lgn - math.lgamma(j + 1) - math.lgamma(n - j + 1) + j * lp + (n - j) * lq
        for j in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * math.fsum(math.exp(t - top) for t in terms))


def hit_rate_lower_bound(hits: int, cycles: int, level: float = 0.9) -> float:
    """One-sided Clopper-Pearson lower bound on the per-cycle hit rate.

    The p at which seeing `hits` or more in `cycles` has probability 1 - level: the true
    rate is at least this with confidence `level`. It is exact too for runs that stop at
    the k-th hit (inverse sampling: P(N_k <= n) = P(Bin(n, p) >= k)), which is how
    calibration runs. Solved by bisection; pure Python.
    """
    if hits < 0 or cycles < 0 or hits > cycles:
        raise ValueError(f"need 0 <= hits <= cycles, got {hits} / {cycles}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if hits == 0:
        return 0.0
    alpha = 1.0 - level
    if hits == cycles:
        return alpha ** (1.0 / cycles)  # closed form: p ** n = alpha
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2.0
        if _binom_upper_tail(hits, cycles, mid) < alpha:
            lo = mid
        else:
            hi = mid
    return lo


def hit_rate_upper_bound(hits: int, cycles: int, level: float = 0.9) -> float:
    """One-sided Clopper-Pearson upper bound on the per-cycle hit rate: one minus the lower
    bound of the miss rate. For a sample stopped at its k-th hit it is conservative (the
    event "at most k hits in n" contains "at most k - 1 in the first n - 1")."""
    if cycles == 0:
        return 1.0
    return 1.0 - hit_rate_lower_bound(cycles - hits, cycles, level)


def rate_is_lower(low: tuple[int, int], high: tuple[int, int], alpha: float) -> bool:
    """True when the rate of sample `low` (hits, valid cycles) is below that of `high` with
    error at most `alpha`: `low`'s upper bound at 1 - alpha/2 lies under `high`'s lower bound
    at 1 - alpha/2, and both intervals hold at once with probability >= 1 - alpha.

    Why it matters (issue 25): a race that was already there at a lower rate makes the
    parent of the commit that raised it racy; calling that parent clean is a wrong answer,
    and calling a same-rate miss "a lower rate" is one too. The test is as strict as the
    verification whose budget it spends."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not high[0]:
        return False
    level = 1.0 - alpha / 2.0
    return hit_rate_upper_bound(low[0], low[1], level) < hit_rate_lower_bound(high[0], high[1], level)


def miss_bound_vs_reference(ref_hits: int, ref_cycles: int, clean: int) -> float:
    """Bound on P(a racy commit shows `clean` clean cycles), with no estimate of p.

    The reference is a commit known to be racy (the calibrated endpoint) that showed
    `ref_hits` = h hits in `ref_cycles` = V valid cycles, run until its h-th hit. If the
    tested commit is racy with the same unknown rate p, then over both runs

        P(C clean cycles in a row) = E[(1 - p) ** C] <= ((V - h/2) / (V - h/2 + C)) ** h

    for every p. Why: with C = m V the probability generating function of the reference's
    negative-binomial count gives [q**m (1-q) / (1 - q**(m+1))] ** h, q = 1 - p, and
    q**m / (1 + q + ... + q**m) <= 1 / (m + 1). Taking C = m (V - h/2) instead (half a
    cycle per reference hit less, like the Bayesian half-count) keeps the supremum over p
    at (1 / (m + 1)) ** h, reached as p -> 0: checked numerically over p and h in
    tests/test_verdict.py. So a lucky calibration cannot make the test too short: the
    reference's own count sets the length, whatever p is.
    """
    if ref_hits < 1 or ref_cycles < ref_hits:
        raise ValueError(f"need a reference with hits: got {ref_hits} hits in {ref_cycles} cycles")
    if clean < 0:
        raise ValueError(f"clean must be >= 0, got {clean}")
    base = ref_cycles - ref_hits / 2.0
    return (base / (base + clean)) ** ref_hits


def clean_cycles_needed_vs_reference(ref_hits: int, ref_cycles: int, miss: float) -> int:
    """Smallest C with miss_bound_vs_reference(ref_hits, ref_cycles, C) <= miss."""
    if not miss > 0.0:
        raise ValueError(f"miss probability must be > 0, got {miss!r}")
    if miss >= 1.0:
        return 0
    base = ref_cycles - ref_hits / 2.0
    c = max(0, math.ceil(base * (miss ** (-1.0 / ref_hits) - 1.0)))
    while miss_bound_vs_reference(ref_hits, ref_cycles, c) > miss:
        c += 1
    while c > 0 and miss_bound_vs_reference(ref_hits, ref_cycles, c - 1) <= miss:
        c -= 1
    return c
