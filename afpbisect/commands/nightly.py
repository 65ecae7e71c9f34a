"""`afpbisect nightly`: has the race come back on REF?  Bisect it the same morning.

The job keeps its own state per (repository, ref): the last known good commit, the tip's
evidence (so a killed night resumes) and one history entry per night.  Tip clean -> it
becomes the last good.  Tip racy and a last good known -> bisect last_good..tip with the
same policy as `run`.

Exit codes a scheduler can act on come from `outcome.Outcome`: 0 clean, 1 regression,
2 usage error, 3 no verdict (infrastructure, a tip that cannot be built or run), 128+N
stopped by signal N.  Whatever ends the night, its JSON, Markdown, JUnit and HTML are
written: a hiccup is an error in every report, never a regression (issue 16).
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace
from pathlib import Path

from afpbisect import __version__, policy
from afpbisect.commands.context import Context
from afpbisect.commands.progress import PolicyEvents
from afpbisect.commands.run import run_bisection
from afpbisect.core.errors import AfpError, Interrupted, StateError, UsageError, one_line
from afpbisect.core.outcome import Outcome
from afpbisect.core.refs import resolve
from afpbisect.core.state import State, check_writable
from afpbisect.core.verdict import Evidence, Verdict
from afpbisect.machinery.engine import TRANSPORT_ERRORS
from afpbisect.core.store import evidence_store, save_evidence
from afpbisect.machinery.pipeline_env import PipelineEnv, Variant
from afpbisect.reports.facts import step_facts
from afpbisect.reports.provenance import stamp
from afpbisect.reports.report import render, write_atomic, write_reports
from afpbisect.reports.results import Made, NightBisection, NightlyResult, Ref, ScenarioInfo


def run_nightly(ctx: Context, ref: str | None, last_good: str | None = None, out_dir: Path | None = None,
                confidence: float | None = None) -> NightlyResult:
    """Ref and confidence default to the scenario's [nightly] branch and confidence."""
    t0 = time.time()
    night_cfg = ctx.opts.scenario.nightly
    ref = ref or night_cfg.branch
    confidence = confidence or night_cfg.confidence
    # All input first: nothing is built before the refs, the ancestry and --out are known good.
    out_dir = check_writable(out_dir if out_dir is not None else ctx.state_dir / "nightly", "--out")
    tip = resolve(ctx.repo, ref)
    if tip.note:
        ctx.say(f"note: {tip.note}")
    job = _load_job(ctx, tip)
    track = job.data.setdefault("refs", {}).setdefault(tip.name, {"last_good": None, "p_lower": None,
                                                                    "history": []})
    night = _new_night(ctx, tip, track["last_good"], bool(last_good))
    try:
        # Checked in here, past the clone: an unknown or unrelated --last-good is still a
        # usage error (exit 2), and the night's reports say so like any other error's.
        if last_good:
            night["last_good"] = _check_last_good(ctx, last_good, tip)
        outcome = _night(ctx, tip, track, night, job, confidence)
    except Interrupted as exc:
        _finish(ctx, job, track, night, tip, out_dir, t0, Outcome.ERROR, f"interrupted: {exc}",
                exit_code=exc.exit_code)
        raise
    except (AfpError, *TRANSPORT_ERRORS) as exc:
        # TRANSPORT_ERRORS: a BrokenPipeError of a lost ssh transport too, which skipped
        # the reports (issue 25).
        code = exc.exit_code if isinstance(exc, AfpError) else Outcome.ERROR.exit_code
        # A proof past --cycle-cap is no answer, not a failure of the machinery (issue 25).
        outcome = Outcome.UNDECIDED if isinstance(exc, policy.Undecided) else Outcome.ERROR
        # escaped, not cut at its first line break: a ref holding one kept half the message
        night["error"] = one_line(str(exc).strip())[:300] if str(exc) else type(exc).__name__
        return _finish(ctx, job, track, night, tip, out_dir, t0, outcome, night["error"], exit_code=code)
    return _finish(ctx, job, track, night, tip, out_dir, t0, outcome, None)


def _check_last_good(ctx: Context, last_good: str, tip) -> str:
    sha = resolve(ctx.repo, last_good).sha
    if sha == tip.sha:   # it was ignored after a night of cycles, and exit 1 said "regression"
        raise UsageError(f"--last-good {last_good} is {tip.name} itself ({sha[:10]}): nothing to "
                         f"bisect; give a commit before it")
    if not ctx.repo.is_ancestor(sha, tip.sha):
        raise UsageError(f"--last-good {last_good} ({sha[:10]}) is not an ancestor of {tip.name} "
                         f"({tip.sha[:10]}): nothing to bisect between them")
    return sha


