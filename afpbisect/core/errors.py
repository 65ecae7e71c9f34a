"""Error types and the exit codes they map to.

Infrastructure errors are their own type and never become a verdict (syzkaller's rule):
a build that fails is a SKIP, a Docker daemon that goes away is an InfraError.

Every error carries an `outcome.Outcome` and exits with its code: 2 for bad input, 3 for
anything else. Exit 1 is a verdict's only (race present, regression, a revert that does
not clear it); the base class used to exit 1, so an error nobody had classified read as
"race present" to a scheduler (issue 25).
"""
import signal

from afpbisect.core.outcome import Outcome, signal_exit_code


def one_line(text) -> str:
    """A message as one line: a newline or control byte in a value it echoes (a ref, a
    path) is escaped as repr escapes it (an ESC printed raw drives the terminal)."""
    text = str(text)
    if not any(ord(c) < 32 or ord(c) == 127 for c in text):
        return text
    return "".join(c if not (ord(c) < 32 or ord(c) == 127) else repr(c)[1:-1] for c in text)


class AfpError(Exception):
    """Base class; `outcome` says what the command ended with, `exit_code` follows from it."""

    outcome = Outcome.ERROR

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code


class UsageError(AfpError):
    """Bad input from the user: unknown ref, patch that does not apply, bad number..."""

    outcome = Outcome.USAGE


class InfraError(AfpError):
    """Docker unreachable, container killed, no start marker: not a verdict."""

    outcome = Outcome.ERROR


class WriteFailed(AfpError):
    """A file of the run (state, report) could not be written: a full disk, a quota, a
    filesystem gone read-only. The file written before is kept. Not an InfraError: the
    policy retries those (a build three times), and no retry makes room on a disk."""

    outcome = Outcome.ERROR


def write_failed(path, exc: OSError) -> WriteFailed:
    return WriteFailed(f"cannot write {path} ({exc.strerror or exc}); what was saved before is kept: "
                       "make room (or fix the filesystem) and run the same command again to resume")


class StateError(UsageError):
    """Corrupt, foreign or newer-version state file."""


class BuildFailure(AfpError):
    """A candidate did not build: the caller turns it into SKIP with `step` and `tail`."""

    def __init__(self, step: str, tail: str, log_path=None):
        super().__init__(f"build failed in step {step!r}")
        self.step = step
        self.tail = tail
        self.log_path = log_path


class Interrupted(BaseException):
    """SIGINT/SIGTERM: containers stopped, state kept, resumable. Exit 128 + the signal,
    as a shell reports it (130 for Ctrl-C, 143 for SIGTERM).

    Not an Exception (like KeyboardInterrupt, and parallel.Stopped): the handler raises it
    wherever the main thread is, and an `except Exception` around a git or Docker call
    there (prior's `git grep`, a best-effort cleanup) took it for that call's failure and
    the run went on building (issue 25)."""

    exit_code = signal_exit_code(signal.SIGINT)

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.exit_code = signal_exit_code(signum)


def raise_interrupt(signum, frame):
    """The SIGINT/SIGTERM handler of the CLI (entry.py, context.open_context)."""
    raise Interrupted(f"stopped by signal {signal.Signals(signum).name}", signum)
