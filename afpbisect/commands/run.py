"""`afpbisect run`: range -> calibrated, adaptive bisection -> confirmed culprit -> report.

The policy (policy/) decides, in the order the prior and the build price give (prior.py, cost.py); this module only wires the real environment to it and
turns its result into the report, plus a `git bisect replay` file so anyone can check
the answer with git's own notion of "first bad commit"."""
from __future__ import annotations

import difflib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

from afpbisect import __version__, policy
from afpbisect.commands.context import Context
from afpbisect.commands.progress import PolicyEvents, StepLines
from afpbisect.commands.verify_patch import check_variants
from afpbisect.core import cost as cost_mod
from afpbisect.core import prior as prior_mod
from afpbisect.core.errors import UsageError
from afpbisect.core.outcome import Outcome
from afpbisect.core.patch import load_patch
from afpbisect.core.percent import pct
from afpbisect.core.refs import Range, commit_range, split_range
from afpbisect.core.scenario import NightlySection
from afpbisect.core.state import State, identity_digest
from afpbisect.core.store import evidence_store, save_evidence
from afpbisect.core.verdict import Verdict
from afpbisect.machinery.pipeline_env import PipelineEnv, Variant
from afpbisect.machinery.worktree import BuildTree, check_patches_apply, source_repo
from afpbisect.reports.facts import mean_busy, step_facts
from afpbisect.reports.provenance import stamp
from afpbisect.reports.report import write_atomic, write_command_reports
from afpbisect.reports.results import Answer, Made, RangeInfo, Ref, RunResult, ScenarioInfo, Step, given


def _subject(repo, sha: str) -> str:
    return repo.commit(sha).summary


def check_range_at_source(source: str, range_text: str, find_fix: bool, suspects: tuple = ()) -> None:
    """A range that cannot be bisected, or a --suspect none of its commits touches, is
    refused before the workdir is touched (issue 25): a local --repo is asked directly
    (every ref our clone of it can resolve, it resolves too). A URL is asked once cloned:
    the clone is a cache, nothing the user had."""
    good, bad = split_range(range_text)
    twice = next((p for i, p in enumerate(suspects) if p in suspects[:i]), None)
    if twice is not None:   # taken silently before (fifth hostile tour)
        raise UsageError(f"--suspect {twice} is given twice")
    repo = source_repo(source)
    if repo is not None:
        rng = commit_range(repo, good, bad, old_is_bad=find_fix)
        if suspects:
            check_suspects(prior_mod.touched_files(repo, list(rng.commits)), suspects,
                           f"{rng.good.name}..{rng.bad.name}")


def run_bisection(ctx: Context, range_text: str, find_fix: bool = False,
                  confirm_revert: bool = False, confidence: float = NightlySection.confidence,
                  suspects: tuple = (), check_endpoints: bool = False) -> RunResult:
    t0 = time.time()
    fixed_cycles = ctx.opts.fixed_cycles
    say = ctx.say
    good_name, bad_name = split_range(range_text)
    rng = ctx.resolving(lambda: commit_range(ctx.repo, good_name, bad_name, old_is_bad=find_fix))
    for r in (rng.good, rng.bad):
        if r.note:
            say(f"note: {r.note}")
    check_suspects(prior_mod.touched_files(ctx.repo, list(rng.commits)), suspects,
                   f"{rng.good.name}..{rng.bad.name}")
    sc = ctx.opts.scenario
    variant = Variant.of(sc)
    s = ctx.opts.settings
    identity = {"command": "run", "repo": ctx.opts.repo, "good": rng.good.sha, "bad": rng.bad.sha,
                "find_fix": find_fix, "pairs": s.pairs, "threads": s.threads, "env": s.env,
                "scenario": sc.digest(), "confidence": confidence, "cycles": fixed_cycles,
                "suspects": sorted(suspects), "check_endpoints": check_endpoints}
    stem = f"run-{rng.good.sha[:10]}-{rng.bad.sha[:10]}-{sc.name}"
    # Named by the run's whole identity: a run of the same range with other options or
    # another scenario keeps its own state beside this one.  One that cannot be read is
    # kept aside and said (issue 25): it holds only evidence, which this run gathers again.
    state = State.load_or_new(ctx.state_dir / "state" / f"{stem}-{identity_digest(identity)}.json",
                              "run", identity, restart=ctx.opts.restart, say=say, set_aside=True)
    # What `afpbisect status` names the run by (the identity holds only digests and shas).
    state.data["about"] = {"scenario": sc.name, "good": rng.good.name, "bad": rng.bad.name}
    _announce(ctx, rng)
    env = PipelineEnv(ctx.repo, ctx.builder, ctx.repro, state, ctx.workdir, variant, say=say,
                      progress=ctx.progress, lanes=ctx.lanes)
    store = evidence_store(state)
    config = policy.PolicyConfig(confidence=confidence, find_fix=find_fix,
                                 lazy_endpoints=not check_endpoints, engines=len(ctx.lanes) or 1,
                                 **ctx.opts.verdict_knobs())
    commits = list(rng.commits)
    order = search_order(ctx, commits, commits[0] if find_fix else commits[-1], variant, env, suspects)

    status, message, res = _decide(ctx, rng, state, env, store, config, order)
    revert = None
    # A revert cannot clear a race that was there before the culprit (it raised its rate):
    # not run then, and the report says why (issue 25).
    if res is not None and confirm_revert and res.culprit and res.kind not in ("raised", "lowered"):
        revert = _confirm_revert(ctx, rng, res.culprit, state, config)
    result = replace(_result(ctx, rng, state, env, res, status, message, find_fix, confidence, t0),
                     search_order=order.to_dict(),
                     made=Made.from_dict(stamp(ctx.opts, command="run", range=range_text, find_fix=find_fix,
                                               confirm_revert=confirm_revert, confidence=confidence,
                                               suspects=list(suspects), check_endpoints=check_endpoints)))
    if revert is not None:
        result = replace(result, revert_check=revert)
    state.data["result"] = result.to_dict()
    state.save()
    out = ctx.state_dir / "reports"
    result = write_command_reports(out, stem, result)
    if res is not None:
        write_atomic(out / f"{stem}.bisect-replay", _replay(rng, res, find_fix))
    ctx.result(_headline(result))
    ctx.result(f"report: {result.reports['markdown']} (also .html, .junit.xml, .json)")
    return result


