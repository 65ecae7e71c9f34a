"""The policy over noisy fake environments (afpbisect/policy.py)."""
import random

import pytest

from afpbisect.core.errors import InfraError, UsageError
from afpbisect.policy import (
    BisectResult,
    EndpointNotClean,
    EndpointUnbuildable,
    Handler,
    NotReproducible,
    PolicyConfig,
    StepRecord,
    Undecided,
    bisect,
    bisect_fixed,
    check_patch,
)
from afpbisect.core.verdict import CycleOutcome, Evidence, Verdict

HIT, CLEAN, INFRA = CycleOutcome.HIT, CycleOutcome.CLEAN, CycleOutcome.INFRA


class Crash(Exception):
    """Stands for a SIGKILL between two cycles."""


class FakeEnv:
    """A synthetic history: commits "c0000".. with the race from `change` on (with
    find_fix: before `change`). Each commit's k-th cycle outcome is fixed by (seed, commit,
    k), so an interrupted and resumed run sees exactly what an uninterrupted one sees."""

    def __init__(self, n, change, p, *, infra=0.0, unbuildable=(), seed=0, find_fix=False,
                 forced=None, build_infra=None):
        self.commits = [f"c{i:04d}" for i in range(n)]
        self.index = {c: i for i, c in enumerate(self.commits)}
        self.change, self.p, self.infra, self.seed, self.find_fix = change, p, infra, seed, find_fix
        self.unbuildable = {self.commits[i] for i in unbuildable}
        self.forced = forced or {}  # (index, k) -> outcome
        self.build_infra = dict(build_infra or {})  # index -> build attempts failing on infra
        self.streams: dict = {}
        self.done: dict = {}  # commit -> cycles run
        self.cycles = 0
        self.builds = self.releases = 0
        self.built_commits: set = set()   # every commit a build was asked of
        self.live: set = set()
        self.crash_at = None  # crash instead of running cycle number crash_at (1-based)
        self.frozen = False  # any build or cycle is an error (for "redo nothing")

    def racy(self, i):
        return i < self.change if self.find_fix else i >= self.change

    def build(self, commit):
        assert not self.frozen, f"build({commit}) on a finished bisection"
        i = self.index[commit]
        if self.build_infra.get(i):
            self.build_infra[i] -= 1
            raise InfraError("docker daemon went away")
        self.builds += 1
        self.built_commits.add(commit)
        if commit in self.unbuildable:
            return "error: ‘AFPPeer’ has no member named ‘sock’\nmake: *** [all] Error 2"
        self.live.add(commit)
        return None

    def cycle(self, commit):
        assert not self.frozen, f"cycle({commit}) on a finished bisection"
        assert commit in self.live, "cycle on a commit that is not built"
        if self.crash_at is not None and self.cycles + 1 >= self.crash_at:
            self.crash_at = None
            raise Crash()
        self.cycles += 1
        k = self.done.get(commit, 0)
        self.done[commit] = k + 1
        i = self.index[commit]
        rng = self.streams.setdefault(commit, random.Random(f"{self.seed}:{commit}"))
        r_infra, r_hit = rng.random(), rng.random()
        if (i, k) in self.forced:
            return self.forced[(i, k)]
        if r_infra < self.infra:
            return INFRA
        return HIT if self.racy(i) and r_hit < self.p else CLEAN

    def release(self, commit):
        self.releases += 1
        self.live.discard(commit)


def run(env, **cfg):
    return bisect(env.commits, env, PolicyConfig(**cfg), {})


# --- correct answers ----------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.25, 0.6, 1.0])
@pytest.mark.parametrize("seed", range(6))
def test_finds_the_culprit(p, seed):
    n = 400
    change = random.Random(seed).randrange(1, n)
    env = FakeEnv(n, change, p, infra=0.02, seed=seed)
    res = run(env)
    assert res.candidates == [env.commits[change]]
    assert res.culprit == env.commits[change]
    assert res.confidence >= 0.999
    assert res.total_cycles == res.new_cycles == env.cycles
    assert env.builds == env.releases and not env.live
    assert res.trace[-1].startswith("answer:")
    assert res.verified == env.commits[change - 1]


def test_a_false_good_is_caught_by_the_verification():
    # c0249 (the third midpoint) is racy but starts clean more often than its light level
    # (priced at 14 here): the light test calls it GOOD, the boundary lands on it, the
    # verification catches it.
    forced = {(249, k): CLEAN for k in range(20)}
    env = FakeEnv(400, 240, 0.5, seed=3, forced=forced)
    res = run(env)
    assert res.culprit == "c0240"
    assert res.rounds >= 2
    light = [s for s in res.steps if s.commit == "c0249"]
    assert [s.phase for s in light][:2] == ["search", "verify"]
    assert light[0].verdict is Verdict.GOOD and light[1].verdict is Verdict.BAD
    assert any("verify caught the race on c0249" in line for line in res.trace)


def test_culprit_is_the_bad_endpoint_and_first_commit():
    env = FakeEnv(50, 49, 0.5, seed=1)
    assert run(env).candidates == ["c0049"]
    env = FakeEnv(50, 1, 0.5, seed=1)
    assert run(env).candidates == ["c0001"]
    env = FakeEnv(2, 1, 0.5, seed=1)
    res = run(env)
    assert res.candidates == ["c0001"] and res.verified == "c0000"


