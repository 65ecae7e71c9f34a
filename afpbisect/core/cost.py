"""What a probe costs to build now: the model the cost-aware search prices probes with.

A build reuses the tree, ccache and cargo state of the commits built before it, so its
cost depends on how far (in commits) the nearest built one is: a neighbour rebuilds in
seconds, a far jump is close to a full compile (docs/results/build-sample.md). The model:

    seconds(d) = near + (far - near) * min(1, log2(1 + d) / log2(1 + horizon))

fitted by least squares on the builds recorded in real runs' reports (`fit`; bench/plan.py
prints the fit). A cached product costs nothing.
"""
from __future__ import annotations

import bisect as _bisect
import math
import statistics
from dataclasses import dataclass

FAR_WITHIN = 16   # a probe is "far" when no built commit is this close (issue 18's model)


@dataclass(frozen=True)
class BuildCostModel:
    near: float = 0.0      # seconds; fitted on the 88 builds of the 2026-11-25..12-01 real runs
                           # (bench/plan.py prints the fit)
    far: float = 263.0
    horizon: int = 256

    def seconds(self, distance: int | None) -> float:
        """Build seconds with the nearest built commit `distance` away (None: none built)."""
        return self.near + (self.far - self.near) * _x(distance, self.horizon)

    def to_dict(self) -> dict:
        return {"near": round(self.near, 1), "far": round(self.far, 1), "horizon": self.horizon}


def _x(distance: int | None, horizon: int) -> float:
    if distance is None:
        return 1.0
    return min(1.0, math.log2(1 + max(0, distance)) / math.log2(1 + horizon))


def fit(samples: list, horizon: int = 256) -> BuildCostModel:
    """Least squares of seconds = near * (1 - x) + far * x over (distance, seconds)."""
    if len(samples) < 2:
        return BuildCostModel(horizon=horizon)
    xs = [_x(d, horizon) for d, _ in samples]
    ys = [s for _, s in samples]
    # normal equations of y = a*(1-x) + b*x
    s11 = sum((1 - x) ** 2 for x in xs)
    s12 = sum((1 - x) * x for x in xs)
    s22 = sum(x * x for x in xs)
    t1 = sum((1 - x) * y for x, y in zip(xs, ys))
    t2 = sum(x * y for x, y in zip(xs, ys))
    det = s11 * s22 - s12 * s12
    if abs(det) < 1e-9:
        return BuildCostModel(horizon=horizon)
    near = (t1 * s22 - t2 * s12) / det
    far = (s11 * t2 - s12 * t1) / det
    return BuildCostModel(max(0.0, near), max(near, far), horizon)


def nearest(built: list, i: int) -> int | None:
    """Distance from i to the nearest index in the sorted list `built` (None if empty)."""
    if not built:
        return None
    k = _bisect.bisect_left(built, i)
    return min(abs(built[j] - i) for j in (k - 1, k) if 0 <= j < len(built))


def pricer(model: BuildCostModel, built):
    """cost(i) for the search: 0 for a built (cached) index, else the model at the
    distance to the nearest built one. `built()` gives the built indexes now; it is read
    again only when their number changes (a pick prices hundreds of candidates)."""
    return _pricer(lambda: model, built)


def _pricer(model, built):
    """pricer with `model()` read at every price (live_pricer refits it)."""
    seen = {"n": -1, "sorted": [], "set": set()}

    def cost(i: int) -> float:
        now = built()
        if len(now) != seen["n"]:
            seen.update(n=len(now), sorted=sorted(now), set=set(now))
        if i in seen["set"]:
            return 0.0
        return model().seconds(nearest(seen["sorted"], i))
    return cost


def live_samples(timed: list) -> list:
    """(distance to the nearest commit built before it, seconds) of this run's fresh builds,
    `timed` being (index, seconds) in the order they were built."""
    out, before = [], []
    for i, secs in timed:
        out.append((nearest(sorted(before), i), float(secs)))
        before.append(i)
    return out


def live_pricer(base: list, built, timed, min_base: int = 4):
    """A pricer whose model is refitted whenever this run times a build (issue 27): a new
    workdir priced every probe of its run with the defaults, which over-price a neighbour
    (33 s against 4 s measured at distance 1) and may under-price a far build. Fitted on
    `base` (the workdir's earlier reports) when it has `min_base` samples, else on three
    points of the default model (so a few builds move it, not replace it); until a build of
    this run is timed the prices are exactly the old ones; then fitted on those plus this
    run's builds (`timed()`:
    (index, seconds) in build order). `.model()` is the model now (for the report)."""
    default = BuildCostModel()
    prior = list(base) if len(base) >= min_base else [(d, default.seconds(d)) for d in (None, 0, 16)]
    start = fit(base) if len(base) >= min_base else default   # exactly the old model
    seen = {"n": -1, "model": start}

    def model() -> BuildCostModel:
        now = timed()
        if len(now) != seen["n"]:
            seen.update(n=len(now), model=fit(prior + live_samples(now)) if now else start)
        return seen["model"]

    cost = _pricer(model, built)
    cost.model = model
    return cost


def samples_from_steps(steps: list) -> list:
    """(distance to the nearest commit built before it in the run, build seconds) of each
    fresh build in a run report's steps, in the order they were built."""
    built: list = []
    out = []
    for st in steps:
        pos, secs = st.get("position"), st.get("build_seconds")
        if pos is None:
            continue
        if st.get("build_ok") and not st.get("build_cached") and secs:
            out.append((nearest(sorted(built), pos), float(secs)))
        if st.get("build_ok") and pos not in built:
            built.append(pos)
    return out


# When no build of this run has been timed yet: a far build of Suricata on 2 cores takes
# 5-8 minutes (docs/results/real-suricata.md); said as a guess, never as a measurement.
DEFAULT_BUILD_SECONDS = 360.0


def build_estimate(builds: dict) -> tuple[float, str]:
    """(seconds, basis) for the next build: the median of the builds this run's state has
    timed (compiled, not cache hits), or the stated default."""
    secs = [b["seconds"] for b in builds.values()
            if isinstance(b, dict) and b.get("ok") and not b.get("cached") and b.get("seconds")]
    if secs:
        return float(statistics.median(secs)), f"median of {len(secs)} build(s) of this run"
    return DEFAULT_BUILD_SECONDS, "default guess, no build of this run timed yet"
