"""The verdict rule and the statistics behind the cycle counts (afpbisect/core/verdict.py)."""
import itertools
import math

import pytest

from afpbisect.core.verdict import (
    CycleOutcome,
    Evidence,
    Verdict,
    clean_cycles_needed,
    clean_cycles_needed_vs_reference,
    decide,
    hit_rate_lower_bound,
    miss_bound_vs_reference,
)

HIT, CLEAN, INFRA = CycleOutcome.HIT, CycleOutcome.CLEAN, CycleOutcome.INFRA


# --- Evidence ---------------------------------------------------------------------------


def test_add_counts_and_streaks():
    ev = Evidence()
    for o in (INFRA, INFRA, CLEAN, INFRA, HIT, INFRA, INFRA):
        ev.add(o)
    assert (ev.cycles, ev.hits, ev.infra, ev.consecutive_infra) == (7, 1, 5, 2)
    assert ev.clean == 1 and ev.valid_cycles == 2


def test_add_rejects_other_types():
    with pytest.raises(TypeError):
        Evidence().add("hit")


def test_dict_round_trip():
    ev = Evidence(cycles=9, hits=2, infra=3, consecutive_infra=1, build_error=None,
                  verdict=Verdict.BAD, clean_needed=4)
    assert Evidence.from_dict(ev.to_dict()) == ev
    sk = Evidence(build_error="make: *** [all] Error 2", verdict=Verdict.SKIP)
    assert Evidence.from_dict(sk.to_dict()) == sk
    assert Evidence.from_dict(Evidence().to_dict()) == Evidence()


@pytest.mark.parametrize("change", [
    {"extra": 1},
    {"cycles": -1},
    {"cycles": 1.0},
    {"cycles": True},
    {"hits": 5},  # hits + infra > cycles
    {"consecutive_infra": 4},  # > infra
    {"verdict": "maybe"},
    {"build_error": 3},
])
def test_from_dict_is_strict(change):
    data = Evidence(cycles=4, hits=1, infra=2, consecutive_infra=1).to_dict()
    data.update(change)
    with pytest.raises(ValueError):
        Evidence.from_dict(data)


def test_from_dict_missing_key():
    data = Evidence().to_dict()
    del data["clean_needed"]
    with pytest.raises(ValueError):
        Evidence.from_dict(data)


# --- decide: exhaustive on small cases ---------------------------------------------------


def _spec(build_error, hits, clean, streak, need, max_infra):
    """The rule as the issue states it, written independently of decide()."""
    if build_error:
        return Verdict.SKIP
    if hits >= 1:
        return Verdict.BAD  # one hit is proof
    if streak >= max_infra:
        return Verdict.ERROR  # infrastructure is never evidence
    return Verdict.GOOD if clean >= need else None


def test_decide_exhaustive_counts():
    n = 0
    for build_error, hits, clean, infra, need, max_infra in itertools.product(
            (None, "boom"), range(4), range(6), range(4), range(6), range(1, 4)):
        for streak in range(infra + 1):
            ev = Evidence(cycles=hits + clean + infra, hits=hits, infra=infra,
                          consecutive_infra=streak, build_error=build_error)
            assert decide(ev, need, max_infra) is _spec(build_error, hits, clean, streak, need, max_infra)
            n += 1
    assert n > 5000


def test_decide_over_every_outcome_sequence():
    """Feed every sequence of up to 7 outcomes; the rule must stop exactly when it should:
    at the first hit, at the level's last clean cycle, or at the infra streak."""
    for need in range(0, 5):
        for length in range(0, 8):
            for seq in itertools.product((HIT, CLEAN, INFRA), repeat=length):
                ev = Evidence()
                verdict = decide(ev, need, 3)
                stopped_at = 0 if verdict is not None else None
                for k, outcome in enumerate(seq, 1):
                    if verdict is not None:
                        break
                    ev.add(outcome)
                    verdict = decide(ev, need, 3)
                    if verdict is not None:
                        stopped_at = k
                if verdict is None:
                    continue
                done = seq[:stopped_at]
                if verdict is Verdict.BAD:
                    assert done[-1] is HIT and HIT not in done[:-1]
                elif verdict is Verdict.GOOD:
                    assert HIT not in done and done.count(CLEAN) == need
                    assert need == 0 or done[-1] is CLEAN
                else:
                    assert verdict is Verdict.ERROR
                    assert done[-3:] == (INFRA,) * 3 and HIT not in done
                    assert done.count(CLEAN) < need


def test_decide_is_monotone_in_level():
    for hits, clean in itertools.product(range(2), range(6)):
        ev = Evidence(cycles=hits + clean, hits=hits)
        verdicts = [decide(ev, need) for need in range(8)]
        # GOOD at a level means GOOD at every lower one
        for lo, hi in itertools.combinations(range(8), 2):
            if verdicts[hi] is Verdict.GOOD:
                assert verdicts[lo] is Verdict.GOOD