def check_suspects(touched: list, suspects, range_name: str) -> None:
    """A --suspect path that no commit of the range touches orders nothing: most likely a
    typo or a file of another era, so it is refused (issue 25), with the touched paths
    nearest to it (same file name first) so the user can correct it."""
    files = set().union(*touched) if touched else set()
    for path in suspects:
        if prior_mod.touches(files, path):
            continue
        near = nearest_paths(path, files)
        raise UsageError(f"--suspect {path}: no commit of {range_name} touches it"
                         + (f"; it touches {', '.join(near)}" if near else ""))


def nearest_paths(path: str, files: set, n: int = 3) -> list[str]:
    """Touched paths like `path`: the same file name, else the closest spellings (files
    and their directories)."""
    base = path.rstrip("/").rsplit("/", 1)[-1]
    same = sorted(f for f in files if f.rsplit("/", 1)[-1] == base)
    if same:
        return same[:n]
    dirs = {f.rsplit("/", 1)[0] for f in files if "/" in f}
    return difflib.get_close_matches(path.rstrip("/"), sorted(files | dirs), n=n, cutoff=0.6)


def _announce(ctx: Context, rng: Range) -> None:
    """The input is valid (the state included): now the engine (a clear error if away),
    then what each ref resolved to; said after the engine answered, so bad input stays
    one line."""
    ctx.docker()
    if ctx.fetched_note:
        ctx.say(ctx.fetched_note)
    for r in (rng.good, rng.bad):
        ctx.say(f"{r.typed} is {r.name} {r.sha}")
    ctx.say(f"range {rng.good.name}..{rng.bad.name}: {len(rng.commits) - 1} commits "
            f"(git bisect would ask about {max(1, (len(rng.commits) - 1).bit_length())}; "
            f"the prior below may need fewer)")


def _decide(ctx: Context, rng: Range, state: State, env: PipelineEnv, store: dict, config,
            order: "SearchOrder") -> tuple:
    """The policy over the real environment: (status, message, result or None). The state
    is saved after every cycle and decision, and whatever ends the call."""
    def persist(*_a):
        save_evidence(state, store)

    events = _events(ctx, rng, state, config.find_fix, persist)
    status, message, res = "found", "", None
    try:
        if ctx.opts.fixed_cycles:   # the naive method, for comparison: no confidence claimed
            res = policy.bisect_fixed(list(rng.commits), env, ctx.opts.fixed_cycles,
                                      find_fix=config.find_fix, store=store, handler=events)
        else:
            res = policy.bisect(list(rng.commits), env, config, store=store, handler=events,
                                weights=order.prior.weights, cost=order.cost)
    except policy.RangeError as exc:
        # Not reproducible at BAD, race already at GOOD, endpoint unbuildable: an honest
        # "no answer", with the evidence kept.
        status, message = type(exc).__name__, str(exc)
    finally:
        save_evidence(state, store)
        env.close()
    return status, message, res


