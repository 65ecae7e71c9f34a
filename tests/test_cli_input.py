"""Issue 17: every bad input is one line and exit 2, reported before anything is touched:
no workdir made, no clone, no Docker contacted where the input alone is wrong."""
import json
import sys
import subprocess
import signal
import os
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from conftest import git
from e2e_util import afp, docker_ok
from test_cli_errors import _one_line_exit2

# Docker away: an input error must be reported as itself, never as "Docker unreachable".
NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent.sock", "AFPBISECT_DOCKER_RETRY_SECONDS": "2"}


def _nothing_created(work: Path, existed: set = frozenset()):
    """The workdir holds only what it held before: no clone (repos/), no state/, no lock."""
    now = {p.name for p in work.iterdir()} if work.exists() else set()
    assert now <= set(existed), sorted(now - set(existed))


@pytest.mark.parametrize("body,pattern", [
    ("rule = [1, 2]", "rule #1"),
    ('rule = ["base"]', "rule #1"),
    ('[[rule]]\nid = "x"\nreason = "r"\nwhen = { file_matches = { path = 1, regex = "a" } }', "file_matches"),
    ('[[rule]]\nid = "x"\nreason = "r"\nwhen = { file_matches = { path = "a", regex = 3 } }', "file_matches"),
    ('[[rule]]\nid = "x"\nreason = "r"\nenv = { 1 = "a" }\napt = "x"', "apt"),
    ("rule = [", "--eras"),
    (b"\xff\xfe rule", "--eras"),
])
def test_bad_eras_file(tmp_path, body, pattern):
    f = tmp_path / "eras.toml"
    f.write_bytes(body if isinstance(body, bytes) else body.encode())
    work = tmp_path / "work"
    code, _, err = afp("run", "a..b", "--repo", "https://example.invalid/x.git", "--workdir", str(work),
                       "--eras", str(f), check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, pattern)
    assert str(f) in err
    _nothing_created(work)


def test_missing_eras_file(tmp_path):
    work = tmp_path / "work"
    code, _, err = afp("verify-patch", "x.patch", "--workdir", str(work), "--eras", str(tmp_path / "no.toml"),
                       check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "no.toml")
    _nothing_created(work)


@pytest.mark.parametrize("value", ["nan", "NaN", "-nan"])
def test_confidence_nan(tmp_path, value):
    work = tmp_path / "work"
    code, _, err = afp("nightly", "--confidence", value, "--repo", "https://example.invalid/x.git",
                       "--workdir", str(work), check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "--confidence")
    _nothing_created(work)


@pytest.mark.parametrize("rng", ["v1.0.0", "a...b", "..b"])
def test_range_syntax_before_clone(tmp_path, rng):
    work = tmp_path / "work"
    code, _, err = afp("run", rng, "--repo", "https://example.invalid/x.git", "--workdir", str(work),
                       check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "GOOD..BAD")
    _nothing_created(work)


def test_missing_local_repo_before_workdir(tmp_path):
    work = tmp_path / "work"
    code, _, err = afp("run", "a..b", "--repo", str(tmp_path / "none"), "--workdir", str(work),
                       check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "no such directory")
    _nothing_created(work)


def test_lock_is_a_directory(small_repo, tmp_path):
    work = tmp_path / "work"
    (work / "lock").mkdir(parents=True)
    code, _, err = afp("run", "suricata-1.0.0..main", "--repo", str(small_repo), "--workdir", str(work),
                       check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "lock")
    assert str(work / "lock") in err
    _nothing_created(work, {"lock"})


@pytest.mark.parametrize("data", [
    {"builds": []},
    {"cycles": {"k": "x"}},
    {"cycles": {"k": ["x"]}},
    {"evidence": []},
    {"evidence": {"abc": "x"}},
    {"result": 3},
])
def test_state_data_of_the_wrong_shape(small_repo, tmp_path, data):
    # A run's state file is named by its whole identity (state.identity_digest); the
    # nightly job's has a fixed name, so it is the one given wrong-typed data here.
    st = tmp_path / "work" / "state" / "nightly.json"
    st.parent.mkdir(parents=True)
    st.write_text(json.dumps({"version": 1, "kind": "nightly", "identity": {}, "created": 1.0, "data": data}))
    code, _, err = afp("nightly", "--ref", "main", "--no-fetch", "--repo", str(small_repo),
                       "--workdir", str(tmp_path / "work"), check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "corrupt")
    assert str(st) in err and "--restart" in err


