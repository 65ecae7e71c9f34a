"""A hostile tour's findings (2026-12-04): each bad input is one line and exit 2 before
anything is touched, infrastructure exit 3, a closed stdout/stderr never exit 1 and never
blamed on Docker; never a traceback, never a hang."""
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from e2e_util import afp
from test_cli_errors import _one_line_exit2
from test_rerender import RUN, _run_result, rerender
from test_status import _run_state

import afpbisect
from afpbisect.core.outcome import OUTPUT_CLOSED

from afpbisect.core.state import VERSION, CorruptState, State

NO_DOCKER = {"DOCKER_HOST": "unix:///nonexistent.sock", "AFPBISECT_DOCKER_RETRY_SECONDS": "2"}
A = [sys.executable, "-m", "afpbisect"]


def _state_body(**over) -> str:
    body = {"version": VERSION, "kind": "run", "identity": {"good": "a"}, "created": 1.0, "data": {}}
    body.update(over)
    return json.dumps(body)


# ---------------------------------------------------------------- 1. corrupt state files
@pytest.mark.parametrize("kind", ["nested", "nan", "inf", "huge-int", "fifo", "dangling"])
def test_state_that_cannot_be_one_is_corrupt_never_a_crash_or_hang(tmp_path, kind):
    p = tmp_path / "s.json"
    if kind == "nested":
        p.write_text("[" * 200000)
    elif kind == "nan":
        p.write_text(_state_body().replace('"created": 1.0', '"created": NaN'))
    elif kind == "inf":
        p.write_text(_state_body().replace('"created": 1.0', '"created": 1e999'))
    elif kind == "huge-int":
        p.write_text(_state_body().replace('"created": 1.0', '"created": ' + "9" * 5000))
    elif kind == "fifo":
        os.mkfifo(p)
    else:
        p.symlink_to(tmp_path / "nowhere")
    with pytest.raises(CorruptState):
        State.load(p)
    said = []
    st = State.load_or_new(p, "run", {"good": "a"}, say=said.append, set_aside=True)
    assert st.data == {}
    if kind != "dangling":   # nothing behind a dangling link to keep: it is replaced on save
        assert not os.path.lexists(p) and len(list(tmp_path.glob("s.json.bad-*"))) == 1
        assert len(said) == 1 and "unreadable" in said[0]
    st.save()
    assert State.load(p).data == {}


def test_status_lists_the_rest_past_a_fifo_a_dangling_link_and_deep_json(tmp_path, small_repo):
    work = tmp_path / "work"
    _run_state(work, small_repo, {9: ("bad", 8, 8)}, finished=True)
    sd = work / "state"
    os.mkfifo(sd / "run-fifo.json")
    (sd / "run-dangling.json").symlink_to(tmp_path / "nowhere")
    (sd / "run-deep.json").write_text("[" * 200000)
    (sd / "run-nan.json").write_text(_state_body().replace('"created": 1.0', '"created": NaN'))
    code, data, err = afp("status", "--workdir", str(work), "--json", timeout=60)
    assert code == 0 and "Traceback" not in err, err
    by_file = {Path(r["file"]).name: r for r in data["runs"]}
    assert by_file["run-x.json"]["finished"] is True
    for name in ("run-fifo.json", "run-dangling.json", "run-deep.json", "run-nan.json"):
        assert "error" in by_file[name], by_file
    assert len([l for l in err.splitlines() if l.strip()]) == 1


# ---------------------------------------------------------------- 2. --eras FIFO
def test_eras_that_is_a_fifo_is_refused(tmp_path):
    f = tmp_path / "eras.toml"
    os.mkfifo(f)
    code, _, err = afp("run", "a..b", "--repo", "https://example.invalid/x.git", "--workdir",
                       str(tmp_path / "w"), "--eras", str(f), check_json=False, env=NO_DOCKER, timeout=60)
    _one_line_exit2(code, err, "not a regular file")
    assert not (tmp_path / "w").exists()


