"""Issue 19: the live console (progress.py) and the window it and `status` compute (window.py)."""
import io

from hypothesis import given, strategies as st
from rich.console import Console

from afpbisect.machinery.build_log import step_names
from afpbisect.policy import StepRecord
from afpbisect.commands.progress import BuildLine, Progress, StepLines, duration
from afpbisect.core.cost import DEFAULT_BUILD_SECONDS, build_estimate
from afpbisect.core.search import least_satisfying
from afpbisect.core.verdict import Verdict
from afpbisect.core.window import window

G, B, S = Verdict.GOOD, Verdict.BAD, Verdict.SKIP


def test_window_first_bad_and_find_fix():
    assert (window(10, {0: G, 9: B, 4: G, 6: B}).last_old, window(10, {0: G, 9: B, 4: G, 6: B}).first_new) == (4, 6)
    w = window(10, {0: B, 9: G, 3: B, 7: G}, find_fix=True)   # old side racy in find-fix mode
    assert (w.last_old, w.first_new, w.commits) == (3, 7, 4)
    assert window(10, {}).commits == 9 and window(10, {}).steps_left == 4


def test_window_ignores_skips_and_a_false_good_past_the_boundary():
    w = window(10, {0: G, 5: S, 7: G, 4: B})   # 7 judged GOOD, then 4 seen racy
    assert (w.last_old, w.first_new) == (0, 4)
    assert window(10, {3: G, 4: B}).steps_left == 0


@given(st.integers(2, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(1, n - 1))))
def test_window_agrees_with_the_search(case):
    """Fed the search's own verdicts, the window is the search's answer (no second rule)."""
    n, first_bad = case
    res = least_satisfying(n, lambda i: B if i >= first_bad else G)
    w = window(n, {i: v for i, v in res.steps})
    assert (w.last_old, w.first_new) == (res.last_good_index, res.first_bad_index)


def _plain():
    buf = io.StringIO()
    return Progress(console=Console(file=buf, force_terminal=False)), buf


def test_plain_lines_without_control_codes():
    prog, buf = _plain()
    prog.say("range a..b: " + "x" * 200)   # no wrapping at 80 columns in a log
    prog.trace("search 1234 [5]: GOOD")
    with prog.building("a" * 40, (60.0, "default guess")) as on_step:
        on_step("configure")
        on_step("make")
    out = buf.getvalue()
    assert "\x1b" not in out and "\r" not in out
    lines = out.splitlines()
    assert lines[0] == "range a..b: " + "x" * 200
    assert lines[1] == "  policy: search 1234 [5]: GOOD"
    assert "building aaaaaaaaaa: configure" in lines[2] and "make" in lines[3] and "~1m00s" in lines[3]


def test_quiet_keeps_only_the_result():
    buf = io.StringIO()
    prog = Progress(quiet=True, console=Console(file=buf, force_terminal=True))
    prog.say("building x")
    prog.trace("decided")
    with prog.building("a" * 40, (1.0, "x")) as on_step:
        on_step("make")
    prog.result("first bad commit: abc")
    assert buf.getvalue().strip().splitlines() == ["first bad commit: abc"]


def test_terminal_uses_a_live_status_line():
    buf = io.StringIO()
    prog = Progress(console=Console(file=buf, force_terminal=True, width=200))
    assert prog.live
    with prog.building("b" * 40, (10.0, "x")) as on_step:
        on_step("make")
    assert "\x1b" in buf.getvalue()   # rich drew (and cleared) the status line


def test_build_line_and_estimate():
    now = [100.0]
    line = BuildLine("c" * 40, (400.0, "median of 2 build(s) of this run"), clock=lambda: now[0])
    line.set_step("make")
    now[0] += 125
    assert line.text() == "building cccccccccc: make, 2m05s of ~6m40s (median of 2 build(s) of this run)"
    builds = {"a": {"ok": True, "cached": False, "seconds": 100}, "b": {"ok": True, "cached": True, "seconds": 0},
              "c": {"ok": True, "cached": False, "seconds": 300}, "d": {"ok": False, "seconds": 5}}
    assert build_estimate(builds) == (200.0, "median of 2 build(s) of this run")
    secs, basis = build_estimate({})
    assert secs == DEFAULT_BUILD_SECONDS and "default" in basis
    assert duration(59.6) == "1m00s" and duration(3725) == "1h02m"


def test_step_lines_say_step_window_and_time_left():
    prog, buf = _plain()
    now = [0.0]
    commits = [f"{i:040x}" for i in range(101)]
    lines = StepLines(prog, commits, False, lambda c: f"subject of {c[-3:]}", clock=lambda: now[0])
    for phase, i, v, cyc, hits in (("calibrate", 100, B, 8, 8), ("endpoint", 0, G, 3, 0), ("search", 50, G, 3, 0)):
        now[0] += 60
        lines(StepRecord(phase, commits[i], i, v, cyc, hits, 0, 3, cyc))
    out = buf.getvalue().splitlines()
    assert out[0].startswith(f"step 1 of ~10 (calibrate): {commits[100][:10]} [100 of 100] subject of 064: BAD, "
                             "8 cycle(s), 8 hit(s); window 100 commit(s), ~")
    # after GOOD at 50: 50 commits left, 6 search steps + verify + confirm
    assert out[2].startswith(f"step 3 of ~11 (search): {commits[50][:10]} [50 of 100]")
    assert "GOOD, 3 cycle(s), 0 hit(s); window 50 commit(s), ~8m00s left" in out[2]
    now[0] += 60
    lines(StepRecord("confirm", commits[51], 51, B, 9, 4, 0, 0, 9))
    assert buf.getvalue().splitlines()[-1].endswith("window 1 commit(s)")   # nothing left: no estimate


def test_build_step_names_from_a_stream_cut_anywhere():
    text = "x\nAFPBISECT-STEP: configure @1.5\nnoise\nAFPBISECT-STEP: make @2.0\nAFPBISECT-DONE: compile @3\n"
    for cut in range(len(text)):
        names, pending = step_names("", text[:cut])
        more, pending = step_names(pending, text[cut:])
        assert names + more == ["configure", "make"]


def test_a_replayed_decision_is_not_a_step():
    """The search runs again after the lazy calibration (and on a resume): a decision taken
    from the store costs nothing and must not count as a step or be printed as one."""
    prog, buf = _plain()
    commits = [f"{i:040x}" for i in range(101)]
    lines = StepLines(prog, commits, False, lambda c: "s", clock=lambda: 0.0)
    lines(StepRecord("search", commits[50], 50, G, 1, 0, 0, 1, 1))
    lines(StepRecord("search", commits[50], 50, G, 1, 0, 0, 1, 0))   # replayed: 0 new cycles
    lines(StepRecord("search", commits[75], 75, B, 1, 1, 0, 1, 1))
    out = buf.getvalue().splitlines()
    assert [ln.split(" (")[0] for ln in out] == ["step 1 of ~9", "step 2 of ~9"]
