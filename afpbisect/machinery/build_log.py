"""What a build's log says: the build script's step marks and their times, ccache and cargo
figures, and why a build step stopped (a signal from outside, the OOM killer, a full disk),
which makes it an infrastructure error rather than a SKIP. Also the live follower of a
build container's log (the status line's steps)."""
from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

from afpbisect.machinery.engine import TRANSPORT_ERRORS


STEP_MARK = re.compile(r"^AFPBISECT-STEP: (\S+)", re.M)


# Every marker with its time (build.sh.j2 appends " @<epoch seconds>").
_TIMED_MARK = re.compile(r"^AFPBISECT-(STEP|DONE): (\S+) @([0-9.]+)$", re.M)


# ccache's statistics at the end of the compile phase (zeroed at its start): C units compiled.
_CCACHE = re.compile(r"^\s*(Hits|Misses):\s+(\d+)\s*/\s*(\d+)", re.M)


# cargo's own summary of each `cargo build`: how much of `make` was the Rust part.
_CARGO_FINISHED = re.compile(r"^\s*Finished .* in (?:(\d+)m )?([0-9.]+)s$", re.M)


# What a phase's log says when the kernel's OOM killer (or an operator) killed the compiler:
# gcc/rustc then exit 1 and make 2, which would otherwise read as "the commit does not build".
_COMPILER_KILLED = re.compile(r"Killed signal terminated program|internal compiler error: Killed|"
                              r"\(signal: 9, SIGKILL", re.M)


def step_seconds(log_text: str) -> dict[str, float]:
    """Seconds per build step (autogen, configure, fetch, make, install...) read from the
    timed markers of a build log, plus `cargo`: the part of make and install cargo reported.
    A step that ran twice (a retry with reconfigure) counts both times."""
    out: dict[str, float] = {}
    marks = [(kind, name, float(t)) for kind, name, t in _TIMED_MARK.findall(log_text)]
    for (kind, name, t), (_, _, t_next) in zip(marks, marks[1:]):
        if kind == "STEP":   # a step lasts until the next marker: the next step or its phase's end
            out[name] = round(out.get(name, 0.0) + t_next - t, 1)
    cargo = sum(int(m or 0) * 60 + float(s) for m, s in _CARGO_FINISHED.findall(log_text))
    if cargo:
        out["cargo"] = round(cargo, 1)
    return out


def step_names(pending: str, chunk: str) -> tuple[list[str], str]:
    """Build steps that started in a streamed log `chunk` (read after `pending`, the part
    line of the chunk before it): (names, the new partial line).  Chunks from Docker's log
    stream need not end at a line break, so a marker may arrive in pieces."""
    text = pending + chunk
    complete, _, rest = text.rpartition("\n")
    return STEP_MARK.findall(complete + "\n") if complete else [], rest


def ccache_counts(log_text: str) -> dict[str, int]:
    """C units of the last compile phase in a build log: {"hits", "misses"}; {} when absent.
    Misses are what the change really made the compiler redo."""
    found = {k.lower(): int(v) for k, v, _ in _CCACHE.findall(log_text)}
    return {"hits": found["hits"], "misses": found["misses"]} if {"hits", "misses"} <= set(found) else {}


def log_facts(log_path: Path) -> dict:
    text = log_path.read_text(errors="replace")
    return {"steps": step_seconds(text), "ccache": ccache_counts(text)}


def stopped_by(code: int, log_text: str) -> str | None:
    """Why a phase that exited with `code` was stopped from outside, or None when the exit is
    the build's own verdict on the commit.  Exit 128+N is what bash reports when it or the
    step it waited on died of signal N: somebody stopped it (docker stop, Ctrl-C reaching the
    processes, the OOM killer), which says nothing about the commit, in either phase."""
    if code > 128 and code - 128 in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
        name = signal.Signals(code - 128).name
        why = "; out of memory or stopped" if code - 128 == signal.SIGKILL else ""
        return f"killed by {name} (exit {code}{why})"
    killed = _COMPILER_KILLED.search(log_text)
    if killed:
        return f"a compiler was killed (out of memory?): {killed.group(0)}"
    return None


# What a phase's log says when the disk (the workdir's, or the engine's for its volumes
# and layers) is full: the compiler, the linker or make then fail like a broken commit would.
_NO_SPACE = re.compile(r"No space left on device|Disk quota exceeded", re.M)


def infrastructure_cause(code: int, log_text: str) -> str | None:
    """Why a phase's failure (exit `code`, its log) is the machine's and says nothing about
    the commit, or None when it is the build's own verdict (SKIP): stopped from outside
    (stopped_by), or out of disk space."""
    why = stopped_by(code, log_text)
    if why is None and (full := _NO_SPACE.search(log_text)):
        why = f"out of disk space ({full.group(0)}); make room in the workdir or on the engine"
    return why


class LogFollower:
    """A phase's log, streamed into its log file (for users who tail it) and its steps to
    `on_step`, in a thread of its own: docker-py reads a followed log with no timeout, so
    the thread that waits on the container (and finds a stalled engine) must not be the
    one reading it. The build goes on if the stream breaks; `done` says whether it was
    whole, else the caller writes the full log."""

    def __init__(self, container, logf, on_step):
        self.container, self.logf, self.on_step = container, logf, on_step
        self.ended, self.whole, self.closed = threading.Event(), False, False
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True, name="afpbisect-build-log").start()

    def _run(self) -> None:
        pending = ""
        try:
            for chunk in self.container.logs(stream=True, follow=True):
                text = chunk.decode(errors="replace")
                with self.lock:
                    if self.closed:   # the caller gave up on the stream
                        return
                    self.logf.write(text)
                if self.on_step is not None:
                    names, pending = step_names(pending, text)
                    for step in names:
                        self.on_step(step)
            self.whole = True
        except TRANSPORT_ERRORS:
            pass
        finally:
            self.ended.set()

    def done(self, grace: float = 10.0) -> bool:
        """Once the container has exited: whether the stream ended whole within `grace`
        seconds (it ends with the container). From now on it writes nothing."""
        self.ended.wait(grace)
        with self.lock:
            self.closed = True
            return self.ended.is_set() and self.whole


def rust_incremental_state(tree: Path) -> list[Path]:
    """rustc's incremental state in a build tree (era rule rust-incremental): cargo keeps it per
    profile, under a target triple when one is given."""
    return [*tree.glob("rust/target/*/incremental"), *tree.glob("rust/target/*/*/incremental")]
