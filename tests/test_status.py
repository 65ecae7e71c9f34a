"""Issue 19: `afpbisect status` shows a workdir's bisections from their state, creating nothing."""
import json
import os
from pathlib import Path

from conftest import git
from e2e_util import afp
from test_cli_errors import _one_line_exit2

from afpbisect.commands.status import stored_window
from afpbisect.core.state import State, WorkdirLock
from afpbisect.machinery.worktree import normalise_source, open_clone


def _ev(verdict, cycles, hits=0):
    return {"cycles": cycles, "hits": hits, "infra": 0, "consecutive_infra": 0, "build_error": None,
            "verdict": verdict, "clean_needed": cycles if verdict == "good" else 0}


def _run_state(work: Path, repo: Path, evidence_at: dict, finished=False) -> tuple[Path, list]:
    commits = git(repo, "rev-list", "--reverse", "--first-parent", "main").split()
    ident = {"command": "run", "repo": normalise_source(str(repo)), "good": commits[0], "bad": commits[9],
             "find_fix": False, "scenario": "d" * 64}
    data = {"about": {"scenario": "8667", "good": "suricata-1.0.0", "bad": "suricata-2.0.0"},
            "evidence": {commits[i]: _ev(*e) for i, e in evidence_at.items()},
            "steps": [{"phase": "search", "commit": commits[i], "index": i, "verdict": e[0], "cycles": e[1],
                       "hits": e[2] if len(e) > 2 else 0} for i, e in evidence_at.items()]}
    if finished:
        data["result"] = {}
    st = State(work / "state" / "run-x.json", "run", ident, data)
    st.save()
    return st.path, commits


def _workdir(tmp_path, small_repo) -> Path:
    work = tmp_path / "work"
    open_clone(work, str(small_repo))   # the workdir's own clone, as a run leaves it
    return work


def test_status_shows_window_steps_and_cycles(tmp_path, small_repo):
    work = _workdir(tmp_path, small_repo)
    _, commits = _run_state(work, small_repo, {9: ("bad", 8, 8), 0: ("good", 3), 4: ("good", 3), 6: ("bad", 2, 1)})
    before = sorted(p.relative_to(work) for p in work.rglob("*"))
    code, _, err = afp("status", "--workdir", str(work), check_json=False)
    assert code == 0, err
    code, data, _ = afp("status", "--workdir", str(work), "--json")
    assert code == 0 and data["live"] is None
    run = data["runs"][0]
    assert run["command"] == "run" and run["range"] == "suricata-1.0.0..suricata-2.0.0" and run["scenario"] == "8667"
    assert run["window"]["first_new"] == commits[6] and run["window"]["last_old"] == commits[4]
    assert run["window"]["commits"] == 2 and run["cycles"] == 16 and not run["live"] and not run["finished"]
    assert [s["index"] for s in run["steps"]] == [9, 0, 4, 6]
    # status reads only: no lock file, no new file anywhere
    assert sorted(p.relative_to(work) for p in work.rglob("*")) == before


