"""The command line's options: every option also from the environment (AFPBISECT_<COMMAND>_<OPTION>,
issue 19), the checks that run while the command line is read (bad input: one line, exit 2,
before the workdir, the clone or Docker is touched), and the options shared by the commands
that build and run."""
from __future__ import annotations

import functools
import logging
import math
import os
import re
import stat
import sys
from pathlib import Path, PurePosixPath

import click

from afpbisect.commands.context import Options
from afpbisect.core.dirs import layout
from afpbisect.core.errors import AfpError, UsageError
from afpbisect.core.scenario import ENV_NAME, NightlySection, load as load_scenario
from afpbisect.core.scenario_rules import MIN_RATE
from afpbisect.machinery.farm import resolve_all as resolve_engines
from afpbisect.machinery.repro_settings import ReproSettings


UPSTREAM = "https://github.com/OISF/suricata.git"


DEFAULT_CONFIDENCE = NightlySection.confidence   # run and verify-patch: the scenario model's default


ENV_PREFIX = "AFPBISECT"


WORKDIR_ENV = "AFPBISECT_WORKDIR"


WORKDIR_DEFAULT = "cache: ~/.cache/afpbisect, state and reports: ~/.local/state/afpbisect"



def env_name(prefix: str, opt: click.Option) -> str:
    """AFPBISECT_<COMMAND>_<LONG OPTION>: what users read in --help, not the parameter's
    Python name that click's own auto_envvar_prefix uses (AFPBISECT_RUN_AS_JSON for --json)."""
    long = max(opt.opts, key=len).lstrip("-").replace("-", "_").upper()
    return f"{prefix}_{long}"



class EnvOption(click.Option):
    """Every option can be set in the environment (issue 19), named by env_name."""

    def resolve_envvar_value(self, ctx):
        names = [self.envvar] if isinstance(self.envvar, str) else list(self.envvar or ())
        if self.allow_from_autoenv and ctx.auto_envvar_prefix is not None:
            names.append(env_name(ctx.auto_envvar_prefix, self))
        for name in names:
            rv = os.environ.get(name)
            if rv:
                return rv
            if rv is not None and isinstance(self.type, click.Path):
                # A path set but empty (a script's unset variable) would silently be the
                # default workdir, whose state and caches are someone else's run: refused
                # (issue 25).  For other options "" is unset, as in click and most tools
                # (AFPBISECT_RUN_JSON= turns nothing on).
                raise click.BadParameter(f"{name} is set but empty")
        return None


option = functools.partial(click.option, cls=EnvOption)



def _no_env_help(opt):
    # AFPBISECT_HELP (or AFPBISECT_RUN_HELP) left in an environment must not turn every call
    # into --help: help and version are asked for on the command line only.
    if opt is not None:
        opt.allow_from_autoenv = False
    return opt



class Command(click.Command):
    def get_help_option(self, ctx):
        return _no_env_help(super().get_help_option(ctx))

    def format_epilog(self, ctx, formatter):
        if isinstance(self.epilog, _EnvEpilog):   # written from this command's own options
            self.epilog = env_help(self) or None
        super().format_epilog(ctx, formatter)



class Group(click.Group):
    command_class = Command

    def get_help_option(self, ctx):
        return _no_env_help(super().get_help_option(ctx))



class _EnvEpilog(str):
    """The epilog of a command, written when its help is shown (its options are known only
    then): env_help."""



def env_epilog(command: str) -> str:
    return _EnvEpilog(command)



def env_help(command: click.Command) -> str:
    """Each option of `command` that the environment sets, by its variable's name."""
    prefix = f"{ENV_PREFIX}_{command.name.upper().replace('-', '_')}"
    opts = [p for p in command.params if isinstance(p, EnvOption) and p.allow_from_autoenv]
    if not opts:
        return ""
    names = ", ".join(f"{env_name(prefix, p)} ({max(p.opts, key=len)})" for p in opts)
    text = f"In the environment (the command line wins): {names}."
    if any(p.is_flag for p in opts):
        text += " A flag is set by 1 and unset by 0."
    if any(p.multiple for p in opts):
        text += " A repeatable option takes its values separated by spaces."
    text += "".join(f" {max(p.opts, key=len)} is also read from {p.envvar}." for p in opts
                    if isinstance(p.envvar, str))
    return text



class Whole(click.IntRange):
    """A whole number in a range, written in ASCII digits: Python's int() also takes "1_0"
    and other scripts' digits ("٣", "０"), which were accepted as 10, 3 and 0 (second
    hostile tour of issue 25)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not re.fullmatch(r"\s*[+-]?[0-9]+\s*", value):
            self.fail(f"{value!r} is not a whole number", param, ctx)
        return super().convert(value, param, ctx)


class Decimal(click.FloatRange):
    """A decimal number in a range, in ASCII: float() also takes "0.2_5" and other scripts'
    digits ("０.９"), as int() did for Whole (fifth hostile tour)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not re.fullmatch(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*"
                                                       r"|\s*[+-]?(nan|inf|infinity)\s*", value, re.I):
            self.fail(f"{value!r} is not a decimal number", param, ctx)
        return super().convert(value, param, ctx)


