"""The console entry point (`afpbisect`, `python -m afpbisect`): signals first, then the
heavy imports.

Importing the CLI (click, docker-py, requests, GitPython, jinja2, rich) takes most of a
second. A Ctrl-C meanwhile met Python's default handler and printed a 24-line traceback
from inside some import (issue 25); a SIGTERM killed the process without a word. So the
handler that turns a signal into errors.Interrupted (one line, exit 128+N) is installed
here, before anything heavy is imported; only the standard library and errors.py are
loaded by then.
"""
from __future__ import annotations

import signal
import sys

from afpbisect.core.errors import Interrupted, raise_interrupt


def main() -> None:
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, raise_interrupt)
    from afpbisect import stdio
    stdio.install()   # our stdout's EPIPE is never a Docker transport's (stdio.py)
    try:
        from afpbisect.cli import main as cli_main
    except Interrupted as exc:
        # Nothing was started yet, so nothing is to resume: just say so.
        sys.stderr.write(f"afpbisect: interrupted ({exc}) while starting\n")
        sys.exit(exc.exit_code)
    stdio.run(cli_main)