# ---------------------------------------------------------------- 3. --workdir
@pytest.mark.parametrize("wd,pattern", [
    ("~nosuchuser-afp/x", "no such user"),
    ("{tmp}/x:y", "':'"),
])
def test_workdir_refused_up_front(tmp_path, small_repo, wd, pattern):
    wd = wd.format(tmp=tmp_path)
    code, _, err = afp("run", "suricata-1.0.0..suricata-2.0.0", "--repo", str(small_repo), "--workdir", wd,
                       check_json=False, env=NO_DOCKER, timeout=60)
    _one_line_exit2(code, err, pattern)
    assert not Path(wd).exists() if "~" not in wd else True
    code, _, err = afp("status", "--workdir", "~nosuchuser-afp/x", check_json=False, timeout=60)
    _one_line_exit2(code, err, "no such user")


# ---------------------------------------------------------------- 4. empty --repo / --target
def test_empty_repo_and_target(tmp_path, small_repo):
    code, _, err = afp("run", "suricata-1.0.0..suricata-2.0.0", "--repo", "", "--workdir", str(tmp_path / "w"),
                       check_json=False, env=NO_DOCKER, timeout=60)
    _one_line_exit2(code, err, "empty --repo")
    assert not (tmp_path / "w").exists()
    code, _, err = afp("verify-patch", str(RUN), "--target", "", "--repo", str(small_repo),
                       "--workdir", str(tmp_path / "w"), check_json=False, env=NO_DOCKER, timeout=60)
    _one_line_exit2(code, err, "empty --target")
    assert not (tmp_path / "w").exists()


# ---------------------------------------------------------------- 5. rerender
def _write(tmp_path, name, text) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("case", ["nested", "command-list", "huge-int", "nan-confidence",
                                  "stem-abs", "stem-up", "out-empty", "cores", "date"])
def test_rerender_bad_input(tmp_path, case, monkeypatch):
    good = _write(tmp_path, "r.json", json.dumps(_run_result()))
    out = tmp_path / "d" / "out"
    args = [good, "--out", out]
    if case == "nested":
        args[0] = _write(tmp_path, "n.json", "[" * 200000)
    elif case == "command-list":
        args[0] = _write(tmp_path, "c.json", json.dumps(dict(_run_result(), command=["run"])))
    elif case == "huge-int":
        args[0] = _write(tmp_path, "h.json", json.dumps(_run_result())[:-1] + ', "x": ' + "9" * 5000 + "}")
    elif case == "nan-confidence":
        r = _run_result()
        r["settings"]["confidence"] = float("nan")
        args[0] = _write(tmp_path, "nan.json", json.dumps(r))
    elif case == "stem-abs":
        args += ["--stem", str(tmp_path / "abs" / "x")]
    elif case == "stem-up":
        args += ["--stem", "../../escaped"]
    elif case == "out-empty":
        args[2] = ""
        monkeypatch.chdir(tmp_path / "d" if (tmp_path / "d").mkdir() is None else tmp_path)
    elif case == "cores":
        args += ["--cores", "-5"]
    elif case == "date":
        args += ["--date", "not a date"]
    before = sorted(p for p in tmp_path.rglob("*"))
    code, err = rerender(*args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert sorted(p for p in tmp_path.rglob("*")) == before, "something was written"


def test_rerender_stdout_closed(tmp_path):
    good = _write(tmp_path, "r.json", json.dumps(_run_result()))
    r, w = os.pipe()
    os.close(r)
    proc = subprocess.run([sys.executable, "-m", "afpbisect.rerender", str(good), "--out", str(tmp_path / "o")],
                          stdout=w, stderr=subprocess.PIPE, text=True, timeout=60)
    os.close(w)
    assert proc.returncode == OUTPUT_CLOSED and "Traceback" not in proc.stderr, proc.stderr


# ---------------------------------------------------------------- 6. one line, always
def test_no_command_is_one_line():
    code, _, err = afp(check_json=False, timeout=60)
    _one_line_exit2(code, err, "no command")


@pytest.mark.parametrize("args,pattern", [
    (["run", "a\n..b", "--repo", "{repo}"], "a\\n"),
    (["run", "a..b", "--repo", "/tmp/a\nb"], "a\\nb"),
    (["run", "a..b", "--suspect", "src\nx", "--suspect", "/x\ny"], "suspect"),
])
def test_values_with_newlines_are_escaped(tmp_path, small_repo, args, pattern):
    args = [a.format(repo=small_repo) for a in args]
    code, _, err = afp(*args, "--workdir", str(tmp_path / "w"), check_json=False, env=NO_DOCKER, timeout=60)
    _one_line_exit2(code, err, pattern)


# ---------------------------------------------------------------- 7. closed stdout / stderr
def _closed_stdout(*args, env=None):
    r, w = os.pipe()
    os.close(r)
    proc = subprocess.run([*A, *args], stdout=w, stderr=subprocess.PIPE, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    os.close(w)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("args", [["scenarios"], ["--help"], ["run", "--help"], ["status", "--json"],
                                  ["status"]])
def test_closed_stdout_is_not_exit_1_nor_docker(tmp_path, args):
    (tmp_path / "w").mkdir()
    code, err = _closed_stdout(*args, env={"AFPBISECT_WORKDIR": str(tmp_path / "w")})
    assert code == OUTPUT_CLOSED, (code, err)
    assert "Docker" not in err and "Traceback" not in err, err


@pytest.mark.parametrize("stderr", ["closed", "full"])
def test_usage_error_is_exit_2_even_when_stderr_cannot_be_written(tmp_path, stderr):
    argv = [*A, "run", "a..b", "--cycles", "0", "--workdir", str(tmp_path / "w")]
    if stderr == "closed":
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60,
                              pass_fds=(), close_fds=True, preexec_fn=lambda: os.close(2))
    else:
        with open("/dev/full", "w") as full:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=full, timeout=60)
    assert proc.returncode == 2