def env_items(ctx, param, values) -> dict:
    out = {}
    for item in values:
        name, eq, value = item.partition("=")
        if not eq or not ENV_NAME.fullmatch(name):
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--env")
        if re.search(r"[\x00-\x1f\x7f]", value):   # an environment cannot hold a NUL
            raise click.BadParameter(f"the value of {name} holds a control character", param_hint="--env")
        if out.get(name, value) != value:   # the last one was kept without a word (fourth tour)
            raise click.BadParameter(f"{name} is given two values ({out[name]!r} and {value!r})",
                                     param_hint="--env")
        out[name] = value
    return out



def nonempty_path(ctx, param, value):
    """A path option as a Path; an empty one is refused (Path("") would silently be the
    current directory)."""
    if value is None:
        return None
    if not str(value).strip():
        raise click.BadParameter("empty path")
    if any(ord(c) < 32 or ord(c) == 127 for c in str(value)):
        # nightly made `--out a\x01b` and printed the byte raw (fourth hostile tour); the
        # workdir was refused only for the bind mount, rerender's --out always
        raise click.BadParameter(f"{shown(value)} contains a control character")
    try:
        Path(value).expanduser()
    except RuntimeError:   # ~nosuchuser/x: pathlib's "Could not determine home directory"
        raise click.BadParameter(f"{shown(value)}: no such user to expand ~ for") from None
    return Path(value)


def shown(value) -> str:
    """A user's value as one line of an error message: newlines and control bytes escaped."""
    text = str(value)
    return repr(text) if any(ord(c) < 32 or ord(c) == 127 for c in text) else text


def bind_mount_problem(path: Path) -> str | None:
    """Why the local engine cannot bind-mount `path` (the workdir and what is under it), or
    None: the daemon splits a bind's HOST:CONTAINER:MODE at ':' ("invalid volume
    specification", after minutes of retries), and a control byte in a host path is
    refused by Docker's API or breaks its error lines."""
    text = str(Path(path).expanduser().absolute())
    if ":" in text:
        return f"{shown(text)} contains ':', which Docker cannot bind-mount; pick a path without it"
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return f"{shown(text)} contains a control character, which Docker cannot bind-mount"
    return None


def nonempty_repo(ctx, param, value):
    """--repo: an empty one would silently be the current directory (cloned as the target)."""
    if value is not None and not value.strip():
        raise click.BadParameter("empty --repo; give a path or URL of the target repository")
    return value


def nonempty_target(ctx, param, value):
    """verify-patch --target: an empty one would silently be the scenario's default target."""
    if value is not None and not value.strip():
        raise click.BadParameter("empty --target; give a branch, tag or commit, or leave it out")
    return value



def nonempty_ref(ctx, param, value):
    """A ref option: an empty one is refused (nightly took `--last-good ''` for no
    --last-good, and `--ref ''` for the scenario's branch, without a word)."""
    if value is not None and not value.strip():
        raise click.BadParameter("empty ref; give a branch, tag or commit")
    return value



def tree_paths(ctx, param, values) -> tuple:
    """--suspect: paths of the repository's tree (relative, inside it), as git bisect's
    pathspec; anything else would silently suspect nothing."""
    for v in values:
        parts = PurePosixPath(v.strip()).parts
        if not v.strip() or v.startswith("/") or ".." in parts:
            raise click.BadParameter(f"{v!r}: want a path inside the repository, such as src/source-af-packet.c")
    return tuple(v.strip() for v in values)



def finite(ctx, param, value):
    """click's FloatRange lets nan through (every comparison with nan is false)."""
    if value is not None and math.isnan(value):
        raise click.BadParameter(f"{value} is not a number")
    return value



def era_rules(ctx, param, value):
    """Parse --eras while the command line is read: a bad file is reported as itself,
    before the workdir, the clone or Docker is touched."""
    if value is not None:
        from afpbisect.core.eras import ErasError, load_rules
        try:
            mode = os.stat(value).st_mode
        except OSError:
            mode = None   # missing: load_rules says so
        if mode is not None and not stat.S_ISREG(mode):   # a FIFO would hang the read
            raise click.BadParameter(f"{shown(value)}: not a regular file")
        try:
            load_rules(value)
        except ErasError as exc:
            raise click.BadParameter(str(exc)) from None
    return value



def image_reference(ctx, param, value):
    """--base-image: a Docker image reference, checked before the clone or Docker."""
    from afpbisect.machinery.baseimage import image_reference_problem
    problem = image_reference_problem(value) if value is not None else None
    if problem:
        raise click.BadParameter(problem)
    return value



def range_syntax(ctx, param, value):
    """GOOD..BAD's syntax needs no repository: check it before a URL --repo is cloned."""
    from afpbisect.core.refs import split_range
    try:
        split_range(value)
    except AfpError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


