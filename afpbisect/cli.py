"""Command line: parse, check, wire.  No policy here (cargo-bisect-rustc's lesson)."""
from __future__ import annotations

import functools
import json
import signal
import sys
from pathlib import Path

import click

from afpbisect import __version__
from afpbisect.commands.context import open_context
from afpbisect.commands.progress import Progress
from afpbisect.core.dirs import layout
from afpbisect.core.errors import AfpError, Interrupted, UsageError, one_line
from afpbisect.core.outcome import Outcome, signal_exit_code
from afpbisect.cli_options import (
    DEFAULT_CONFIDENCE,
    ENGINE_OPTION,
    ENV_PREFIX,
    WORKDIR_DEFAULT,
    WORKDIR_ENV,
    Group,
    Whole,
    bind_mount_problem,
    command_options,
    common,
    env_epilog,
    nonempty_path,
    nonempty_ref,
    nonempty_target,
    option,
    range_syntax,
    tree_paths,
)
from afpbisect.core.scenario import builtin_names, load as load_scenario
from afpbisect.machinery.engine import TRANSPORT_ERRORS
from afpbisect.machinery.farm import resolve_all as resolve_engines
from afpbisect.machinery.repro_settings import ReproSettings


def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, indent=1, sort_keys=True, default=str))


def _say(msg: str) -> None:
    click.echo(msg, err=True)


# one_line: an error message as one line (core/errors.py; the nightly's line uses it too)


def _guard(fn):
    """Map our errors to one clear line and their exit code; never a traceback for them."""
    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except Interrupted as exc:
            _say(f"afpbisect: interrupted ({one_line(exc)}); state kept — run the same command again to resume")
            sys.exit(exc.exit_code)
        except AfpError as exc:
            _say(f"afpbisect: error: {one_line(exc)}")
            sys.exit(exc.exit_code)
        except TRANSPORT_ERRORS as exc:
            # ConnectionError (BrokenPipeError...): docker-py's ssh transport lets it through;
            # click would otherwise take it for a closed stdout and exit 1 without a word.
            # Retries are exhausted by the time one gets here: say so, keep the state.
            _say(f"afpbisect: error: lost the Docker engine ({one_line(str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)}); "
                 "state kept — run the same command again to resume")
            sys.exit(Outcome.ERROR.exit_code)
        except KeyboardInterrupt:
            _say("afpbisect: interrupted; state kept — run the same command again to resume")
            sys.exit(signal_exit_code(signal.SIGINT))
        except OSError as exc:
            # A write that failed where no one expected it (full disk in a build log, a
            # product, a report's previous/): infrastructure, never a traceback and exit 1.
            where = f" {exc.filename}" if exc.filename else ""
            _say(f"afpbisect: error: cannot use{one_line(where)}: {one_line(exc.strerror or exc)}; "
                 "state kept — fix it and run the same command again to resume")
            sys.exit(Outcome.ERROR.exit_code)
    return wrapper


