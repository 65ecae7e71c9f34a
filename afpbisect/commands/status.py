"""`afpbisect status`: the bisections of a workdir, finished or not, read from their state.

For each state file: the command, what it is about (range or target, scenario), whether a
live run holds the workdir, and for a bisection the window left and the steps done.  The
window comes from the stored verdicts over the ordered commits (window.py, the rule the
live progress uses too); ordering them needs the workdir's clone, opened read-only: status
creates, locks and changes nothing."""
from __future__ import annotations

from pathlib import Path

import git

from afpbisect.core.dirs import Layout
from afpbisect.core.errors import AfpError, StateError, UsageError
from afpbisect.core.refs import commit_range
from afpbisect.core.state import State, WorkdirLock
from afpbisect.core.verdict import Verdict
from afpbisect.core.window import window
from afpbisect.machinery.worktree import clone_dir


def collect(lay: Layout) -> dict:
    """Everything `status` says, as data (its --json)."""
    if not lay.workdir.is_dir() and not lay.state.is_dir():
        return {"workdir": str(lay.workdir), "state_dir": str(lay.state), "live": None, "runs": []}
    holder = WorkdirLock(lay.workdir).holder() if lay.workdir.is_dir() else None
    # lstat: a dangling link or a FIFO is listed as unreadable (describe), never a crash.
    paths = sorted(lay.state.glob("*.json"), key=_mtime) if lay.state.is_dir() else []
    runs = [describe(p, lay.workdir) for p in paths]
    if holder is not None and runs:
        # The lock says which process, not which state: the one it wrote last is its own.
        runs[-1]["live"] = True
    return {"workdir": str(lay.workdir), "state_dir": str(lay.state), "live": holder, "runs": runs}


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except OSError:   # gone meanwhile
        return 0.0


def describe(path: Path, workdir: Path) -> dict:
    """One state file's facts; an unreadable one is {"file", "live", "error"} (status is an
    overview: one bad file must not hide the other bisections, issue 25)."""
    out = {"file": str(path), "live": False}
    try:
        facts = _facts(State.load(path), dict(out), workdir)
        _render_run(facts)   # what is listed must also print
    except StateError as exc:
        return {**out, "error": str(exc)}
    except (AttributeError, TypeError, KeyError, ValueError, IndexError) as exc:
        # State.load checks the tables the commands index into; a hand-edited file can
        # still hold a number where status reads a name.
        return {**out, "error": f"state file {path} has an unexpected shape ({type(exc).__name__}: {exc})"}
    return facts


def _facts(st: State, out: dict, workdir: Path) -> dict:
    about = st.data.get("about", {})
    ident = st.identity
    out.update(command=ident.get("command", st.kind), finished="result" in st.data,
               scenario=about.get("scenario") or str(ident.get("scenario", ""))[:12],
               cycles=sum(e.get("cycles", 0) for e in st.data.get("evidence", {}).values()))
    if st.kind == "run":
        out.update(_run_facts(st, workdir))
    elif st.kind == "verify":
        out.update(target=about.get("target") or ident.get("target"), patches=about.get("patches", []),
                   evidence=_evidence_rows(st.data.get("evidence", {})))
    elif st.kind == "nightly":
        out.update(refs={name: t.get("last_good") for name, t in st.data.get("refs", {}).items()},
                   evidence=_evidence_rows(st.data.get("evidence", {})))
    return out


def _evidence_rows(evidence: dict) -> list[dict]:
    return [{"key": k, "verdict": e.get("verdict"), "cycles": e.get("cycles", 0), "hits": e.get("hits", 0)}
            for k, e in evidence.items()]


