"""Reports: the JSON result (machine-readable, the contract for scripts) and the human
ones rendered from jinja2 templates in afpbisect/templates/."""
from __future__ import annotations

import datetime as dt
import glob
import json
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import jinja2

from afpbisect import TEMPLATES_DIR
from afpbisect.core.errors import write_failed
from afpbisect.core.percent import pct, pct_up
from afpbisect.reports.junit import run_cases, suite, verify_cases
from afpbisect.reports.plot import run_plot, verify_plot
from afpbisect.reports.results import Record, RunResult, VerifyResult


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True,
                             autoescape=_escaped)
    env.filters["short"] = lambda s: (s or "")[:10]
    env.filters["pct"] = pct
    env.filters["pct_up"] = pct_up   # a bound from above ("at most") is rounded up
    env.filters["secs"] = _secs
    env.filters["basename"] = lambda p: Path(str(p)).name
    env.globals["refs"] = resolved_refs
    return env


def resolved_refs(r: dict) -> list[tuple[str, dict]]:
    """(label, ref) for each ref a result's command resolved: what each name meant that day
    (a tag can move, `main` does every day)."""
    if r.get("command") == "run":
        return [("good", r["range"]["good"]), ("bad", r["range"]["bad"])]
    if r.get("command") == "verify-patch":
        return [("target", r["target"])]
    if isinstance(r.get("ref"), dict):
        return [("ref", r["ref"])]
    return []


def _escaped(name: str | None) -> bool:
    """HTML and XML templates escape what they insert (a commit subject or a log line may hold
    `<` or `&`).  jinja2's select_autoescape(["html", "xml"]) looked at the last extension,
    `.j2`, so it escaped nothing: a `>=` in the trace made the JUnit unreadable."""
    return bool(name) and name.endswith((".html.j2", ".xml.j2", ".html", ".xml"))


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
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:   # full disk: the earlier report stays, no half one beside it
        tmp.unlink(missing_ok=True)
        raise write_failed(path, exc) from None
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


def write_reports(out_dir: Path, stem: str, result: Record, template: str) -> Record:
    """Write <stem>.json and <stem>.md (an earlier run's go to previous/, see keep_previous);
    return the result with their paths (also recorded in its JSON)."""
    return _write(out_dir, stem, result, {"markdown": (".md", template)})


# What `run` and `verify-patch` write beside their JSON: (extension, template) per format.
FORMATS = {
    "run": {"markdown": (".md", "run.md.j2"), "html": (".html", "run.html.j2"),
            "junit": (".junit.xml", "junit-suite.xml.j2")},
    "verify-patch": {"markdown": (".md", "verify.md.j2"), "html": (".html", "verify.html.j2"),
                     "junit": (".junit.xml", "junit-suite.xml.j2")},
}


def write_command_reports(out_dir: Path, stem: str, result: RunResult | VerifyResult):
    """JSON, Markdown, HTML (with the plot) and JUnit of a `run` or `verify-patch` result."""
    return _write(out_dir, stem, result, FORMATS[result.command])


def render_context(result: Record) -> dict:
    """What the templates of a result's command need beyond the result: its plot and its
    JUnit suite.  Pure, so a saved result re-renders (afpbisect/rerender.py)."""
    if isinstance(result, RunResult):
        return {"plot": run_plot(result), "s": suite("afpbisect.run", run_cases(result), result)}
    if isinstance(result, VerifyResult):
        return {"plot": verify_plot(result), "s": suite("afpbisect.verify-patch", verify_cases(result), result)}
    return {}


def rendered(result: Record, formats: dict) -> Iterator[tuple[str, str]]:
    """(format, text) of each format, one at a time; the templates read the result's JSON
    form, the contract they render."""
    extra = render_context(result) if len(formats) > 1 else {}
    data = result.to_dict()
    for k, (_ext, template) in formats.items():
        yield k, render(template, r=data, **extra)


def _write(out_dir: Path, stem: str, result: Record, formats: dict) -> Record:
    out_dir = Path(out_dir)
    keep_previous(out_dir, stem)
    paths = {"json": str(out_dir / f"{stem}.json"),
             **{k: str(out_dir / f"{stem}{ext}") for k, (ext, _t) in formats.items()}}
    result = replace(result, reports=paths)
    write_atomic(Path(paths["json"]), json.dumps(result.to_dict(), indent=1, sort_keys=True, default=str) + "\n")
    for k, text in rendered(result, formats):
        write_atomic(Path(paths[k]), text)
    return result


def redact(obj, prefixes: dict[str, str]):
    """`obj` (a result: dicts, lists, strings) with every string's machine path prefixes
    replaced, longest first: committed example reports carry no paths of the machine that
    made them (issue 19).  E.g. {"/work/scratch/real/work": "WORKDIR"}."""
    order = sorted(((k.rstrip("/"), v) for k, v in prefixes.items() if k.rstrip("/")), key=lambda kv: -len(kv[0]))

    def one(x):
        if isinstance(x, str):
            return redact_text(x, order)
        if isinstance(x, dict):
            return {one(k): one(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [one(v) for v in x]
        return x
    return one(obj)


def redact_text(text: str, prefixes) -> str:
    """The same on free text (an old report's Markdown); `prefixes` a dict or (old, new) pairs."""
    pairs = prefixes.items() if isinstance(prefixes, dict) else prefixes
    for old, new in sorted(((k.rstrip("/"), v) for k, v in pairs if k.rstrip("/")), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    return text
