"""Every bad input: exit 2, one line naming the problem, no traceback (issue 8)."""

from pathlib import Path

import pytest

from conftest import git
from e2e_util import afp


def _one_line_exit2(code, err, pattern):
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert pattern in lines[0], lines[0]


@pytest.fixture
def wd(tmp_path):
    return ["--workdir", str(tmp_path / "work")]


@pytest.mark.parametrize("rng,pattern", [
    ("v1.0.0..v9.9.9", "unknown ref 'v9.9.9'"),
    ("v2.0.0..v1.0.0", "not an ancestor"),
    ("v2.0.0..main", "empty range"),
    ("v1.0.0", "must be GOOD..BAD"),
])
def test_bad_ranges(small_repo, wd, rng, pattern):
    code, _, err = afp("run", rng, "--repo", str(small_repo), *wd, check_json=False)
    _one_line_exit2(code, err, pattern)
    # Found before anything is touched (issue 25): a local --repo is asked first, so no
    # workdir, clone or lock is made for a range that cannot be bisected.
    assert not Path(wd[1]).exists()


def test_repo_not_git(tmp_path, wd):
    code, _, err = afp("run", "a..b", "--repo", str(tmp_path), *wd, check_json=False)
    _one_line_exit2(code, err, "not a git repository")


@pytest.mark.parametrize("opt,val,pattern", [
    ("--env", "NOEQUALS", "--env"), ("--cycles", "0", "--cycles"),
    ("--confidence", "2", "--confidence"), ("--pairs", "x", "--pairs"),
])
def test_invalid_numbers(small_repo, wd, opt, val, pattern):
    code, _, err = afp("run", "v1.0.0..v2.0.0", "--repo", str(small_repo), opt, val, *wd, check_json=False)
    _one_line_exit2(code, err, pattern)


def test_patch_missing_and_not_a_patch(small_repo, tmp_path, wd):
    code, _, err = afp("verify-patch", str(tmp_path / "none.patch"), "--repo", str(small_repo), *wd,
                       check_json=False)
    _one_line_exit2(code, err, "does not exist")
    junk = tmp_path / "junk.patch"
    junk.write_text("hello\n")
    code, _, err = afp("verify-patch", str(junk), "--repo", str(small_repo), *wd, check_json=False)
    _one_line_exit2(code, err, "not a patch")


def test_patch_that_does_not_apply(small_repo, tmp_path, wd):
    p = tmp_path / "x.patch"
    p.write_text("--- a/src/a.c\n+++ b/src/a.c\n@@ -2,3 +2,3 @@\n int v1 = 1;\n-int v2 = 999;\n+int v2 = 3;\n int v3 = 3;\n")
    code, _, err = afp("verify-patch", str(p), "--target", "suricata-2.0.0", "--repo", str(small_repo), *wd,
                       check_json=False)
    # the widener comes first and this repo has no AFPSetupRing: named, file and all
    _one_line_exit2(code, err, "does not apply")
    assert "src/source-af-packet.c" in err


def test_workdir_not_writable(small_repo, tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    code, _, err = afp("run", "v1.0.0..v2.0.0", "--repo", str(small_repo), "--workdir", str(f / "w"),
                       check_json=False)
    _one_line_exit2(code, err, "not writable")


def test_corrupt_state(small_repo, wd, tmp_path):
    # A run's state file is named by its whole identity (state.identity_digest); the
    # nightly job's has a fixed name, so it is the one corrupted here.
    st = tmp_path / "work" / "state" / "nightly.json"
    st.parent.mkdir(parents=True)
    st.write_text("{corrupt")
    code, _, err = afp("nightly", "--ref", "main", "--no-fetch", "--repo", str(small_repo), *wd,
                       check_json=False)
    _one_line_exit2(code, err, "corrupt")


def test_docker_unreachable(small_repo, wd, tmp_path):
    code, _, err = afp("run", "suricata-1.0.0..main", "--repo", str(small_repo), *wd, check_json=False,
                       env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock",
                            "AFPBISECT_DOCKER_RETRY_SECONDS": "2"})
    _one_line_exit2(code, err, "Docker engine unreachable")
    assert "no.sock" in err


def test_command_list_summaries_are_whole_sentences():
    """`afpbisect --help` shows each command's first sentence; click cuts it at the first
    period, so run's "(e.g. v7.0.0..v8.0.3)" once left only "Bisect GOOD..BAD (e."."""
    from click.testing import CliRunner

    from afpbisect.cli import cli

    out = CliRunner().invoke(cli, ["--help"]).output
    rows = {l.split()[0]: l for l in out.splitlines() if l.startswith("  ") and l.split()}
    assert "Bisect GOOD..BAD and name the first bad commit." in rows["run"]
    for name in ("run", "verify-patch", "nightly", "selftest", "clean"):
        assert not rows[name].rstrip().endswith("(e."), rows[name]


def test_run_keeps_a_corrupt_state_aside_and_goes_on(small_repo, tmp_path):
    """Issue 25: the run's own state file, unreadable, is moved aside with one line, and
    the run goes on (here to Docker, away)."""
    work = tmp_path / "work"
    env = {"DOCKER_HOST": f"unix://{tmp_path}/no.sock", "AFPBISECT_DOCKER_RETRY_SECONDS": "2"}
    code, _, err = afp("run", "suricata-1.0.0..main", "--repo", str(small_repo), "--workdir", str(work),
                       check_json=False, env=env)
    assert code == 2 and "Docker engine unreachable" in err
    # The state is made only once Docker answers: plant a corrupt one under the run's name.
    st = work / "state" / _run_state_name(small_repo, work)
    st.parent.mkdir(parents=True, exist_ok=True)
    st.write_text('{"version": 1, "kind": "run"')
    code, _, err = afp("run", "suricata-1.0.0..main", "--repo", str(small_repo), "--workdir", str(work),
                       check_json=False, env=env)
    lines = [l for l in err.strip().splitlines() if l.strip()]
    kept = list(st.parent.glob(st.name + ".bad-*"))
    assert len(kept) == 1 and kept[0].read_text() == '{"version": 1, "kind": "run"', err
    assert any(str(st) in l and kept[0].name in l for l in lines), err
    assert "Traceback" not in err and "Docker engine unreachable" in lines[-1] and code == 2


def _run_state_name(repo, work) -> str:
    """The state file name `run suricata-1.0.0..main` uses with the default options."""
    import subprocess, sys
    code = ("import sys, afpbisect.core.state as s\n"
            "def lon(cls, path, *a, **k):\n"
            "    print(path.name); sys.exit(0)\n"
            "s.State.load_or_new = classmethod(lon)\n"
            "sys.argv = ['afpbisect', 'run', 'suricata-1.0.0..main', '--repo', sys.argv[1], '--workdir', sys.argv[2]]\n"
            "from afpbisect.cli import main; main()\n")
    out = subprocess.run([sys.executable, "-c", code, str(repo), str(work)], capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def test_unknown_verify_target_touches_nothing(small_repo, tmp_path, wd):
    """Issue 25: an unknown --target of a local --repo is refused before the workdir, its
    clone and lock are made (it used to be found after the clone)."""
    p = tmp_path / "x.patch"
    p.write_text("--- a/src/a.c\n+++ b/src/a.c\n@@ -1 +1 @@\n-int v1 = 1;\n+int v1 = 2;\n")
    code, _, err = afp("verify-patch", str(p), "--target", "v9.9.9", "--repo", str(small_repo), *wd,
                       check_json=False)
    _one_line_exit2(code, err, "unknown ref 'v9.9.9'")
    assert not Path(wd[1]).exists()
