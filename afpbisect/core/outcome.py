"""What a command ended with, and the exit code a scheduler reads (README, "Commands").

One table, so no exit code is picked from a string in two places: 0 is an answer that needs
no action, 1 a verdict that does (race present, regression, a revert that does not clear
it), 2 bad input, 3 no verdict (infrastructure, nothing testable); a signal is 128 + N
(errors.Interrupted, `signal_exit_code`). An error is never reported with the exit code of a
verdict. Every exit of the CLI, nightly, doctor and selftest reads its code from here.

`OUTPUT_CLOSED` (141, 128 + SIGPIPE, what a shell reports for a writer killed by a closed
pipe): our stdout could not be written (`afpbisect ... | head -0`, a full disk). Never 1
(not a verdict) and never 3 "lost the Docker engine" (the tour of 2026-12-04: click took it
for a verdict's exit 1, the guard for a Docker transport's broken pipe). A failed write to
stderr changes no exit code: a usage error still exits 2 with `2>&-` or `2>/dev/full`.
"""
from __future__ import annotations

import enum
import signal


class Outcome(enum.Enum):
    FOUND = ("found", 0)                        # run: the first bad (or fixed) commit
    CLEARED = ("cleared", 0)                    # verify-patch: the patch removes the race
    CLEAN = ("clean", 0)                        # nightly: the tip shows no race
    PRESENT = ("present", 1)                    # verify-patch: the race is still there
    REGRESSION = ("regression", 1)              # nightly: the race is on the tip
    REVERT_DISAGREES = ("revert-disagrees", 1)  # run --confirm-revert: reverting the culprit
                                                # does not remove the race
    UNDECIDED = ("undecided", 3)                # run, verify-patch: the proof needs more
                                                # cycles than --cycle-cap allows
    NO_ANSWER = ("no-answer", 3)                # run: not reproducible, endpoint unusable...
    NOT_REPRODUCED = ("not-reproduced", 3)      # verify-patch: no race without the patch
    BUILD_BROKEN = ("build-broken", 3)          # nightly: the tip cannot be built or run
    ERROR = ("error", 3)                        # infrastructure, or a deferred usage error
    USAGE = ("usage", 2)                        # bad input (errors.UsageError), said before
                                                # anything is touched
    SELFTEST_PASSED = ("selftest-passed", 0)    # selftest: the planted commit was named
    SELFTEST_FAILED = ("selftest-failed", 1)    # selftest: it was not
    READY = ("ready", 0)                        # doctor: every check passed
    NOT_READY = ("not-ready", 1)                # doctor: a check failed
    DONE = ("done", 0)                          # clean, status, scenarios, rerender: done

    def __init__(self, label: str, exit_code: int):
        self.label = label
        self.exit_code = exit_code

    @classmethod
    def of(cls, label: str) -> "Outcome":
        for o in cls:
            if o.label == label:
                return o
        raise ValueError(f"not an outcome: {label!r}")


def signal_exit_code(signum: int) -> int:
    """A run stopped by a signal exits 128 + N, as a shell reports it (130 Ctrl-C, 143 SIGTERM)."""
    return 128 + int(signum)


# Our stdout could not be written (afpbisect/stdio.py): 128 + SIGPIPE, as a shell reports it.
OUTPUT_CLOSED = signal_exit_code(signal.SIGPIPE)