def _load_job(ctx: Context, tip) -> State:
    """The job's state.  --restart discards the tip's evidence (the night starts over) and
    keeps the history and the last good commit; only a state that cannot be read at all is
    discarded whole, as the error that names --restart says."""
    path = ctx.state_dir / "state" / "nightly.json"
    try:
        job = State.load_or_new(path, "nightly", {"repo": ctx.opts.repo}, say=lambda m: None)
    except StateError:
        if not ctx.opts.restart:
            raise
        job = State.load_or_new(path, "nightly", {"repo": ctx.opts.repo}, restart=True, say=ctx.say)
    if ctx.opts.restart and job.data.get("evidence", {}).pop(f"tip:{tip.sha}", None) is not None:
        ctx.say(f"--restart: the evidence gathered on {tip.sha[:10]} is discarded")
    return job


def _new_night(ctx: Context, tip, good: str | None, replay: bool) -> dict:
    """Every key a report reads, set from the start: an error at any point still renders."""
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "ref": tip.name,
            "sha": tip.sha, "subject": ctx.repo.commit(tip.sha).summary, "last_good": good,
            "replay": replay, "bisection": None, "verdict": None, "cycles": 0, "hits": 0,
            "unhealthy": 0, "infra": 0, "build_error": None, "error": None, "p_assumed": None,
            "reference": None, "build_seconds": None, "repro_seconds": None}


def _night(ctx: Context, tip, track: dict, night: dict, job: State, confidence: float) -> Outcome:
    ctx.docker()
    check = _check_tip(ctx, tip.sha, track, confidence, job, times=night)
    ev = check.evidence
    night.update(verdict=check.verdict.value, cycles=ev.cycles, hits=ev.hits, unhealthy=ev.unhealthy,
                 infra=ev.infra, build_error=ev.skip_reason(), p_assumed=check.p_lower,
                 reference=track.get("reference"))
    if check.verdict is Verdict.GOOD:
        # What "clean" is worth: the policy's bound for the cold starts that really counted.
        night.update(clean_cycles=ev.clean, clean_confidence=check.confidence)
        track["last_good"] = tip.sha
        return Outcome.CLEAN
    if check.verdict is not Verdict.BAD:
        return Outcome.BUILD_BROKEN
    good = night["last_good"]
    if not good or good == tip.sha:
        ctx.say("race reproduces, but no last good commit is known: give --last-good to bisect")
        return Outcome.REGRESSION
    ctx.say(f"race reproduces on {tip.name} ({tip.sha[:10]}); bisecting {good[:10]}..{tip.sha[:10]}")
    bis = run_bisection(ctx, f"{good}..{tip.sha}", confidence=confidence)
    r = bis.answer
    night["bisection"] = NightBisection(status=r.status, candidates=r.candidates, first_bad=r.first_bad,
                                        subject=r.subject, confidence=r.confidence,
                                        report=bis.reports["markdown"], wall_seconds=bis.wall_seconds).to_dict()
    if r.p_lower:
        track["p_lower"] = r.p_lower
    # The job's reference (`_check_tip`) is never taken from the bisection: the code before
    # issue 26 read it from the answer, which has none (the run keeps it as
    # `bis.reference`).  Left so: issue 26 changes no behaviour.
    return Outcome.REGRESSION


def _check_tip(ctx: Context, sha: str, track: dict, confidence: float, job: State,
               times: dict | None = None) -> policy.PatchCheck:
    """The policy's rule on the tip (policy.check_patch): BAD at the first hit; GOOD after
    as many clean cycles as the job's reference calibration asks (its last bisection's
    racy endpoint, a bound for any hit rate), or, before any, the assumed rate.  The
    evidence lives in the job state, so a killed night resumes instead of starting over."""
    env = PipelineEnv(ctx.repo, ctx.builder, ctx.repro, job, ctx.workdir, Variant.of(ctx.opts.scenario),
                      say=ctx.say, progress=ctx.progress, lanes=ctx.lanes)
    store = evidence_store(job)
    ev = store.setdefault(f"tip:{sha}", Evidence())
    ref = track.get("reference")
    reference = Evidence(cycles=ref["cycles"], hits=ref["hits"]) if ref else None
    # Before any calibration of this job: the scenario's assumed rate (stated as assumed).
    p = None if reference else (track.get("p_lower") or ctx.opts.scenario.nightly.assumed_rate)
    cfg = policy.PolicyConfig(confidence=confidence, **ctx.opts.verdict_knobs(), **(
        {"max_verify_cycles": ctx.opts.fixed_cycles} if ctx.opts.fixed_cycles else {}))
    how = (f"against the reference calibration ({ref['hits']} hits in {ref['cycles']} cycles)"
           if ref else f"assumed hit rate {p:.2f}")
    ctx.say(f"checking {sha[:10]}: BAD at the first hit, GOOD on enough clean cycles ({how})")
    try:
        return policy.check_patch(f"tip:{sha}", _TipEnv(env, sha), cfg, reference=reference,
                                  evidence=ev, p_lower=p,
                                  handler=PolicyEvents(ctx.progress, lambda: save_evidence(job, store)))
    finally:
        save_evidence(job, store)
        if times is not None:   # the JUnit's time per testcase: the tip's build, its cycles
            facts = step_facts(env.state, env.key_of(sha))
            times.update(build_seconds=facts["build_seconds"], repro_seconds=facts["repro_seconds"])
        env.close()


