"""The search phase and the entry point `bisect`: light steps over the weighted, priced
search (`afpbisect.core.search.weighted_least_satisfying`), then the boundary verified."""
from __future__ import annotations

from typing import Callable

from afpbisect.core.errors import UsageError
from afpbisect.core.percent import pct
from afpbisect.core.search import kary_least_satisfying, weighted_least_satisfying
from afpbisect.core.verdict import Verdict
from afpbisect.policy.boundary import budget_of, check_boundary, miss_bound, references
from afpbisect.policy.calibrate import calibrate
from afpbisect.policy.config import Env, Handler, PolicyConfig
from afpbisect.policy.endpoint import boundary_failed, check_up_front
from afpbisect.policy.rates import lower_rate
from afpbisect.policy.records import BisectResult
from afpbisect.policy.session import Run, on_clean_side, short


class _Calibrated(Exception):
    """The first calibration just ran: search again, so that every GOOD the search still
    relies on is judged at the calibrated level (the store makes the replay free)."""


def bisect(
    commits: list,
    env: Env,
    config: PolicyConfig | None = None,
    store: dict | None = None,
    handler: Handler | None = None,
    weights: list | None = None,
    cost: Callable[[int], float] | None = None,
) -> BisectResult:
    """Find the first racy commit (with `find_fix`: the first clean one) in `commits`.

    commits: oldest first; commits[0] the old endpoint, commits[-1] the new one.
    store: commit -> Evidence, the resumable state, mutated in place. Persist it on every
        `handler.on_cycle(commit, evidence)` (after each cycle or build result) or at least
        on every `handler.on_step(record)` (after each decision). `handler.on_trace(line)`
        gets each decision's trace line as it is made. Calling again with the same store
        runs no finished step again and gives the same answer.
    weights: prior mass of each index being the answer (None = uniform; `prior.py`);
        cost(i): seconds to build commits[i] now (None = `build_seconds`; `cost.py`). They
        choose the order of the questions, never the answer or its proof.
    Raises NotReproducible, EndpointNotClean, EndpointUnbuildable (RangeError, not
    infrastructure) and InfraError; the store stays valid for a resume after any of them.
    """
    cfg = config if config is not None else PolicyConfig()
    commits = _checked(commits, weights)
    n, fix = len(commits), cfg.find_fix
    store = {} if store is None else store
    racy_i, clean_i = (0, n - 1) if fix else (n - 1, 0)
    run = Run(env, cfg, store, commits, commits[racy_i], handler, cost)
    racy_role, clean_role = ("old (racy)", "new (fixed)") if fix else ("BAD (new)", "GOOD (old)")
    what = "first clean" if fix else "first bad"
    run.log(f"bisect for the {what} commit; {n} commits {short(commits[0])}..{short(commits[-1])}; "
            f"target confidence {cfg.confidence}; endpoints "
            + ("built only if needed" if cfg.lazy_endpoints else "checked first"))
    run.clear_streaks()
    if not cfg.lazy_endpoints and run.reference() is None:
        check_up_front(run, racy_i, clean_i, racy_role, clean_role)
    search = _search(run, n, fix, weights, cost)
    rounds = 0
    while True:
        rounds += 1
        found = _search_once(run, search, commits, fix, what)
        if found is None:
            continue
        cands, certain_i, uncertain_i = found
        if run.reference() is None:
            # the search never saw the race: it ends on the racy endpoint, calibrated now
            calibrate(run, commits[certain_i], certain_i, f"{racy_role} endpoint")
            continue
        r = run.verify_round()
        held = _boundary(run, commits, certain_i, uncertain_i, clean_i, clean_role, fix, r)
        if held == "lower":
            return _rate_step(run, cands, commits[certain_i], commits[uncertain_i], rounds, budget_of(run, r))
        if held == "holds":
            return _answer(run, cands, commits[certain_i], commits[uncertain_i], what, rounds)