# --- unbuildable commits ------------------------------------------------------------------


@pytest.mark.parametrize("unbuildable,expected", [
    ({199}, [199, 200]),  # the parent does not build: could be either
    ({200}, [200, 201]),  # the culprit itself does not build
    ({197, 198, 199}, [197, 198, 199, 200]),
    ({200, 201, 202}, [200, 201, 202, 203]),
    ({150, 250}, [200]),  # skips elsewhere do not matter
])
def test_unbuildable_next_to_the_culprit(unbuildable, expected):
    env = FakeEnv(400, 200, 0.5, unbuildable=unbuildable, seed=4)
    res = run(env)
    assert res.candidates == [env.commits[i] for i in expected]
    assert res.culprit == (env.commits[200] if expected == [200] else None)
    assert res.confidence >= 0.999
    if len(expected) > 1:
        assert "could be any of" in "\n".join(res.trace) or "is one of" in res.trace[-1]
        skipped = [s for s in res.steps if s.verdict is Verdict.SKIP]
        assert {s.commit for s in skipped} >= {env.commits[i] for i in expected[:-1]}


def test_build_errors_are_recorded_and_never_rebuilt():
    env = FakeEnv(400, 200, 0.5, unbuildable={199, 200, 201}, seed=4)
    store = {}
    bisect(env.commits, env, PolicyConfig(), store)
    assert "Error 2" in store["c0200"].build_error and store["c0200"].verdict is Verdict.SKIP
    builds = env.builds
    env.frozen = True
    bisect(env.commits, env, PolicyConfig(), store)
    assert env.builds == builds


# --- infrastructure errors ------------------------------------------------------------------


def test_infra_errors_are_retried_not_evidence():
    env = FakeEnv(300, 123, 0.5, infra=0.2, seed=5)
    res = run(env, max_consecutive_infra=10)
    assert res.culprit == "c0123"
    assert sum(s.infra for s in res.steps if s.new_cycles) > 0


def test_an_infra_streak_aborts_and_resumes():
    env = FakeEnv(300, 123, 0.5, seed=6)
    env.forced = {(149, k): INFRA for k in range(3)}  # the first search step hits a streak
    store = {}
    with pytest.raises(InfraError, match="in a row"):
        bisect(env.commits, env, PolicyConfig(), store)
    assert store["c0149"].consecutive_infra == 3 and store["c0149"].verdict is Verdict.ERROR
    res = bisect(env.commits, env, PolicyConfig(), store)  # a new session: count again
    assert res.culprit == "c0123"
    assert store["c0149"].infra == 3 and store["c0149"].verdict is Verdict.BAD  # it is racy


def test_build_infra_errors_are_retried_then_abort():
    env = FakeEnv(100, 60, 0.5, seed=7, build_infra={49: 2})   # the first probe
    assert run(env).culprit == "c0060"
    env = FakeEnv(100, 60, 0.5, seed=7, build_infra={49: 3})
    with pytest.raises(InfraError, match="build attempts"):
        run(env)
    env = FakeEnv(100, 60, 0.5, seed=7, build_infra={99: 3})
    with pytest.raises(InfraError, match="build attempts"):
        run(env, lazy_endpoints=False)   # the eager order builds the BAD endpoint first


def test_infra_error_raised_by_a_cycle_counts_as_infra():
    class Flaky(FakeEnv):
        def cycle(self, commit):
            if self.cycles == 5 and not getattr(self, "raised", False):
                self.raised = True
                raise InfraError("container killed")
            return super().cycle(commit)
    env = Flaky(100, 60, 0.5, seed=8)
    res = run(env)
    assert res.culprit == "c0060"
    assert any("cycle failed on infrastructure" in line for line in res.trace)


# --- resuming ---------------------------------------------------------------------------


def test_a_finished_store_redoes_nothing():
    env = FakeEnv(500, 321, 0.4, infra=0.03, unbuildable={100, 320}, seed=9)
    store = {}
    first = bisect(env.commits, env, PolicyConfig(), store)
    env.frozen = True  # any build or cycle now fails the test
    again = bisect(env.commits, env, PolicyConfig(), store)
    assert again.candidates == first.candidates and again.confidence == first.confidence
    assert again.new_cycles == 0 and all(s.new_cycles == 0 for s in again.steps)
    assert again.total_cycles == first.total_cycles


def _snapshot(store):
    return {c: (e.cycles, e.hits, e.infra, e.build_error) for c, e in store.items()}


