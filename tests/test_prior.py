"""The prior and the build price (afpbisect/core/prior.py, afpbisect/core/cost.py): pure parts, and the
prior of a real git history made here."""
import subprocess

import git
import pytest

from afpbisect.core import cost, prior
from afpbisect.core.search import weighted_least_satisfying
from afpbisect.core.verdict import Verdict

SIGNATURE = (r"(?:^|[\s:\]>-])(?P<iface>[^\s:\[\]]+): sending packet failed on socket 0: "
             r"Socket operation on non-socket(?:\s+\[[^\]\s]*:[^\]\s]*:\d+\])?\s*$")


def test_literal_fragments_of_the_8667_signature():
    frags = prior.literal_fragments(SIGNATURE)
    # the "0" is a %d in the source: the run stops there, so the source's format string matches
    assert "sending packet failed on socket" in frags
    assert all("0" not in f and len(f) >= prior.MIN_FRAGMENT for f in frags)
    assert prior.literal_fragments(r"[a-z]+\d") == [] and prior.literal_fragments("(") == []


def test_weigh_gives_suspects_half_and_everyone_a_floor():
    touched = [set(), {"src/a.c"}, {"doc/x"}, {"src/dir/b.c", "README"}, {"src/ab.c"}]
    pr = prior.weigh(touched, {"src/a.c": "why", "src/dir": "why"})
    assert pr.suspects == [1, 3]   # a directory matches what is under it; src/ab.c is not src/a.c
    assert pr.weights[0] == 0.0 and sum(pr.weights) == pytest.approx(1.0)
    assert min(pr.weights[1:]) == pytest.approx(0.5 / 4)
    assert pr.weights[1] == pytest.approx(0.5 / 4 + 0.25)
    none = prior.weigh(touched, {"nowhere.c": "why"})
    assert none.suspects == [] and none.weights[1:] == [pytest.approx(0.25)] * 4


def test_wrong_prior_costs_at_most_a_few_probes():
    """The bound stated in prior.py: every commit keeps half the uniform mass, so a culprit
    outside the suspects costs at most about 3 probes more than plain bisection."""
    n = 3071
    touched = [{"other.c"}] * n
    for i in range(100, 3000, 130):
        touched[i] = {"src/source-af-packet.c"}
    pr = prior.weigh(touched, {"src/source-af-packet.c": "signature"})
    worst = 0
    for culprit in range(1, n, 37):
        if culprit in pr.suspects:
            continue
        res = weighted_least_satisfying(n, lambda i, w: Verdict.BAD if i >= culprit else Verdict.GOOD,
                                        pr.weights)
        assert res.candidates == [culprit]
        worst = max(worst, len(res.steps))
    assert worst <= (n - 1).bit_length() + 3


def test_cost_model_fit_and_price():
    m = cost.BuildCostModel(near=20, far=300, horizon=256)
    assert m.seconds(None) == 300 and m.seconds(256) == 300 and m.seconds(1000) == 300
    assert m.seconds(0) == 20 and 20 < m.seconds(8) < m.seconds(64) < 300
    samples = [(d, m.seconds(d)) for d in (None, 1, 3, 12, 48, 200, 900)]
    fitted = cost.fit(samples)
    assert fitted.near == pytest.approx(20) and fitted.far == pytest.approx(300)
    built = [10]
    price = cost.pricer(m, lambda: built)
    assert price(10) == 0.0 and price(11) == m.seconds(1)
    built.append(12)   # a new build is seen at the next pick
    assert price(12) == 0.0 and price(11) == m.seconds(1)


def test_samples_from_a_run_report():
    steps = [{"position": 3070, "build_ok": True, "build_cached": False, "build_seconds": 300},
             {"position": 0, "build_ok": True, "build_cached": True, "build_seconds": 0},
             {"position": 1535, "build_ok": True, "build_cached": False, "build_seconds": 250},
             {"position": 1540, "build_ok": True, "build_cached": False, "build_seconds": 40}]
    assert cost.samples_from_steps(steps) == [(None, 300.0), (1535, 250.0), (5, 40.0)]


def test_live_pricer_refits_on_this_runs_builds_as_they_happen():
    """Issue 27: a new workdir priced every build with the defaults for the whole run
    (0-263 s) though its own builds said otherwise; the price now follows them."""
    timed: list = []    # (index, seconds) of this run's fresh builds, in build order
    built = lambda: [i for i, _ in timed]
    price = cost.live_pricer([], built, lambda: list(timed))
    default = cost.BuildCostModel()
    assert price(500) == default.seconds(None)          # nothing built: the defaults
    for i, secs in ((1000, 600.0), (10, 590.0), (500, 610.0), (501, 60.0), (503, 70.0)):
        timed.append((i, secs))
    # Far builds took ~600 s here, a neighbour 60-70 s: a far probe is priced near 600 s,
    # a near one well above the default's ~33 s, and a built one is still free.
    assert price(2000) > 500 and price(502) > 45 and price(501) == 0.0
    assert price.model().far > 500


def test_live_pricer_without_builds_is_the_old_model():
    """No build of this run yet: the same prices as before (the fit of the workdir's
    reports, or the defaults): the search's first probes do not change."""
    samples = [(None, 300.0), (1535, 250.0), (5, 40.0), (1, 20.0), (64, 150.0)]
    old = cost.pricer(cost.fit(samples), lambda: [7])
    new = cost.live_pricer(samples, lambda: [7], lambda: [])
    assert all(new(i) == pytest.approx(old(i)) for i in (0, 8, 40, 300, 3000))
    few = cost.live_pricer(samples[:3], lambda: [7], lambda: [])
    default = cost.pricer(cost.BuildCostModel(), lambda: [7])
    assert all(few(i) == pytest.approx(default(i)) for i in (0, 8, 40, 300, 3000))


def _commit(repo_dir, path, text, msg):
    p = repo_dir / path
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    subprocess.run(["git", "add", "-A"], cwd=repo_dir, check=True)
    subprocess.run(["git", "commit", "-qm", msg], cwd=repo_dir, check=True)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_dir, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_prior_of_a_real_history(tmp_path):
    d = tmp_path / "r"
    d.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=d, check=True)
    subprocess.run(["git", "config", "user.email", "t@t"], cwd=d, check=True)
    subprocess.run(["git", "config", "user.name", "t"], cwd=d, check=True)
    shas = [_commit(d, "README", "0", "start")]
    shas.append(_commit(d, "src/other.c", "x", "other"))
    shas.append(_commit(d, "src/source-af-packet.c",
                        'SCLogWarning("%s: sending packet failed on socket %d: %s");', "afp"))
    shas.append(_commit(d, "doc/x.md", "y", "doc"))
    shas.append(_commit(d, "src/util.c", "z", "suspected by the user"))
    pr = prior.for_range(git.Repo(d), shas, shas[-1], [SIGNATURE], [], ["src/util.c"])
    assert pr.paths == {"src/source-af-packet.c": 'produces "sending packet failed on socket"',
                        "src/util.c": "--suspect"}
    assert pr.suspects == [2, 4]