def _search_once(run: Run, search, commits: list, fix: bool, what: str):
    """One search to its end: (candidates, certain index, uncertain index), or None when a
    calibration made it start again."""
    try:
        res = search()
    except _Calibrated:
        run.log("search again from the start: calibrated now, so every GOOD it relies on "
                "is judged at the calibrated level (stored evidence reused)")
        return None
    cands = [commits[i] for i in res.candidates]
    certain_i, uncertain_i = ((res.last_good_index, res.first_bad_index) if fix
                              else (res.first_bad_index, res.last_good_index))
    run.log(f"search: {what} commit {short(cands[0])} [{res.candidates[0]}]" if len(cands) == 1
            else f"search: the {what} commit could be any of {len(cands)} (unbuildable "
                 f"commits in the way): " + ", ".join(short(c) for c in cands))
    return cands, certain_i, uncertain_i


def _boundary(run: Run, commits: list, certain_i: int, uncertain_i: int, clean_i: int,
                    clean_role: str, fix: bool, r):
    """The boundary's clean side, heavily: "holds"; "lower" when the race is there at a
    lower rate (a rate step); "failed" (after boundary_failed) to search again."""
    side = "first clean commit" if fix else "parent of the first bad commit"
    v = check_boundary(run, commits[certain_i], certain_i, commits[uncertain_i], uncertain_i, side)
    if v is Verdict.GOOD:
        return "holds"
    if v is Verdict.BAD and uncertain_i != clean_i and lower_rate(
            run, commits[certain_i], certain_i, commits[uncertain_i], uncertain_i, budget_of(run, r)):
        return "lower"
    boundary_failed(run, v, commits[uncertain_i], clean_role if uncertain_i == clean_i else None)
    return "failed"


def _search(run: Run, n: int, fix: bool, weights, cost):
    """The search to run (again): one probe at a time, or rounds of `engines` probes."""
    oracle, k = _oracle(run, fix), run.cfg.engines
    if k == 1:
        return lambda: weighted_least_satisfying(n, oracle, weights, cost, run.cfg.slack_bits)

    def batch_oracle(batch: list, window: tuple[int, int]) -> list:
        return _round(run, oracle, batch, window)
    return lambda: kary_least_satisfying(n, batch_oracle, k, weights, cost, 0.0)


def _round(run: Run, oracle, batch: list, window: tuple[int, int]) -> list:
    """One round: the env builds the probes at once (`prepare`), then each is the same light
    step as with one engine, run at once under the env's gate when it has one (their
    cycles on their own engines; the policy's code one at a time: config.Env's gate)."""
    commits = [run.commits[i] for i in batch]
    run.log(f"round of {len(batch)} probe(s) on {run.cfg.engines} engines: "
            + ", ".join(f"{short(c)} [{i}]" for c, i in zip(commits, batch)))
    # A BAD or a SKIP replays from the store: no build. A GOOD may need more cycles at a
    # higher level (after the calibration, on a resume), so it is built and run at once too.
    done = (Verdict.BAD, Verdict.SKIP)
    todo = [c for c in commits if c not in run.store or run.store[c].verdict not in done]
    prepare, gate = getattr(run.env, "prepare", None), getattr(run.env, "gate", None)
    if prepare is not None and todo:
        prepare(todo)
    if gate is None or len(todo) < 2:
        return [oracle(i, window) for i in batch]
    answers = gate.run_all([lambda i=i: oracle(i, window) for i in batch])
    failed = [a for a in answers if isinstance(a, BaseException)]
    if failed:   # an error aborts the round (the store keeps every answer), before a calibration
        raise min(failed, key=lambda e: isinstance(e, _Calibrated))
    return answers


