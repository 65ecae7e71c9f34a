"""JUnit XML for `run` and `verify-patch` (issue 19): the test cases a CI dashboard shows.

Built here as plain data, rendered by templates/junit-suite.xml.j2, so the mapping from a
result to pass / failure / error / skipped is one small tested function per command.
Dashboards (GitLab, Jenkins, the GitHub JUnit actions) read `time` per testcase, the
failure's `type` and `message`, and the suite's `hostname` and `timestamp`: all are set.

The mapping: a step of a bisection passes (its verdict is in its name and output) or is
skipped like `git bisect skip`; the bisection's answer is a *failure* of type
`regression` when it names a first bad commit (a fix found by --find-fix is a pass); no
answer is an *error*, never a failure, as an infrastructure error is never a verdict.
"""
from __future__ import annotations

from afpbisect.core.percent import pct
from afpbisect.reports.results import Made, RunResult, Step, VerifyResult, given


def _case(classname: str, name: str, seconds, kind: str = "pass", type_: str = "", message: str = "",
          text: str = "", out: str = "") -> dict:
    return {"classname": classname, "name": name, "time": round(float(seconds or 0), 1), "kind": kind,
            "type": type_, "message": message, "text": text, "out": out}


def _step_case(cls: str, n: int, s: Step) -> dict:
    seconds = (s.build_seconds or 0) + (s.repro_seconds or 0)
    name = f"{n:02d} {s.role} {s.commit[:10]} [{s.position}]"
    out = f"{s.verdict}: {given(s.hits, 0)} hit(s) in {given(s.cycles, 0)} cycle(s); {given(s.note, '')}"
    if s.verdict == "skip":
        return _case(cls, name, seconds, "skipped", message=s.note or "skipped", out=out)
    return _case(cls, name, seconds, out=out)


def run_cases(result: RunResult) -> list[dict]:
    cls = f"afpbisect.run.{result.scenario.name}"
    cases = [_step_case(f"{cls}.steps", i + 1, s) for i, s in enumerate(given(result.steps, ()))]
    r, rng = result.answer, result.range
    name = f"bisect {rng.good.name}..{rng.bad.name}"
    wall = given(result.wall_seconds)
    if r.status != "found":
        cases.append(_case(cls, name, wall, "error", f"no-answer:{r.status}",
                           r.message or r.status, text="\n".join(given(result.trace, []))))
    elif r.kind in ("raised", "lowered"):
        # The race was on both sides: a change of rate, not a regression brought in (nor a
        # fix), said as its own failure type so a dashboard does not count it as either.
        msg = f"{r.kind} the race's rate: {' or '.join(c[:10] for c in r.candidates)} {r.subject}"
        cases.append(_case(cls, name, wall, "failure", f"rate-{r.kind}",
                           msg, text=f"{msg}: {r.lower_sample[0]} hits in {r.lower_sample[1]} "
                                     f"cycles on the clean side, {r.rate_sample[0]} in "
                                     f"{r.rate_sample[1]} on the racy side (confidence "
                                     f"{pct(r.confidence or 0)})"))
    elif result.mode == "find-fix":
        cases.append(_case(cls, name, wall, out=f"first fixed commit: {r.first_fixed} {r.subject}"))
    elif len(r.candidates) == 1:
        msg = f"first bad commit {r.candidates[0][:10]} {r.subject}"
        cases.append(_case(cls, name, wall, "failure", "regression", msg,
                           text=f"first bad commit: {r.candidates[0]} {r.subject} "
                                f"(confidence {pct(r.confidence or 0)})"))
    else:
        cases.append(_case(cls, name, wall, "error", "ambiguous",
                           f"any of {len(r.candidates)} commits (the others did not build)",
                           text=" ".join(r.candidates)))
    return cases


def verify_cases(result: VerifyResult) -> list[dict]:
    cls = f"afpbisect.verify.{result.scenario.name}"
    target = f"{result.target.name} {result.target.sha[:10]}"
    b, p = result.baseline, result.patched
    base_s = _seconds(given(result.baseline_facts, {}))
    fix_s = _seconds(given(result.patched_facts, {}))
    v = result.verdict
    base_out = f"{b.hits} hit(s) in {b.cycles} cycle(s)"
    if v == "error" and not b.hits:
        base = _case(cls, f"baseline reproduces on {target}", base_s, "error", "untestable", result.summary)
    elif v == "not-reproduced":
        base = _case(cls, f"baseline reproduces on {target}", base_s, "error", "not-reproduced",
                     result.summary, out=base_out)
    else:
        base = _case(cls, f"baseline reproduces on {target}", base_s, out=base_out)
    patches = " + ".join(str(x).rsplit("/", 1)[-1] for x in result.patches)
    name = f"{patches} clears the bug on {target}"
    fix_out = f"{p.hits} hit(s) in {p.cycles} cycle(s)"
    if v == "cleared":
        fix = _case(cls, name, fix_s, out=f"{fix_out}; {result.summary}")
    elif v == "present":
        fix = _case(cls, name, fix_s, "failure", "bug-present", result.summary, out=fix_out)
    elif v == "error" and b.hits:
        fix = _case(cls, name, fix_s, "error", "untestable", result.summary)
    else:
        fix = _case(cls, name, fix_s, "skipped", message=f"not checked: {v}")
    return [base, fix]


def _seconds(facts: dict) -> float:
    return (facts.get("build_seconds") or 0) + (facts.get("repro_seconds") or 0)


def suite(name: str, cases: list[dict], result: RunResult | VerifyResult) -> dict:
    """The suite's counts and the attributes dashboards read."""
    made = result.made or Made()
    count = {k: sum(c["kind"] == k for c in cases) for k in ("failure", "error", "skipped")}
    props = {"afpbisect.version": made.tool_version or given(result.afpbisect, ""),
             "scenario": result.scenario.name, "ticket": result.scenario.ticket or ""}
    return {"name": name, "cases": cases, "tests": len(cases), "failures": count["failure"],
            "errors": count["error"], "skipped": count["skipped"], "time": result.wall_seconds or 0,
            "timestamp": made.date or "", "hostname": (made.host or {}).get("hostname") or "unknown",
            "properties": props}
