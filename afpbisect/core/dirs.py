"""Where afpbisect keeps things (issue 19).

With `--workdir W` everything lives under W, as it always has.  Without it, what can be
made again (our clone, build trees, products, ccache, cargo, logs, the lock) goes in the
platform's cache directory, and what must survive a cache clean-up (run state, the
nightly's last good commit, reports) in its state directory, as the XDG base directory
spec asks (platformdirs: ~/.cache/afpbisect and ~/.local/state/afpbisect on Linux)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP = "afpbisect"


@dataclass(frozen=True)
class Layout:
    workdir: Path      # caches, products, clone, trees, logs, the lock
    state_root: Path   # state/, reports/, nightly/

    @property
    def state(self) -> Path:
        """The run and nightly state files (state.State)."""
        return self.state_root / "state"

    @property
    def split(self) -> bool:
        return self.workdir != self.state_root


# The directories afpbisect keeps in a workdir and in its state root: a file in the place of
# one was "cannot use W/repos: File exists", exit 3, after the lock (fourth hostile tour).
WORKDIR_DIRS = ("repos", "trees", "products", "logs", "cache", "engines", "run")
STATE_DIRS = ("state", "reports", "nightly")


def in_the_way(workdir: Path, state_root: Path) -> Path | None:
    """The first of those that exists and is not a directory, or None."""
    paths = [workdir / d for d in WORKDIR_DIRS] + [state_root / d for d in STATE_DIRS]
    return next((p for p in paths if os.path.lexists(p) and not p.is_dir()), None)


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir(APP, appauthor=False))


def state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP, appauthor=False))


def layout(workdir: Path | None) -> Layout:
    """The layout for `--workdir` (None: not given)."""
    if workdir is not None:
        w = Path(workdir).expanduser()
        return Layout(w, w)
    cache, state = cache_dir(), state_dir()
    if (cache / "state").is_dir() and not (state / "state").exists():
        # Before issue 19 the default kept state in the cache directory: keep resuming
        # those runs there rather than silently start them over.
        return Layout(cache, cache)
    return Layout(cache, state)
