"""Re-render a saved result's reports from its JSON (issue 19), machine paths redacted.

    python3 -m afpbisect.rerender RESULT.json --out DIR [--stem NAME]
        [--redact /their/workdir=WORKDIR ...] [--date ISO] [--cores N] [--hostname NAME]

Why: the committed examples under docs/results/ were made before the reports had HTML,
JUnit or a "how it was made" block, and they carried the paths of the machine that ran
them.  A result JSON holds everything the templates need (report.render_context), so
they can be made again, and the facts not recorded then (date, cores) given by hand and
marked as such.  Only for saved `run` and `verify-patch` results."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import jinja2

from afpbisect.core.errors import UsageError
from afpbisect.core.outcome import Outcome
from afpbisect.core.state import read_json
from afpbisect.reports.report import (
    FORMATS,
    redact,
    rendered,
    write_atomic,
    write_command_reports,
)
from afpbisect.reports.results import RunResult, VerifyResult, result_from_dict

# What a result of the wrong shape raises in backfill_made or a template (issue 25).
# OverflowError: a number too large for a float (10**400 as a size or a time, second tour)
_SHAPE_ERRORS = (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError,
                 jinja2.TemplateError)


def backfill_made(result: dict, date: str | None = None, cores: int | None = None,
                  hostname: str | None = None) -> dict:
    """A result saved before reports recorded how they were made gets a "made" block from
    what the result itself says, plus what the caller states, with a note saying so."""
    if result.get("made"):
        return result
    s = result.get("settings", {})
    options = {"repo": result.get("repo"), "scenario": result["scenario"]["name"],
               "pairs": s.get("pairs"), "threads": s.get("threads"), "env": s.get("env"),
               "confidence": s.get("confidence"), "command": result["command"]}
    made = {"date": date, "tool_version": result.get("afpbisect"),
            "host": {"hostname": hostname, "cores": cores}, "options": options,
            "note": "re-rendered from a result saved before reports recorded how they were made; "
                    "date and host as stated when re-rendering"}
    return dict(result, made=made)


def load_result(src: Path) -> dict:
    """A saved `run` or `verify-patch` result, or UsageError naming the file."""
    src = Path(src)
    if not os.path.lexists(src):
        raise UsageError(f"{src}: no such file")
    if not src.is_file():
        raise UsageError(f"{src}: not a regular file")
    # Regular files only, no NaN/Infinity, no nesting past the parser's recursion, no
    # integer past 4300 digits: each one line (state.read_json).
    result = read_json(src, lambda why: UsageError(f"{src}: not a JSON result ({why})"))
    if not isinstance(result, dict):
        raise UsageError(f"{src}: not a saved run or verify-patch result (not a JSON object)")
    command = result.get("command")
    if not isinstance(command, str) or command not in FORMATS:
        raise UsageError(f"{src}: a {str(command)[:60]!r} result; only {', '.join(FORMATS)} re-render")
    return result


def _stem(text: str) -> str:
    """--stem: a file name, never a path: the reports go in --out and nowhere else."""
    if (not text or text in (".", "..") or "/" in text or "\0" in text
            or any(ord(c) < 32 for c in text) or len(text.encode()) > 200):
        raise argparse.ArgumentTypeError(f"--stem wants a file name (no '/'), not {text!r}")
    return text


def _out(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("--out: empty path")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise argparse.ArgumentTypeError(f"--out: a control character in {text!r}")
    return Path(text)


def _cores(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 100_000:
        raise argparse.ArgumentTypeError(f"--cores wants a positive number of cores, not {text!r}")
    return n


def _date(text: str) -> str:
    try:
        datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--date wants an ISO date (2026-12-01 or "
                                         f"2026-12-01T10:00:00+00:00), not {text!r}") from None
    return text


def _prepared(src: Path, result: dict, stem: str, prefixes: dict, made: dict) -> RunResult | VerifyResult:
    """The result to write, typed and rendered once in memory first: a result of the wrong
    shape is one error before anything is written to --out."""
    try:
        result = backfill_made(result, **made)
        typed = result_from_dict(redact({k: v for k, v in result.items() if k != "reports"}, prefixes))
        formats = FORMATS[typed.command]
        probe = replace(typed, reports={"json": f"{stem}.json",
                                        **{k: f"{stem}{ext}" for k, (ext, _t) in formats.items()}})
        for _format, _text in rendered(probe, formats):
            pass
    except _SHAPE_ERRORS as exc:
        raise UsageError(f"{src}: does not have the shape of a saved {result.get('command')} result "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    return typed


def rerender(src: Path, out: Path, stem: str | None = None, prefixes: dict | None = None,
             **made) -> RunResult | VerifyResult:
    stem = stem or Path(src).stem
    result = _prepared(Path(src), load_result(src), stem, prefixes or {}, made)
    written = write_command_reports(Path(out), stem, result)
    # The JSON names its sibling reports by file name only: the directory it was written to
    # is this machine's too.
    names = {k: Path(v).name for k, v in written.reports.items()}
    write_atomic(Path(written.reports["json"]),
                 json.dumps(replace(written, reports=names).to_dict(), indent=1, sort_keys=True,
                            default=str) + "\n")
    return written


def _pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old:
        raise argparse.ArgumentTypeError(f"--redact wants PREFIX=REPLACEMENT, not {text!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):   # written into every report (fourth tour)
        raise argparse.ArgumentTypeError(f"--redact {text!r} holds a control character")
    return old, new


def _hostname(text: str) -> str:
    if any(ord(c) < 32 or ord(c) == 127 for c in text):   # written into every report (fifth tour)
        raise argparse.ArgumentTypeError(f"--hostname {text!r} holds a control character")
    return text


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """Bad arguments: one line and exit 2, like every afpbisect command."""
        print(f"rerender: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(Outcome.USAGE.exit_code)


def main(argv=None) -> int:
    ap = _Parser(prog="python3 -m afpbisect.rerender", description=__doc__.splitlines()[0])
    ap.add_argument("result", type=Path)
    ap.add_argument("--out", type=_out, required=True)
    ap.add_argument("--stem", type=_stem)
    ap.add_argument("--redact", type=_pair, action="append", default=[], metavar="PREFIX=REPLACEMENT")
    ap.add_argument("--date", type=_date)
    ap.add_argument("--cores", type=_cores)
    ap.add_argument("--hostname", type=_hostname)
    a = ap.parse_args(argv)
    try:
        res = rerender(a.result, a.out, a.stem, dict(a.redact), date=a.date, cores=a.cores, hostname=a.hostname)
    except UsageError as exc:
        print(f"rerender: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:   # --out not a directory we can write
        print(f"rerender: error: cannot write the reports to --out {a.out} ({exc.strerror or exc})", file=sys.stderr)
        return Outcome.USAGE.exit_code
    for path in res.reports.values():
        print(path)
    return Outcome.DONE.exit_code


if __name__ == "__main__":
    from afpbisect import stdio
    stdio.run(main)