# ---------------------------------------------------------------- 8. doctor --workdir FILE
def test_doctor_workdir_that_is_a_file_fails_the_check(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    from afpbisect.commands.doctor import check_disk
    plenty = lambda p: type("U", (), {"free": 2**50})()
    c = check_disk(f, usage=plenty)
    assert not c.ok and "not a directory" in c.detail
    c = check_disk(f / "below", usage=plenty)
    assert not c.ok and "not a directory" in c.detail
    assert check_disk(tmp_path / "not-yet" / "made", usage=plenty).ok


@pytest.mark.skipif(not __import__("shutil").which("ssh"), reason="no ssh client")
def test_ssh_engine_refused_is_our_one_line(tmp_path, small_repo):
    """ssh's own "Connection refused" went to stderr before our line: it is in our line."""
    code, _, err = afp("run", "suricata-1.0.0..suricata-2.0.0", "--repo", str(small_repo), "--workdir",
                       str(tmp_path / "w"), check_json=False, timeout=120,
                       env={"DOCKER_HOST": "ssh://nobody@127.0.0.1:9", "AFPBISECT_DOCKER_RETRY_SECONDS": "2"})
    lines = [l for l in err.splitlines() if l.strip()]
    assert code in (2, 3) and "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("afpbisect: error:") and "Connection refused" in lines[0], err


@pytest.mark.skipif(not __import__("shutil").which("ssh"), reason="no ssh client")
def test_doctor_ssh_engine_refused_is_in_its_check_line(tmp_path):
    code, _, err = afp("doctor", "--workdir", str(tmp_path), check_json=False, timeout=120,
                       env={"DOCKER_HOST": "ssh://nobody@127.0.0.1:9"})
    assert code == 1 and "Traceback" not in err, err
    assert all(l.startswith(("ok ", "FAIL ")) for l in err.splitlines() if l.strip()), err
    assert any(l.startswith("FAIL docker:") and "Connection refused" in l for l in err.splitlines()), err


# --- the second hostile tour (2026-12-04), on the final code ---------------------------------


# The package under test, whatever the installed script points at.
_ENV = {**os.environ, "PYTHONPATH": str(Path(afpbisect.__file__).parents[1])}


def _cli(*args, module="afpbisect", stdout=subprocess.PIPE, env=None):
    """`python3 -m MODULE ARGS` with stdout and stderr as text (CompletedProcess)."""
    return subprocess.run([sys.executable, "-m", module, *args], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=120, env={**_ENV, **(env or {})})


@pytest.mark.parametrize("value", ["٣", "1_0", "０"])
def test_a_number_in_other_digits_is_refused(value, tmp_path):
    p = _cli("run", "a..b", "--cycles", value, "--workdir", str(tmp_path / "w"))
    assert p.returncode == 2 and "is not a whole number" in p.stderr, p.stderr
    assert not (tmp_path / "w").exists()


def test_a_stdout_closed_before_start_is_141_not_a_silent_0():
    p = _cli("scenarios", stdout=subprocess.DEVNULL)
    assert p.returncode == 0
    closed = subprocess.run(f"{sys.executable} -m afpbisect scenarios >&-", shell=True, text=True,
                            capture_output=True, timeout=120, env=_ENV)
    assert closed.returncode == 141, closed.stderr


@pytest.mark.parametrize("text, says", [
    ('title = "x\\ny"\n', "must be one line"),
    ('[traffic]\npps = 0\n', "'pps' must be > 0"),
    ('[cycle]\nseconds = 1e-300\n', "must be in [0.1, 3600] seconds"),
    ('[nightly]\nbranch = "-rf"\n', "must be a git ref"),
])
def test_scenario_values_the_second_tour_found(text, says, tmp_path):
    from afpbisect.core.errors import UsageError
    from afpbisect.core.scenario import load
    f = tmp_path / "s.toml"
    top, _, rest = text.partition("[")
    f.write_text(f'name = "x"\n{top}[hit]\nconsole = ["the bug"]\n' + (f"[{rest}" if rest else ""))
    with pytest.raises(UsageError, match=re.escape(says)):
        load(f)


def test_rerender_refuses_overflowing_numbers_and_odd_out_names(tmp_path):
    src = tmp_path / "r.json"
    src.write_text(json.dumps({"command": "run", "wall_seconds": 10 ** 400}))
    for extra in ([], ["--stem", "a" * 300]):
        p = _cli(str(src), "--out", str(tmp_path / "o"), *extra, module="afpbisect.rerender")
        assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    p = _cli(str(src), "--out", str(tmp_path / "a\x01b"), module="afpbisect.rerender")
    assert p.returncode == 2 and not (tmp_path / "a\x01b").exists()
    assert not (tmp_path / "o").exists()


def test_selftest_refuses_a_workdir_that_is_a_file_before_generating_anything(tmp_path):
    """Third hostile tour: the synthetic target was generated (and said on stdout) first."""
    f = tmp_path / "afile"
    f.write_text("x")
    p = _cli("selftest", "--workdir", str(f))
    assert p.returncode == 2 and "not a directory" in p.stderr and p.stdout == "", (p.stdout, p.stderr)


@pytest.mark.parametrize("value", ["nan", "-1"])
def test_doctor_refuses_a_bad_docker_timeout_like_the_other_commands(value, tmp_path):
    p = _cli("doctor", "--workdir", str(tmp_path / "w"), env={"AFPBISECT_DOCKER_TIMEOUT_SECONDS": value})
    assert p.returncode == 2 and "not a positive number of seconds" in p.stderr, p.stderr


# --- the fourth hostile tour (2026-12-04) ------------------------------------------------------


def test_a_retry_seconds_that_is_no_number_is_never_a_traceback(tmp_path):
    """It was read at import: every command, even `scenarios`, died with a traceback, exit 1.
    Commands that never call Docker do not read it; the others refuse it in one line."""
    env = {**NO_DOCKER, "AFPBISECT_DOCKER_RETRY_SECONDS": "abc"}
    for args in (["scenarios"], ["status", "--workdir", str(tmp_path)]):
        p = _cli(*args, env=env)
        assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    for args in (["doctor"], ["clean", "--workdir", str(tmp_path)]):
        p = _cli(*args, env=env)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and "not a positive number of seconds" in p.stderr


@pytest.mark.parametrize("var", ["AFPBISECT_DOCKER_RETRY_SECONDS", "AFPBISECT_DOCKER_PING_SECONDS",
                                 "AFPBISECT_DOCKER_TIMEOUT_SECONDS"])
def test_a_bad_docker_seconds_is_refused_before_the_workdir_is_made(var, tmp_path, small_repo):
    p = _cli("run", "main~3..main", "--repo", str(small_repo), "--workdir", str(tmp_path / "w"),
             env={**NO_DOCKER, var: "-1"})
    assert p.returncode == 2 and "not a positive number of seconds" in p.stderr, p.stderr
    assert not (tmp_path / "w").exists()


def test_a_lock_that_is_a_link_to_a_users_file_is_refused_and_the_file_kept(tmp_path, small_repo):
    """The lock was opened through the link and truncated: the user's file was emptied."""
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's data\n")
    work = tmp_path / "w"
    work.mkdir()
    (work / "lock").symlink_to(precious)
    for args in (["run", "main~3..main", "--repo", str(small_repo)], ["status"]):
        p = _cli(*args, "--workdir", str(work), env=NO_DOCKER)
        assert p.returncode == 2 and "not a regular file" in p.stderr, p.stderr
        assert precious.read_text() == "the user's data\n"


@pytest.mark.parametrize("command", ["status", "run"])
def test_a_lock_that_is_a_fifo_is_one_line_exit_2_never_a_hang(command, tmp_path, small_repo):
    """status waited for a writer forever; run said "cannot use: Invalid argument", exit 3."""
    work = tmp_path / "w"
    work.mkdir()
    os.mkfifo(work / "lock")
    args = ["run", "main~3..main", "--repo", str(small_repo)] if command == "run" else ["status"]
    p = subprocess.run([*A, *args, "--workdir", str(work)], capture_output=True, text=True, timeout=30,
                       env={**_ENV, **NO_DOCKER})
    assert p.returncode == 2 and "not a regular file" in p.stderr, p.stderr


def test_nightly_out_with_a_control_character_is_refused(tmp_path, small_repo):
    out = tmp_path / "a\x01b"
    p = _cli("nightly", "--out", str(out), "--repo", str(small_repo), "--workdir", str(tmp_path / "w"),
             env=NO_DOCKER)
    assert p.returncode == 2 and "control character" in p.stderr and "\x01" not in p.stderr, p.stderr
    assert not out.exists() and not (tmp_path / "w").exists()


@pytest.mark.parametrize("text, says", [
    ('[helth]\nmin_forwarded = 0\n', "health"),   # the sections were not among the known keys
    ('[traffic]\npcap = "x.pcap"\n', "kind = \"pcap\""),   # a pcap that would never be played
])
def test_scenario_values_the_fourth_tour_found(text, says, tmp_path):
    from afpbisect.core.errors import UsageError
    from afpbisect.core.scenario import load
    f = tmp_path / "s.toml"
    f.write_text(f'name = "x"\n[hit]\nconsole = ["the bug"]\n{text}')
    with pytest.raises(UsageError, match=re.escape(says)):
        load(f)


@pytest.mark.parametrize("rx", ["the bug\\n", "\\r"])
def test_a_hit_regex_with_a_line_break_is_refused(rx, tmp_path):
    """A console, eve or stats line never holds a line break: such a rule never hits."""
    from afpbisect.core.errors import UsageError
    from afpbisect.core.scenario import load
    f = tmp_path / "s.toml"
    f.write_text(f'name = "x"\n[hit]\nconsole = ["{rx}"]\n')
    with pytest.raises(UsageError, match="line break"):
        load(f)


def test_an_empty_patch_path_is_shown_as_given(tmp_path):
    p = _cli("verify-patch", "", "--workdir", str(tmp_path / "w"), env=NO_DOCKER)
    assert p.returncode == 2 and "''" in p.stderr and " . " not in p.stderr, p.stderr
    from afpbisect.core.errors import UsageError
    from afpbisect.core.scenario import load
    f = tmp_path / "s.toml"
    f.write_text('name = "x"\n[hit]\nconsole = ["the bug"]\n[[patch]]\nfile = ""\n')
    with pytest.raises(UsageError, match="'file' must not be empty"):
        load(f)


def test_the_naive_method_with_no_hit_counts_the_cycles_it_ran(tmp_path):
    """res is None (not reproducible): the report said "total cycles 0" beside "1 valid cycle"."""
    from afpbisect.commands.run import cycles_run
    from afpbisect.core.verdict import CycleOutcome, Evidence
    ev = Evidence()
    ev.add(CycleOutcome.CLEAN)
    st = State(tmp_path / "s.json", "run", {}, {"evidence": {"a" * 40: ev.to_dict(), "b" * 40: ev.to_dict()}})
    assert cycles_run(st, ["a" * 40, "c" * 40]) == 1



def test_one_variable_given_two_values_is_refused(tmp_path):
    """--env A=1 --env A=2 kept the last without a word."""
    p = _cli("run", "a..b", "--env", "A=1", "--env", "A=2", "--workdir", str(tmp_path / "w"), env=NO_DOCKER)
    assert p.returncode == 2 and "--env" in p.stderr and "A" in p.stderr, p.stderr
    assert not (tmp_path / "w").exists()


def test_quiet_and_verbose_together_are_refused(tmp_path):
    """-q -v printed debug logging, the opposite of quiet, without a word."""
    p = _cli("run", "a..b", "-q", "-v", "--workdir", str(tmp_path / "w"), env=NO_DOCKER)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "--quiet" in p.stderr, p.stderr
    assert not (tmp_path / "w").exists()


def test_the_same_patch_twice_is_named_as_such(tmp_path):
    """It was applied twice and said "does not apply", after the clone."""
    patch = tmp_path / "fix.patch"
    patch.write_text("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n")
    p = _cli("verify-patch", str(patch), str(tmp_path / "." / "fix.patch"), "--workdir", str(tmp_path / "w"),
             env=NO_DOCKER)
    assert p.returncode == 2 and "twice" in p.stderr, p.stderr
    assert not (tmp_path / "w").exists()


def test_status_of_a_workdir_that_is_a_file_says_so(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    p = _cli("status", "--workdir", str(f))
    assert p.returncode == 2 and "not a directory" in p.stderr, p.stderr


def test_the_docker_config_current_context_is_read_as_the_docker_cli_reads_it(tmp_path, monkeypatch):
    """Without DOCKER_CONTEXT the docker CLI takes config.json's currentContext; afpbisect took
    the local engine, building and running where the user did not ask (or, for a context
    that is gone, where docker itself refuses to go)."""
    import hashlib
    from afpbisect.core.errors import UsageError
    from afpbisect.machinery.farm import resolve_all
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"far").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": "far", "Endpoints": {"docker": {"Host": "ssh://u@far"}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    assert resolve_all(()) == []   # no config.json: the local engine
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "far"}))
    assert resolve_all(()) == [("far", "ssh://u@far")]
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "ghost"}))
    with pytest.raises(UsageError, match="currentContext"):
        resolve_all(())
    monkeypatch.setenv("DOCKER_CONTEXT", "default")   # the variable wins, as in the CLI
    assert resolve_all(()) == []
    monkeypatch.delenv("DOCKER_CONTEXT")
    (tmp_path / "config.json").write_text("{not json")   # the CLI warns and goes on: so do we
    assert resolve_all(()) == []


