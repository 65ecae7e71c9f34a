"""Our own stdout and stderr, told apart from a Docker transport's pipe (the tour of
2026-12-04).

A BrokenPipeError is a ConnectionError, the type docker-py's ssh transport raises when its
ssh goes away (machinery/engine.TRANSPORT_ERRORS): one raised by `afpbisect status | head -0`
read as "lost the Docker engine", exit 3, and click took one outside a command for a
verdict's exit 1.  So sys.stdout is wrapped: an OSError writing it (EPIPE, EBADF, ENOSPC)
becomes OutputClosed, a BaseException no handler of an engine's errors catches, and the
process exits outcome.OUTPUT_CLOSED (141).  A failed write to sys.stderr is dropped: the
message is lost either way, and the exit code (2 for a usage error) still says it.
"""
from __future__ import annotations

import os
import sys

from afpbisect.core.outcome import OUTPUT_CLOSED


class OutputClosed(BaseException):
    """Our stdout cannot be written.  Not an Exception (like errors.Interrupted): no
    `except Exception` or `except OSError` on the way up takes it for its own failure."""

    exit_code = OUTPUT_CLOSED


class _Guarded:
    """A text stream whose write errors are OutputClosed (stdout) or dropped (stderr).  No
    `buffer` attribute: click then writes through this object, never around it."""

    def __init__(self, stream, drop: bool):
        self._stream = stream
        self._drop = drop
        self._broken = False

    def _do(self, fn, *a):
        if self._broken and self._drop:
            return 0
        try:
            return fn(*a)
        except (OSError, ValueError) as exc:   # ValueError: write to a closed file
            self._broken = True
            if self._drop:
                return 0
            raise OutputClosed(f"stdout: {exc}") from None

    def write(self, s):
        return self._do(self._stream.write, s)

    def writelines(self, lines):
        return self._do(self._stream.writelines, lines)

    def flush(self):
        return self._do(self._stream.flush)

    def __getattr__(self, name):
        if name == "buffer":
            raise AttributeError(name)
        return getattr(self._stream, name)


class _Closed:
    """Stands for a stdout that was closed before we started (`>&-`): Python then has none,
    and print() dropped the answer without a word (exit 0). Writing to it is OutputClosed."""

    def write(self, s):
        if s:
            raise OutputClosed("stdout is closed")
        return 0

    def flush(self):
        return None


def install() -> None:
    """Wrap sys.stdout and sys.stderr (once); a closed stderr (None) stays None, a closed
    stdout fails on its first write."""
    if sys.stdout is None:
        sys.stdout = _Closed()
    elif not isinstance(sys.stdout, (_Guarded, _Closed)):
        sys.stdout = _Guarded(sys.stdout, drop=False)
    if sys.stderr is not None and not isinstance(sys.stderr, _Guarded):
        sys.stderr = _Guarded(sys.stderr, drop=True)


def output_closed_exit() -> None:
    """Exit OUTPUT_CLOSED without a word on stdout: fd 1 goes to /dev/null first, so that
    the interpreter's last flush of what is buffered has somewhere to go."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    except OSError:
        pass
    raise SystemExit(OUTPUT_CLOSED)


def run(main) -> None:
    """Call `main` with our streams guarded; a closed stdout ends it with OUTPUT_CLOSED."""
    install()
    try:
        try:
            rv = main()
        finally:   # what is still buffered, while OutputClosed can still be told apart
            if sys.stdout is not None:
                sys.stdout.flush()
    except OutputClosed:
        output_closed_exit()
    if rv is not None:
        raise SystemExit(rv)
