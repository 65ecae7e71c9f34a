"""least_satisfying against a brute force and against git bisect itself (afpbisect/core/search.py)."""
import random
import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afpbisect.core.search import least_satisfying, midpoint
from afpbisect.core.verdict import Verdict

GOOD, BAD, SKIP = Verdict.GOOD, Verdict.BAD, Verdict.SKIP


def expected_candidates(first_bad: int, skipped: set, n: int) -> list:
    """git bisect's answer: (last testable good, first testable bad]. More than one commit
    when the commits around the first bad one are all skipped ("could be any of")."""
    lo = max(i for i in range(first_bad) if i == 0 or i not in skipped)
    hi = min(i for i in range(first_bad, n) if i == n - 1 or i not in skipped)
    return list(range(lo + 1, hi + 1))


def make_oracle(first_bad: int, skipped: set, calls: list):
    def oracle(i):
        calls.append(i)
        if i in skipped:
            return SKIP
        return BAD if i >= first_bad else GOOD
    return oracle


@st.composite
def worlds(draw):
    n = draw(st.integers(min_value=2, max_value=300))
    first_bad = draw(st.integers(min_value=1, max_value=n - 1))
    density = draw(st.sampled_from([0.0, 0.05, 0.3, 0.8, 1.0]))
    rng = random.Random(draw(st.integers(0, 2 ** 32)))
    skipped = {i for i in range(1, n - 1) if rng.random() < density}
    return n, first_bad, skipped


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_matches_brute_force(world):
    n, first_bad, skipped = world
    calls: list = []
    res = least_satisfying(n, make_oracle(first_bad, skipped, calls))
    assert res.candidates == expected_candidates(first_bad, skipped, n)
    assert res.first_bad_index == res.candidates[-1]
    assert res.last_good_index == res.candidates[0] - 1
    assert len(calls) == len(set(calls)), "memoized: each index asked once"
    assert 0 not in calls and n - 1 not in calls, "the endpoints are known, not asked"
    assert [i for i, _ in res.steps] == calls
    # every candidate but the first bad one was tested and skipped
    assert set(res.candidates[:-1]) <= set(res.skipped)