def _run_facts(st: State, workdir: Path) -> dict:
    ident, about = st.identity, st.data.get("about", {})
    good, bad, find_fix = ident.get("good", ""), ident.get("bad", ""), bool(ident.get("find_fix"))
    facts = {"mode": "find-fix" if find_fix else "first-bad",
             "range": f"{about.get('good') or good[:10]}..{about.get('bad') or bad[:10]}",
             "good": good, "bad": bad, "steps": st.data.get("steps", []), "window": None}
    if not facts["steps"]:   # a state from before issue 19 keeps only the evidence
        facts["evidence"] = _evidence_rows(st.data.get("evidence", {}))
    try:
        commits = range_commits(workdir, ident.get("repo", ""), good, bad, find_fix)
    except (AfpError, git.GitError, ValueError) as exc:
        facts["window_unknown"] = f"cannot list the range's commits: {str(exc).splitlines()[0][:200]}"
        return facts
    facts["window"] = stored_window(commits, st.data.get("evidence", {}), find_fix)
    return facts


def range_commits(workdir: Path, repo: str, good: str, bad: str, find_fix: bool) -> list[str]:
    """The range's commits, oldest first, from the workdir's own clone (never cloned here)."""
    path = clone_dir(workdir, repo)
    if not (path / "HEAD").exists():
        raise UsageError(f"no clone of {repo} in {workdir}")
    return list(commit_range(git.Repo(path), good, bad, old_is_bad=find_fix).commits)


def stored_window(commits: list[str], evidence: dict, find_fix: bool) -> dict:
    """The window the stored verdicts leave over `commits` (window.window's rule)."""
    index = {c: i for i, c in enumerate(commits)}
    verdicts = {}
    for commit, ev in evidence.items():
        if commit in index and isinstance(ev, dict) and ev.get("verdict"):
            try:
                verdicts[index[commit]] = Verdict(ev["verdict"])
            except ValueError:
                continue
    w = window(len(commits), verdicts, find_fix)
    return {"last_old": commits[w.last_old], "last_old_index": w.last_old,
            "first_new": commits[w.first_new], "first_new_index": w.first_new,
            "commits": w.commits, "steps_left": w.steps_left, "size": len(commits) - 1}


def render(status: dict) -> list[str]:
    """The plain-text lines of `status`."""
    where = status["workdir"] + (f" (state in {status['state_dir']})"
                                 if not status["state_dir"].startswith(status["workdir"] + "/") else "")
    lines = [f"workdir {where}: " + (f"in use by {status['live']}" if status["live"] else "no live run")]
    if not status["runs"]:
        lines.append("no bisection state here")
    for r in status["runs"]:
        lines += _render_run(r)
    return lines


def _render_run(r: dict) -> list[str]:
    if "error" in r:
        return [f"{r['file']}: unreadable: {r['error']}"]
    what = {"run": r.get("range"), "verify-patch": r.get("target"), "nightly": ", ".join(r.get("refs", {}))}
    state = "running" if r["live"] else ("finished" if r["finished"] else "interrupted")
    head = (f"{r['command']} {what.get(r['command']) or ''} (scenario {r['scenario']}"
            f"{', ' + r['mode'] if r.get('mode') else ''}): {state}, {r['cycles']} cycle(s)")
    lines = [head, f"  state {r['file']}"]
    w = r.get("window")
    if w is not None:
        lines.append(f"  window [{w['last_old_index']}] {w['last_old'][:10]} .. [{w['first_new_index']}] "
                     f"{w['first_new'][:10]} of {w['size']}: {w['commits']} commit(s) left, "
                     f"~{w['steps_left']} search step(s)")
    elif r.get("window_unknown"):
        lines.append(f"  window unknown: {r['window_unknown']}")
    for s in r.get("steps", []):
        where = f" [{s['index']}]" if s.get("index") is not None else ""
        lines.append(f"  {s['phase']} {str(s['commit'])[:10]}{where}: {s['verdict'].upper()}, "
                     f"{s['cycles']} cycle(s), {s['hits']} hit(s)")
    for e in r.get("evidence", []):
        lines.append(f"  {e['key'][:60]}: {(e['verdict'] or 'undecided').upper()}, {e['cycles']} cycle(s), "
                     f"{e['hits']} hit(s)")
    return lines