def test_status_text(tmp_path, small_repo):
    work = _workdir(tmp_path, small_repo)
    _, commits = _run_state(work, small_repo, {9: ("bad", 8, 8), 0: ("good", 3), 4: ("good", 3)})
    import subprocess, sys
    out = subprocess.run([sys.executable, "-m", "afpbisect", "status", "--workdir", str(work)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "no live run" in text and "run suricata-1.0.0..suricata-2.0.0 (scenario 8667, first-bad): interrupted" in text
    assert f"window [4] {commits[4][:10]} .. [9] {commits[9][:10]} of 9: 5 commit(s) left, ~3 search step(s)" in text
    assert f"search {commits[4][:10]} [4]: GOOD, 3 cycle(s), 0 hit(s)" in text
    assert "\x1b" not in text


def test_status_sees_a_live_run(tmp_path, small_repo):
    work = _workdir(tmp_path, small_repo)
    _run_state(work, small_repo, {9: ("bad", 8, 8)})
    with WorkdirLock(work):
        code, data, _ = afp("status", "--workdir", str(work), "--json")
    assert code == 0 and data["live"].startswith(f"pid {os.getpid()}")
    assert data["runs"][0]["live"] is True
    code, data, _ = afp("status", "--workdir", str(work), "--json")
    assert data["live"] is None and data["runs"][0]["live"] is False


def test_status_without_clone_or_with_corrupt_state(tmp_path, small_repo):
    work = tmp_path / "work"
    _run_state(work, small_repo, {9: ("bad", 8, 8)}, finished=True)
    (work / "state" / "broken.json").write_text("{")
    code, data, err = afp("status", "--workdir", str(work), "--json")
    assert code == 0, err
    by_file = {Path(r["file"]).name: r for r in data["runs"]}
    assert "corrupt" in by_file["broken.json"]["error"]
    assert by_file["run-x.json"]["window"] is None and "no clone" in by_file["run-x.json"]["window_unknown"]
    assert by_file["run-x.json"]["finished"] is True


def test_status_bad_input(tmp_path):
    code, _, err = afp("status", "--workdir", str(tmp_path / "nope"), check_json=False)
    _one_line_exit2(code, err, "no such directory")
    code, _, err = afp("status", "--workdir", "", check_json=False)
    _one_line_exit2(code, err, "empty path")
    assert not (tmp_path / "nope").exists()


def test_status_empty_workdir_and_env(tmp_path):
    (tmp_path / "w").mkdir()
    code, data, _ = afp("status", "--json", env={"AFPBISECT_WORKDIR": str(tmp_path / "w")})
    assert code == 0 and data["runs"] == [] and data["workdir"] == str(tmp_path / "w")


def test_stored_window_find_fix():
    commits = [f"c{i}" for i in range(8)]
    ev = {"c0": {"verdict": "bad"}, "c7": {"verdict": "good"}, "c2": {"verdict": "bad"},
          "c5": {"verdict": "good"}, "c3": {"verdict": "skip"}, "other": {"verdict": "good"}}
    w = stored_window(commits, ev, find_fix=True)
    assert (w["last_old"], w["first_new"], w["commits"]) == ("c2", "c5", 3)


WRONG_SHAPES = {
    "about not an object": {"version": 1, "kind": "run", "identity": {}, "created": 1.0, "data": {"about": "x"}},
    "identity of numbers": {"version": 1, "kind": "run", "identity": {"good": 1, "bad": 2}, "created": 1.0,
                            "data": {"steps": []}},
    "steps not a list": {"version": 1, "kind": "run", "identity": {}, "created": 1.0, "data": {"steps": 5}},
    "a step without its keys": {"version": 1, "kind": "run", "identity": {}, "created": 1.0,
                                "data": {"steps": [{"commit": "abc"}]}},
    "a list": [1, 2],
}


def test_status_with_state_files_of_the_wrong_shape(tmp_path, small_repo):
    """Issue 25: valid JSON of the wrong shape was a traceback and exit 1.  status is an
    overview: the readable bisections are still listed, each unreadable file is marked as
    such in the listing, one warning line says so on stderr, exit 0."""
    work = _workdir(tmp_path, small_repo)
    _run_state(work, small_repo, {9: ("bad", 8, 8)}, finished=True)
    for i, body in enumerate(WRONG_SHAPES.values()):
        (work / "state" / f"bad-{i}.json").write_text(json.dumps(body))
    (work / "state" / "garbage.json").write_bytes(b"\x00\xff\xfe")
    import subprocess, sys
    out = subprocess.run([sys.executable, "-m", "afpbisect", "status", "--workdir", str(work)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    assert "run suricata-1.0.0..suricata-2.0.0 (scenario 8667, first-bad): finished" in out.stdout
    for i in range(len(WRONG_SHAPES)):
        assert f"bad-{i}.json: unreadable:" in out.stdout, out.stdout
    warn = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(warn) == 1 and "6 state file(s)" in warn[0] and "unreadable" in warn[0], out.stderr
    code, data, err = afp("status", "--workdir", str(work), "--json")
    assert code == 0 and "Traceback" not in err
    assert sum(1 for r in data["runs"] if "error" in r) == 6