@pytest.mark.parametrize("ref", ["main~2\x1b[31m", "main\nx"])
def test_nightly_says_a_ref_with_control_characters_escaped_and_whole(ref, tmp_path, small_repo):
    """The night's line printed an ESC raw (the 'tried' list was not escaped), and a newline
    cut the message in two, keeping only its first half."""
    p = _cli("nightly", "--last-good", ref, "--repo", str(small_repo), "--workdir", str(tmp_path / "w"),
             env=NO_DOCKER)
    assert p.returncode == 2, p.stderr
    assert "\x1b" not in p.stderr and "list tags" in p.stderr, p.stderr
    assert all(l.startswith(("nightly ", "updated from")) for l in p.stderr.splitlines() if l.strip()), p.stderr


@pytest.mark.parametrize("name", ["repos", "state"])
def test_a_file_where_the_workdir_keeps_a_directory_is_usage_not_infrastructure(name, tmp_path, small_repo):
    """W/repos a file: exit 3 "cannot use W/repos: File exists", after the lock was made."""
    work = tmp_path / "w"
    work.mkdir()
    (work / name).write_text("the user's\n")
    p = _cli("run", "main~3..main", "--repo", str(small_repo), "--workdir", str(work), env=NO_DOCKER)
    assert p.returncode == 2 and "not a directory" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert (work / name).read_text() == "the user's\n"