def main() -> None:
    """Console entry point: bad input is one line and exit 2, never a usage dump."""
    try:
        # AFPBISECT_<COMMAND>_<OPTION> for every option (EnvOption); the command line wins.
        rv = cli.main(standalone_mode=False, auto_envvar_prefix=ENV_PREFIX)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _say("afpbisect: interrupted")
        sys.exit(signal_exit_code(signal.SIGINT))
    except Interrupted as exc:   # while click parsed, or in a command without _guard
        _say(f"afpbisect: interrupted ({one_line(exc)})")
        sys.exit(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError:
        # click's answer is the whole usage text as an "error": one line instead.
        _say("afpbisect: error: no command given; see afpbisect --help")
        sys.exit(Outcome.USAGE.exit_code)
    except click.ClickException as exc:
        _say(f"afpbisect: error: {one_line(exc.format_message())} (see afpbisect --help)")
        sys.exit(Outcome.USAGE.exit_code)
    sys.exit(rv or Outcome.DONE.exit_code)


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
@click.argument("range_", metavar="GOOD..BAD", callback=range_syntax)
@option("--find-fix", is_flag=True,
        help="Find a fix instead of a regression: the range is OLD..NEW with the race at OLD "
             "and gone at NEW; names the first commit where the race is gone.  In git bisect's "
             "terms (the bisect-replay file) OLD is 'racy' and NEW 'fixed' (--term-old / --term-new).")
@option("--confirm-revert", is_flag=True, help="After the search, revert the culprit on BAD and show the bug is gone.")
@option("--fetch", "fetch_", is_flag=True, help="Update the clone of --repo first (it is also updated once when a ref is unknown).")
@option("--suspect", "suspects", multiple=True, metavar="PATH", callback=tree_paths,
        help="A path the culprit probably touches (repeatable; like `git bisect start -- PATH`, "
             "but sound: it orders the probes, other commits keep half the prior mass).")
@option("--check-endpoints", is_flag=True,
        help="Build and test both endpoints before the search (calibrate BAD, light-check GOOD), "
             "as before; by default an endpoint is built only if the answer needs it.")
@common
@_guard
def run(range_, find_fix, confirm_revert, fetch_, suspects, check_endpoints, **kw):
    """Bisect GOOD..BAD (e.g. v7.0.0..v8.0.3) and name the first bad commit."""
    from afpbisect.commands.run import check_range_at_source, run_bisection, run_outcome
    opts = command_options(kw, update=fetch_)
    check_range_at_source(opts.repo, range_, find_fix, tuple(suspects))
    prog = Progress(quiet=kw["quiet"])
    with open_context(opts, say=prog.say, progress=prog) as ctx:
        result = run_bisection(ctx, range_, find_fix=find_fix, confirm_revert=confirm_revert,
                               confidence=kw["confidence"] or DEFAULT_CONFIDENCE,
                               suspects=tuple(suspects), check_endpoints=check_endpoints)
    _emit(result.to_dict(), kw["as_json"])
    sys.exit(run_outcome(result).exit_code)


@cli.command("verify-patch", epilog=env_epilog("verify-patch"))
@click.argument("patches", nargs=-1, required=True, type=click.Path())   # as given: '' is not "."
@option("--target", default=None, callback=nonempty_target, help="Commit to verify on (default: the scenario's [verify] target, a known-bad tip).")
@option("--fetch", "fetch_", is_flag=True, help="Update the clone of --repo first (it is also updated once when a ref is unknown).")
@common
@_guard
def verify_patch(patches, target, fetch_, **kw):
    """Build TARGET + the scenario's test patches (+ PATCHES) and show, with a stated
    confidence, that the bug is gone with the patches and present without them."""
    from afpbisect.commands.verify_patch import check_target_at_source, run_verify, verify_outcome
    from afpbisect.core.patch import load_patches
    loaded = load_patches(patches)   # bad path / not a patch / twice: exit 2 before any work
    opts = command_options(kw, update=fetch_)
    check_target_at_source(opts.repo, target, opts.scenario)
    prog = Progress(quiet=kw["quiet"])
    with open_context(opts, say=prog.say, progress=prog) as ctx:
        result = run_verify(ctx, target, loaded, confidence=kw["confidence"] or DEFAULT_CONFIDENCE)
    _emit(result.to_dict(), kw["as_json"])
    sys.exit(verify_outcome(result.verdict).exit_code)


@cli.command(epilog=env_epilog("nightly"))
@option("--ref", default=None, callback=nonempty_ref,
        help="Ref to test (default: the scenario's [nightly] branch; users may write master).")
@option("--last-good", default=None, callback=nonempty_ref,
        help="Known good commit (overrides the job's own record).")
@option("--out", "out_dir", type=click.Path(), callback=nonempty_path, default=None,
              help="Where to write JSON, Markdown, JUnit and HTML reports (default WORKDIR/nightly).")
@option("--no-fetch", is_flag=True, help="Do not update the repository from its remote.")
@common
@_guard
def nightly(ref, last_good, out_dir, no_fetch, **kw):
    """Nightly regression job: test REF; on a regression bisect last_good..REF.
    Exit 0 clean, 1 regression found, 2 usage error, 3 infrastructure error."""
    from afpbisect.commands.nightly import run_nightly
    from afpbisect.core.state import check_writable
    opts = command_options(kw, update=not no_fetch)
    if out_dir is not None:
        state = (opts.state_dir / "state").resolve()
        if Path(out_dir).resolve() == state or state in Path(out_dir).resolve().parents:
            # its nightly.json replaced the job's own state (fifth hostile tour)
            raise UsageError(f"--out {out_dir} is in the job's state directory {state}: give another")
        out_dir = check_writable(out_dir, "--out")   # before the clone: one line, exit 2
    prog = Progress(quiet=kw["quiet"])
    with open_context(opts, say=prog.say, progress=prog) as ctx:
        result = run_nightly(ctx, ref, last_good=last_good, out_dir=out_dir, confidence=kw["confidence"])
    _emit(result.to_dict(), kw["as_json"])
    sys.exit(result.exit_code)


@cli.command()
def scenarios():
    """List the built-in scenarios, one line each (NAME: title)."""
    for name in builtin_names():
        sc = load_scenario(name)
        click.echo(f"{name}: {sc.title}" + (f" ({sc.ticket})" if sc.ticket else ""))


@cli.command(epilog=env_epilog("selftest"))
@option("--commits", type=Whole(50, 200), default=80, show_default=True)
@option("--workdir", type=click.Path(), callback=nonempty_path, default=None,
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
    if workdir is not None and not farm and bind_mount_problem(workdir):
        raise UsageError(f"--workdir {bind_mount_problem(workdir)}")
    prog = Progress(quiet=quiet)
    result = run_selftest(commits=commits, workdir=workdir, keep=keep, say=prog.say, scenario=scenario_ref,
                          progress=prog, engines=farm)
    _emit(result, as_json)
    sys.exit((Outcome.SELFTEST_PASSED if result["ok"] else Outcome.SELFTEST_FAILED).exit_code)


@cli.command(epilog=env_epilog("clean"))
@option("--workdir", type=click.Path(), callback=nonempty_path, default=None, envvar=WORKDIR_ENV,
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
    from afpbisect.commands.clean import clean_engines
    clean_engines(workdir, all_, volumes, caches, engines, say=_say)


@cli.command(epilog=env_epilog("doctor"))
@option("--workdir", type=click.Path(), callback=nonempty_path, default=None, envvar=WORKDIR_ENV,
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
    from afpbisect.machinery.deadlines import check_seconds
    check_seconds()   # bad AFPBISECT_DOCKER_*_SECONDS: exit 2, as elsewhere
    # The disk is needed where the caches go (build trees, products, ccache).
    checks = run_checks(layout(workdir).workdir, ReproSettings().caps, tuple(resolve_engines(engines)))
    for c in checks:
        _say(c.line())
    _emit(checks_json(checks), as_json)
    sys.exit((Outcome.READY if all(c.ok for c in checks) else Outcome.NOT_READY).exit_code)


@cli.command(epilog=env_epilog("status"))
@option("--workdir", type=click.Path(), callback=nonempty_path, default=None, envvar=WORKDIR_ENV,
        show_default=WORKDIR_DEFAULT, help="Workdir whose bisections to show.")
@option("--json", "as_json", is_flag=True, help="As JSON on stdout.")
@_guard
def status(workdir, as_json):
    """Show the bisections of --workdir, interrupted, running or finished: command, range,
    scenario, whether a live run holds the workdir, the window left and the steps done.
    Reads only: creates, locks and changes nothing."""
    from afpbisect.commands.status import collect, render
    if workdir is not None and not workdir.expanduser().is_dir():
        there = workdir.expanduser().exists()   # a file was said to be "no such directory"
        raise UsageError(f"--workdir {workdir}: {'not a directory' if there else 'no such directory'}")
    lay = layout(workdir)
    if (lay.state.exists() or lay.state.is_symlink()) and not lay.state.is_dir():
        # "no bisection state here" hid it, while run refuses the layout (fifth hostile tour)
        raise UsageError(f"{lay.state}: not a directory (the workdir's state lives there)")
    found = collect(lay)
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
             f"(the first: {one_line(bad[0]['file'])})")
