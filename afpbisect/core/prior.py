"""The prior: where the culprit probably is, as mass over the range (issue 18).

Half the mass is spread evenly over every commit, half over the *suspects*: the commits
that touch a suspect path. Suspect paths come from the scenario and the user:
- the files where the signature's text is produced (a literal fragment of the hit rule,
  `git grep`ped in the racy endpoint's tree: `sending packet failed` is in
  src/source-af-packet.c);
- the files the scenario's test patches touch (the widener patches the race's code);
- `--suspect PATH` (like `git bisect start -- PATH`, but sound: the other commits keep
  half the mass, so a wrong guess costs a few probes, never the answer).

Why half: every commit keeps at least 1/(2(n-1)) of the mass, so the weighted search
needs at most about log2(2(n-1)) + 2 probes for any culprit, about 3 more than plain
bisection's log2(n-1) (bench/plan.py measures it on the real range, prior right and
wrong), while a right prior over s suspects needs about log2(2s) + 2.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import git

try:                        # the regex parser moved in 3.11
    from re import _parser as _sre_parse   # type: ignore[attr-defined]
except ImportError:         # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse         # type: ignore[no-redef]

SUSPECT_SHARE = 0.5
MIN_FRAGMENT = 12   # shorter literals (": ", "socket") match everywhere and say nothing


@dataclass(frozen=True)
class Prior:
    weights: list                       # mass of each index being the first bad one
    suspects: list                      # indexes of the commits that touch a suspect path
    paths: dict = field(default_factory=dict)   # suspect path -> why it is one

    def to_dict(self) -> dict:
        return {"suspects": len(self.suspects), "suspect_share": SUSPECT_SHARE if self.suspects else 0.0,
                "paths": dict(self.paths)}


def literal_fragments(pattern: str) -> list[str]:
    """The literal runs of a regex that are long enough to grep for, longest first.

    Digits and format-like separators end a run: a log line's numbers come from `%d`
    in the source, so "socket 0" must not be searched as written."""
    runs, cur = [], []
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error:
        return []
    for op, arg in parsed:
        if op is _sre_parse.LITERAL:
            ch = chr(arg)
            if ch.isdigit():
                runs.append("".join(cur))
                cur = []
            else:
                cur.append(ch)
        else:
            runs.append("".join(cur))
            cur = []
    runs.append("".join(cur))
    frags = {r.strip(" :;,.-") for r in runs}
    return sorted((f for f in frags if len(f) >= MIN_FRAGMENT), key=lambda f: (-len(f), f))


def touches(files: set, path: str) -> bool:
    """git's pathspec for a plain path: the file itself or anything under the directory."""
    path = path.rstrip("/")
    return path in files or any(f.startswith(path + "/") for f in files)


def weigh(touched: list, paths: dict) -> Prior:
    """The prior over indexes 0..n-1 (`touched[i]`: the files commit i changes). Index 0
    is the old endpoint and cannot be the answer: it gets no mass."""
    n = len(touched)
    suspects = [i for i in range(1, n) if any(touches(touched[i], p) for p in paths)]
    base = (1.0 - SUSPECT_SHARE) if suspects else 1.0
    weights = [0.0] + [base / max(1, n - 1)] * (n - 1)
    for i in suspects:
        weights[i] += SUSPECT_SHARE / len(suspects)
    return Prior(weights, suspects, dict(paths))


# --- from the repository ----------------------------------------------------------------

def touched_files(repo, commits: list) -> list:
    """The files each commit changes against its first parent (one `git log` for all)."""
    if len(commits) < 2:
        return [set() for _ in commits]
    out = repo.git.log("--first-parent", "--no-renames", "--format=%x00%H", "--name-only",
                       f"{commits[0]}..{commits[-1]}")
    files: dict = {}
    for block in out.split("\x00")[1:]:
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if lines:
            files[lines[0]] = set(lines[1:])
    return [files.get(c, set()) for c in commits]


def suspect_paths(repo, sha: str, fragments: list, patch_files, user_paths) -> dict:
    """Suspect path -> why: where the signature's text is produced in `sha`'s tree, the
    files the test patches touch, and the user's `--suspect` paths."""
    paths: dict = {}
    for frag in fragments:
        try:
            hits = repo.git.grep("-l", "-F", "-e", frag, sha, "--", "src").splitlines()
        except git.GitCommandError:   # git grep exits 1 when nothing matches
            hits = []
        for h in hits:
            paths.setdefault(h.split(":", 1)[1], f'produces "{frag}"')
    for f in patch_files:
        paths.setdefault(f, "touched by a test patch")
    for p in user_paths:
        paths[p] = "--suspect"
    return paths


def for_range(repo, commits: list, racy: str, patterns: list, patch_files, user_paths) -> Prior:
    """The prior of a bisection of `commits` (oldest first); `racy` is the endpoint whose
    tree is searched for the signature's text."""
    fragments = [f for p in patterns for f in literal_fragments(p)]
    paths = suspect_paths(repo, racy, fragments, patch_files, user_paths)
    return weigh(touched_files(repo, commits), paths)
