"""Issue 19: CLI conventions: AFPBISECT_* environment variables for every option, --find-fix's
help, and the platformdirs layout (caches apart from state) when no --workdir is given."""
import re

import click
import pytest
from click.testing import CliRunner

from afpbisect import cli as cli_mod, cli_options
from afpbisect.core.dirs import layout
from e2e_util import afp
from test_cli_errors import _one_line_exit2
from test_cli_input import NO_DOCKER


def _options():
    for name, cmd in cli_mod.cli.commands.items():
        for p in cmd.params:
            if isinstance(p, click.Option):
                yield name, p


def test_every_option_reads_its_documented_variable():
    names = set()
    for cmd, p in _options():
        assert isinstance(p, cli_options.EnvOption), (cmd, p.opts)
        prefix = f"AFPBISECT_{cmd.upper().replace('-', '_')}"
        name = cli_options.env_name(prefix, p)
        assert name == f"{prefix}_{max(p.opts, key=len).lstrip('-').replace('-', '_').upper()}"
        names.add(name)
    assert {"AFPBISECT_RUN_CONFIDENCE", "AFPBISECT_RUN_JSON", "AFPBISECT_RUN_FIND_FIX",
            "AFPBISECT_VERIFY_PATCH_TARGET", "AFPBISECT_NIGHTLY_LAST_GOOD", "AFPBISECT_STATUS_JSON"} <= names


@pytest.mark.parametrize("cmd,var,value,pattern", [
    (["run", "a..b"], "AFPBISECT_RUN_CONFIDENCE", "nan", "--confidence"),
    (["verify-patch", "x.patch"], "AFPBISECT_VERIFY_PATCH_CONFIDENCE", "0.3", "--confidence"),
    (["run", "a..b"], "AFPBISECT_RUN_PAIRS", "99", "--pairs"),
    (["nightly"], "AFPBISECT_NIGHTLY_ENV", "9X=1", "--env"),
])
def test_environment_variables_are_read(tmp_path, cmd, var, value, pattern):
    work = tmp_path / "work"
    code, _, err = afp(*cmd, "--workdir", str(work), check_json=False, env={**NO_DOCKER, var: value})
    _one_line_exit2(code, err, pattern)
    assert not work.exists()


def test_command_line_wins_and_help_is_never_from_the_environment(tmp_path):
    (tmp_path / "w").mkdir()
    code, data, _ = afp("status", "--workdir", str(tmp_path / "w"), "--json",
                        env={"AFPBISECT_STATUS_WORKDIR": str(tmp_path / "nope"), "AFPBISECT_HELP": "1",
                             "AFPBISECT_STATUS_HELP": "1", "AFPBISECT_VERSION": "1"})
    assert code == 0 and data["workdir"] == str(tmp_path / "w")
    code, data, _ = afp("status", env={"AFPBISECT_STATUS_WORKDIR": str(tmp_path / "w"), "AFPBISECT_STATUS_JSON": "1"})
    assert code == 0 and data["workdir"] == str(tmp_path / "w")


@pytest.mark.parametrize("name", sorted(cli_mod.cli.commands))
def test_each_commands_help_names_the_variables_of_its_own_options_only(name):
    """The epilog is written from the command's options: no AFPBISECT_<COMMAND>_CONFIDENCE
    for a command without --confidence, every option's variable where there is one."""
    cmd = cli_mod.cli.commands[name]
    prefix = f"AFPBISECT_{name.upper().replace('-', '_')}_"
    text = "".join(CliRunner().invoke(cli_mod.cli, [name, "--help"]).output.split())   # unwrapped
    named = set(re.findall(re.escape(prefix) + r"[A-Z0-9_]*[A-Z0-9]", text))
    own = {cli_options.env_name(prefix[:-1], p) for p in cmd.params if isinstance(p, click.Option)}
    assert named == own, (named - own, own - named)
    workdir = [p for p in cmd.params if p.name == "workdir"]
    assert ("AFPBISECT_WORKDIR" in text) == bool(workdir and workdir[0].envvar == "AFPBISECT_WORKDIR")


def test_the_epilogs_examples_are_real_options():
    r = CliRunner().invoke(cli_mod.cli, ["--help"])
    text = "".join(r.output.split())
    for var in set(re.findall(r"AFPBISECT_[A-Z_]+[A-Z](?==)", text)):
        cmd = next(c for n, c in cli_mod.cli.commands.items() if var.startswith(f"AFPBISECT_{n.upper().replace('-', '_')}_"))
        assert var in {cli_options.env_name(f"AFPBISECT_{cmd.name.upper().replace('-', '_')}", p) for p in cmd.params
                       if isinstance(p, click.Option)}, var


def test_help_documents_names_and_find_fix():
    r = CliRunner().invoke(cli_mod.cli, ["run", "--help"])
    text = " ".join(r.output.split())
    assert "AFPBISECT_RUN_CONFIDENCE" in text and "AFPBISECT_WORKDIR" in text
    assert "OLD is 'racy' and NEW 'fixed' (--term-old / --term-new)" in text and "race at OLD" in text and "-q, --quiet" in text
    top = " ".join(CliRunner().invoke(cli_mod.cli, ["--help"]).output.split())
    assert "AFPBISECT_<COMMAND>_<OPTION>" in top


def test_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "s"))
    lay = layout(None)
    assert (lay.workdir, lay.state) == (tmp_path / "c" / "afpbisect", tmp_path / "s" / "afpbisect" / "state")
    assert layout(tmp_path / "w").workdir == layout(tmp_path / "w").state_root == tmp_path / "w"
    (tmp_path / "c" / "afpbisect" / "state").mkdir(parents=True)   # state of a run before issue 19
    assert layout(None).state_root == tmp_path / "c" / "afpbisect"


def test_default_layout_splits_cache_and_state(tmp_path, small_repo):
    """No --workdir: the clone goes to the cache directory, the state directory is made
    (and probed) beside it; the run then stops at Docker (exit 2, away here)."""
    env = {**NO_DOCKER, "XDG_CACHE_HOME": str(tmp_path / "c"), "XDG_STATE_HOME": str(tmp_path / "s")}
    code, _, err = afp("run", "v1.0.0..v2.0.0", "--repo", str(small_repo), check_json=False, env=env)
    assert code == 2 and "Docker engine unreachable" in err, err
    assert list((tmp_path / "c" / "afpbisect" / "repos").iterdir())
    assert (tmp_path / "s" / "afpbisect").is_dir() and not (tmp_path / "c" / "afpbisect" / "state").exists()
    code, data, _ = afp("status", "--json", env=env)
    assert code == 0 and data["workdir"] == str(tmp_path / "c" / "afpbisect")
    assert data["state_dir"] == str(tmp_path / "s" / "afpbisect" / "state")


def test_quiet_leaves_only_errors(tmp_path, small_repo):
    """--quiet (or AFPBISECT_RUN_QUIET): the notes go, the error line stays."""
    args = ("run", "v1.0.0..v2.0.0", "--repo", str(small_repo), "--workdir", str(tmp_path / "w"))
    code, _, err = afp(*args, check_json=False, env=NO_DOCKER)
    assert code == 2 and "note: v1.0.0 does not exist" in err, err
    for extra, env in ((("--quiet",), {}), ((), {"AFPBISECT_RUN_QUIET": "1"})):
        code, _, err = afp(*args, *extra, check_json=False, env={**NO_DOCKER, **env})
        _one_line_exit2(code, err, "Docker engine unreachable")
