"""Run state as versioned JSON, written atomically after every step, and the workdir lock.

A run is resumed by running the same command again: the state holds every finished build
and every cycle's evidence, so nothing finished is redone.  A corrupt file, a file from a
newer afpbisect, or one made for a different command is a clear error, not a crash.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import stat
import threading
import socket
import time
from pathlib import Path

from afpbisect.core.errors import StateError, UsageError, write_failed

VERSION = 1
_REQUIRED = {"version": int, "kind": str, "identity": dict, "created": float, "data": dict}
# The tables of `data` the commands index into, and what each maps a name to: checked on
# load so that a hand-edited or foreign file is one error here, not a TypeError mid-run.
_TABLES = {"builds": dict, "cycles": list, "evidence": dict, "refs": dict}
_JSON_NAMES = {dict: "an object", list: "a list"}


def data_problem(data: dict) -> str | None:
    """What is wrong with the shape of a state's `data`, or None."""
    about = data.get("about", {})
    if not isinstance(about, dict):
        return "'about' must be an object"
    if not all(isinstance(v, (str, list)) and (isinstance(v, str) or all(isinstance(x, str) for x in v))
               for v in about.values()):   # names shown by status: strings (patches: a list)
        return "'about' must map names to strings"
    steps = data.get("steps", [])
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        return "'steps' must be a list of objects"
    for key, inner in _TABLES.items():
        table = data.get(key, {})
        if not isinstance(table, dict) or not all(isinstance(v, inner) for v in table.values()):
            return f"{key!r} must map names to {_JSON_NAMES[inner]}"
    if not all(isinstance(r, dict) for recs in data.get("cycles", {}).values() for r in recs):
        return "'cycles' records must be objects"
    for track in data.get("refs", {}).values():
        history = track.get("history", [])
        if not isinstance(history, list) or not all(isinstance(n, dict) for n in history):
            return "'refs' history must be a list of objects"
    if not isinstance(data.get("result", {}), dict):
        return "'result' must be an object"
    return None


class CorruptState(StateError):
    """A state file that cannot be read as one (not JSON, wrong shape).  Unlike a newer
    afpbisect's file or another run's, nothing in it can be used."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"state file {path} is corrupt ({why}); use --restart to discard it")
        self.why = why


class State:
    def __init__(self, path: Path, kind: str, identity: dict, data: dict | None = None,
                 created: float | None = None):
        self.path = Path(path)
        self.kind = kind
        self.identity = identity
        self.data = data if data is not None else {}
        self.created = created or time.time()

    # ------------------------------------------------------------ load/save
    @classmethod
    def load_or_new(cls, path: Path, kind: str, identity: dict, restart: bool = False,
                    say=print, set_aside: bool = False) -> "State":
        """The state at `path`, or a new one.  With `set_aside`, a corrupt file is moved
        aside (set_aside_file) and said, rather than an error: for a command whose state is
        only its own evidence, which a new run gathers again (issue 25)."""
        path = Path(path)
        if restart and os.path.lexists(path):
            path.unlink()
            say(f"--restart: discarded {path}")
        if not path.exists():   # nothing, or a dangling link: save() replaces the link
            return cls(path, kind, identity)
        try:
            st = cls.load(path)
        except CorruptState as exc:
            if not set_aside:
                raise
            kept = set_aside_file(path)
            say(f"state file {path} is unreadable ({exc.why}); kept it as {kept.name} and starting over")
            return cls(path, kind, identity)
        if st.kind != kind or st.identity != identity:
            raise StateError(
                f"state file {path} belongs to a different run ({st.kind} {st.identity}); "
                "use --restart to discard it or another --workdir")
        say(f"resuming from {path}")
        return st

    @classmethod
    def load(cls, path: Path) -> "State":
        raw = read_json(path, lambda why: CorruptState(path, why))
        if not isinstance(raw, dict):
            raise CorruptState(path, "not an object")
        for k, t in _REQUIRED.items():
            if not isinstance(raw.get(k), t) and not (t is float and isinstance(raw.get(k), int)):
                raise CorruptState(path, f"field {k!r}")
        if not 0 <= raw["created"] < 2**40:   # time.gmtime and the reports take it
            raise CorruptState(path, "field 'created' is not a time")
        if raw["version"] > VERSION:
            raise StateError(f"state file {path} has version {raw['version']}, newer than this "
                             f"afpbisect understands ({VERSION}); upgrade afpbisect or use --restart")
        if raw["version"] < VERSION:
            raise StateError(f"state file {path} has old version {raw['version']}; use --restart")
        problem = data_problem(raw["data"])
        if problem:
            raise CorruptState(path, f"data: {problem}")
        return cls(path, raw["kind"], raw["identity"], raw["data"], raw["created"])

    def save(self) -> None:
        """Temp file + fsync + rename: a kill -9 leaves the old or the new file, never half.
        One save at a time in the process: the threads of a farm's round (parallel.py)
        share the temp file's name."""
        with SAVE_LOCK:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
            body = {"version": VERSION, "kind": self.kind, "identity": self.identity,
                    "created": self.created, "updated": time.time(), "data": self.data}
            try:
                with open(tmp, "w") as f:
                    json.dump(body, f, indent=1, sort_keys=True)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except OSError as exc:   # full disk, quota: the last saved file stays as it was
                tmp.unlink(missing_ok=True)
                raise write_failed(self.path, exc) from None


