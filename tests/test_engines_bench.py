"""bench/engines.py: the assignment of a round's probes to engines and the farm's caches."""
import itertools
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import engines  # noqa: E402

from afpbisect.core import cost  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5).flatmap(lambda k: st.tuples(
    st.just(k), st.lists(st.lists(st.sampled_from([0.0, 5.0, 60.0, 263.0]), min_size=k, max_size=k),
                         min_size=1, max_size=k))))
def test_assign_is_the_best_bottleneck_then_sum(case):
    k, costs = case
    got = engines.assign(costs)
    assert len(set(got)) == len(costs) and all(0 <= e < k for e in got)

    def score(es):
        return max(c[e] for c, e in zip(costs, es)), sum(c[e] for c, e in zip(costs, es))
    assert score(got) == min(score(es) for es in itertools.permutations(range(k), len(costs)))


def test_each_engine_keeps_its_own_cache():
    farm = engines.Farm(2, cost.BuildCostModel(near=10, far=300, horizon=256))
    assert farm.build(0, 100) == 300 and farm.far == 1
    assert farm.price(0, 100) == 0.0 and farm.price(1, 100) == 300   # not built on engine 1
    assert farm.price(0, 104) < 300 and farm.cheapest(104) == farm.price(0, 104)
    assert farm.build(1, 104) == 300 and farm.far == 2                 # far on its own engine
    assert farm.ensure(100) == (0, 0.0)


def test_more_engines_fewer_rounds_less_wall_more_builds():
    n, culprit = 3071, 1604
    model = cost.BuildCostModel(near=0, far=263, horizon=256)
    runs = {k: engines.simulate(k, n, culprit, [1.0] * n, model, 0.02) for k in (1, 2, 4, 8)}
    assert runs[1]["rounds"] == runs[1]["probes"] <= 12   # one engine: a probe a round
    for a, b in ((1, 2), (2, 4), (4, 8)):
        assert runs[b]["rounds"] < runs[a]["rounds"]
        assert runs[b]["wall_s"] < runs[a]["wall_s"]
        assert runs[b]["far"] > runs[a]["far"]