# --- clean_cycles_needed ------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.01, 0.05, 0.1, 0.25, 0.3, 0.5, 0.6, 0.9, 0.99])
@pytest.mark.parametrize("miss", [0.5, 0.1, 0.05, 1e-3, 1e-6])
def test_clean_cycles_needed_is_the_smallest(p, miss):
    n = clean_cycles_needed(p, miss)
    assert (1 - p) ** n <= miss
    assert n == 1 or (1 - p) ** (n - 1) > miss


def test_clean_cycles_needed_edges():
    assert clean_cycles_needed(1.0, 0.001) == 1
    assert clean_cycles_needed(0.3, 1.0) == 0
    assert clean_cycles_needed(0.25, 0.001) == 25  # 0.75**24 = 0.00100 > 0.001
    for bad in [(0.0, 0.1), (1.5, 0.1), (0.3, 0.0), (-0.1, 0.5)]:
        with pytest.raises(ValueError):
            clean_cycles_needed(*bad)


# --- hit_rate_lower_bound -----------------------------------------------------------------


def _tail(k, n, p):
    return sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(k, n + 1))


@pytest.mark.parametrize("hits,cycles", [(1, 1), (1, 10), (3, 10), (5, 17), (8, 27), (10, 10), (7, 30)])
@pytest.mark.parametrize("level", [0.8, 0.9, 0.99])
def test_lower_bound_solves_the_tail_equation(hits, cycles, level):
    lb = hit_rate_lower_bound(hits, cycles, level)
    assert 0.0 < lb < hits / cycles or (hits == cycles and lb < 1.0)
    assert _tail(hits, cycles, lb) == pytest.approx(1 - level, rel=1e-6)


def test_lower_bound_closed_forms():
    assert hit_rate_lower_bound(0, 20) == 0.0
    assert hit_rate_lower_bound(10, 10, 0.9) == pytest.approx(0.1 ** 0.1)
    assert hit_rate_lower_bound(1, 10, 0.9) == pytest.approx(1 - 0.9 ** 0.1)
    with pytest.raises(ValueError):
        hit_rate_lower_bound(3, 2)
    with pytest.raises(ValueError):
        hit_rate_lower_bound(1, 2, 1.0)


@pytest.mark.parametrize("p", [0.1, 0.25, 0.6, 0.9])
def test_lower_bound_covers(p):
    """Exact coverage over the binomial distribution: P(bound > p) <= 1 - level."""
    n, level = 30, 0.9
    over = sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k)
               for k in range(n + 1) if hit_rate_lower_bound(k, n, level) > p)
    assert over <= 1 - level + 1e-9


def test_lower_bound_monotone():
    bounds = [hit_rate_lower_bound(k, 20) for k in range(21)]
    assert bounds == sorted(bounds)


# --- the verification against a reference ------------------------------------------------


def _nb_pmf(v, h, p):
    """P(the h-th hit comes at valid cycle v)."""
    return math.comb(v - 1, h - 1) * p ** h * (1 - p) ** (v - h)


def _miss(h, p, miss):
    """P(a racy commit passes the verification), over the reference's calibration run too."""
    total, v, mass = 0.0, h, 0.0
    while mass < 1 - 1e-13:
        w = _nb_pmf(v, h, p)
        mass += w
        total += w * (1 - p) ** clean_cycles_needed_vs_reference(h, v, miss)
        v += 1
    return total


@pytest.mark.parametrize("h", [1, 3, 8])
@pytest.mark.parametrize("miss", [0.1, 6.1e-4])
def test_reference_bound_holds_for_every_p(h, miss):
    """The point of the reference rule: whatever p is, a racy commit passes with at most
    `miss`, averaged over the calibration (lucky ones included). The supremum is reached
    as p -> 0, so a fine grid down to 0.02 is checked exactly."""
    for p in (0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9, 0.99):
        assert _miss(h, p, miss) <= miss * (1 + 1e-9), p


def test_reference_bound_is_nearly_tight_for_small_p():
    assert _miss(8, 0.02, 0.001) > 0.97 * 0.001


def test_reference_functions_agree():
    for h, v in [(1, 1), (1, 7), (8, 9), (8, 27), (5, 60)]:
        for miss in (0.5, 0.01, 6.1e-4):
            c = clean_cycles_needed_vs_reference(h, v, miss)
            assert miss_bound_vs_reference(h, v, c) <= miss
            assert c == 0 or miss_bound_vs_reference(h, v, c - 1) > miss
    assert miss_bound_vs_reference(8, 27, 0) == 1.0
    assert clean_cycles_needed_vs_reference(8, 27, 1.0) == 0
    with pytest.raises(ValueError):
        miss_bound_vs_reference(0, 10, 5)


# --- issue 16: unhealthy cycles ------------------------------------------------------------

def test_unhealthy_lead_makes_skip_and_a_hit_still_wins():
    from afpbisect.core.verdict import CycleOutcome, Evidence, Verdict, decide
    ev = Evidence()
    for out in (CycleOutcome.UNHEALTHY, CycleOutcome.CLEAN, CycleOutcome.UNHEALTHY,
                CycleOutcome.UNHEALTHY):
        ev.add(out)
    assert decide(ev, 5) is None            # 3 unhealthy, 1 clean: lead 2
    ev.add(CycleOutcome.UNHEALTHY)
    assert decide(ev, 5) is Verdict.SKIP     # lead 3
    assert "untestable: 4 unhealthy" in ev.skip_reason()
    ev.add(CycleOutcome.HIT)
    assert decide(ev, 5) is Verdict.BAD      # the signature is proof whatever else happened


