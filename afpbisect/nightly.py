"""`afpbisect nightly`: has the race come back on REF?  Bisect it the same morning.

The job keeps its own state per (repository, ref): the last known good commit and one
history entry per night.  Tip clean -> it becomes the last good.  Tip racy and a last
good known -> bisect last_good..tip with the same policy as `run`.
Exit codes a scheduler can act on: 0 clean, 1 regression, 2 usage error, 3 infrastructure
error (or a tip that does not build: nothing can be said about the race then)."""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from . import __version__
from .bisection import run_bisection, widener
from .context import Context
from .errors import AfpError
from .pipeline import PipelineEnv, Variant
from .refs import resolve
from .report import render, write_atomic, write_reports
from .state import State
from .verdict import Evidence, Verdict, clean_cycles_needed, decide, miss_probability

# Per-cycle hit rate assumed for the tip when no bisection has measured one yet: the rate
# measured WITHOUT the widener on real Suricata (NOTES: 7 of 30 cycles), a floor for any
# widened run.
DEFAULT_P = 0.25


def run_nightly(ctx: Context, ref: str, last_good: str | None = None, out_dir: Path | None = None,
                confidence: float = 0.999) -> dict:
    t0 = time.time()
    out_dir = Path(out_dir) if out_dir else ctx.workdir / "nightly"
    tip = resolve(ctx.repo, ref)
    if tip.note:
        ctx.say(f"note: {tip.note}")
    explicit_good = resolve(ctx.repo, last_good).sha if last_good else None
    job = State.load_or_new(ctx.workdir / "state" / "nightly.json", "nightly", {"repo": ctx.opts.repo},
                            say=lambda m: None)
    track = job.data.setdefault("refs", {}).setdefault(tip.name, {"last_good": None, "p_lower": None,
                                                                    "history": []})
    good = explicit_good or track["last_good"]
    night = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "ref": tip.name,
             "sha": tip.sha, "subject": ctx.repo.commit(tip.sha).summary, "last_good": good,
             "replay": bool(last_good), "bisection": None}
    ctx.docker()
    try:
        verdict, ev, p = _check_tip(ctx, tip.sha, track.get("p_lower") or DEFAULT_P, confidence, job)
        night.update(verdict=verdict.value, cycles=ev.cycles, hits=ev.hits, p_assumed=p,
                     build_error=ev.build_error)
        if verdict is Verdict.GOOD:
            status, code = "clean", 0
            # What "clean" is worth: the chance that a race hitting at rate >= p would have
            # shown in the cold starts that really ran (infrastructure failures prove nothing).
            night.update(clean_cycles=ev.clean, clean_confidence=1.0 - miss_probability(p, ev.clean))
            track["last_good"] = tip.sha
        elif verdict is Verdict.BAD and good and good != tip.sha:
            status, code = "regression", 1
            ctx.say(f"race reproduces on {tip.name} ({tip.sha[:10]}); bisecting {good[:10]}..{tip.sha[:10]}")
            bis = run_bisection(ctx, f"{good}..{tip.sha}", confidence=confidence)
            r = bis["result"]
            night["bisection"] = {"status": r["status"], "candidates": r["candidates"],
                                  "first_bad": r["first_bad"], "subject": r["subject"],
                                  "confidence": r["confidence"], "report": bis["reports"]["markdown"]}
            if r["p_lower"]:
                track["p_lower"] = r["p_lower"]
        elif verdict is Verdict.BAD:
            status, code = "regression", 1
            ctx.say("race reproduces, but no last good commit is known: give --last-good to bisect")
        elif verdict is Verdict.SKIP:
            status, code = "build-broken", 3
        else:
            status, code = "error", 3
    except AfpError as exc:
        status, code = "error", exc.exit_code if exc.exit_code in (2, 3) else 3
        night.update(verdict="error", error=str(exc))
    night.update(status=status, exit_code=code, wall_seconds=round(time.time() - t0, 1))
    track["history"].append(night)
    job.save()
    result = {"afpbisect": __version__, "command": "nightly", "repo": ctx.opts.repo, **night,
              "ref": {"typed": tip.typed, "name": tip.name, "sha": tip.sha, "note": tip.note},
              "last_good_after": track["last_good"]}
    result = write_reports(out_dir, "nightly", result, "nightly.md.j2")
    write_atomic(out_dir / "junit.xml", render("junit.xml.j2", r=result))
    # Every night of the job, whatever ref it tested (replays included), oldest first.
    nights = sorted((n for t in job.data["refs"].values() for n in t["history"]), key=lambda n: n["date"])
    write_atomic(out_dir / "history.html", render("nightly.html.j2", ref=tip.name, repo=ctx.opts.repo,
                                                   nights=nights, svg=_timeline(nights)))
    result["reports"].update(junit=str(out_dir / "junit.xml"), html=str(out_dir / "history.html"))
    ctx.say(f"nightly {tip.name} {tip.sha[:10]}: {status} (exit {code}); reports in {out_dir}")
    return result


def _check_tip(ctx: Context, sha: str, p: float, confidence: float, job: State):
    """Build the tip with the widener and run cycles until the rule decides.
    GOOD needs enough clean cycles that a race at rate >= p would have shown."""
    env = PipelineEnv(ctx.repo, ctx.builder, ctx.repro, job, ctx.workdir,
                      Variant("widener", [widener()]), say=ctx.say)
    ev = Evidence()
    need = ctx.opts.fixed_cycles or clean_cycles_needed(p, 1.0 - confidence)
    ctx.say(f"checking {sha[:10]}: GOOD after {need} clean cycles (assumed hit rate {p:.2f})")
    try:
        err = env.build(sha)
        if err:
            ev.build_error = err
            return Verdict.SKIP, ev, p
        while (v := decide(ev, need)) is None:
            ev.add(env.cycle(sha))
        return v, ev, p
    finally:
        env.close()


def _timeline(history: list[dict]) -> dict:
    """Points of an inline SVG timeline: one per night, coloured by status, its date (MM-DD)
    along the bottom edge."""
    colors = {"clean": "#2e7d32", "regression": "#c62828", "build-broken": "#ef6c00", "error": "#757575"}
    w = max(200, 40 * len(history) + 40)
    pts = [{"x": 30 + 40 * i, "y": 40 if n.get("status") != "regression" else 70,
            "color": colors.get(n.get("status"), "#757575"), "night": n} for i, n in enumerate(history)]
    return {"width": w, "height": 124, "points": pts}