def _events(ctx: Context, rng: Range, state: State, find_fix: bool, persist) -> PolicyEvents:
    """The policy's events in a run: every cycle persisted; every decision persisted, kept
    in the state (`afpbisect status` reads them while the run goes on) and shown as a step
    line; the trace shown live."""
    # The policy replays every finished decision on a resume: the list is rebuilt.
    state.data["steps"] = []
    lines = (StepLines(ctx.progress, rng.commits, find_fix, lambda c: _subject(ctx.repo, c))
             if ctx.progress is not None else None)
    return PolicyEvents(ctx.progress, persist, steps=state.data["steps"], lines=lines)


@dataclass
class SearchOrder:
    prior: prior_mod.Prior
    cost: object   # cost_mod.live_pricer: its model is refitted as this run's builds are timed

    @property
    def model(self) -> cost_mod.BuildCostModel:
        return self.cost.model()

    def to_dict(self) -> dict:
        # The model as it stands when the report is written: fitted on this run's builds too.
        return {"prior": self.prior.to_dict(), "cost_model": self.model.to_dict()}


def search_order(ctx: Context, commits: list, racy: str, variant: Variant, env: PipelineEnv,
                 suspects) -> SearchOrder:
    """The prior (scenario + test patches + --suspect) and the build price the search
    orders its questions by; neither can change the answer (policy/__init__.py)."""
    sc = ctx.opts.scenario
    patterns = list(sc.hit.console)
    patch_files = [f for p in variant.patches for f in p.files]
    pr = prior_mod.for_range(ctx.repo, commits, racy, patterns, patch_files, suspects)
    samples = [s for f in sorted((ctx.state_dir / "reports").glob("run-*.json"))
               for s in cost_mod.samples_from_steps(_steps_of(f))]
    index = {c[:12]: i for i, c in enumerate(commits)}
    built = lambda: [index[p] for p in env.built_prefixes() if p in index]
    timed = lambda: [(index[k[:12]], r.seconds) for k, r in list(env.builds.items())
                     if r.ok and not r.cached and r.seconds and k[:12] in index]
    cost = cost_mod.live_pricer(samples, built, timed)
    for path, why in sorted(pr.paths.items()):
        ctx.say(f"suspect path {path} ({why})")
    model = cost.model()
    ctx.say(f"prior: {len(pr.suspects)} of {len(commits) - 1} commits touch a suspect path "
            f"and share half the mass; build price: {model.near:.0f}-{model.far:.0f}s "
            f"({'fitted on ' + str(len(samples)) + ' builds of this workdir' if len(samples) >= 4 else 'default'}"
            f", refitted as this run's builds are timed)")
    return SearchOrder(pr, cost)


def _steps_of(path: Path) -> list:
    try:
        steps = json.loads(path.read_text()).get("steps", [])
    except (OSError, ValueError, AttributeError):
        return []   # a report being written or from another version: no samples
    return steps if isinstance(steps, list) else []


def _headline(result: RunResult) -> str:
    r = result.answer
    if r.status == "Undecided":   # the message says "undecided: ... needs N more"
        return r.message
    if r.status != "found":
        return f"no answer: {r.status}: {r.message}"
    what = "first fixed" if result.mode == "find-fix" else "first bad"
    if r.kind in ("raised", "lowered"):
        return _rate_headline(r)
    if len(r.candidates) == 1:
        cycles = ((result.made or Made()).options or {}).get("cycles")
        # the naive method claims no confidence: "0.0%" beside an answer read as a verdict
        said = (f"naive method, {cycles} cycle(s) a step: no confidence claimed" if cycles
                else f"confidence {pct(r.confidence)}")
        return f"{what} commit: {r.candidates[0]} {r.subject} ({said})"
    return f"the {what} commit could be any of: {' '.join(c[:10] for c in r.candidates)}"


def _rate_headline(r: Answer) -> str:
    """The race was there on both sides of the boundary: say what the commit did to its
    rate, with both rates, not that it brought the race (issue 25)."""
    (lh, lv), (hh, hv) = r.lower_sample, r.rate_sample
    who = r.candidates[0] if len(r.candidates) == 1 else " or ".join(c[:10] for c in r.candidates)
    side = "its parent" if r.kind == "raised" else "it"
    return (f"{r.kind} the race's rate: {who} {r.subject}: the race was already there: "
            f"{lh} hits in {lv} cycles at {side} against {hh} in {hv} on the racy side "
            f"(rates differ with confidence {pct(r.confidence)})")


