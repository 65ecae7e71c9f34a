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

from afpbisect.core import prior
from afpbisect.core.errors import Interrupted

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


# --- 4. the exit-code contract: 1 is a verdict, never an error -------------------------------

def _every_error_class():
    import importlib
    import pkgutil

    import afpbisect
    from afpbisect.core.errors import AfpError
    for m in pkgutil.walk_packages(afpbisect.__path__, "afpbisect."):
        if not m.name.endswith(".__main__") and "afpdriver" not in m.name:
            importlib.import_module(m.name)
    found, todo = [], [AfpError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_no_error_exits_with_a_verdicts_code(cls):
    from afpbisect.core.outcome import Outcome
    err = cls.__new__(cls)   # whatever its constructor takes
    assert err.exit_code in (2, 3), err.exit_code
    assert isinstance(err.outcome, Outcome) and err.outcome.exit_code == err.exit_code


def _status_raising(tmp_path, monkeypatch, capsys, error) -> tuple[int, str]:
    """`afpbisect status` whose collect() raises `error`: (exit code, stderr)."""
    from afpbisect import cli
    from afpbisect.commands import status

    def boom(*a, **kw):
        raise error
    monkeypatch.setattr(status, "collect", boom)
    (tmp_path / "w").mkdir()
    monkeypatch.setattr(sys, "argv", ["afpbisect", "status", "--workdir", str(tmp_path / "w")])
    with pytest.raises(SystemExit) as ex:
        cli.main()
    return ex.value.code, capsys.readouterr().err


def test_an_unexpected_error_exits_3_with_one_line(tmp_path, monkeypatch, capsys):
    from afpbisect.core.errors import AfpError
    code, err = _status_raising(tmp_path, monkeypatch, capsys, AfpError("something nobody foresaw"))
    assert code == 3 and err.strip() == "afpbisect: error: something nobody foresaw", err


def test_one_tuple_of_transport_errors():
    import docker.errors
    import requests.exceptions

    from afpbisect.machinery import engine
    for exc in (docker.errors.DockerException("x"), docker.errors.APIError("x"),
                requests.exceptions.ReadTimeout("x"), BrokenPipeError(), ConnectionResetError()):
        assert isinstance(exc, engine.TRANSPORT_ERRORS), exc


# --- 5. nightly: bad input said before the clone, reports on every exit ---------------------

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
REPORTS = ("nightly.json", "nightly.md", "junit.xml", "history.html")


def _nightly_args(repo, tmp_path, *extra):
    return ["nightly", "--repo", str(repo), "--workdir", str(tmp_path / "w"), "--out",
            str(tmp_path / "o"), "--ref", "main", "--no-fetch", *extra]


@pytest.mark.parametrize("value", ["", "  "])
def test_nightly_empty_last_good_is_refused_before_the_clone(small_repo, tmp_path, value):
    from e2e_util import afp
    code, _, err = afp(*_nightly_args(small_repo, tmp_path, "--last-good", value), check_json=False,
                       env=NO_DOCKER)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "--last-good" in lines[0], err
    assert not (tmp_path / "w" / "repos").exists()


def test_nightly_unknown_last_good_writes_its_reports(small_repo, tmp_path):
    import json

    from e2e_util import afp
    code, _, err = afp(*_nightly_args(small_repo, tmp_path, "--last-good", "0" * 40), check_json=False,
                       env=NO_DOCKER)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "unknown ref" in lines[0], err
    assert all((tmp_path / "o" / f).is_file() for f in REPORTS), sorted(os.listdir(tmp_path / "o"))
    r = json.loads((tmp_path / "o" / "nightly.json").read_text())
    assert r["status"] == "error" and r["exit_code"] == 2 and "unknown ref" in r["error"], r


@pytest.mark.parametrize("exc", [BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")])
def test_nightly_lost_transport_still_writes_its_reports(small_repo, tmp_path, monkeypatch, capsys, exc):
    import json

    from afpbisect import cli
    from afpbisect.commands import nightly

    def lost(*a, **kw):   # docker-py's ssh transport, ssh gone in the middle of the night
        raise exc
    monkeypatch.setattr(nightly, "_night", lost)
    monkeypatch.setattr(sys, "argv", ["afpbisect", *_nightly_args(small_repo, tmp_path)])
    with pytest.raises(SystemExit) as ex:
        cli.main()
    assert ex.value.code == 3, capsys.readouterr().err
    assert all((tmp_path / "o" / f).is_file() for f in REPORTS)
    r = json.loads((tmp_path / "o" / "nightly.json").read_text())
    assert r["status"] == "error" and r["exit_code"] == 3 and r["error"], r


# --- 3. a full disk is infrastructure: one line, exit 3, the state kept ----------------------

def _enospc(*a, **kw):
    import errno
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_build_that_ran_out_of_disk_is_infrastructure_not_skip():
    from afpbisect.machinery import build
    tail = ("  CC       source-af-packet.o\n"
            "/usr/bin/ld: final link failed: No space left on device\n"
            "collect2: error: ld returned 1 exit status\nmake[2]: *** [Makefile:1234: suricata] Error 1\n")
    why = build.infrastructure_cause(2, tail)
    assert why is not None and "No space left on device" in why
    assert build.infrastructure_cause(2, "error: 'foo' undeclared\nmake: *** Error 1\n") is None
    assert "SIGKILL" in build.infrastructure_cause(137, "")   # as stopped_by


def test_state_write_on_a_full_disk_keeps_the_saved_state(tmp_path, monkeypatch):
    from afpbisect.core.errors import WriteFailed
    from afpbisect.core.state import State
    st = State.load_or_new(tmp_path / "state" / "s.json", "run", {"x": 1}, say=lambda m: None)
    st.data["cycles"] = {"a": [1]}
    st.save()
    before = (tmp_path / "state" / "s.json").read_bytes()
    st.data["cycles"]["a"].append(2)
    monkeypatch.setattr("afpbisect.core.state.os.fsync", _enospc)
    with pytest.raises(WriteFailed) as ex:
        st.save()
    assert ex.value.exit_code == 3 and "No space left on device" in str(ex.value)
    assert (tmp_path / "state" / "s.json").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["s.json"], "a temp file left"


def test_report_write_on_a_full_disk_is_one_error(tmp_path, monkeypatch):
    from afpbisect.core.errors import WriteFailed
    from afpbisect.reports.report import write_atomic
    write_atomic(tmp_path / "r.json", "old")
    monkeypatch.setattr("afpbisect.reports.report.os.replace", _enospc)
    with pytest.raises(WriteFailed):
        write_atomic(tmp_path / "r.json", "new")
    assert (tmp_path / "r.json").read_text() == "old" and not (tmp_path / "r.json.tmp").exists()


def test_a_full_disk_under_the_cli_is_one_line_and_exit_3(small_repo, tmp_path, monkeypatch, capsys):
    from afpbisect import cli
    monkeypatch.setattr("afpbisect.core.state.os.fsync", _enospc)   # the nightly's job state
    monkeypatch.setattr(sys, "argv", ["afpbisect", *_nightly_args(small_repo, tmp_path, "--last-good",
                                                                  "0" * 40)])
    with pytest.raises(SystemExit) as ex:
        cli.main()
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert ex.value.code == 3 and len(lines) == 1 and "No space left on device" in lines[0], err


def test_an_unforeseen_os_error_is_one_line_and_exit_3(tmp_path, monkeypatch, capsys):
    import errno
    code, err = _status_raising(tmp_path, monkeypatch, capsys,
                                OSError(errno.ENOSPC, "No space left on device"))
    assert code == 3 and err.count("\n") == 1 and "No space left on device" in err, err


# --- 2. an engine that answers the ping and then stalls: every call has a deadline ----------

def _docker_ok():
    from e2e_util import docker_ok
    return docker_ok()


@pytest.mark.docker
@pytest.mark.skipif(not _docker_ok(), reason="needs the Docker engine")
def test_an_engine_that_stalls_on_a_call_is_exit_3_within_its_deadline(tmp_path):
    """`afpbisect clean` pings (answered), then lists containers: the proxy holds that call.
    The run must end with one line naming the call, exit 3, not wait for ever."""
    from dockerproxy import DockerProxy
    proxy = DockerProxy(str(tmp_path / "docker.sock")).start()
    proxy.stall_on = "/containers/json"
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/docker.sock",
           "AFPBISECT_DOCKER_TIMEOUT_SECONDS": "3", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "afpbisect", "clean", "--workdir", str(tmp_path / "w")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _, err = proc.communicate(timeout=120)   # a hang fails here, not after 400 s
    finally:
        proxy.stop()
        if proc.poll() is None:
            proc.kill()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proxy.stalled.is_set()
    assert proc.returncode == 3, err
    assert len(lines) == 1 and "stopped answering (no reply in 3 s to GET /" in lines[0], err
    assert "/containers/json" in lines[0] and "Traceback" not in err


@pytest.mark.docker
@pytest.mark.skipif(not _docker_ok(), reason="needs the Docker engine")
def test_waiting_on_a_container_ends_when_the_engine_stalls(tmp_path, monkeypatch):
    """A build container is waited on by polling, each poll with the API's deadline: a
    stall while it runs is EngineStalled in seconds, not a wait of the build's 3 hours."""
    import docker as docker_sdk

    from afpbisect.machinery import deadlines, engine
    from dockerproxy import DockerProxy
    image = next((t for i in docker_sdk.from_env().images.list() for t in i.tags), None)
    if image is None:
        pytest.skip("no local image to run")
    proxy = DockerProxy(str(tmp_path / "docker.sock")).start()
    monkeypatch.setenv("AFPBISECT_DOCKER_TIMEOUT_SECONDS", "2")
    eng = engine.connect("faults-test", f"unix://{tmp_path}/docker.sock")
    c = engine.create_container(eng.client, image, ["sleep", "300"], name=f"afpbisect-faults-{os.getpid()}",
                                labels=eng.labels, entrypoint=[])
    try:
        c.start()
        proxy.stall_on = f"/containers/{c.id}/json"
        with pytest.raises(deadlines.EngineStalled, match="stopped answering"):
            engine.wait_exit(c, 3 * 3600, "build container")
    finally:
        proxy.stop()
        docker_sdk.from_env().containers.get(c.id).remove(force=True)


def test_nightly_last_good_that_is_the_tip_is_a_usage_error(small_repo, tmp_path):
    """Hostile tour: `--last-good` naming the tip itself was ignored after the tip's cycles,
    and the night ended exit 1, "regression"."""
    from e2e_util import afp
    code, _, err = afp(*_nightly_args(small_repo, tmp_path, "--last-good", "main"), check_json=False,
                       env=NO_DOCKER)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "itself" in lines[0], err