def test_rerender_refuses_a_redaction_with_control_characters(tmp_path):
    """--redact WORKDIR=$'\\x1b[31m...' wrote an ESC and a line break into the Markdown and the
    HTML (--out with one was refused; the replacement was not)."""
    src = tmp_path / "r.json"
    src.write_text(json.dumps(_run_result()))
    code, err = rerender(src, "--out", tmp_path / "o", "--redact", "/x=a\x1b[31mb")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "\x1b" not in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("marker", [".", "Notice", "Suricata"])
def test_a_start_marker_matching_the_first_line_an_engine_prints_is_refused(marker, tmp_path):
    """'.' was taken: the version banner, printed long before the engine is up, then says
    it started (every cycle's traffic timed from the wrong moment)."""
    from afpbisect.core.errors import UsageError
    from afpbisect.core.scenario import load
    f = tmp_path / "s.toml"
    f.write_text(f'name = "x"\n[hit]\nconsole = ["the bug"]\n[health]\nstart_marker = "{marker}"\n')
    with pytest.raises(UsageError, match="start_marker"):
        load(f)


# ---------------------------------------------------------------- fifth tour
@pytest.mark.parametrize("sub", ["state", "state/x"])
def test_nightly_out_never_over_the_state(tmp_path, small_repo, sub):
    """Fifth hostile tour: `nightly --out W/state` wrote nightly.json over the job's own
    state (moved aside as an old report): the next night said the state was corrupt."""
    work = tmp_path / "w"
    (work / "state").mkdir(parents=True)
    (work / "state" / "nightly.json").write_text("{}")
    code, _, err = afp("nightly", "--repo", str(small_repo), "--workdir", str(work), "--no-fetch",
                       "--out", str(work / sub), check_json=False, env=NO_DOCKER, timeout=60)
    _one_line_exit2(code, err, "--out")
    assert (work / "state" / "nightly.json").read_text() == "{}"