def _oracle(run: Run, fix: bool):
    """A light step in search terms (with find_fix: racy = search-GOOD)."""
    def oracle(i: int, window: tuple[int, int]) -> Verdict:
        commit = run.commits[i]
        if commit in run.store and on_clean_side(run.store[commit]):
            # Racy at a lower rate than the commit after it, or its rate test under way
            # (policy/rates.py): on the clean side, where the search left it before.
            ev = run.store[commit]
            why = "racy at a lower rate" if ev.lower is not None else "its rate test is under way"
            run.log(f"search {short(commit)} [{i}]: GOOD: {why} (found before): the clean side")
            run.record("search", commit, i, Verdict.GOOD, ev, 0, 0, why)
            return Verdict.BAD if fix else Verdict.GOOD
        light = run.light_level(window)
        race = run.judge(commit, i, light, "search", f"; light level {light}")
        if race is Verdict.BAD and run.reference() is None and not run.calibrating:
            # One calibration at a time: a round's other probe seen racy meanwhile stays a
            # BAD (its hit proves it), and the round starts again on this calibration.
            run.calibrating = True
            try:
                if calibrate(run, commit, i, "first commit seen racy"):
                    raise _Calibrated()
            finally:
                run.calibrating = False
            race = Verdict.SKIP
        if race is Verdict.SKIP:
            return Verdict.SKIP
        if fix:  # old = racy = search-GOOD, new = fixed = search-BAD
            return Verdict.GOOD if race is Verdict.BAD else Verdict.BAD
        return race
    return oracle


def _checked(commits, weights) -> list:
    commits = list(commits)
    if len(commits) < 2:
        raise UsageError(f"need at least the two endpoints, got {len(commits)} commit(s)")
    if len(set(commits)) != len(commits):
        raise UsageError("the commit list has duplicates")
    if weights is not None and len(weights) != len(commits):
        raise UsageError(f"{len(weights)} prior weights for {len(commits)} commits")
    return commits


def _rate_step(run: Run, cands: list, certain, uncertain, rounds: int, alpha: float) -> BisectResult:
    """The answer when the boundary's clean side carries the race at a lower rate: the
    commit named changed the race's rate (raised it; with find_fix lowered it), it did not
    bring (or remove) it. Confidence: that the rates differ (`verdict.rate_is_lower`)."""
    low, high = tuple(run.store[uncertain].lower[:2]), tuple(run.store[uncertain].lower[2:])
    what = "lowered" if run.cfg.find_fix else "raised"
    who = " or ".join(short(c) for c in cands)
    run.log(f"answer: {who} {what} the race's rate: {high[0]} hits in {high[1]} "
            f"cycles at {short(certain)}, {low[0]} in {low[1]} at {short(uncertain)}; the race "
            f"was there {'after it too' if run.cfg.find_fix else 'before it'}; confidence "
            f"{pct(1.0 - alpha)} that the rates differ")
    res = _answer(run, cands, certain, uncertain, what, rounds, trace=False)
    res.kind, res.lower_sample, res.rate_sample, res.confidence = what, low, high, 1.0 - alpha
    return res


def _answer(run: Run, cands: list, certain, uncertain, what: str, rounds: int,
            trace: bool = True) -> BisectResult:
    p_hat, p_low = run.estimate()
    ev_u = run.store[uncertain]
    confidence = 1.0 - miss_bound(run, certain, ev_u.clean - run.selected(ev_u))
    culprit = cands[0] if len(cands) == 1 else None
    total = sum(ev.cycles for c, ev in run.store.items() if c in run.in_range)
    if trace and culprit is not None:
        run.log(f"answer: {short(culprit)} is the {what} commit; confidence {pct(confidence)}; "
                f"p ~ {p_hat:.3f} (>= {p_low:.3f}); {total} cycles in all, {run.new_cycles} now")
    elif trace:
        run.log(f"answer: the {what} commit is one of {len(cands)}: "
                + ", ".join(short(c) for c in cands)
                + f"; confidence {pct(confidence)}; {total} cycles in all, {run.new_cycles} now")
    if trace and confidence < run.cfg.confidence:
        run.log(f"warning: confidence {pct(confidence)} is below the target {run.cfg.confidence}")
    return BisectResult(
        candidates=cands, culprit=culprit, confidence=confidence, p_estimate=p_hat,
        p_lower=p_low, total_cycles=total, steps=run.steps, trace=run.trace,
        find_fix=run.cfg.find_fix, verified=uncertain, confirmed=certain,
        new_cycles=run.new_cycles, rounds=rounds,
        recalibration=references(run, certain)[-1], calibration=run.reference(),
        calibrated=run.calibrated, kind="removed" if run.cfg.find_fix else "introduced",
        rate_floor=run.cfg.rate_floor)
