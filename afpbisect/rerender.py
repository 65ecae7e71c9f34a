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
import json
from pathlib import Path

from .report import FORMATS, redact, write_atomic, write_command_reports


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


def rerender(src: Path, out: Path, stem: str | None = None, prefixes: dict | None = None, **made) -> dict:
    result = json.loads(Path(src).read_text())
    if result.get("command") not in FORMATS:
        raise SystemExit(f"{src}: a {result.get('command')!r} result; only {', '.join(FORMATS)} re-render")
    result = backfill_made(result, **made)
    result = redact({k: v for k, v in result.items() if k != "reports"}, prefixes or {})
    written = write_command_reports(Path(out), stem or Path(src).stem, result)
    # The JSON names its sibling reports by file name only: the directory it was written to
    # is this machine's too.
    names = {k: Path(v).name for k, v in written["reports"].items()}
    write_atomic(Path(written["reports"]["json"]),
                 json.dumps(dict(written, reports=names), indent=1, sort_keys=True, default=str) + "\n")
    return written


def _pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old:
        raise argparse.ArgumentTypeError(f"--redact wants PREFIX=REPLACEMENT, not {text!r}")
    return old, new


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m afpbisect.rerender", description=__doc__.splitlines()[0])
    ap.add_argument("result", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--stem")
    ap.add_argument("--redact", type=_pair, action="append", default=[], metavar="PREFIX=REPLACEMENT")
    ap.add_argument("--date")
    ap.add_argument("--cores", type=int)
    ap.add_argument("--hostname")
    a = ap.parse_args(argv)
    res = rerender(a.result, a.out, a.stem, dict(a.redact), date=a.date, cores=a.cores, hostname=a.hostname)
    for path in res["reports"].values():
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
