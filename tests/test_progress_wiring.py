"""Issue 19: the commands' wiring of the live console: a build's steps reach its status
line, each decision of the bisection is kept in the state (for `status`) and shown."""
import io
from types import SimpleNamespace

from rich.console import Console

from afpbisect.commands.progress import Progress
from afpbisect.commands.run import _events
from afpbisect.core.state import State
from afpbisect.core.verdict import Verdict
from afpbisect.machinery.pipeline_env import PipelineEnv, Variant
from afpbisect.policy import StepRecord


def _plain():
    buf = io.StringIO()
    return Progress(console=Console(file=buf, force_terminal=False)), buf


class _Builder:
    on_step = None

    def build(self, repo, sha, patches, label=""):
        self.seen = self.on_step
        self.on_step("configure")
        self.on_step("make")
        return SimpleNamespace(ok=True, cached=False, seconds=12.0, step=None)


def test_build_steps_reach_the_status_line(tmp_path):
    prog, buf = _plain()
    st = State(tmp_path / "s.json", "run", {})
    builder = _Builder()
    env = PipelineEnv(None, builder, None, st, tmp_path, Variant("v"), say=prog.say, progress=prog)
    env._build("f" * 40)
    out = buf.getvalue()
    assert "  building ffffffffff (v: no patches)" in out and "  built ffffffffff: ok (12s)" in out
    assert "building ffffffffff: configure" in out and "building ffffffffff: make" in out
    assert builder.seen is not None and builder.on_step is None   # unhooked after the build


def test_each_decision_is_kept_and_shown(tmp_path):
    prog, buf = _plain()
    commits = [f"{i:040x}" for i in range(5)]
    st = State(tmp_path / "s.json", "run", {}, {"steps": [{"stale": 1}]})
    ctx = SimpleNamespace(progress=prog, repo=SimpleNamespace(commit=lambda c: SimpleNamespace(summary="subj")))
    saved = []
    events = _events(ctx, SimpleNamespace(commits=commits), st, False, lambda: saved.append(1))
    assert st.data["steps"] == []   # replayed by the policy on a resume: rebuilt, not doubled
    events.on_step(StepRecord("search", commits[2], 2, Verdict.GOOD, 3, 0, 0, 3, 3))
    assert st.data["steps"][0]["index"] == 2 and st.data["steps"][0]["verdict"] == "good" and saved
    assert "step 1 of ~" in buf.getvalue() and "[2 of 4] subj: GOOD" in buf.getvalue()
