"""What every command needs, set up once: workdir, lock, Docker engine, base image,
our clone of the target, the builder and the repro environment.  Tear-down removes this
run's containers whatever happened (signal, error, success)."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

import git

from . import baseimage, engine as engine_mod
from .build import DockerBuilder
from .errors import Interrupted
from .repro import ReproEnv, ReproSettings
from .state import WorkdirLock, check_writable
from .worktree import open_clone

log = logging.getLogger(__name__)


def default_workdir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "afpbisect"


@dataclass
class Options:
    repo: str
    workdir: Path
    base_image: str
    jobs: int
    settings: ReproSettings
    restart: bool = False
    update: bool = False


@dataclass
class Context:
    opts: Options
    workdir: Path
    repo: git.Repo
    engine: engine_mod.Engine
    builder: DockerBuilder
    repro: ReproEnv
    say: object


def _raise_interrupt(signum, frame):
    raise Interrupted(f"stopped by signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def open_context(opts: Options, say=print):
    workdir = check_writable(opts.workdir)
    run_id = uuid.uuid4().hex[:10]
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with WorkdirLock(workdir):
        repo = open_clone(workdir, opts.repo, update=opts.update)
        eng = engine_mod.connect(run_id)
        for s in old:
            signal.signal(s, _raise_interrupt)
        try:
            base = baseimage.ensure_base_image(eng, opts.base_image, say=say)
            builder = DockerBuilder(eng, workdir, base, jobs=opts.jobs, say=say)
            repro = ReproEnv(eng, opts.settings)
            yield Context(opts, workdir, repo, eng, builder, repro, say)
        finally:
            # Whatever ended the run, nothing of it stays running.  Signals are held
            # off meanwhile so a second Ctrl-C cannot cut the cleanup short.
            for s in old:
                signal.signal(s, signal.SIG_IGN)
            try:
                n = eng.cleanup_run()
                if n:
                    say(f"removed {n} container(s) of this run")
            except Exception as exc:  # daemon gone: say so, the labels let `clean` finish later
                say(f"could not remove this run's containers ({exc}); run `afpbisect clean`")
            for s, h in old.items():
                signal.signal(s, h)