def test_evidence_without_unhealthy_key_loads_as_before():
    from afpbisect.core.verdict import Evidence
    old = {"cycles": 4, "hits": 1, "infra": 1, "consecutive_infra": 0, "build_error": None,
           "verdict": "bad", "clean_needed": 0}
    ev = Evidence.from_dict(old)
    assert ev.unhealthy == 0 and ev.clean == 2 and Evidence.from_dict(ev.to_dict()) == ev


# --- issue 25: rates compared, percentages honest ---------------------------------------


def test_a_confidence_below_one_never_prints_as_100_percent():
    from afpbisect.core.percent import pct
    for x in (0.9999, 0.99995, 0.999999, 0.9999999999, 0.99969, 1 - 1e-13):
        shown = pct(x)
        assert not shown.startswith("100"), (x, shown)
        assert float(shown.rstrip("%")) <= 100 * x   # truncated, never rounded up
    assert pct(0.99969) == "99.969%" and pct(0.5) == "50.0%" and pct(None) == "-"


def test_rate_is_lower_separates_a_lower_rate_and_not_a_same_one():
    from afpbisect.core.verdict import hit_rate_upper_bound, rate_is_lower
    a = 6e-4
    assert rate_is_lower((6, 60), (8, 8), a)          # q = 0.1 against p = 1
    assert not rate_is_lower((8, 32), (8, 8), a)      # 8 of 8 alone cannot tell 0.25 from 1
    assert rate_is_lower((8, 32), (16, 16), a)        # more of the racy side can
    assert not rate_is_lower((8, 27), (8, 27), a)     # same rate
    assert not rate_is_lower((1, 5), (0, 20), a)      # nothing is lower than no race
    assert hit_rate_upper_bound(0, 0) == 1.0 and hit_rate_upper_bound(5, 5) == 1.0


def test_rate_is_lower_errs_at_most_alpha_when_the_rates_are_equal():
    """Same rate on both sides, samples stopped at 8 hits (the calibration's rule): the
    test must call the first lower in at most alpha of the pairs."""
    import random

    from afpbisect.core.verdict import rate_is_lower
    rng = random.Random(25)
    alpha, wrong, n = 0.05, 0, 2000
    for _ in range(n):
        p = rng.choice((0.1, 0.3, 0.9))
        samples = []
        for _side in range(2):
            h = v = 0
            while h < 8 and v < 60:
                v += 1
                h += rng.random() < p
            samples.append((h, v))
        wrong += rate_is_lower(samples[0], samples[1], alpha)
    assert wrong / n <= alpha


def test_evidence_lower_round_trips_and_is_checked():
    ev = Evidence(cycles=10, hits=2, lower=[2, 10, 9, 10])
    assert Evidence.from_dict(ev.to_dict()) == ev
    old = ev.to_dict()
    del old["lower"]   # a state file from before issue 25
    assert Evidence.from_dict(old).lower is None
    with pytest.raises(ValueError, match="lower"):
        Evidence.from_dict({**ev.to_dict(), "lower": [3, 2, 1, 1]})
    with pytest.raises(ValueError, match="lower"):
        Evidence.from_dict({**ev.to_dict(), "lower": [2, 10]})


def test_an_upper_bound_is_never_printed_below_its_value():
    """Found by the figures audit (issue 27): 1 - 0.99934464 = 0.0655% was printed "at most
    0.065%" (pct truncates, right for a confidence, wrong for a bound from above); the
    verification's "miss <= 0.0003" for a budget of 0.000304 and "p >= 0.417" for a lower
    bound of 0.41666 overstated too."""
    from afpbisect.core.percent import pct_up, up, down
    assert pct_up(1 - 0.99934464) == "0.066%" and pct_up(0.0) == "0.0%" and pct_up(None) == "-"
    assert pct_up(1e-9) != "0.000%" and float(pct_up(1e-9).rstrip("%")) >= 1e-7
    for x in (0.0655, 3.0396e-4, 0.123456, 1e-12, 0.5, 0.99999):
        assert float(pct_up(x).rstrip("%")) >= 100 * x * (1 - 1e-12), x   # float noise only
        assert float(up(x)) >= x and float(up(x)) <= x * 1.1, x
    assert up(3.0396e-4) == "0.00031" and down(0.41666) == "0.416" and down(0.4169, 2) == "0.41"


def test_the_verify_report_states_its_miss_bound_from_above():
    from afpbisect.reports.report import render
    import json, pathlib
    r = json.loads((pathlib.Path(__file__).parent.parent / "docs/results/2026-12-01-verify-fixA.json").read_text())
    text = render("verify.md.j2", r=r)
    assert "probability at most 0.066%" in text, text