@pytest.mark.parametrize("seed,p", [(10, 0.3), (11, 0.6), (12, 0.9)])
def test_an_interrupted_run_resumes_without_redoing_work(seed, p):
    n, change = 300, random.Random(seed).randrange(1, 300)
    kw = dict(infra=0.05, unbuildable={change - 1} if seed == 11 else set(), seed=seed)
    ref_env = FakeEnv(n, change, p, **kw)
    ref_store = {}
    ref = bisect(ref_env.commits, ref_env, PolicyConfig(), ref_store)
    total = ref_env.cycles
    for crash_at in sorted({1, 2, total // 3, total // 2, total - 1, total} | set(range(5, total, 11))):
        env = FakeEnv(n, change, p, **kw)
        env.crash_at = crash_at
        store = {}
        with pytest.raises(Crash):
            bisect(env.commits, env, PolicyConfig(), store)
        assert env.cycles == crash_at - 1 and not env.live
        # the caller persisted the store as JSON; the resumed run starts from that
        store = {c: Evidence.from_dict(e.to_dict()) for c, e in store.items()}
        res = bisect(env.commits, env, PolicyConfig(), store)
        assert res.candidates == ref.candidates, crash_at
        assert env.cycles == total, f"crash at {crash_at}: a resumed run ran other cycles"
        assert _snapshot(store) == _snapshot(ref_store)


# --- find_fix -----------------------------------------------------------------------------


@pytest.mark.parametrize("p", [0.3, 0.9])
def test_find_fix(p):
    env = FakeEnv(400, 277, p, infra=0.02, seed=13, find_fix=True)
    res = run(env, find_fix=True)
    assert res.find_fix and res.candidates == ["c0277"]
    assert res.verified == "c0277"  # the first clean commit gets the heavy test
    assert res.confirmed == "c0276"
    assert res.confidence >= 0.999


def test_find_fix_with_unbuildable_commits():
    env = FakeEnv(400, 277, 0.5, seed=14, find_fix=True, unbuildable={276, 277})
    res = run(env, find_fix=True)
    assert res.candidates == ["c0276", "c0277", "c0278"] and res.culprit is None


def test_find_fix_refuses_when_the_new_end_is_still_racy():
    env = FakeEnv(100, 100, 1.0, seed=15, find_fix=True)  # racy everywhere
    with pytest.raises(EndpointNotClean, match="not fixed"):
        run(env, find_fix=True)


# --- refusals -----------------------------------------------------------------------------


def test_refuses_when_the_bad_endpoint_does_not_reproduce():
    env = FakeEnv(100, 100, 0.5, seed=16)  # no racy commit at all
    store = {}
    with pytest.raises(NotReproducible) as info:
        bisect(env.commits, env, PolicyConfig(max_calibration_cycles=25), store)
    assert not isinstance(info.value, InfraError)
    assert "not reproducible on BAD" in str(info.value) and "c0099" in str(info.value)
    assert store["c0099"].valid_cycles == 25 and store["c0099"].hits == 0
    # lazily, the search met no race, so it ended on the BAD endpoint and calibrated it there
    env = FakeEnv(100, 100, 0.5, seed=16)
    store = {}
    with pytest.raises(NotReproducible):
        bisect(env.commits, env, PolicyConfig(max_calibration_cycles=25, lazy_endpoints=False), store)
    assert env.cycles == store["c0099"].cycles  # eagerly, nothing else was tried


def test_refuses_when_the_good_endpoint_is_racy():
    env = FakeEnv(100, 0, 1.0, seed=17)
    with pytest.raises(EndpointNotClean, match="older than this range"):
        run(env)


def test_a_racy_good_endpoint_missed_by_the_light_check_is_caught_later():
    forced = {(0, k): CLEAN for k in range(5)}  # clean in its light check, racy after
    env = FakeEnv(100, 0, 0.5, seed=18, forced=forced)
    with pytest.raises(EndpointNotClean):
        run(env)


def test_refuses_unbuildable_endpoints_it_needs():
    for lazy in (True, False):
        env = FakeEnv(100, 99, 0.5, seed=19)   # the answer is at the BAD endpoint
        env.unbuildable = {"c0099"}
        with pytest.raises(EndpointUnbuildable):
            run(env, lazy_endpoints=lazy)
        env = FakeEnv(100, 1, 0.5, seed=19)    # the answer's parent is the GOOD endpoint
        env.unbuildable = {"c0000"}
        with pytest.raises(EndpointUnbuildable):
            run(env, lazy_endpoints=lazy)


def test_lazy_endpoints_are_never_built_when_the_answer_is_inside():
    env = FakeEnv(100, 50, 0.5, seed=19)
    env.unbuildable = {"c0000", "c0099"}
    res = run(env)
    assert res.culprit == "c0050" and res.confidence >= 0.999
    assert "c0000" not in env.built_commits and "c0099" not in env.built_commits
    with pytest.raises(EndpointUnbuildable):
        run(FakeEnv(100, 50, 0.5, seed=19, unbuildable={99}), lazy_endpoints=False)


def test_low_hit_rate_calibration_proceeds_with_few_hits():
    env = FakeEnv(60, 30, 0.05, seed=20)
    res = run(env, max_calibration_cycles=40, cycle_cap=None)
    assert res.candidates == ["c0030"]
    assert any("only" in line and "hits wanted" in line for line in res.trace)


def test_a_proof_beyond_the_cycle_cap_is_undecided_with_the_count_it_needs():
    """Issue 25: 2 hits in 40 cycles asked for thousands of clean cycles with no cap (a
    re-calibration of 1 in 60, about 98,000: 19 days). Above the cap the run ends
    undecided, says how many more it needs, and a run with a higher cap resumes."""
    env = FakeEnv(60, 30, 0.05, seed=20)
    store: dict = {}
    with pytest.raises(Undecided, match=r"undecided: c\d+ needs \d+ more clean cycles .*--cycle-cap"):
        bisect(env.commits, env, PolicyConfig(max_calibration_cycles=40), store)
    spent = env.cycles
    assert spent < 600
    res = bisect(env.commits, env, PolicyConfig(max_calibration_cycles=40, cycle_cap=None), store)
    assert res.candidates == ["c0030"]


# --- callbacks, trace, config -------------------------------------------------------------


def test_callbacks_and_trace():
    env = FakeEnv(200, 77, 0.5, infra=0.05, unbuildable={40}, seed=21)
    steps, cycles = [], []

    class Seen(Handler):
        def on_step(self, rec):
            steps.append(rec)

        def on_cycle(self, c, ev):
            cycles.append((c, ev.cycles))

    res = bisect(env.commits, env, PolicyConfig(lazy_endpoints=False), {}, handler=Seen())
    assert isinstance(res, BisectResult)
    assert steps == res.steps and all(isinstance(s, StepRecord) for s in steps)
    phases = [s.phase for s in steps]
    assert phases[0] == "calibrate" and phases[1] == "endpoint"
    assert "search" in phases and res.rounds <= phases.count("verify") <= 2 * res.rounds
    # the re-calibration confirms the culprit; a verification may follow it (extended)
    assert phases.count("confirm") == 1 and "confirm" in phases[-2:]
    # one callback per cycle, plus one per build error (and per verdict)
    assert len({(c, k) for c, k in cycles}) >= env.cycles
    for s in steps:  # every decision is in the trace
        assert any(line.startswith(s.phase) and s.commit in line for line in res.trace)
    d = res.to_dict()
    assert d["culprit"] == "c0077" and d["steps"][0]["verdict"] == "bad"


def test_config_is_validated():
    for bad in ({"confidence": 1.0}, {"confidence": 0}, {"calibration_hits": 0},
                {"light_miss": 1.5}, {"max_consecutive_infra": 0}, {"unhealthy_lead": 0},
                {"light_tighten": 0}, {"max_verify_cycles": 0}):
        with pytest.raises(UsageError):
            PolicyConfig(**bad)
    with pytest.raises(UsageError):
        bisect(["a"], FakeEnv(1, 1, 0.5), PolicyConfig())
    with pytest.raises(UsageError):
        bisect(["a", "a"], FakeEnv(2, 1, 0.5), PolicyConfig())


def test_capped_verification_reports_lower_confidence():
    env = FakeEnv(200, 77, 0.3, seed=22)
    res = run(env, max_verify_cycles=5)
    assert res.culprit == "c0077" and res.confidence < 0.999
    assert any(line.startswith("warning: confidence") for line in res.trace)


# --- check_patch --------------------------------------------------------------------------


class OneCommit(FakeEnv):
    def __init__(self, racy, p=0.5, seed=0):
        super().__init__(2, 0 if racy else 2, p, seed=seed)


def test_check_patch_calibrates_then_clears():
    unpatched = check_patch("c0001", OneCommit(racy=True), PolicyConfig())
    assert unpatched.race_present and unpatched.evidence.hits == 8
    assert 0.2 < unpatched.p_estimate < 0.9 and unpatched.p_lower < unpatched.p_estimate
    patched_env = OneCommit(racy=False)
    patched = check_patch("c0001", patched_env, PolicyConfig(), reference=unpatched.evidence)
    assert patched.verdict is Verdict.GOOD and not patched.race_present
    assert patched.confidence >= 0.999
    assert patched.evidence.clean == patched.clean_needed == patched_env.cycles
    assert "cleared with confidence" in patched.trace[-1]


def test_check_patch_finds_the_race_still_there():
    unpatched = check_patch("c0001", OneCommit(racy=True, seed=1), PolicyConfig())
    still = check_patch("c0001", OneCommit(racy=True, seed=2), PolicyConfig(),
                        reference=unpatched.evidence)
    assert still.race_present and still.evidence.hits == 1


def test_check_patch_without_the_race():
    res = check_patch("c0001", OneCommit(racy=False), PolicyConfig(max_calibration_cycles=20))
    assert res.verdict is Verdict.GOOD and res.confidence == 0.0 and res.evidence.valid_cycles == 20
    with pytest.raises(UsageError):
        check_patch("c0001", OneCommit(racy=False), PolicyConfig(), reference=res.evidence)


def test_check_patch_resumes_from_its_evidence():
    ref = check_patch("c0001", OneCommit(racy=True), PolicyConfig()).evidence
    env = OneCommit(racy=False)
    env.crash_at = 10
    ev = Evidence()
    with pytest.raises(Crash):
        check_patch("c0001", env, PolicyConfig(), reference=ref, evidence=ev)
    assert ev.cycles == 9
    res = check_patch("c0001", env, PolicyConfig(), reference=ref, evidence=ev)
    assert res.verdict is Verdict.GOOD and env.cycles == res.clean_needed


def test_check_patch_accepts_a_rate_instead_of_a_reference():
    env = OneCommit(racy=False)
    res = check_patch("c0001", env, PolicyConfig(), p_lower=0.25)
    assert res.verdict is Verdict.GOOD and res.clean_needed == 25 == env.cycles
    assert res.confidence >= 0.999
    with pytest.raises(UsageError):
        check_patch("c0001", OneCommit(racy=False), PolicyConfig(), p_lower=0.0)


# --- the naive method (--cycles N), shared with bench/simulate.py -----------------------

def test_bisect_fixed_names_culprit_and_resumes_after_infra():
    import random

    from afpbisect.core.errors import InfraError
    from afpbisect.policy import bisect_fixed
    from afpbisect.core.verdict import CycleOutcome

    class Env:
        def __init__(self):
            self.rng, self.cycles, self.fail_next = random.Random(5), 0, 0

        def build(self, c):
            return "does not compile" if c == 31 else None

        def cycle(self, c):
            self.cycles += 1
            if self.fail_next:
                self.fail_next -= 1
                return CycleOutcome.INFRA
            return CycleOutcome.HIT if c >= 40 and self.rng.random() < 0.9 else CycleOutcome.CLEAN

        def release(self, c):
            pass

    env, store = Env(), {}
    env.fail_next = 3           # three in a row: the call aborts, the store survives
    with pytest.raises(InfraError):
        bisect_fixed(list(range(100)), env, 10, store=store)
    res = bisect_fixed(list(range(100)), env, 10, store=store)
    assert res.candidates == [40] and res.culprit == 40 and res.confidence == 0.0
    assert all(s.verdict.value in ("good", "bad", "skip") for s in res.steps)


# --- issue 16: a cycle that proves nothing is not clean -----------------------------------

UNHEALTHY = CycleOutcome.UNHEALTHY


class SickEnv(FakeEnv):
    """FakeEnv where some commits never run healthy (exit at start, forward nothing)."""

    def __init__(self, *a, sick=(), **kw):
        super().__init__(*a, **kw)
        self.sick = {self.commits[i] for i in sick}

    def cycle(self, commit):
        out = super().cycle(commit)
        return UNHEALTHY if commit in self.sick else out


@pytest.mark.parametrize("sick", [(29,), (51,), (44, 51), (29, 44, 47, 51)])
def test_unhealthy_commits_are_skipped_and_the_answer_stands(sick):
    """A commit that never runs healthy is SKIP after a bounded number of cycles, and the
    search finds the change around it; before issue 16 its 'clean' cycles made it GOOD
    (51 is on the racy side: the answer was then wrong with full stated confidence)."""
    env = SickEnv(60, 50, 0.9, sick=sick, seed=3)
    res = bisect(env.commits, env, PolicyConfig())
    assert res.culprit == env.commits[50]
    for i in sick:
        rec = [s for s in res.steps if s.commit == env.commits[i]]
        if rec:
            assert {s.verdict for s in rec} == {Verdict.SKIP}
            assert env.done[env.commits[i]] == 3   # the bound: lead 3, no healthy cycle


def test_unhealthy_is_not_an_infrastructure_streak():
    ev = Evidence()
    for _ in range(5):
        ev.add(UNHEALTHY)
    assert ev.consecutive_infra == 0 and ev.clean == 0 and ev.valid_cycles == 0


def test_unhealthy_clean_endpoint_is_no_answer():
    env = SickEnv(40, 20, 0.9, sick=(0,))
    with pytest.raises(EndpointUnbuildable, match="cannot be used: untestable"):
        bisect(env.commits, env, PolicyConfig(lazy_endpoints=False))
    env = SickEnv(40, 1, 0.9, sick=(0,))   # lazily: only when the answer needs it
    with pytest.raises(EndpointUnbuildable, match="cannot be used: untestable"):
        bisect(env.commits, env, PolicyConfig())


# --- issue 16: the rate is measured again where it is used --------------------------------

class DriftEnv(FakeEnv):
    """The hit rate falls after the calibration (the machine got quiet: NOTES measured 8 of 8
    beside a build and about 1 in 4 alone)."""

    def __init__(self, *a, late_p=0.25, switch=8, **kw):
        super().__init__(*a, **kw)
        self.late_p, self.switch = late_p, switch

    def cycle(self, commit):
        out = super().cycle(commit)
        if out is HIT and self.cycles > self.switch:
            rng = self.streams[commit]
            return HIT if rng.random() < self.late_p / self.p else CLEAN
        return out


def test_a_rate_that_falls_after_calibration_is_caught_by_the_recalibration():
    wrong, extended = 0, 0
    for seed in range(120):
        env = DriftEnv(120, 70, 1.0, late_p=0.25, seed=seed)
        res = bisect(env.commits, env, PolicyConfig())
        hits, valid = res.recalibration
        assert hits >= 1 and hits / valid < 1, res.recalibration   # the rate now, not 8 of 8
        wrong += res.culprit != env.commits[70]
        extended += any("extended" in line for line in res.trace)
    # Against the start's 8 of 8 alone, each racy commit left GOOD on the boundary's clean
    # side survives 6 clean cycles 18% of the time at p = 0.25; bounded against the rate
    # seen now, the budget of 0.1% holds.
    assert extended >= 60, extended
    assert wrong <= 1, wrong


def test_no_hit_in_the_recalibration_gives_no_confidence():
    # (the re-calibration alternates with the verification since issue 25: the rate must
    # fall a little earlier for it to see no hit at all)
    env = DriftEnv(60, 30, 1.0, late_p=1e-9, switch=18, seed=1)
    res = bisect(env.commits, env, PolicyConfig(max_calibration_cycles=20, cycle_cap=None))
    assert res.recalibration[0] == 0 and res.confidence == 0.0
    assert any("no longer shows" in line for line in res.trace)
    assert any(line.startswith("warning: confidence") for line in res.trace)


# --- several engines (issue 20) -------------------------------------------------------------


class FarmEnv(FakeEnv):
    """FakeEnv whose `prepare` records each round's builds, as the real env builds them at
    once on several engines."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.rounds: list = []

    def prepare(self, commits):
        self.rounds.append(list(commits))


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("seed", range(4))
def test_k_engines_give_the_same_answer_in_fewer_rounds(k, seed):
    n = 400
    change = random.Random(seed).randrange(1, n)
    one, farm = FakeEnv(n, change, 0.6, seed=seed), FarmEnv(n, change, 0.6, seed=seed)
    res1, resk = run(one), run(farm, engines=k)
    assert resk.culprit == res1.culprit == farm.commits[change]
    assert resk.confidence >= 0.999
    # every round asks up to k probes, built at once; fewer rounds than one engine's steps
    assert farm.rounds and all(1 <= len(r) <= k for r in farm.rounds)
    assert len(farm.rounds) < sum(1 for s in res1.steps if s.phase == "search")
    assert any(len(r) > 1 for r in farm.rounds)
    assert any(line.startswith(f"round of ") for line in resk.trace)
    assert farm.builds == farm.releases and not farm.live


def test_one_engine_never_asks_for_rounds():
    env = FarmEnv(200, 77, 0.6, seed=3)
    assert run(env).culprit == env.commits[77]
    assert env.rounds == []


def test_engines_is_validated():
    with pytest.raises(UsageError):
        PolicyConfig(engines=0)


class GatedFarmEnv(FarmEnv):
    """Cycles that wait outside the gate, as the real env waits on Docker: the probes of a
    round then overlap, and only their waits do. The first round of fresh probes holds its
    first cycle's wait until a second probe waits beside it (a condition, not a sleep): run
    one after the other, they never meet and most_waiting stays 1."""

    MEET_TIMEOUT = 60   # seconds; only reached when the probes do not run at once

    def __init__(self, *a, **kw):
        import threading
        from afpbisect.machinery.parallel import Gate
        super().__init__(*a, **kw)
        self.gate = Gate()
        self.waiting = self.most_waiting = 0
        self.seen: set = set()
        self.pair: set | None = None
        self.met = False
        self.cond = threading.Condition()

    def prepare(self, commits):
        super().prepare(commits)
        if self.pair is None and len(commits) >= 2 and not self.seen & set(commits):
            self.pair = set(commits)

    def cycle(self, commit):
        self.seen.add(commit)
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        with self.gate.released():
            if self.pair and commit in self.pair:
                with self.cond:
                    if self.waiting >= 2:
                        self.met = True
                    self.cond.notify_all()
                    self.cond.wait_for(lambda: self.met, self.MEET_TIMEOUT)
        self.waiting -= 1
        return super().cycle(commit)


@pytest.mark.parametrize("seed", range(3))
def test_a_rounds_probes_run_at_once_with_the_same_answer(seed):
    n = 300
    change = random.Random(seed).randrange(1, n)
    one, farm = FakeEnv(n, change, 0.6, seed=seed), GatedFarmEnv(n, change, 0.6, seed=seed)
    res1, res3 = run(one), run(farm, engines=3)
    assert res3.culprit == res1.culprit == farm.commits[change]
    assert res3.confidence >= 0.999
    assert farm.most_waiting >= 2      # two probes' cycles were waiting on their engines at once
    assert farm.builds == farm.releases and not farm.live
    # each decision counts its own new cycles, not those of the probe beside it
    assert sum(s.new_cycles for s in res3.steps) == farm.cycles == res3.new_cycles


@pytest.mark.parametrize("seed", range(10))
def test_a_round_calibrates_once(seed):
    """Two probes of one round seen racy before any calibration: one calibrates, the other
    is a BAD (its hit proves it); two calibrations would cost 8 hits each and leave the
    reference to whichever ended last."""
    n = 300
    change = random.Random(seed).randrange(1, n // 3)
    farm = GatedFarmEnv(n, change, 0.6, seed=seed)
    res = run(farm, engines=3)
    assert res.culprit == farm.commits[change]
    assert sum(1 for s in res.steps if s.phase == "calibrate") == 1


@pytest.mark.parametrize("seed", range(4))
def test_a_farm_run_stopped_mid_round_resumes_on_another_number_of_engines(seed):
    """The state written by parallel rounds is the one store: a run stopped in the middle
    of a round (3 engines) resumes with 1 engine, or 2, to the same answer."""
    n, change = 300, random.Random(seed).randrange(1, 300)
    ref = run(FakeEnv(n, change, 0.6, seed=seed))
    for crash_at, k_after in ((3, 1), (9, 2), (20, 1)):
        env = GatedFarmEnv(n, change, 0.6, seed=seed)
        env.crash_at = crash_at
        store: dict = {}
        with pytest.raises(Crash):
            bisect(env.commits, env, PolicyConfig(engines=3), store)
        store = {c: Evidence.from_dict(e.to_dict()) for c, e in store.items()}   # as persisted
        again = GatedFarmEnv(n, change, 0.6, seed=seed)
        res = bisect(again.commits, again, PolicyConfig(engines=k_after), store)
        assert res.culprit == ref.culprit == env.commits[change], (crash_at, k_after)
        assert res.confidence >= 0.999


# --- issue 25: worlds the model does not assume ---------------------------------------------


class PreEnv(FakeEnv):
    """The race was there before `change`, from `origin`, at the lower rate `q`; `change`
    raised it to `p` (the model assumed every racy commit has one rate)."""

    def __init__(self, *a, origin, q, **kw):
        super().__init__(*a, **kw)
        self.origin, self.q = origin, q

    def racy(self, i):
        return i >= self.origin

    def cycle(self, commit):
        out = super().cycle(commit)
        i = self.index[commit]
        if out is HIT and self.origin <= i < self.change:
            return HIT if self.streams[commit].random() < self.q / self.p else CLEAN
        return out


def _pre_wrong(env, res) -> bool:
    """Wrong: the culprit named as having brought the race while its parent had it."""
    right = env.commits[env.change] if res.kind == "raised" else env.commits[env.origin]
    return right not in res.candidates


def test_a_race_there_before_at_a_lower_rate_is_not_called_a_clean_parent():
    """Issue 25: the race already present earlier at q = 0.25, raised to 1 by the culprit.
    Bounded against the calibration alone the policy named the culprit with a "clean"
    parent (2% of simulated runs at q = 0.25) while printing 99.97%. With the verification
    sized against the rate floor no answer is wrong, and the culprit, when named, is named
    as having RAISED the rate, with both rates."""
    wrong = raised = 0
    for seed in range(60):
        env = PreEnv(200, 150, 1.0, origin=40, q=0.25, seed=seed)
        res = bisect(env.commits, env, PolicyConfig(rate_floor=0.25))
        wrong += _pre_wrong(env, res)
        if res.kind == "raised":
            raised += 1
            assert res.culprit == env.commits[150] and res.confidence >= 0.999
            h, v = res.lower_sample
            assert 0 < h < v and res.rate_sample[1] == v and res.rate_sample[0] > h
    assert wrong == 0 and raised > 0


def test_without_the_floor_the_lower_rate_parent_passes_as_clean():
    """The same world with the rule before issue 25 (no floor): the verification is sized
    against the calibration's 8 of 8, so a parent at q = 0.25 passes often enough to be
    seen in 60 runs: the test above is not passing by luck of the world."""
    wrong = 0
    for seed in range(60):
        env = PreEnv(200, 150, 1.0, origin=40, q=0.25, seed=seed)
        wrong += _pre_wrong(env, bisect(env.commits, env, PolicyConfig(rate_floor=None)))
    assert wrong > 0


def test_a_raised_answer_resumes_from_the_store_with_no_new_cycle():
    seed = next(s for s in range(200) if _raised(s) is not None)
    env, store, res = _raised(seed)
    env.frozen = True   # a build or a cycle now fails the test
    again = bisect(env.commits, env, PolicyConfig(rate_floor=0.1), store)
    assert (again.kind, again.candidates, again.lower_sample) == (res.kind, res.candidates,
                                                                  res.lower_sample)
    assert again.new_cycles == 0


def _raised(seed):
    env = PreEnv(120, 100, 1.0, origin=10, q=0.1, seed=seed)
    store: dict = {}
    try:
        res = bisect(env.commits, env, PolicyConfig(rate_floor=0.1), store)
    except Undecided:   # lost among the q = 0.1 commits: honest, but not this test's case
        return None
    return (env, store, res) if res.kind == "raised" else None


class LoadEnv(FakeEnv):
    """The machine's load swings: every racy commit's rate is `p` or `low` by phases of
    `period` cycles (all commits alike)."""

    def __init__(self, *a, low, period, **kw):
        super().__init__(*a, **kw)
        self.low, self.period = low, period

    def cycle(self, commit):
        out = super().cycle(commit)
        if out is HIT and (self.cycles // self.period) % 2 == 1:
            return HIT if self.streams[commit].random() < self.low / self.p else CLEAN
        return out


def test_a_load_swing_does_not_pass_a_racy_parent():
    """Rate 1.0 and 0.1 by turns of 30 cycles: the floor (0.1) and the re-calibration
    alternating with the verification keep every answer right."""
    for seed in range(40):
        env = LoadEnv(300, 200, 1.0, low=0.1, period=30, seed=seed)
        res = bisect(env.commits, env, PolicyConfig(rate_floor=0.1))
        assert res.culprit == env.commits[200], seed


def test_the_verification_alternates_with_the_recalibration():
    env = FakeEnv(100, 60, 1.0, seed=3)
    order = []
    real = env.cycle

    def cycle(commit):
        order.append(commit)
        return real(commit)
    env.cycle = cycle
    res = bisect(env.commits, env, PolicyConfig(rate_floor=0.25))
    parent, culprit = env.commits[59], env.commits[60]
    seq = "".join("p" if c == parent else "c" if c == culprit else "." for c in order)
    assert "pcpcpcpc" in seq, seq   # no search does that: the two run by turns
    assert res.culprit == culprit


def test_a_patch_that_only_lowers_the_rate_is_not_cleared():
    """verify-patch: a patch that lowers the rate from 1 to 0.25 passed a check sized
    against the baseline's 8 of 8 (7 clean cycles: 0.75 ** 7 = 13%). With the floor it is
    PRESENT."""
    cleared = 0
    for seed in range(40):
        base = FakeEnv(2, 0, 1.0, seed=seed)
        ref = check_patch("c0000", base, PolicyConfig(rate_floor=0.25))
        low = FakeEnv(2, 0, 0.25, seed=1000 + seed)
        res = check_patch("c0000", low, PolicyConfig(rate_floor=0.25), reference=ref.evidence)
        cleared += res.verdict is Verdict.GOOD
    assert cleared == 0


def _raised_world(seed):
    return PreEnv(120, 100, 1.0, origin=10, q=0.1, seed=seed)


def test_a_run_killed_anywhere_in_a_raised_bisection_resumes_to_the_same_answer():
    """Review of issue 25: a kill between the verification's hit and the end of the rate
    test left nothing in the store saying a test was pending; the resumed search took the
    clean side for a plain BAD and ended elsewhere ("introduced c0010" after 2,500 cycles).
    Evidence.rate keeps the test pending, and its pairs' start, across the kill."""
    seed = next(s for s in range(200) if _raised(s) is not None)
    env, _, first = _raised(seed)
    total = env.cycles
    for crash in range(max(1, total - 60), total + 1, 3):
        env = _raised_world(seed)
        env.crash_at, store = crash, {}
        with pytest.raises(Crash):
            bisect(env.commits, env, PolicyConfig(rate_floor=0.1), store)
        again = bisect(env.commits, env, PolicyConfig(rate_floor=0.1), store)
        assert (again.kind, again.candidates) == (first.kind, first.candidates), crash
        assert env.cycles <= total + 2, crash   # no test run over again


class RebuildFails(PreEnv):
    """A commit that built and ran fails to build later: the environment changed."""

    def __init__(self, *a, fail, **kw):
        super().__init__(*a, **kw)
        self.fail, self.fail_after = fail, None

    def build(self, commit):
        if commit == self.fail and self.fail_after is not None and self.cycles >= self.fail_after:
            self.fail_after = None
            self.builds += 1
            return "error: no space for the object file"
        return super().build(commit)


def test_a_commit_that_ran_and_then_does_not_build_is_infrastructure_not_skip():
    """Review of issue 25: the racy side failing to rebuild in the rate test became SKIP
    (a build error beats a hit in the rule), the search went on for 2,500 cycles and named
    another commit. A commit that built and ran before is an InfraError now; the resume
    gives the first answer."""
    seed = next(s for s in range(200) if _raised(s) is not None)
    first = _raised(seed)[2]
    env = RebuildFails(120, 100, 1.0, origin=10, q=0.1, seed=seed, fail=first.culprit)
    env.fail_after = 40   # past the calibration on the culprit: it has run cycles
    store: dict = {}
    with pytest.raises(InfraError, match="built and ran before"):
        bisect(env.commits, env, PolicyConfig(rate_floor=0.1), store)
    assert store[first.culprit].build_error is None and store[first.culprit].hits
    again = bisect(env.commits, env, PolicyConfig(rate_floor=0.1), store)
    assert (again.kind, again.candidates) == (first.kind, first.candidates)


def test_the_naive_method_never_names_a_commit_no_cycle_showed_racy():
    """Hostile tour of issue 25: `run --cycles 1` on a range where nothing hits named the
    BAD endpoint "first bad" (git's search never asks it) with exit 0. It is tested now, and
    with no hit the range is not reproducible."""
    env = FakeEnv(40, 20, 0.0, seed=1)   # p = 0: the race never shows
    with pytest.raises(NotReproducible, match="no hit at c0039"):
        bisect_fixed(env.commits, env, 1)
    env = FakeEnv(40, 20, 1.0, seed=1)
    assert bisect_fixed(env.commits, env, 1).candidates == ["c0020"]


def test_a_tiny_rate_floor_ends_undecided_not_in_an_endless_count():
    """Hostile tour: --rate-floor 1e-12 spun for ever in clean_cycles_needed ((1 - p) rounds
    for a tiny p, and the count went up one by one)."""
    from afpbisect.core.verdict import clean_cycles_needed
    n = clean_cycles_needed(1e-12, 1e-4)
    assert 9.2e12 < n < 9.3e12
    env = FakeEnv(40, 20, 1.0, seed=1)
    with pytest.raises(Undecided, match="needs"):
        bisect(env.commits, env, PolicyConfig(rate_floor=1e-12))
