"""Command line: parse, check, wire.  No policy here (cargo-bisect-rustc's lesson)."""
from __future__ import annotations

import functools
import json
import logging
import math
import os
import sys
from pathlib import Path, PurePosixPath

import click

from afpbisect import __version__
from afpbisect.commands.context import Options, open_context
from afpbisect.commands.progress import Progress
from afpbisect.core.dirs import layout
from afpbisect.core.errors import AfpError, Interrupted, UsageError
from afpbisect.core.outcome import Outcome
from afpbisect.core.scenario import ENV_NAME, builtin_names, load as load_scenario
from afpbisect.machinery.engine import TRANSPORT_ERRORS
from afpbisect.machinery.farm import resolve_all as resolve_engines
from afpbisect.machinery.repro_settings import ReproSettings

UPSTREAM = "https://github.com/OISF/suricata.git"
DEFAULT_CONFIDENCE = 0.999
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


def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=1, sort_keys=True, default=str))


def _say(msg: str) -> None:
    click.echo(msg, err=True)


def _env_items(ctx, param, values) -> dict:
    out = {}
    for item in values:
        name, eq, value = item.partition("=")
        if not eq or not ENV_NAME.fullmatch(name):
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--env")
        out[name] = value
    return out


def _nonempty_path(ctx, param, value):
    """A path option as a Path; an empty one is refused (Path("") would silently be the
    current directory)."""
    if value is None:
        return None
    if not str(value).strip():
        raise click.BadParameter("empty path")
    return Path(value)


def _nonempty_ref(ctx, param, value):
    """A ref option: an empty one is refused (nightly took `--last-good ''` for no
    --last-good, and `--ref ''` for the scenario's branch, without a word)."""
    if value is not None and not value.strip():
        raise click.BadParameter("empty ref; give a branch, tag or commit")
    return value


def _tree_paths(ctx, param, values) -> tuple:
    """--suspect: paths of the repository's tree (relative, inside it), as git bisect's
    pathspec; anything else would silently suspect nothing."""
    for v in values:
        parts = PurePosixPath(v.strip()).parts
        if not v.strip() or v.startswith("/") or ".." in parts:
            raise click.BadParameter(f"{v!r}: want a path inside the repository, such as src/source-af-packet.c")
    return tuple(v.strip() for v in values)


def _finite(ctx, param, value):
    """click's FloatRange lets nan through (every comparison with nan is false)."""
    if value is not None and math.isnan(value):
        raise click.BadParameter(f"{value} is not a number")
    return value


def _era_rules(ctx, param, value):
    """Parse --eras while the command line is read: a bad file is reported as itself,
    before the workdir, the clone or Docker is touched."""
    if value is not None:
        from afpbisect.core.eras import ErasError, load_rules
        try:
            load_rules(value)
        except ErasError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _image_reference(ctx, param, value):
    """--base-image: a Docker image reference, checked before the clone or Docker."""
    from afpbisect.machinery.baseimage import image_reference_problem
    problem = image_reference_problem(value) if value is not None else None
    if problem:
        raise click.BadParameter(problem)
    return value