ENGINE_OPTION = option(
    "--engine", "engines", multiple=True, metavar="NAME|URL",
    help="A Docker engine to build and run on: a Docker context name (`docker context ls`) or "
         "a URL (ssh://user@host, tcp://, unix://). Repeat for several engines: each round "
         "then probes one commit per engine, same answer (docs/engines.md). Named engines "
         "get nothing bind-mounted: sources, caches and products live in their volumes. "
         "Default: the local engine (DOCKER_HOST or the socket), with the workdir mounted.")



def common(fn):
    """Options every command that builds and runs takes."""
    opts = [
        option("--repo", default=UPSTREAM, show_default=True, callback=nonempty_repo,
                     help="Target repository: local path (bare or not) or URL."),
        option("--workdir", type=click.Path(), callback=nonempty_path, default=None, envvar=WORKDIR_ENV,
                     show_default=WORKDIR_DEFAULT,
                     help="Everything of a run under one directory: state, reports, caches, products, logs."),
        option("--json", "as_json", is_flag=True, help="Machine-readable result on stdout."),
        option("--scenario", "scenario_ref", default=None, metavar="NAME|FILE",
                     help="The bug: a built-in scenario (see `afpbisect scenarios`) or a scenario "
                          "file (docs/scenarios.md). Default: the built-in default."),
        option("--pairs", type=Whole(1, 32), default=None,
                     help="Interface pairs SFE_i_TX <-> SFE_i_RX (default: the scenario's)."),
        option("--threads", type=Whole(1, 16), default=None,
                     help="Threads per interface (default: the scenario's)."),
        option("--env", "env_items", multiple=True, metavar="NAME=VALUE", callback=env_items,
                     help="Set a variable of the target's environment, over the scenario's (e.g. "
                          "the delay its test patch reads). Repeatable."),
        option("--confidence", type=Decimal(0.5, 1.0, max_open=True), default=None,
                     callback=finite, help=f"Target confidence for the whole answer (default {DEFAULT_CONFIDENCE}; nightly: the scenario's)."),
        option("--rate-floor", type=Decimal(MIN_RATE, 1.0, max_open=True),
               default=None, callback=finite,
               help="The lowest per-cycle rate of a race the verification rules out on the clean "
                    "side (a race there before, at a lower rate); default: the scenario's [verdict]."),
        option("--cycle-cap", type=Whole(1, 1_000_000), default=None,
               help="The most clean cycles one verification may ask for; beyond it the run ends "
                    "undecided (exit 3), state kept. Default: the scenario's [verdict]."),
        option("--cycles", type=Whole(1, 10_000), default=None,
                     help="Fixed cycles per step (the naive method); default: adaptive, from --confidence."),
        option("--base-image", default="debian:bookworm", show_default=True, callback=image_reference,
                     help="Base image; built locally with debootstrap when it cannot be pulled."),
        option("--eras", "eras_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     callback=era_rules,
                     help="Era rules file (default: the shipped afpbisect/core/eras.toml), e.g. to take libhtp from elsewhere."),
        option("--jobs", type=Whole(1, 256), default=2, show_default=True,
                     help="make -j for builds."),
        ENGINE_OPTION,
        option("--restart", is_flag=True, help="Discard the saved state of this command and start over."),
        option("-q", "--quiet", is_flag=True, help="Print only the final result and errors."),
        option("-v", "--verbose", is_flag=True, help="Debug logging."),
    ]
    for o in reversed(opts):
        fn = o(fn)

    @functools.wraps(fn)
    def wrapper(**kw):
        if kw.get("quiet") and kw.get("verbose"):   # -v won, silently (fourth hostile tour)
            raise click.UsageError("--quiet and --verbose contradict each other; give one")
        logging.basicConfig(level=logging.DEBUG if kw.get("verbose") else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        return fn(**kw)
    return wrapper



def command_options(kw: dict, update: bool = False) -> Options:
    """Everything the command was given, checked: the scenario is loaded and validated
    here, before the workdir, the clone or Docker is touched (bad input: exit 2)."""
    from afpbisect.machinery.deadlines import check_seconds
    from afpbisect.machinery.worktree import normalise_source
    check_seconds()   # a bad AFPBISECT_DOCKER_*_SECONDS: exit 2 before the workdir is made
    sc = load_scenario(kw["scenario_ref"])
    settings = ReproSettings.from_scenario(sc, pairs=kw["pairs"], threads=kw["threads"], env=kw["env_items"])
    lay = layout(kw["workdir"])
    engines = tuple(resolve_engines(kw.get("engines", ())))
    if not engines:   # the local engine bind-mounts the workdir
        problem = bind_mount_problem(lay.workdir)
        if problem:
            raise UsageError(f"--workdir {problem}")
    # Normalised here, before the workdir is made: a missing local --repo touches nothing,
    # and `./x/` and `/abs/x` are one run (its identity is built from Options.repo).
    return Options(repo=normalise_source(kw["repo"]), workdir=lay.workdir, state_dir=lay.state_root,
                   base_image=kw["base_image"],
                   jobs=kw["jobs"], settings=settings, restart=kw["restart"], update=update,
                   fixed_cycles=kw["cycles"], eras_file=kw["eras_file"], scenario=sc,
                   engines=engines,
                   rate_floor=kw.get("rate_floor"), cycle_cap=kw.get("cycle_cap"))