def test_no_skips_is_logarithmic():
    for n in (2, 3, 100, 3070):
        for first_bad in {1, max(1, n // 3), n - 1}:
            calls: list = []
            res = least_satisfying(n, make_oracle(first_bad, set(), calls))
            assert res.candidates == [first_bad]
            assert len(calls) <= max(1, (n - 1).bit_length())


def test_skips_are_avoided_near_the_middle():
    calls: list = []
    least_satisfying(101, make_oracle(80, {50}, calls))
    assert calls[:2] == [50, 49]  # the nearest unskipped index to the middle, older first


def test_oracle_must_answer_good_bad_or_skip():
    with pytest.raises(ValueError):
        least_satisfying(10, lambda i: Verdict.ERROR)
    with pytest.raises(ValueError):
        least_satisfying(1, lambda i: GOOD)


# Midpoints measured with git 2.47 (`git bisect start <bad> <good>` on a linear history):
# known good at `lo`, known bad at `hi` -> the commit git checks out first.
GIT_FIRST_PICK = {(0, h): h // 2 for h in range(4, 41)} | {(0, 2): 1, (0, 3): 2}
GIT_FIRST_PICK |= {(3, 5): 4, (3, 6): 5, (3, 7): 5, (3, 8): 5, (3, 9): 6, (3, 40): 21}


def test_midpoint_is_gits():
    for (lo, hi), pick in GIT_FIRST_PICK.items():
        assert midpoint(lo, hi) == pick, (lo, hi)


# --- against the real git bisect --------------------------------------------------------

GIT = shutil.which("git")


def _git(repo, *args, check=True):
    return subprocess.run(["git", "-C", str(repo), *args], check=check, capture_output=True,
                          text=True, env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                          "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                                          "HOME": str(repo), "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def linear_repo(tmp_path_factory):
    if GIT is None:
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("linear")
    _git(repo, "init", "-q")
    for i in range(40):
        (repo / "idx").write_text(f"{i}\n")
        _git(repo, "add", "idx")
        _git(repo, "commit", "-q", "-m", f"c{i}")
    revs = _git(repo, "rev-list", "--reverse", "HEAD").stdout.split()
    return repo, revs


def _git_bisect(repo, revs, first_bad, skipped):
    """Run `git bisect run` with the verdicts; return (candidates, tested indexes)."""
    verdicts = "".join("125\n" if i in skipped else ("1\n" if i >= first_bad else "0\n")
                       for i in range(len(revs)))
    (repo / ".git" / "verdicts").write_text(verdicts)
    log = repo / ".git" / "tested"
    log.write_text("")
    script = repo / ".git" / "judge.sh"
    script.write_text('#!/bin/sh\ni=$(cat idx)\necho "$i" >> .git/tested\n'
                      'exit $(sed -n "$((i+1))p" .git/verdicts)\n')
    script.chmod(0o755)
    _git(repo, "bisect", "reset", check=False)
    _git(repo, "bisect", "start", revs[-1], revs[0])
    out = _git(repo, "bisect", "run", str(script), check=False).stdout
    _git(repo, "bisect", "reset")
    index = {h: i for i, h in enumerate(revs)}
    m = re.search(r"^([0-9a-f]{40}) is the first bad commit", out, re.M)
    if m:
        cands = [index[m.group(1)]]
    else:
        tail = out.split("could be any of:", 1)[1]
        cands = sorted(index[h] for h in re.findall(r"^([0-9a-f]{40})$", tail, re.M))
    tested = [int(x) for x in log.read_text().split()]
    return cands, tested


def test_same_first_bad_and_same_steps_as_git_without_skips(linear_repo):
    repo, revs = linear_repo
    n = len(revs)
    for first_bad in (1, 2, 7, 19, 20, 21, 38, 39):
        calls: list = []
        res = least_satisfying(n, make_oracle(first_bad, set(), calls))
        cands, tested = _git_bisect(repo, revs, first_bad, set())
        assert res.candidates == cands == [first_bad]
        assert calls == tested, "same midpoints as git bisect"


def test_same_answer_as_git_with_skips(linear_repo):
    repo, revs = linear_repo
    n = len(revs)
    rng = random.Random(8667)
    cases = [(20, {19}), (20, {20}), (20, {18, 19, 20, 21}), (1, {1, 2}), (39, {37, 38}),
             (10, set(range(1, 39)) - {10})]
    cases += [(rng.randrange(1, n), {i for i in range(1, n - 1) if rng.random() < 0.3})
              for _ in range(6)]
    for first_bad, skipped in cases:
        res = least_satisfying(n, make_oracle(first_bad, skipped, []))
        cands, _ = _git_bisect(repo, revs, first_bad, skipped)
        assert res.candidates == cands == expected_candidates(first_bad, skipped, n), (first_bad, skipped)


# --- the weighted, cost-aware search (issue 18) -----------------------------------------

from afpbisect.core.search import weighted_least_satisfying  # noqa: E402


@st.composite
def priced_worlds(draw):
    n, first_bad, skipped = draw(worlds())
    rng = random.Random(draw(st.integers(0, 2 ** 32)))
    shape = draw(st.sampled_from(["uniform", "spiky", "zeros", "random"]))
    if shape == "uniform":
        weights = [1.0] * n
    elif shape == "spiky":   # most mass on a few commits, which may or may not hold the culprit
        weights = [100.0 if rng.random() < 0.05 else 0.01 for _ in range(n)]
    elif shape == "zeros":   # a prior that rules commits out entirely must still be sound
        weights = [0.0 if rng.random() < 0.7 else rng.random() for _ in range(n)]
    else:
        weights = [rng.random() for _ in range(n)]
    costs = [rng.choice([0.0, 5.0, 300.0]) for _ in range(n)]
    slack = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    return n, first_bad, skipped, weights, costs, slack


@settings(max_examples=400, deadline=None)
@given(priced_worlds())
def test_weighted_matches_brute_force(world):
    """Whatever the prior (wrong, spiky, zero on the culprit) and the prices, the answer
    is git bisect's; only the order of the questions changes."""
    n, first_bad, skipped, weights, costs, slack = world
    calls: list = []
    oracle = make_oracle(first_bad, skipped, calls)
    res = weighted_least_satisfying(n, lambda i, window: oracle(i), weights,
                                    cost=costs.__getitem__, slack=slack)
    assert res.candidates == expected_candidates(first_bad, skipped, n)
    assert len(calls) == len(set(calls)), "each index asked once"
    assert 0 not in calls and n - 1 not in calls, "the endpoints are known, not asked"
    assert set(res.candidates[:-1]) <= set(res.skipped)


def test_uniform_prior_asks_what_git_asks():
    for n in (2, 3, 4, 101, 3071):
        for first_bad in {1, max(1, n // 3), n - 1}:
            plain: list = []
            weighted: list = []
            least_satisfying(n, make_oracle(first_bad, set(), plain))
            o = make_oracle(first_bad, set(), weighted)
            weighted_least_satisfying(n, lambda i, w: o(i))
            assert weighted == plain


def test_prior_on_the_culprit_needs_fewer_questions():
    n, culprit = 3071, 1604
    weights = [1.0] * n
    weights[culprit] = n   # half the mass on one commit
    calls: list = []
    o = make_oracle(culprit, set(), calls)
    res = weighted_least_satisfying(n, lambda i, w: o(i), weights)
    assert res.candidates == [culprit]
    assert len(calls) <= 3   # the commit and its parent, roughly: log2(1/0.5) + 2


def test_the_oracle_gets_the_window_it_splits():
    seen = []

    def oracle(i, window):
        seen.append((i, window))
        return BAD if i >= 7 else GOOD

    weighted_least_satisfying(20, oracle)
    lo, hi = 0, 19
    for i, window in seen:
        assert window == (lo, hi) and lo < i < hi
        lo, hi = (i, hi) if i < 7 else (lo, i)   # GOOD moves lo, BAD moves hi


def test_a_cheap_probe_within_the_slack_wins():
    # uniform over 100: the best split is 50; 45 loses about 0.01 bit and is free
    costs = {i: 300.0 for i in range(100)}
    costs[45] = 0.0
    calls: list = []
    o = make_oracle(99, set(), calls)
    weighted_least_satisfying(100, lambda i, w: o(i), cost=costs.__getitem__, slack=0.05)
    assert calls[0] == 45
    calls.clear()
    weighted_least_satisfying(100, lambda i, w: o(i), cost=costs.__getitem__, slack=0.0)
    assert calls[0] == 49


# --- the k-ary search: k engines probe in parallel (issue 20) ---------------------------

from afpbisect.core.search import batch_pick, kary_least_satisfying, narrow  # noqa: E402


def make_batch_oracle(first_bad: int, skipped: set, calls: list, k: int, windows: list):
    one = make_oracle(first_bad, skipped, calls)

    def oracle(batch, window):
        windows.append((list(batch), window))
        assert 1 <= len(batch) <= k and batch == sorted(set(batch))
        return [one(i) for i in batch]
    return oracle


@settings(max_examples=400, deadline=None)
@given(priced_worlds(), st.sampled_from([1, 2, 3, 4, 8]))
def test_kary_matches_brute_force(world, k):
    """Whatever k, the prior, the prices and the skips: git bisect's answer, each index
    asked once, every probe inside the window it was asked in."""
    n, first_bad, skipped, weights, costs, slack = world
    calls: list = []
    windows: list = []
    res = kary_least_satisfying(n, make_batch_oracle(first_bad, skipped, calls, k, windows), k,
                                weights, cost=costs.__getitem__, slack=slack)
    assert res.candidates == expected_candidates(first_bad, skipped, n)
    assert res.first_bad_index == res.candidates[-1]
    assert res.last_good_index == res.candidates[0] - 1
    assert len(calls) == len(set(calls)), "each index asked once"
    assert 0 not in calls and n - 1 not in calls, "the endpoints are known, not asked"
    assert set(res.candidates[:-1]) <= set(res.skipped)
    assert [i for i, _ in res.steps] == calls and res.rounds == [b for b, _ in windows]
    assert all(lo < i < hi for batch, (lo, hi) in windows for i in batch)
    assert res.overruled == [], "a monotone oracle never has a GOOD above a BAD"


@settings(max_examples=300, deadline=None)
@given(priced_worlds())
def test_kary_with_one_engine_asks_what_weighted_asks(world):
    n, first_bad, skipped, weights, costs, slack = world
    seq: list = []
    o = make_oracle(first_bad, skipped, seq)
    weighted_least_satisfying(n, lambda i, w: o(i), weights, cost=costs.__getitem__, slack=slack)
    batched: list = []
    res = kary_least_satisfying(n, make_batch_oracle(first_bad, skipped, batched, 1, []), 1,
                                weights, cost=costs.__getitem__, slack=slack)
    assert batched == seq
    assert res.rounds == [[i] for i in seq]


def test_kary_rounds_are_logarithmic_in_base_k_plus_1():
    """Uniform prior, no skips: about log_{k+1}(n) rounds (exact ceiling + 1 at most)."""
    for n in (2, 3, 10, 100, 1000, 3071):
        for k in (1, 2, 3, 4, 8):
            bound = 0
            while (k + 1) ** bound < n - 1:
                bound += 1    # ceil(log_{k+1}(n - 1)), in integers
            for first_bad in sorted({1, 2, max(1, n // 3), max(1, n // 2), n - 2, n - 1} - {0}):
                if not 1 <= first_bad < n:
                    continue
                res = kary_least_satisfying(n, make_batch_oracle(first_bad, set(), [], k, []), k)
                assert res.candidates == [first_bad]
                assert len(res.rounds) <= bound + 1, (n, k, first_bad, res.rounds)


def test_more_engines_need_fewer_rounds_on_the_real_range_size():
    n = 3071
    rounds = {k: len(kary_least_satisfying(n, make_batch_oracle(1604, set(), [], k, []), k).rounds)
              for k in (1, 2, 4, 8)}
    assert rounds[1] == 12 and rounds[2] <= 8 and rounds[4] <= 6 and rounds[8] <= 5, rounds


def test_a_small_window_is_asked_whole_in_one_round():
    calls: list = []
    res = kary_least_satisfying(6, make_batch_oracle(3, set(), calls, 8, []), 8)
    assert res.rounds == [[1, 2, 3, 4]] and res.candidates == [3]


def test_the_cuts_split_the_mass_not_the_count():
    # all the mass on 70..79: three engines cut those ten commits, not the whole range
    weights = [0.0] * 100
    for i in range(70, 80):
        weights[i] = 1.0
    batch = batch_pick(0, 99, set(), _prefix_of(weights), 3)
    # mass 3/10, 5/10, 7/10 to the left: 3/10 and 7/10 are the nearest to 1/4 and 3/4 in
    # bits (D(0.3 || 0.25) < D(0.2 || 0.25)), and the two outer cuts stay symmetric
    assert batch == [72, 74, 76]


def _prefix_of(weights):
    from afpbisect.core.search import _prefix
    return _prefix(len(weights), weights)


def test_a_cheap_probe_within_the_slack_wins_at_every_cut():
    # uniform over 100, three engines: the cut at 1/4 is best at 25; 27 loses ~0.002 bit and is free
    costs = {i: 300.0 for i in range(100)}
    costs[27] = 0.0
    prefix = _prefix_of([1.0] * 100)
    assert batch_pick(0, 99, set(), prefix, 3, costs.__getitem__, 0.05) == [27, 49, 74]
    assert batch_pick(0, 99, set(), prefix, 3, costs.__getitem__, 0.0) == [25, 49, 74]


def test_a_bad_overrules_a_good_above_it():
    """A noisy oracle: 75 is racy but its light step saw no hit. The BAD at 25 is proof;
    the GOOD at 75 is overruled and recorded, and the answer is still the culprit."""
    assert narrow(0, 99, [(25, BAD), (50, GOOD), (75, BAD)]) == (0, 25, [50])
    assert narrow(0, 99, [(25, GOOD), (50, SKIP), (75, BAD)]) == (25, 75, [])
    assert narrow(10, 90, [(50, SKIP)]) == (10, 90, [])
    calls: list = []
    clean = make_oracle(10, set(), calls)

    def noisy(batch, window):
        return [GOOD if i == 74 else clean(i) for i in batch]

    res = kary_least_satisfying(100, noisy, 3)
    assert res.rounds[0] == [25, 49, 74]
    assert res.overruled == [74] and res.candidates == [10]


def test_kary_rejects_bad_input():
    with pytest.raises(ValueError):
        kary_least_satisfying(10, lambda b, w: [Verdict.ERROR] * len(b), 2)
    with pytest.raises(ValueError):
        kary_least_satisfying(10, lambda b, w: [GOOD], 2)   # one answer for two probes
    with pytest.raises(ValueError):
        kary_least_satisfying(10, lambda b, w: [GOOD] * len(b), 0)
    with pytest.raises(ValueError):
        kary_least_satisfying(1, lambda b, w: [GOOD] * len(b), 2)