@pytest.fixture
def silent_docker():
    """A UNIX socket that accepts connections and never answers (a wedged daemon):
    (path, connections) where connections() counts the connections it was asked for."""
    d = tempfile.mkdtemp(dir="/tmp")   # short: UNIX socket paths are limited to 108 bytes
    path = os.path.join(d, "d.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(16)
    held, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    def connections() -> int:
        stop.set()
        t.join()
        srv.setblocking(False)
        while True:   # what is still in the backlog
            try:
                held.append(srv.accept()[0])
            except OSError:
                return len(held)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield path, connections
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()
    os.unlink(path)
    os.rmdir(d)


def test_docker_that_never_answers(small_repo, tmp_path, silent_docker):
    sock, connections = silent_docker
    code, _, err = afp("run", "suricata-1.0.0..main", "--repo", str(small_repo),
                       "--workdir", str(tmp_path / "work"), check_json=False, timeout=120,
                       env={"DOCKER_HOST": f"unix://{sock}", "AFPBISECT_DOCKER_RETRY_SECONDS": "2"})
    # One question, its 10 s, then the error: no retry loop on a daemon that does not answer
    # (counted on the socket, not timed).
    assert connections() == 1, err
    _one_line_exit2(code, err, f"Docker engine at unix://{sock} did not answer within 10 s")


def test_options_carry_the_normalised_repo(small_repo, monkeypatch):
    """Run identity is built from Options.repo: one spelling per repository."""
    from afpbisect.cli_options import command_options
    monkeypatch.chdir(small_repo.parent)
    kw = {"pairs": 2, "threads": 2, "scenario_ref": None, "env_items": {}, "workdir": Path("w"),
          "base_image": "b", "jobs": 1,
          "restart": False, "cycles": None, "eras_file": None}
    assert command_options({**kw, "repo": "./repo/"}).repo == str(small_repo.resolve())
    assert command_options({**kw, "repo": "https://example.org/x/"}).repo == "https://example.org/x"


def test_clone_failure_is_one_line(tmp_path):
    """git's stderr ("Cloning into ...", then "fatal: ...") was printed whole: two lines."""
    work = tmp_path / "work"
    code, _, err = afp("run", "a..b", "--repo", "https://example.invalid/x.git", "--workdir", str(work),
                       check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "cannot clone")
    assert "example.invalid" in err.split("cannot clone", 1)[1]
    assert not list((work / "repos").glob("*"))   # no half clone left behind


@pytest.mark.parametrize("value", ["abc", "0", "nan", "-1"])
def test_bad_ping_seconds(small_repo, tmp_path, value):
    code, _, err = afp("run", "suricata-1.0.0..main", "--repo", str(small_repo), "--workdir", str(tmp_path / "w"),
                       check_json=False, env={**NO_DOCKER, "AFPBISECT_DOCKER_PING_SECONDS": value})
    _one_line_exit2(code, err, "AFPBISECT_DOCKER_PING_SECONDS")


def test_an_unknown_ref_is_fetched_once_and_each_ref_says_its_commit(small_repo, tmp_path):
    """Issue 17: a tag made upstream after the tool's clone is fetched, not "unknown"; every
    ref prints the commit it resolved to. Docker is away: this is all before it."""
    work = tmp_path / "work"
    code, _, err = afp("run", "v1.0.0..v2.0.0", "--repo", str(small_repo), "--workdir", str(work),
                       check_json=False, env=NO_DOCKER)
    assert code == 2 and "Docker engine unreachable" in err
    git(small_repo, "tag", "suricata-3.0.0", "main")
    sha = git(small_repo, "rev-parse", "main")
    code, _, err = afp("run", "v1.0.0..v3.0.0", "--repo", str(small_repo), "--workdir", str(work),
                       check_json=False, env=NO_DOCKER)
    # one line: the fetch is said only with the error (the commit lines come once the engine answers)
    assert code == 2 and "Docker engine unreachable" in err and "unknown ref" not in err, err
    clone = next((work / "repos").iterdir())
    assert git(clone, "rev-parse", "suricata-3.0.0") == sha
    code, _, err = afp("run", "v1.0.0..v9.9.9", "--repo", str(small_repo), "--workdir", str(work),
                       check_json=False, env=NO_DOCKER)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "unknown ref 'v9.9.9'" in lines[0], err



# --- found by a hostile tour of the CLI (2026-12-01) --------------------------------------

def test_nightly_out_is_named_as_itself_before_the_clone(small_repo, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    work = tmp_path / "work"
    code, _, err = afp("nightly", "--repo", str(small_repo), "--workdir", str(work), "--out", str(afile),
                       check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, f"--out {afile} is not writable")
    assert not (work / "repos").exists()


@pytest.mark.parametrize("opt", ["--workdir", "--out"])
def test_an_empty_path_is_not_the_current_directory(small_repo, tmp_path, monkeypatch, opt):
    monkeypatch.chdir(tmp_path)
    args = ["nightly", "--repo", str(small_repo), "--workdir", str(tmp_path / "w"), opt, ""]
    code, _, err = afp(*args, check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, f"Invalid value for '{opt}': empty path")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"], "something was made here"


def test_a_patch_that_is_a_directory_is_said_so(small_repo, tmp_path):
    code, _, err = afp("verify-patch", str(tmp_path), "--repo", str(small_repo), "--workdir",
                       str(tmp_path / "w"), check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "is not a regular file")


def test_sigterm_during_the_clone_says_interrupted_and_leaves_no_partial_clone(tmp_path):
    """A --repo URL whose server accepts and never answers: the clone hangs until SIGTERM."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, "-m", "afpbisect", "run", "a..b", "--repo",
                             f"http://127.0.0.1:{port}/x.git", "--workdir", str(work)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **NO_DOCKER})
    conn = None
    try:
        srv.settimeout(60)           # only reached when the clone never asks
        conn, _ = srv.accept()       # the clone is asking the server: it hangs from here on
        assert list((work / "repos").glob("*.tmp")), "the clone is not made in a .tmp first"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if conn is not None:
            conn.close()
        srv.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "interrupted" in err and "Traceback" not in err, err
    assert not list((work / "repos").glob("*.tmp")), "a partial clone was left"


@pytest.mark.parametrize("path", ["", "  ", "/etc/passwd", "../src/x.c", "src/../../x"])
def test_suspect_path_is_a_path_in_the_tree(tmp_path, path):
    """--suspect names a path of the repository's tree, as git bisect's pathspec does; an
    empty, absolute or escaping one would silently suspect nothing (it once started a run)."""
    work = tmp_path / "work"
    code, _, err = afp("run", "a..b", "--suspect", path, "--repo", "https://example.invalid/x.git",
                       "--workdir", str(work), check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "--suspect")
    _nothing_created(work)


# --- issue 25 -----------------------------------------------------------------------------

@pytest.mark.parametrize("image", ["NOT A VALID:::image", "Debian:bookworm", "debian:", "debian@sha256:12",
                                   "-debian", "debian:bookworm:x", ""])
def test_a_base_image_that_is_no_image_reference(tmp_path, image):
    work = tmp_path / "work"
    code, _, err = afp("run", "a..b", "--base-image", image, "--repo", "https://example.invalid/x.git",
                       "--workdir", str(work), check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "--base-image")
    _nothing_created(work)


@pytest.mark.parametrize("image", ["debian:bookworm", "debian", "library/debian:12.5-slim",
                                   "registry.example.org:5000/team/img_x:v1.2",
                                   "localhost/a__b-c.d:latest", "afpbisect/debian-local:bookworm",
                                   "debian@sha256:" + "a" * 64, "[::1]:5000/x:y"])
def test_image_references_docker_takes(image):
    from afpbisect.machinery.baseimage import image_reference_problem
    assert image_reference_problem(image) is None


def test_suspect_path_no_commit_of_the_range_touches(small_repo, tmp_path):
    """After the range is resolved, before Docker or any build: the nearest touched path named."""
    work = tmp_path / "work"
    code, _, err = afp("run", "suricata-1.0.0..main", "--suspect", "lib/a.c", "--repo", str(small_repo),
                       "--workdir", str(work), check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "--suspect lib/a.c: no commit of suricata-1.0.0..main touches it")
    assert "src/a.c" in err
    assert not (work / "state").exists()
    # a directory the range touches below is a suspect like git's pathspec: on to Docker (away)
    code, _, err = afp("run", "suricata-1.0.0..main", "--suspect", "src", "--repo", str(small_repo),
                       "--workdir", str(work), check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, "Docker engine unreachable")


def test_unknown_docker_context_is_refused_like_an_unknown_engine(tmp_path):
    work = tmp_path / "work"
    env = {**NO_DOCKER, "DOCKER_HOST": "", "DOCKER_CONTEXT": "nosuch", "DOCKER_CONFIG": str(tmp_path / "cfg")}
    code, _, err = afp("run", "a..b", "--repo", "https://example.invalid/x.git", "--workdir", str(work),
                       check_json=False, env=env)
    _one_line_exit2(code, err, "DOCKER_CONTEXT=nosuch: no Docker context of that name")
    _nothing_created(work)
    code, _, err = afp("doctor", check_json=False, env=env)
    _one_line_exit2(code, err, "DOCKER_CONTEXT=nosuch")


def test_docker_context_resolution(tmp_path, monkeypatch):
    """The docker CLI's order: DOCKER_HOST wins over DOCKER_CONTEXT; `default` is the local
    engine; a context of the store is that context, as if named with --engine."""
    import hashlib
    from afpbisect.core.errors import UsageError
    from afpbisect.machinery.farm import resolve_all
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"far").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": "far", "Endpoints": {"docker": {"Host": "ssh://u@far"}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("DOCKER_CONTEXT", "far")
    assert resolve_all(()) == [("far", "ssh://u@far")]
    assert resolve_all(("unix:///x.sock",)) == [("unix:///x.sock", "unix:///x.sock")]   # the command line wins
    monkeypatch.setenv("DOCKER_CONTEXT", "default")
    assert resolve_all(()) == []
    monkeypatch.setenv("DOCKER_CONTEXT", "nosuch")
    with pytest.raises(UsageError, match="DOCKER_CONTEXT=nosuch"):
        resolve_all(())
    monkeypatch.setenv("DOCKER_HOST", "unix:///x.sock")
    assert resolve_all(()) == []


@pytest.mark.parametrize("args", [["status"], ["run", "a..b", "--repo", "https://example.invalid/x.git"],
                                  ["clean"], ["doctor"]])
def test_workdir_set_but_empty_in_the_environment(tmp_path, monkeypatch, args):
    """AFPBISECT_WORKDIR= (a script's unset variable) must not silently mean the default workdir."""
    monkeypatch.chdir(tmp_path)
    env = {**NO_DOCKER, "AFPBISECT_WORKDIR": "", "XDG_CACHE_HOME": str(tmp_path / "c"),
           "XDG_STATE_HOME": str(tmp_path / "s")}
    code, _, err = afp(*args, check_json=False, env=env)
    _one_line_exit2(code, err, "AFPBISECT_WORKDIR is set but empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "something was made"


def test_workdir_option_env_set_but_empty(tmp_path):
    code, _, err = afp("status", check_json=False, env={"AFPBISECT_STATUS_WORKDIR": ""})
    _one_line_exit2(code, err, "AFPBISECT_STATUS_WORKDIR is set but empty")


def test_clean_workdir_that_is_a_file(tmp_path):
    f = tmp_path / "some-file"
    f.write_text("")
    code, _, err = afp("clean", "--workdir", str(f), check_json=False, env=NO_DOCKER)
    _one_line_exit2(code, err, f"--workdir {f}: not a directory")


@pytest.mark.docker
@pytest.mark.skipif(not docker_ok(), reason="needs the Docker engine")
def test_clean_workdir_that_does_not_exist_and_left_nothing(tmp_path):
    """A typo: no such directory and no container of it on the engine (a workdir that was
    removed with containers left is still swept: tests/test_clean.py)."""
    code, _, err = afp("clean", "--workdir", str(tmp_path / "no" / "such"), check_json=False)
    _one_line_exit2(code, err, "no such directory")
    assert not (tmp_path / "no").exists()


def test_nearest_touched_paths_to_a_suspect():
    from afpbisect.commands.run import check_suspects, nearest_paths
    files = {"src/source-af-packet.c", "src/source-af-packet.h", "src/util-device.c"}
    assert nearest_paths("src/source-af-packt.c", files)[0] == "src/source-af-packet.c"
    assert nearest_paths("source-af-packet.c", files) == ["src/source-af-packet.c"]
    assert nearest_paths("nothing/alike.rs", files) == []
    check_suspects([set(), files], ("src", "src/util-device.c"), "a..b")   # both touched: no error
    from afpbisect.core.errors import UsageError
    with pytest.raises(UsageError, match=r"--suspect src/af\.c: no commit of a\.\.b touches it$"):
        check_suspects([set(), files], ("src/af.c",), "a..b")