class _TipEnv:
    """policy.Env over the pipeline, for the tip's evidence key `tip:<sha>`."""

    def __init__(self, env: PipelineEnv, sha: str):
        self.env, self.sha = env, sha

    def build(self, _key):
        return self.env.build(self.sha)

    def cycle(self, _key):
        return self.env.cycle(self.sha)

    def release(self, _key):
        self.env.release(self.sha)


def _finish(ctx: Context, job: State, track: dict, night: dict, tip, out_dir: Path, t0: float,
            outcome: Outcome, error: str | None, exit_code: int | None = None) -> NightlyResult:
    """Record the night and write every report, whatever the outcome."""
    code = outcome.exit_code if exit_code is None else exit_code
    night.update(status=outcome.label, exit_code=code, wall_seconds=round(time.time() - t0, 1))
    if error:
        said = "undecided" if outcome is Outcome.UNDECIDED else "error"
        night.update(verdict=said if night["verdict"] in (None, "error") else night["verdict"], error=error)
    track["history"].append(night)
    job.save()
    # The night as the history keeps it (its "ref" a name), with the ref it resolved and
    # how it was made.
    ref = Ref(typed=tip.typed, name=tip.name, sha=tip.sha, note=tip.note)
    result = replace(NightlyResult.from_dict(dict(night, ref=ref.to_dict())), afpbisect=__version__,
                     command="nightly", repo=ctx.opts.repo,
                     scenario=ScenarioInfo.from_dict(ctx.opts.scenario.summary()),
                     made=Made.from_dict(stamp(ctx.opts, command="nightly", ref=tip.typed,
                                               replay=night["replay"])),
                     last_good_after=track["last_good"])
    result = write_reports(out_dir, "nightly", result, "nightly.md.j2")
    data = result.to_dict()
    write_atomic(out_dir / "junit.xml", render("junit.xml.j2", r=data))
    # Every night of the job, whatever ref it tested (replays included), oldest first.
    nights = sorted((n for t in job.data["refs"].values() for n in t["history"]), key=lambda n: n["date"])
    view = history_view(nights, tip.name, night["replay"])
    write_atomic(out_dir / "history.html", render("nightly.html.j2", ref=view["ref"], repo=ctx.opts.repo,
                                                   nights=view["timeline"], others=view["others"],
                                                   svg=_timeline(view["timeline"]),
                                                   scenario=data["scenario"], r=data))
    result = replace(result, reports={**result.reports, "junit": str(out_dir / "junit.xml"),
                                      "html": str(out_dir / "history.html")})
    why = f": {error}" if error else ""
    ctx.result(f"nightly {tip.name} {tip.sha[:10]}: {outcome.label} (exit {code}){why}; reports in {out_dir}")
    return result


def history_view(nights: list[dict], ref: str, replay: bool) -> dict:
    """Which nights make the timeline: the scheduled nights of the branch the job watches.

    A replay (--last-good, e.g. of a release from before its culprit) or a night of
    another ref is listed apart: on main's timeline a replayed release's red point read as a
    regression of main (issue 19).  The branch watched is this night's ref, or after a
    replay the ref of the latest scheduled night."""
    scheduled = [n for n in nights if not n.get("replay")]
    if replay and scheduled:
        ref = scheduled[-1]["ref"]
    timeline = [n for n in scheduled if n.get("ref") == ref]
    return {"ref": ref, "timeline": timeline, "others": [n for n in nights if n not in timeline]}


def _timeline(history: list[dict]) -> dict:
    """Points of an inline SVG timeline: one per night, coloured by status, its date (MM-DD)
    along the bottom edge."""
    colors = {"clean": "#2e7d32", "regression": "#c62828", "build-broken": "#ef6c00", "error": "#757575",
              "undecided": "#6a1b9a"}
    w = max(200, 40 * len(history) + 40)
    pts = [{"x": 30 + 40 * i, "y": 40 if n.get("status") != "regression" else 70,
            "color": colors.get(n.get("status"), "#757575"), "night": n} for i, n in enumerate(history)]
    return {"width": w, "height": 124, "points": pts}