def test_rerender_refuses_a_hostname_with_control_characters(tmp_path):
    """Fifth hostile tour: --hostname $'evil\\n# HEAD\\e[2J' went into the Markdown, HTML and
    JUnit (the same class as --redact's, fixed in the fourth)."""
    src = tmp_path / "r.json"
    src.write_text(json.dumps(_run_result()))
    code, err = rerender(src, "--out", tmp_path / "o", "--hostname", "evil\n# HEAD\x1b[2J")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "\x1b" not in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("opt,value", [("--confidence", "０.９"), ("--rate-floor", "0.2_5"),
                                       ("--confidence", "٠.٩")])
def test_a_decimal_in_other_digits_is_refused(opt, value, tmp_path):
    """Fifth hostile tour: float() takes other scripts' digits and underscores, which the
    whole-number options already refused."""
    p = _cli("run", "a..b", opt, value, "--workdir", str(tmp_path / "w"))
    assert p.returncode == 2 and "is not a decimal number" in p.stderr, p.stderr
    assert not (tmp_path / "w").exists()


def test_clean_caches_with_a_file_as_workdir_is_one_line(tmp_path):
    """Fifth hostile tour: a note about --caches came before the usage error: two lines."""
    f = tmp_path / "file"
    f.write_text("x")
    p = _cli("clean", "--caches", "--workdir", str(f), env=NO_DOCKER)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_suspect_refused_before_the_clone_and_never_twice(tmp_path, small_repo):
    """Fifth hostile tour: a --suspect no commit touches was refused only after the workdir,
    lock and clone were made (a local --repo can be asked first), and the same --suspect
    twice was taken silently."""
    work = tmp_path / "w"
    p = _cli("run", "suricata-1.0.0..suricata-2.0.0", "--repo", str(small_repo), "--suspect", "nosuch/",
             "--workdir", str(work), env=NO_DOCKER)
    assert p.returncode == 2 and "no commit of" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not work.exists()
    p = _cli("run", "suricata-1.0.0..suricata-2.0.0", "--repo", str(small_repo), "--suspect", "src/a.c",
             "--suspect", "src/a.c", "--workdir", str(work), env=NO_DOCKER)
    assert p.returncode == 2 and "twice" in p.stderr, p.stderr
    assert not work.exists()


@pytest.mark.parametrize("kind", ["file", "dangling"])
def test_status_says_when_the_state_directory_cannot_be_one(tmp_path, kind):
    """Fifth hostile tour: a workdir whose state/ is a file (or a dangling link) got "no
    bisection state here", exit 0, while run refuses that layout: say it, one line, exit 2."""
    work = tmp_path / "w"
    work.mkdir()
    if kind == "file":
        (work / "state").write_text("x")
    else:
        (work / "state").symlink_to(tmp_path / "gone")
    p = _cli("status", "--workdir", str(work))
    assert p.returncode == 2 and "state" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