SAVE_LOCK = threading.RLock()


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path, error):
    """The JSON in the regular file `path`, or raise error(why): never a hang (a FIFO, a
    device), never a traceback (nesting deeper than the parser's recursion, an integer past
    Python's 4300 digits, NaN or Infinity, a dangling link)."""
    try:
        st = os.stat(path)   # follows a link: a dangling one is ENOENT here
        if not stat.S_ISREG(st.st_mode):
            raise error("not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):   # swapped since the stat
                raise error("not a regular file")
            text = f.read().decode("utf-8")
        return json.loads(text, parse_constant=_no_constant)
    except OSError as exc:
        raise error(exc.strerror or str(exc)) from None
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 ({exc.reason})") from None
    except RecursionError:
        raise error("nested too deeply") from None
    except ValueError as exc:   # JSONDecodeError, an integer past 4300 digits, NaN
        raise error(str(exc).splitlines()[0][:200] if str(exc) else "not JSON") from None


def set_aside_file(path: Path) -> Path:
    """Move `path` to NAME.bad-<UTC time>[-n] beside it, never over an earlier one: kept for
    a post-mortem (a hand edit, a disk that filled mid-write), out of the *.json that
    `status` lists."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    n = 0
    while (kept := path.with_name(f"{path.name}.bad-{stamp}{f'-{n}' if n else ''}")).exists():
        n += 1
    os.replace(path, kept)
    return kept


def identity_digest(identity: dict) -> str:
    """A short name for a run's whole identity (range, scenario, options), so that runs
    that differ in any of them keep their own state files side by side."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]


class WorkdirLock:
    """One run per workdir.  flock is released by the kernel when the holder dies, so a
    kill -9 never leaves a stale lock; the file says who holds it."""

    def __init__(self, workdir: Path):
        self.path = Path(workdir) / "lock"
        self.fd = None

    def __enter__(self) -> "WorkdirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        holder = self.try_acquire()
        if holder is not None:
            raise UsageError(f"workdir {self.path.parent} is in use by {holder}; wait for it or use another --workdir")
        return self

    def try_acquire(self) -> str | None:
        """Take the lock and return None, or leave it and say who holds it (for callers
        that must not fail when a run is live, like `afpbisect clean`)."""
        fd = self._open(os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
            os.close(fd)
            return holder
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}".encode())
        self.fd = fd
        return None

    def _open(self, flags: int) -> int:
        """The lock file, opened only if it is a regular file of its own: a link was followed
        and the file behind it truncated (a user's file emptied), a FIFO hung `status` and
        failed flock (fourth hostile tour). O_NONBLOCK: opening a FIFO never waits."""
        try:
            fd = os.open(self.path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as exc:   # a directory, a link, or a file we may not write, in its place
            why = "not a regular file: a symbolic link" if os.path.islink(self.path) else exc.strerror
            raise UsageError(f"workdir lock {self.path} cannot be opened ({why}); "
                             "remove it or use another --workdir") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UsageError(f"workdir lock {self.path} is not a regular file; remove it or use "
                             "another --workdir")
        return fd

    def holder(self) -> str | None:
        """Who holds the lock, or None; takes nothing and creates nothing (for `afpbisect
        status`).  A shared probe, released at once: a run starting in that instant is
        told the workdir is in use, never given it twice."""
        if not os.path.lexists(self.path):
            return None
        fd = self._open(os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.read(fd, 4096).decode(errors="replace").strip() or "another process"
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def check_writable(workdir: Path, option: str = "--workdir") -> Path:
    """The directory `option` names, made and probed; an empty path is refused (it would
    silently mean the current directory)."""
    if not str(workdir).strip():
        raise UsageError(f"{option}: empty path")
    workdir = Path(workdir).expanduser()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / f".probe{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {workdir} is not writable ({exc.strerror}); pick another with {option}") from None
    return workdir.resolve()
