"""`afpbisect clean`: remove what dead runs left, by label: the containers of a workdir's dead
runs (its lock says whether a run is live), with --caches the engines' volumes of it, with
--all every afpbisect container (and --volumes the images and volumes) on each engine."""
from __future__ import annotations

import sys
from pathlib import Path

from afpbisect.core.dirs import layout
from afpbisect.core.errors import AfpError, UsageError
from afpbisect.core.state import WorkdirLock
from afpbisect.machinery import engine as engine_mod
from afpbisect.machinery.farm import resolve_all as resolve_engines
from afpbisect.machinery.storage import remove_all_volumes, remove_volumes


def clean_engines(workdir, all_: bool, volumes: bool, caches: bool, engines, say) -> None:
    """The command, its options checked: on each engine (default: the local one)."""
    farm = resolve_engines(engines) or [(None, None)]
    if not all_:
        workdir = layout(workdir).workdir   # the lock and the containers' label live there
        if workdir.exists() and not workdir.is_dir():   # before any note: one line (fifth tour)
            raise UsageError(f"--workdir {workdir}: not a directory")
    if caches and not engines:
        say("note: --caches: the local engine keeps no volumes (the workdir holds its caches); "
            "name the engines whose volumes to remove with --engine")
    if not all_:
        _each_engine(farm, lambda name, url: _clean_one(workdir, name, url, caches, say), say)
        return
    _each_engine(farm, lambda name, url: _clean_all(name, url, volumes, say), say)


def _clean_all(name, url, volumes, say) -> None:
    eng = engine_mod.connect("clean", url)
    where = f" on {name}" if name else " on this host"
    say(f"removed {eng.cleanup_run('*')} container(s) (all afpbisect containers{where})")
    if volumes:
        for img in eng.client.images.list(filters={"label": "afpbisect"}):
            eng.client.images.remove(img.id, force=True)
            say(f"removed image {img.tags or img.id}")
        say(f"removed {len(remove_all_volumes(eng))} afpbisect volume(s){where}")


def _clean_one(workdir, name, url, caches, say) -> None:
    holder, n, vols = clean_workdir(workdir, url, name, caches)
    where = f" on {name}" if name else ""
    if not n and not vols and not Path(workdir).expanduser().exists():
        # A workdir that was removed is still swept of what its runs left (above); one
        # that never existed and left nothing is most likely a typo (issue 25).
        raise UsageError(f"--workdir {workdir}: no such directory, and no container of it{where}")
    if holder is not None:
        say(f"workdir {workdir} in use by {holder}; nothing removed{where}")
    else:
        say(f"removed {n} container(s) of dead runs of workdir {workdir}{where}"
            + (f", and {len(vols)} volume(s)" if caches and name else ""))


def _each_engine(farm, fn, say) -> None:
    """fn(name, url) on every engine; one that is away is said and the others still done,
    then the first error ends the command with its exit code."""
    first = None
    for name, url in farm:
        try:
            fn(name, url)
        except AfpError as exc:
            say(f"afpbisect: error: {exc}")
            first = first or exc
    if first is not None:
        sys.exit(first.exit_code)


def clean_workdir(workdir: Path, url: str | None = None, name: str | None = None,
                  caches: bool = False) -> tuple[str | None, int, list]:
    """Remove the containers of dead runs of `workdir` on one engine (and with `caches`
    its volumes of the workdir): (None, how many, volumes removed), or (holder, 0, []) when
    a live run holds the workdir's lock, whose containers are then left alone.  The lock
    is held meanwhile so that no run starts while its workdir is being swept.  A workdir
    that is gone cannot be locked by anyone: its leftovers are swept without creating it."""
    eng = engine_mod.connect("clean", url)
    if name is not None:
        eng.name, eng.remote = name, True
    eng.workdir_tag = engine_mod.workdir_tag(workdir, eng.remote)

    def sweep():
        return None, eng.sweep_workdir(), remove_volumes(eng) if caches and eng.remote else []
    path = Path(workdir).expanduser()
    if not path.is_dir():
        return sweep()
    lock = WorkdirLock(path)
    holder = lock.try_acquire()
    if holder is not None:
        return holder, 0, []
    try:
        return sweep()
    finally:
        lock.release()
