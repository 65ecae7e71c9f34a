"""What every command needs, set up once: workdir, lock, our clone of the target, then
(only once the input has been checked) the Docker engine, builder and repro environment.
Tear-down removes this run's containers whatever happened (signal, error, success)."""
from __future__ import annotations

import contextlib
import logging
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import git

from afpbisect.core.dirs import cache_dir, in_the_way
from afpbisect.core.errors import UsageError, raise_interrupt
from afpbisect.core.scenario import Scenario
from afpbisect.core.state import WorkdirLock, check_writable
from afpbisect.machinery import engine as engine_mod
from afpbisect.machinery.build import DockerBuilder
from afpbisect.machinery.farm import Lane
from afpbisect.machinery.parallel import join_workers
from afpbisect.machinery.repro_session import ReproEnv
from afpbisect.machinery.repro_settings import ReproSettings
from afpbisect.machinery.worktree import open_clone

log = logging.getLogger(__name__)


def default_workdir() -> Path:
    """The cache directory used when no --workdir is given (dirs.layout)."""
    return cache_dir()


@dataclass
class Options:
    repo: str
    workdir: Path
    base_image: str
    jobs: int
    settings: ReproSettings
    restart: bool = False
    update: bool = False
    fixed_cycles: int | None = None
    eras_file: Path | None = None
    scenario: Scenario | None = None   # the bug (docs/scenarios.md): required, given by keyword
    state_dir: Path | None = None   # state/, reports/ (dirs.Layout); None = the workdir
    # --engine values, checked (farm.resolve_all): (name, Docker URL) each.  Empty: the one
    # default engine (DOCKER_HOST or the local socket), with the workdir bind-mounted.
    engines: tuple = ()
    # What a verification must rule out and may cost (PolicyConfig.rate_floor, cycle_cap):
    # --rate-floor / --cycle-cap, else the scenario's [verdict].
    rate_floor: float | None = None
    cycle_cap: int | None = None

    def __post_init__(self) -> None:
        if self.scenario is None:   # no silent default: the caller names the bug
            raise TypeError("Options needs scenario= (afpbisect.core.scenario.load(NAME_OR_PATH))")
        verdict = self.scenario.verdict
        self.rate_floor = self.rate_floor or verdict.rate_floor
        self.cycle_cap = self.cycle_cap or verdict.cycle_cap

    def verdict_knobs(self) -> dict:
        """The PolicyConfig keys these options set."""
        return {"rate_floor": self.rate_floor, "cycle_cap": self.cycle_cap}


@dataclass
class Context:
    opts: Options
    workdir: Path
    repo: git.Repo
    run_id: str
    say: object = print
    state_dir: Path | None = None   # where state/ and reports/ live (dirs.Layout)
    progress: object = None         # progress.Progress: the live console, when the CLI made one
    engine: engine_mod.Engine | None = None
    builder: DockerBuilder | None = None
    repro: ReproEnv | None = None
    lanes: list = field(default_factory=list)   # farm.Lane per engine; lanes[0] is the above
    _docker_ready: bool = field(default=False, repr=False)
    _fetched: bool = field(default=False, repr=False)
    fetched_note: str = ""

    def __post_init__(self) -> None:
        if self.state_dir is None:
            self.state_dir = self.workdir

    def result(self, msg: str) -> None:
        """A line of the final result: said even with --quiet."""
        (self.progress.result if self.progress is not None else self.say)(msg)

    def resolving(self, fn):
        """`fn()` (a ref resolution); when a ref is unknown, fetch the clone once and ask
        again: a tag or commit newer than our clone must not be "unknown" (issue 17)."""
        from afpbisect.core.refs import UnknownRef
        from afpbisect.machinery.worktree import fetch
        try:
            return fn()
        except UnknownRef:
            if self._fetched:
                raise
            self._fetched = True
            moved = fetch(self.repo)
            result = fn()   # still unknown: the same one-line error as before the fetch
            # Said with the resolved commits, once the engine answered (bad input: one line).
            self.fetched_note = f"a ref was not in the clone of {self.opts.repo}; fetched: {moved}"
            return result

    def docker(self) -> "Context":
        """Connect to the engine (clear error if away) and make builder + repro env.
        Called by commands after their input is validated, so bad input costs nothing."""
        if not self._docker_ready:
            for name, url in self.opts.engines or ((None, None),):
                self.lanes.append(self._lane(name, url))
            first = self.lanes[0]
            self.engine, self.builder, self.repro = first.engine, first.builder, first.repro
            self._docker_ready = True
        return self

    def _lane(self, name: str | None, url: str | None) -> Lane:
        """One engine, connected (a clear error if away), swept of what dead runs of this
        workdir left on it, with its builder and repro environment."""
        eng = engine_mod.connect(self.run_id, url)
        if name is not None:   # named with --engine: possibly another host, so no bind mounts
            eng.name, eng.remote = name, True
        eng.workdir_tag = engine_mod.workdir_tag(self.workdir, eng.remote)
        n = eng.sweep_workdir()
        if n:
            self.say(f"removed {n} container(s) left by an interrupted earlier run on {eng.name}")
        builder = DockerBuilder(eng, self.workdir, self.opts.base_image, jobs=self.opts.jobs,
                                say=self.say, eras_file=self.opts.eras_file)
        return Lane(eng, builder, ReproEnv(eng, self.opts.settings))


@contextlib.contextmanager
def open_context(opts: Options, say=print, progress=None):
    workdir = check_writable(opts.workdir)
    # The state directory is probed with the workdir, before the clone: one line, exit 2.
    state_dir = check_writable(opts.state_dir) if opts.state_dir is not None else workdir
    blocked = in_the_way(workdir, state_dir)
    if blocked is not None:
        raise UsageError(f"{blocked} is not a directory (afpbisect keeps one there); move it "
                         "or use another --workdir")
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    # From here on a signal is an Interrupted (one "interrupted" line, exit 128+N), the clone
    # included: SIGTERM during it used to kill the process without a word.
    for s in old:
        signal.signal(s, raise_interrupt)
    try:
        with WorkdirLock(workdir):
            repo = open_clone(workdir, opts.repo, update=opts.update, say=say)
            ctx = Context(opts, workdir, repo, uuid.uuid4().hex[:10], say, state_dir, progress)
            yield from _running(ctx, old, say)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _running(ctx: "Context", old: dict, say):
    """The body of open_context once the clone is there: whatever ends the run, nothing of
    it stays running.  Signals are held off meanwhile so a second Ctrl-C cannot cut the
    cleanup short (open_context restores the caller's handlers after)."""
    try:
        yield ctx
    finally:
        for s in old:
            signal.signal(s, signal.SIG_IGN)
        _clean_lanes(ctx, say)
        if ctx.lanes and join_workers(20.0):
            say("a build or cycle thread is still waiting on an engine; its container is removed")
        if len(ctx.lanes) > 1:   # a worker may have made a container while the first sweep ran
            _clean_lanes(ctx, say)


def _clean_lanes(ctx: "Context", say) -> None:
    """Remove this run's containers on every engine; none is made after this begins."""
    engine_mod.halt(ctx.run_id)
    for lane in ctx.lanes:
        try:
            n = lane.engine.cleanup_run()
            if n:
                say(f"removed {n} container(s) of this run on {lane.name}")
        except Exception as exc:  # daemon gone: the labels let `clean` finish later
            say(f"could not remove this run's containers on {lane.name} ({exc}); "
                "run `afpbisect clean`")
