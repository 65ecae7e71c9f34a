"""Refs and ranges: what the user typed -> commits, oldest first.

Users write `v7.0.0` and `master`; upstream Suricata tags `suricata-7.0.0` and renamed
`master` to `main`.  We accept both and say which one we used.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import git

from afpbisect.core.errors import UsageError, one_line

_VERSION = re.compile(r"^v(\d+\.\d+\.\d+.*)$")


@dataclass(frozen=True)
class Resolved:
    typed: str
    name: str      # the ref actually used
    sha: str
    note: str = ""  # "v7.0.0 -> suricata-7.0.0" when we translated


def _rev(repo: git.Repo, name: str) -> str | None:
    try:
        return repo.git.rev_parse("--verify", "--quiet", f"{name}^{{commit}}").strip() or None
    except git.GitCommandError:
        return None


def candidates(name: str) -> list[str]:
    """Names to try for what the user typed, in order."""
    out = [name]
    m = _VERSION.match(name)
    if m:
        out.append(f"suricata-{m.group(1)}")
    if name == "master":
        out.append("main")
    if name.startswith("origin/"):
        out.append(name[len("origin/"):])
    return out


def resolve(repo: git.Repo, name: str) -> Resolved:
    for cand in candidates(name):
        sha = _rev(repo, cand)
        if sha:
            note = f"{name} does not exist; using {cand}" if cand != name else ""
            return Resolved(typed=name, name=cand, sha=sha, note=note)
    tried = " or ".join(one_line(c) for c in candidates(name))   # raw, an ESC reached the terminal
    raise UnknownRef(f"unknown ref {name!r} (tried {tried}); list tags with `git tag -l 'suricata-*'`")


class UnknownRef(UsageError):
    """No such ref in our clone (the caller may fetch once and ask again)."""


def split_range(text: str) -> tuple[str, str]:
    if ".." not in text or text.count("..") != 1 or "..." in text:
        raise UsageError(f"range {text!r} must be GOOD..BAD, e.g. v7.0.0..v8.0.3")
    good, bad = text.split("..")
    if not good or not bad:
        raise UsageError(f"range {text!r} must name both ends, e.g. v7.0.0..v8.0.3")
    return good, bad


@dataclass(frozen=True)
class Range:
    good: Resolved
    bad: Resolved
    commits: tuple[str, ...]   # good endpoint first, then good..bad oldest first (bad last)

    def position(self, sha: str) -> int:
        """1-based position in `git rev-list --reverse good..bad` (the good endpoint is 0)."""
        return self.commits.index(sha)


def commit_range(repo: git.Repo, good_name: str, bad_name: str, old_is_bad: bool = False) -> Range:
    """Commits of GOOD..BAD for bisection.

    With `old_is_bad` (fix bisection) the old end is the racy one; the ancestry rule is the
    same: the old end must be an ancestor of the new end.
    """
    good, bad = resolve(repo, good_name), resolve(repo, bad_name)
    old_label, new_label = ("BAD", "GOOD") if old_is_bad else ("GOOD", "BAD")
    if good.sha == bad.sha:
        raise UsageError(f"empty range: {good_name} and {bad_name} are the same commit")
    try:
        repo.git.merge_base("--is-ancestor", good.sha, bad.sha)
    except git.GitCommandError:
        raise UsageError(f"{old_label} {good_name} is not an ancestor of {new_label} {bad_name}; "
                         f"swap them or pick an older {old_label}") from None
    # --first-parent keeps the list a chain, so "first bad" is well defined even across
    # merges; Suricata's 7.0.0..8.0.3 is linear, where this equals git bisect's own set.
    out = repo.git.rev_list("--reverse", "--first-parent", f"{good.sha}..{bad.sha}").split()
    if not out:
        raise UsageError(f"empty range {good_name}..{bad_name}: no commits between them")
    return Range(good=good, bad=bad, commits=(good.sha, *out))


def short(sha: str) -> str:
    return sha[:10]