def _replay(rng: Range, res, find_fix: bool) -> str:
    """A `git bisect replay` file reproducing our decisions (skips included).

    The range is first-parent (refs.commit_range), so is the replay. In find-fix mode the
    terms are racy / fixed: git refuses to swap the meanings of its own good and bad. The
    terms come first: `git bisect replay` (2.47) reads them only there, though `git bisect
    log` writes '--first-parent' before them."""
    old, new = ("racy", "fixed") if find_fix else ("good", "bad")
    terms = f"'--term-old={old}' '--term-new={new}' " if find_fix else ""
    lines = [f"git bisect start {terms}'--first-parent' '{rng.bad.sha}' '{rng.good.sha}'"]
    # Verdicts are in race terms in both modes (BAD = race seen): racy is find-fix's old term.
    word = ({Verdict.BAD: old, Verdict.GOOD: new} if find_fix else {Verdict.GOOD: old, Verdict.BAD: new})
    word[Verdict.SKIP] = "skip"
    seen = set()
    for st in res.steps:
        if st.verdict in word and st.commit not in seen and st.commit not in (rng.good.sha, rng.bad.sha):
            seen.add(st.commit)
            lines.append(f"git bisect {word[st.verdict]} {st.commit}")
    return "\n".join(lines) + "\n"


def cycles_run(state: State, commits) -> int:
    """Every cycle the state holds for the range's commits: the total of a run that ended
    with no result (not reproducible), which said "total cycles 0" beside the cycles its
    message counted (fourth hostile tour)."""
    in_range = set(commits)
    return sum(ev.cycles for c, ev in evidence_store(state).items() if c in in_range)


def _result(ctx, rng, state, env, res, status, message, find_fix, confidence, t0) -> RunResult:
    repo = ctx.repo
    s = ctx.opts.settings
    steps, skips = _steps_and_skips(repo, rng, state, env, res)
    ran = cycles_run(state, rng.commits) if res is None else 0
    cals = _calibrations(steps, res)
    return RunResult(
        afpbisect=__version__, command="run", mode="find-fix" if find_fix else "first-bad",
        repo=ctx.opts.repo, workdir=str(ctx.workdir),
        range=RangeInfo(good=vars_of(rng.good), bad=vars_of(rng.bad), size=len(rng.commits) - 1,
                        notes=[r.note for r in (rng.good, rng.bad) if r.note]),
        scenario=ScenarioInfo.from_dict(ctx.opts.scenario.summary()),
        patches=[p.name for p in env.variant.patches],
        settings={"pairs": s.pairs, "threads": s.threads, "env": s.env, "confidence": confidence},
        answer=_outcome(repo, res, status, message, find_fix, ran),
        # The calibration of the racy endpoint: the sample later checks of this race can
        # be bounded against (the nightly keeps it for its tip check).
        reference=next(({k: c[k] for k in ("commit", "hits", "cycles")}
                        for c in cals if c["when"] == "start"), None),
        calibrations=cals,
        # The farm (--engine): the reports then say which engine built and ran each step.
        engines=[ln.name for ln in ctx.lanes] if any(ln.remote for ln in ctx.lanes) else [],
        steps=tuple(Step.from_dict(st) for st in steps), skips=skips,
        trace=list(res.trace) if res is not None else [message],
        wall_seconds=round(time.time() - t0, 1),
    )


def _steps_and_skips(repo, rng, state, env, res) -> tuple[list[dict], list[dict]]:
    """Each decision with its build and cycle facts, and the commits skipped and why."""
    steps, skips = [], []
    used: dict[str, int] = {}   # cycles of each commit already attributed to earlier steps
    if res is None:
        return steps, skips
    for st in res.steps:
        facts = step_facts(env.state, env.key_of(st.commit))
        recs = state.data["cycles"].get(env.key_of(st.commit), [])
        first = used.get(st.commit)
        lo = first or 0
        # A step's cycles are the commit's records up to its evidence count at the time
        # of the decision (also right for a resumed run, where new_cycles is 0).
        mine = recs[lo:st.cycles]
        used[st.commit] = max(lo, st.cycles)
        if first is not None:   # built earlier in this run: no build for this step
            facts.update(build_seconds=0.0, build_cached=True)
        facts["repro_seconds"] = round(sum(r.get("wall", r.get("duration", 0)) for r in mine), 1)
        facts["cpu_busy"] = mean_busy(mine)
        ev = state.data["evidence"].get(st.commit, {})
        steps.append({"commit": st.commit, "position": rng.position(st.commit), "role": st.phase,
                      "verdict": st.verdict.value, "cycles": st.cycles, "new_cycles": st.new_cycles,
                      "hits": st.hits, "note": st.note, "subject": _subject(repo, st.commit), **facts})
        if st.verdict == Verdict.SKIP:
            why = ev.get("build_error") or "; ".join(
                sorted({u["reason"] for u in facts["unhealthy"]})) or "skipped"
            skips.append({"commit": st.commit, "reason": why})
    return steps, skips