def _range_syntax(ctx, param, value):
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
        option("--repo", default=UPSTREAM, show_default=True,
                     help="Target repository: local path (bare or not) or URL."),
        option("--workdir", type=click.Path(), callback=_nonempty_path, default=None, envvar=WORKDIR_ENV,
                     show_default=WORKDIR_DEFAULT,
                     help="Everything of a run under one directory: state, reports, caches, products, logs."),
        option("--json", "as_json", is_flag=True, help="Machine-readable result on stdout."),
        option("--scenario", "scenario_ref", default=None, metavar="NAME|FILE",
                     help="The bug: a built-in scenario (see `afpbisect scenarios`) or a scenario "
                          "file (docs/scenarios.md). Default: the built-in default."),
        option("--pairs", type=click.IntRange(1, 32), default=None,
                     help="Interface pairs SFE_i_TX <-> SFE_i_RX (default: the scenario's)."),
        option("--threads", type=click.IntRange(1, 16), default=None,
                     help="Threads per interface (default: the scenario's)."),
        option("--env", "env_items", multiple=True, metavar="NAME=VALUE", callback=_env_items,
                     help="Set a variable of the target's environment, over the scenario's (e.g. "
                          "the delay its test patch reads). Repeatable."),
        option("--confidence", type=click.FloatRange(0.5, 1.0, max_open=True), default=None,
                     callback=_finite, help="Target confidence for the whole answer (default 0.999; nightly: the scenario's)."),
        option("--rate-floor", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
               default=None, callback=_finite,
               help="The lowest per-cycle rate of a race the verification rules out on the clean "
                    "side (a race there before, at a lower rate); default: the scenario's [verdict]."),
        option("--cycle-cap", type=click.IntRange(1, 1_000_000), default=None,
               help="The most clean cycles one verification may ask for; beyond it the run ends "
                    "undecided (exit 3), state kept. Default: the scenario's [verdict]."),
        option("--cycles", type=click.IntRange(1, 10_000), default=None,
                     help="Fixed cycles per step (the naive method); default: adaptive, from --confidence."),
        option("--base-image", default="debian:bookworm", show_default=True, callback=_image_reference,
                     help="Base image; built locally with debootstrap when it cannot be pulled."),
        option("--eras", "eras_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
                     callback=_era_rules,
                     help="Era rules file (default: the shipped afpbisect/eras.toml), e.g. to take libhtp from elsewhere."),
        option("--jobs", type=click.IntRange(1, 256), default=2, show_default=True,
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
        logging.basicConfig(level=logging.DEBUG if kw.get("verbose") else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        return fn(**kw)
    return wrapper


def _options(kw: dict, update: bool = False) -> Options:
    """Everything the command was given, checked: the scenario is loaded and validated
    here, before the workdir, the clone or Docker is touched (bad input: exit 2)."""
    from afpbisect.machinery.worktree import normalise_source
    sc = load_scenario(kw["scenario_ref"])
    settings = ReproSettings.from_scenario(sc, pairs=kw["pairs"], threads=kw["threads"], env=kw["env_items"])
    lay = layout(kw["workdir"])
    # Normalised here, before the workdir is made: a missing local --repo touches nothing,
    # and `./x/` and `/abs/x` are one run (its identity is built from Options.repo).
    return Options(repo=normalise_source(kw["repo"]), workdir=lay.workdir, state_dir=lay.state_root,
                   base_image=kw["base_image"],
                   jobs=kw["jobs"], settings=settings, restart=kw["restart"], update=update,
                   fixed_cycles=kw["cycles"], eras_file=kw["eras_file"], scenario=sc,
                   engines=tuple(resolve_engines(kw.get("engines", ()))),
                   rate_floor=kw.get("rate_floor"), cycle_cap=kw.get("cycle_cap"))


def _guard(fn):
    """Map our errors to one clear line and their exit code; never a traceback for them."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except Interrupted as exc:
            _say(f"afpbisect: interrupted ({exc}); state kept — run the same command again to resume")
            sys.exit(exc.exit_code)
        except AfpError as exc:
            _say(f"afpbisect: error: {exc}")
            sys.exit(exc.exit_code)
        except TRANSPORT_ERRORS as exc:
            # ConnectionError (BrokenPipeError...): docker-py's ssh transport lets it through;
            # click would otherwise take it for a closed stdout and exit 1 without a word.
            # Retries are exhausted by the time one gets here: say so, keep the state.
            _say(f"afpbisect: error: lost the Docker engine ({str(exc).splitlines()[0][:200]}); "
                 "state kept — run the same command again to resume")
            sys.exit(3)
        except KeyboardInterrupt:
            _say("afpbisect: interrupted; state kept — run the same command again to resume")
            sys.exit(130)
        except OSError as exc:
            # A write that failed where no one expected it (full disk in a build log, a
            # product, a report's previous/): infrastructure, never a traceback and exit 1.
            where = f" {exc.filename}" if exc.filename else ""
            _say(f"afpbisect: error: cannot use{where}: {exc.strerror or exc}; "
                 "state kept — fix it and run the same command again to resume")
            sys.exit(3)
    return wrapper


def run_outcome(result: dict) -> Outcome:
    """run: an answer is 0, unless --confirm-revert showed the race with the culprit
    reverted (1: the answer's own check disagrees) or could not check (3)."""
    if result["result"]["status"] == "Undecided":   # policy.Undecided: over --cycle-cap
        return Outcome.UNDECIDED
    if result["result"]["status"] != "found":
        return Outcome.NO_ANSWER
    revert = result.get("revert_check")
    if revert is None or revert.get("verdict") == "cleared":
        return Outcome.FOUND
    return Outcome.REVERT_DISAGREES if revert.get("verdict") == "present" else Outcome.ERROR


def verify_outcome(verdict: str) -> Outcome:
    try:
        return Outcome.of(verdict)
    except ValueError:
        return Outcome.ERROR


def main() -> None:
    """Console entry point: bad input is one line and exit 2, never a usage dump."""
    try:
        # AFPBISECT_<COMMAND>_<OPTION> for every option (EnvOption); the command line wins.
        rv = cli.main(standalone_mode=False, auto_envvar_prefix=ENV_PREFIX)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _say("afpbisect: interrupted")
        sys.exit(130)
    except Interrupted as exc:   # while click parsed, or in a command without _guard
        _say(f"afpbisect: interrupted ({exc})")
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        _say(f"afpbisect: error: {exc.format_message()} (see afpbisect --help)")
        sys.exit(2)
    sys.exit(rv or 0)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Every option of a command can also be set in the environment as "
                    "AFPBISECT_<COMMAND>_<OPTION>, e.g. AFPBISECT_RUN_CONFIDENCE=0.99 or "
                    "AFPBISECT_VERIFY_PATCH_TARGET=main (see each command's --help); --workdir "
                    "also as AFPBISECT_WORKDIR.  Without --workdir, caches live in the user cache "
                    "directory and state and reports in the user state directory (platformdirs).")
@click.version_option(__version__, allow_from_autoenv=False)
def cli():
    """Find which Suricata commit introduced an AF-PACKET regression (a scenario; by default
    ticket 8667's IPS start-up race), and prove which patch removes it, by building and
    running the real thing in Docker."""


@cli.command(short_help="Bisect GOOD..BAD and name the first bad commit.", epilog=env_epilog("run"))
@click.argument("range_", metavar="GOOD..BAD", callback=_range_syntax)
@option("--find-fix", is_flag=True,
        help="Find a fix instead of a regression: the range is OLD..NEW with the race at OLD "
             "and gone at NEW; names the first commit where the race is gone.  In git bisect's "
             "terms (the bisect-replay file) OLD is 'racy' and NEW 'fixed' (--term-old / --term-new).")
@option("--confirm-revert", is_flag=True, help="After the search, revert the culprit on BAD and show the bug is gone.")
@option("--fetch", "fetch_", is_flag=True, help="Update the clone of --repo first (it is also updated once when a ref is unknown).")
@option("--suspect", "suspects", multiple=True, metavar="PATH", callback=_tree_paths,
        help="A path the culprit probably touches (repeatable; like `git bisect start -- PATH`, "
             "but sound: it orders the probes, other commits keep half the prior mass).")
@option("--check-endpoints", is_flag=True,
        help="Build and test both endpoints before the search (calibrate BAD, light-check GOOD), "
             "as before; by default an endpoint is built only if the answer needs it.")
@common
@_guard
def run(range_, find_fix, confirm_revert, fetch_, suspects, check_endpoints, **kw):
    """Bisect GOOD..BAD (e.g. v7.0.0..v8.0.3) and name the first bad commit."""
    from afpbisect.commands.run import run_bisection
    prog = Progress(quiet=kw["quiet"])
    with open_context(_options(kw, update=fetch_), say=prog.say, progress=prog) as ctx:
        result = run_bisection(ctx, range_, find_fix=find_fix, confirm_revert=confirm_revert,
                               confidence=kw["confidence"] or DEFAULT_CONFIDENCE,
                               suspects=tuple(suspects), check_endpoints=check_endpoints)
    _emit(result, kw["as_json"])
    sys.exit(run_outcome(result).exit_code)


@cli.command("verify-patch", epilog=env_epilog("verify-patch"))
@click.argument("patches", nargs=-1, required=True, type=click.Path(path_type=Path))
@option("--target", default=None, help="Commit to verify on (default: the scenario's [verify] target, a known-bad tip).")
@option("--fetch", "fetch_", is_flag=True, help="Update the clone of --repo first (it is also updated once when a ref is unknown).")
@common
@_guard
def verify_patch(patches, target, fetch_, **kw):
    """Build TARGET + the scenario's test patches (+ PATCHES) and show, with a stated
    confidence, that the bug is gone with the patches and present without them."""
    from afpbisect.commands.verify_patch import run_verify
    from afpbisect.machinery.worktree import load_patch
    loaded = [load_patch(p) for p in patches]   # bad path / not a patch: exit 2 before any work
    prog = Progress(quiet=kw["quiet"])
    with open_context(_options(kw, update=fetch_), say=prog.say, progress=prog) as ctx:
        result = run_verify(ctx, target, loaded, confidence=kw["confidence"] or DEFAULT_CONFIDENCE)
    _emit(result, kw["as_json"])
    sys.exit(verify_outcome(result["verdict"]).exit_code)


@cli.command(epilog=env_epilog("nightly"))
@option("--ref", default=None, callback=_nonempty_ref,
        help="Ref to test (default: the scenario's [nightly] branch; users may write master).")
@option("--last-good", default=None, callback=_nonempty_ref,
        help="Known good commit (overrides the job's own record).")
@option("--out", "out_dir", type=click.Path(), callback=_nonempty_path, default=None,
              help="Where to write JSON, Markdown, JUnit and HTML reports (default WORKDIR/nightly).")
@option("--no-fetch", is_flag=True, help="Do not update the repository from its remote.")
@common
@_guard
def nightly(ref, last_good, out_dir, no_fetch, **kw):
    """Nightly regression job: test REF; on a regression bisect last_good..REF.
    Exit 0 clean, 1 regression found, 2 usage error, 3 infrastructure error."""
    from afpbisect.commands.nightly import run_nightly
    from afpbisect.core.state import check_writable
    opts = _options(kw, update=not no_fetch)
    if out_dir is not None:
        out_dir = check_writable(out_dir, "--out")   # before the clone: one line, exit 2
    prog = Progress(quiet=kw["quiet"])
    with open_context(opts, say=prog.say, progress=prog) as ctx:
        result = run_nightly(ctx, ref, last_good=last_good, out_dir=out_dir, confidence=kw["confidence"])
    _emit(result, kw["as_json"])
    sys.exit(result["exit_code"])


@cli.command()
def scenarios():
    """List the built-in scenarios, one line each (NAME: title)."""
    for name in builtin_names():
        sc = load_scenario(name)
        click.echo(f"{name}: {sc.title}" + (f" ({sc.ticket})" if sc.ticket else ""))


@cli.command(epilog=env_epilog("selftest"))
@option("--commits", type=click.IntRange(50, 200), default=80, show_default=True)
@option("--workdir", type=click.Path(), callback=_nonempty_path, default=None,
              help="Default: a fresh temporary directory, removed afterwards.")
@option("--keep", is_flag=True, help="Keep the synthetic repo and workdir.")
@option("--json", "as_json", is_flag=True)
@option("--scenario", "scenario_ref", default=None, metavar="NAME|FILE",
              help="Scenario to run (default: the built-in default, whose bug the target plants).")
@option("-q", "--quiet", is_flag=True, help="Print only the final result and errors.")
@ENGINE_OPTION
@_guard
def selftest(commits, workdir, keep, as_json, scenario_ref, quiet, engines):
    """Run the whole pipeline on a generated synthetic target with a planted bad commit."""
    from afpbisect.commands.selftest import run_selftest
    load_scenario(scenario_ref)   # a bad scenario: one line, exit 2, before anything is made
    farm = tuple(resolve_engines(engines))   # likewise an unknown engine
    prog = Progress(quiet=quiet)
    result = run_selftest(commits=commits, workdir=workdir, keep=keep, say=prog.say, scenario=scenario_ref,
                          progress=prog, engines=farm)
    _emit(result, as_json)
    sys.exit(0 if result["ok"] else 1)


@cli.command(epilog=env_epilog("clean"))
@option("--workdir", type=click.Path(), callback=_nonempty_path, default=None, envvar=WORKDIR_ENV,
        show_default=WORKDIR_DEFAULT, help="Workdir whose dead runs' containers to remove.")
@option("--all", "all_", is_flag=True,
              help="Remove every afpbisect container on this host instead, live runs and other users' included.")
@option("--volumes", is_flag=True,
        help="With --all: also remove afpbisect's built images and every afpbisect volume.")
@option("--caches", is_flag=True,
        help="Also remove the engines' volumes of --workdir (build trees, ccache, cargo home, "
             "products of engines named with --engine); the next run there builds from scratch.")
@ENGINE_OPTION
@_guard
def clean(workdir, all_, volumes, caches, engines):
    """Remove the containers that dead runs of --workdir left (by label), on each --engine
    (default: the local engine); a workdir in use by a live run is left alone.  --all
    removes every afpbisect container on each engine instead."""
    if volumes and not all_:
        # Images are shared by every workdir's runs: removing them is a host-wide act.
        raise click.UsageError("--volumes removes the built images every workdir shares; use it with --all")
    farm = resolve_engines(engines) or [(None, None)]
    if caches and not engines:
        _say("note: --caches: the local engine keeps no volumes (the workdir holds its caches); "
             "name the engines whose volumes to remove with --engine")
    if not all_:
        workdir = layout(workdir).workdir   # the lock and the containers' label live there
        if workdir.exists() and not workdir.is_dir():
            raise UsageError(f"--workdir {workdir}: not a directory")
        _each_engine(farm, lambda name, url: _clean_one(workdir, name, url, caches))
        return
    _each_engine(farm, lambda name, url: _clean_all(name, url, volumes))


def _clean_all(name, url, volumes) -> None:
    from afpbisect.machinery.engine import connect
    from afpbisect.machinery.storage import remove_all_volumes
    eng = connect("clean", url)
    where = f" on {name}" if name else " on this host"
    _say(f"removed {eng.cleanup_run('*')} container(s) (all afpbisect containers{where})")
    if volumes:
        for img in eng.client.images.list(filters={"label": "afpbisect"}):
            eng.client.images.remove(img.id, force=True)
            _say(f"removed image {img.tags or img.id}")
        _say(f"removed {len(remove_all_volumes(eng))} afpbisect volume(s){where}")


def _clean_one(workdir, name, url, caches) -> None:
    from afpbisect.commands.context import clean_workdir
    holder, n, vols = clean_workdir(workdir, url, name, caches)
    where = f" on {name}" if name else ""
    if not n and not vols and not Path(workdir).expanduser().exists():
        # A workdir that was removed is still swept of what its runs left (above); one
        # that never existed and left nothing is most likely a typo (issue 25).
        raise UsageError(f"--workdir {workdir}: no such directory, and no container of it{where}")
    if holder is not None:
        _say(f"workdir {workdir} in use by {holder}; nothing removed{where}")
    else:
        _say(f"removed {n} container(s) of dead runs of workdir {workdir}{where}"
             + (f", and {len(vols)} volume(s)" if caches and name else ""))


def _each_engine(farm, fn) -> None:
    """fn(name, url) on every engine; one that is away is said and the others still done,
    then the first error ends the command with its exit code."""
    first = None
    for name, url in farm:
        try:
            fn(name, url)
        except AfpError as exc:
            _say(f"afpbisect: error: {exc}")
            first = first or exc
    if first is not None:
        sys.exit(first.exit_code)


@cli.command(epilog=env_epilog("doctor"))
@option("--workdir", type=click.Path(), callback=_nonempty_path, default=None, envvar=WORKDIR_ENV,
        show_default=WORKDIR_DEFAULT, help="Workdir whose filesystem needs the disk space (not created).")
@option("--json", "as_json", is_flag=True, help="The checks as JSON on stdout.")
@ENGINE_OPTION
@_guard
def doctor(workdir, as_json, engines):
    """Check that this machine can run afpbisect: package data, git, Docker (version, storage
    driver, cgroups, the repro's capabilities), base image or debootstrap, disk, Python.
    With --engine: the Docker checks for each engine, and that it takes volumes and archives.
    Exit 0 when every check passes, 1 when one fails."""
    from afpbisect.commands.doctor import as_json as checks_json, run_checks
    # The disk is needed where the caches go (build trees, products, ccache).
    checks = run_checks(layout(workdir).workdir, ReproSettings().caps, tuple(resolve_engines(engines)))
    for c in checks:
        _say(c.line())
    _emit(checks_json(checks), as_json)
    sys.exit(0 if all(c.ok for c in checks) else 1)


@cli.command(epilog=env_epilog("status"))
@option("--workdir", type=click.Path(), callback=_nonempty_path, default=None, envvar=WORKDIR_ENV,
        show_default=WORKDIR_DEFAULT, help="Workdir whose bisections to show.")
@option("--json", "as_json", is_flag=True, help="As JSON on stdout.")
@_guard
def status(workdir, as_json):
    """Show the bisections of --workdir, interrupted, running or finished: command, range,
    scenario, whether a live run holds the workdir, the window left and the steps done.
    Reads only: creates, locks and changes nothing."""
    from afpbisect.commands.status import collect, render
    if workdir is not None and not workdir.expanduser().is_dir():
        raise UsageError(f"--workdir {workdir}: no such directory")
    found = collect(layout(workdir))
    if as_json:
        _emit(found, True)
    else:
        for line in render(found):
            click.echo(line)
    # Exit 0 all the same: the other bisections are listed, the bad file is named in the
    # listing, and status changes nothing (run moves such a file aside itself).
    bad = [r for r in found["runs"] if "error" in r]
    if bad:
        _say(f"afpbisect: warning: {len(bad)} state file(s) unreadable, marked in the listing "
             f"(the first: {bad[0]['file']})")
