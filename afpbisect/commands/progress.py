"""The console of a command that builds and runs (issue 19): what it is doing, live.

On a terminal (stderr, where afpbisect talks; stdout carries --json) a rich status line
shows the build in progress: its step (the build script's AFPBISECT-STEP markers), the
time so far and an estimate.  Everywhere: one line per decision of the bisection (step k
of ~n, the commit, its place in the range, the verdict, the window left, the time left,
as `git bisect` says "N revisions left (roughly K steps)"), and the policy's decisions as
they are made.  When stderr is not a terminal every line is plain text, written as it
comes, with no control codes: a log file or CI reads the same words.  `--quiet` keeps only
the final result (Context.result) and the errors (the CLI's own lines)."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Callable

from rich.console import Console
from rich.text import Text

from afpbisect.core.verdict import Verdict
from afpbisect.core.window import window
from afpbisect.policy.config import Handler

# After the search the policy still verifies the last good commit and re-tests the culprit.
_CLOSING = {"verify": 1, "confirm": 0}
_CLOSING_STEPS = 2


def duration(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@dataclass
class BuildLine:
    """The status line of one build, rendered afresh on every refresh (elapsed time)."""
    sha: str
    estimate: tuple[float, str]
    step: str = "starting"
    clock: Callable[[], float] = time.monotonic
    t0: float = 0.0

    def __post_init__(self) -> None:
        self.t0 = self.t0 or self.clock()

    def set_step(self, name: str) -> None:
        self.step = name

    def text(self) -> str:
        secs, basis = self.estimate
        return (f"building {self.sha[:10]}: {self.step}, {duration(self.clock() - self.t0)} "
                f"of ~{duration(secs)} ({basis})")

    def __rich__(self) -> Text:
        return Text(self.text())


def step_line(k: int, n: int, phase: str, commit: str, subject: str, index: int | None, size: int,
              verdict: Verdict, cycles: int, hits: int, left: int, time_left: float | None) -> str:
    """One decision, as a line: step k of ~n, what was judged and what is left."""
    where = f" [{index} of {size - 1}]" if index is not None else ""
    eta = f", ~{duration(time_left)} left" if time_left is not None else ""
    return (f"step {k} of ~{n} ({phase}): {commit[:10]}{where} {subject[:60]}: "
            f"{verdict.value.upper()}, {cycles} cycle(s), {hits} hit(s); "
            f"window {left} commit(s){eta}")


class Progress:
    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)
        self.live = self.console.is_terminal and not quiet

    def say(self, msg: str) -> None:
        if not self.quiet:
            self._line(msg)

    def result(self, msg: str) -> None:
        self._line(msg)

    def trace(self, line: str) -> None:
        """A decision of the policy (its trace line), as it is made."""
        self.say(f"  policy: {line}")

    def _line(self, msg: str) -> None:
        if self.console.is_terminal:
            self.console.print(msg, markup=False, highlight=False, emoji=False)
        else:   # no rich here: not even a wrap at 80 columns in a log file
            self.console.file.write(msg + "\n")
            self.console.file.flush()

    @contextlib.contextmanager
    def building(self, sha: str, estimate: tuple[float, str]):
        """While one build runs; yields the callback told each build step's name."""
        line = BuildLine(sha, estimate)
        if self.quiet:
            yield line.set_step
        elif not self.live:
            def plain(name: str) -> None:
                line.set_step(name)
                self.say(f"  {line.text()}")
            yield plain
        else:
            with self.console.status(line):
                yield line.set_step


class StepLines:
    """One line per decision (PolicyEvents.on_step), with the window it leaves."""

    def __init__(self, progress: Progress, commits: list, find_fix: bool,
                 subject: Callable[[str], str], clock: Callable[[], float] = time.monotonic):
        self.progress, self.commits, self.find_fix = progress, list(commits), find_fix
        self.subject, self.clock = subject, clock
        self.t0 = clock()
        self.k = 0
        self.verdicts: dict[int, Verdict] = {}

    def __call__(self, rec) -> None:
        if rec.index is not None:
            self.verdicts[rec.index] = rec.verdict
        if rec.new_cycles == 0 and rec.phase == "search":
            # a decision replayed from the store (a resume, or the search run again after
            # the calibration): the policy's trace says so; it is not a step of work
            return
        self.k += 1
        w = window(len(self.commits), self.verdicts, self.find_fix)
        closing = _CLOSING.get(rec.phase, _CLOSING_STEPS)
        left = (0 if rec.phase in _CLOSING else w.steps_left) + closing
        per_step = (self.clock() - self.t0) / self.k
        self.progress.say(step_line(self.k, self.k + left, rec.phase, str(rec.commit),
                                    self.subject(rec.commit), rec.index, len(self.commits),
                                    rec.verdict, rec.cycles, rec.hits, w.commits,
                                    per_step * left if left else None))


class PolicyEvents(Handler):
    """The policy's events in a command (policy.Handler): each cycle persists the store;
    each decision, when `steps` is given, is kept there (the state: `afpbisect status` reads
    it while the run goes on), persisted and shown as a step line; each trace line is shown
    live when there is a console."""

    def __init__(self, progress: Progress | None, persist: Callable[[], None],
                 steps: list | None = None, lines: StepLines | None = None):
        self.progress, self.persist, self.steps, self.lines = progress, persist, steps, lines

    def on_cycle(self, commit, ev) -> None:
        self.persist()

    def on_step(self, rec) -> None:
        if self.steps is None:
            return
        self.steps.append(rec.to_dict())
        self.persist()
        if self.lines is not None:
            self.lines(rec)

    def on_trace(self, line: str) -> None:
        if self.progress is not None:
            self.progress.trace(line)