def _outcome(repo, res, status: str, message: str, find_fix: bool, ran: int = 0) -> Answer:
    """The result's "result": the answer, its confidence and the race's rates; `ran`: the
    cycles of a run that ended with no result (cycles_run)."""
    found = res is not None and status == "found"
    return Answer(
        status=status, message=message,
        candidates=list(res.candidates) if found else [],
        # In find-fix mode the commit named is the first one WITHOUT the race; the key
        # stays for scripts, `first_fixed` says what it is.
        first_bad=res.culprit if found else None,
        first_fixed=res.culprit if found and find_fix else None,
        subject=_subject(repo, res.culprit) if found and res.culprit else "",
        confidence=res.confidence if found else None,
        p_estimate=res.p_estimate if found else None,
        p_lower=res.p_lower if found else None,
        total_cycles=res.total_cycles if res is not None else ran,
        # "introduced" (find-fix: "removed"), or "raised" ("lowered") when the race was
        # on both sides at different rates (policy/rates.py); then both samples.
        kind=res.kind if found else None,
        lower_sample=list(res.lower_sample) if found and res.lower_sample else None,
        rate_sample=list(res.rate_sample) if found and res.rate_sample else None,
        rate_floor=res.rate_floor if found else None,
    )


def _calibrations(steps: list[dict], res) -> list[dict]:
    """The hit rate as measured at the start and again at the end (issue 16), with the
    machine's load during each: the confidence is bounded against both."""
    if res is None or not res.calibration:
        return []
    out = []
    for when, role, sample in (("start", "calibrate", res.calibration), ("end", "confirm", res.recalibration)):
        # the last re-calibration is the one on the answer's racy side
        step = next((s for s in reversed(steps) if s["role"] == role), None)
        if step is None or not sample:
            continue
        hits, valid = sample
        out.append({"when": when, "commit": step["commit"], "hits": hits, "cycles": valid,
                    "p": round(hits / valid, 4) if valid else None, "cpu_busy": step["cpu_busy"]})
    return out


def vars_of(r) -> Ref:
    return Ref(typed=r.typed, name=r.name, sha=r.sha, note=r.note)


def _confirm_revert(ctx, rng, culprit: str, state: State, config) -> dict:
    """Revert the culprit on the BAD endpoint: the race must be gone."""
    patch_path = ctx.workdir / "run" / f"revert-{culprit[:12]}.patch"
    patch_path.parent.mkdir(parents=True, exist_ok=True)
    patch_path.write_text(ctx.repo.git.diff(culprit, f"{culprit}^") + "\n")
    try:
        revert = load_patch(patch_path)
    except UsageError:
        return {"status": "error", "message": "culprit's revert is an empty diff"}
    tree = BuildTree(ctx.repo, ctx.workdir / "trees" / "check")
    try:
        check_patches_apply(tree, rng.bad.sha, [*Variant.of(ctx.opts.scenario).patches, revert])
    except UsageError as exc:
        return {"status": "not-applicable", "message": str(exc)}
    return check_variants(ctx, rng.bad.sha, [revert], state, config, label="revert")


def run_outcome(result: RunResult) -> Outcome:
    """run: an answer is 0, unless --confirm-revert showed the race with the culprit
    reverted (1: the answer's own check disagrees) or could not check (3)."""
    if result.answer.status == "Undecided":   # policy.Undecided: over --cycle-cap
        return Outcome.UNDECIDED
    if result.answer.status != "found":
        return Outcome.NO_ANSWER
    revert = given(result.revert_check)
    if revert is None or revert.get("verdict") == "cleared":
        return Outcome.FOUND
    return Outcome.REVERT_DISAGREES if revert.get("verdict") == "present" else Outcome.ERROR
