"""Hostile input that must not get past (issue 25): signals never swallowed, a Docker
engine that stops answering, a full disk, the exit-code contract, nightly's reports on
every exit. Each: one line, exit 2 or 3 (or 128+N), nothing lost."""
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import git
import pytest

from afpbisect import prior
from afpbisect.errors import Interrupted

ROOT = Path(__file__).resolve().parent.parent


# --- 1. signals are never swallowed ---------------------------------------------------------

class _GrepInterrupted:
    """A repo whose `git grep` is where the signal lands (0.6-0.8 s into a run)."""

    class git:   # noqa: N801 - the attribute GitPython's Repo has
        @staticmethod
        def grep(*a, **kw):
            raise Interrupted("stopped by signal SIGINT", signal.SIGINT)


def test_interrupt_during_git_grep_is_not_swallowed():
    with pytest.raises(Interrupted):
        prior.suspect_paths(_GrepInterrupted(), "HEAD", ["sending packet failed"], [], [])


def test_interrupted_is_no_exception_a_handler_can_take_for_an_error():
    # `except Exception` (and `except AfpError`) around a git or Docker call must not stop it
    assert not issubclass(Interrupted, Exception)
    assert Interrupted("x", signal.SIGTERM).exit_code == 143


def test_git_grep_without_a_match_is_still_no_suspect(tmp_path):
    repo = git.Repo.init(tmp_path)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.c").write_text("int x;\n")
    repo.index.add(["src/a.c"])
    repo.index.commit("c0")
    assert prior.suspect_paths(repo, "HEAD", ["sending packet failed"], [], []) == {}


# A sitecustomize that makes the import of `docker` (one of the heavy imports behind the CLI)
# wait until a signal comes, after saying so on stderr: the signal then lands inside an
# import, every time, with no sleep in the test.
_SLOW_IMPORT = textwrap.dedent('''
    import importlib.abc, sys, time
    class _Slow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "docker":
                sys.meta_path.remove(self)
                sys.stderr.write("IMPORTING\\n"); sys.stderr.flush()
                time.sleep(60)
            return None
    sys.meta_path.insert(0, _Slow())
''')


@pytest.mark.parametrize("how,sig,code", [
    (["-m", "afpbisect"], signal.SIGINT, 130),
    (["-c", "from afpbisect.entry import main; main()"], signal.SIGINT, 130),   # the console script
    (["-m", "afpbisect"], signal.SIGTERM, 143),
])
def test_signal_while_importing_is_one_line(tmp_path, how, sig, code):
    (tmp_path / "sitecustomize.py").write_text(_SLOW_IMPORT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, *how, "scenarios"], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stderr.readline().strip() == "IMPORTING"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == code, err
    assert len(lines) == 1 and "interrupted" in lines[0] and "Traceback" not in err, err
