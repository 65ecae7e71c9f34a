"""Reports: the JSON result (machine-readable, the contract for scripts) and the human
ones rendered from jinja2 templates in afpbisect/templates/."""
from __future__ import annotations

import datetime as dt
import glob
import json
import os
from pathlib import Path

import jinja2

from . import TEMPLATES_DIR


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True,
                             autoescape=jinja2.select_autoescape(["html", "xml"]))
    env.filters["short"] = lambda s: (s or "")[:10]
    env.filters["pct"] = _pct
    env.filters["secs"] = _secs
    env.filters["basename"] = lambda p: Path(str(p)).name
    return env


def _pct(x) -> str:
    """Percent with enough digits that 99.97% never prints as 100.0%."""
    if x is None:
        return "-"
    digits = 3 if 0 < x < 0.01 or 0.999 <= x < 1 else 2 if 0.99 <= x < 0.999 else 1
    return f"{100 * x:.{digits}f}%"


def _secs(x) -> str:
    if x is None:
        return "-"
    x = float(x)
    return f"{x:.0f}s" if x < 120 else f"{x // 60:.0f}m{x % 60:02.0f}s"


def render(template: str, **ctx) -> str:
    return _env().get_template(template).render(**ctx)


def write_atomic(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def keep_previous(out_dir: Path, stem: str) -> list[Path]:
    """Move the files an earlier run wrote as <stem>.* into out_dir/previous/, named by that
    run's time, and return their new paths.

    Why: the same command again (a resume, --restart, the next night) writes the same stem,
    and a report is evidence: a cold run's wall time and steps must survive a re-run that
    hits every cache (it did not, once, and had to be rebuilt from a terminal's scrollback).
    """
    out_dir = Path(out_dir)
    old = sorted(f for f in out_dir.glob(f"{glob.escape(stem)}.*") if f.is_file() and not f.name.endswith(".tmp"))
    if not old:
        return []
    anchor = out_dir / f"{stem}.json"
    when = (anchor if anchor in old else old[0]).stat().st_mtime
    tag = dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    keep = out_dir / "previous"
    keep.mkdir(parents=True, exist_ok=True)

    def dests(n: int) -> list[Path]:   # <stem>-<time>[-n].<ext>, the extension kept
        return [keep / f"{stem}-{tag}{f'-{n}' if n else ''}{f.name[len(stem):]}" for f in old]

    n = 0
    while any(d.exists() for d in dests(n)):
        n += 1   # two runs within one second: never overwrite the earlier copy either
    moved = dests(n)
    for f, d in zip(old, moved):
        os.replace(f, d)
    return moved


def write_reports(out_dir: Path, stem: str, result: dict, template: str) -> dict:
    """Write <stem>.json and <stem>.md (an earlier run's go to previous/, see keep_previous);
    return their paths (also recorded in the result)."""
    out_dir = Path(out_dir)
    keep_previous(out_dir, stem)
    paths = {"json": str(out_dir / f"{stem}.json"), "markdown": str(out_dir / f"{stem}.md")}
    result = dict(result, reports=paths)
    write_atomic(Path(paths["json"]), json.dumps(result, indent=1, sort_keys=True, default=str) + "\n")
    write_atomic(Path(paths["markdown"]), render(template, r=result))
    return result
