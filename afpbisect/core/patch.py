"""A patch file read and checked: which files it touches and where its hunks start.

Pure (the file's bytes, no git): the scenario checks its test patches with it when it is
loaded, before anything is cloned, and the build trees (machinery/worktree.py) apply them
and name the hunk that failed from it."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from afpbisect.core.errors import UsageError

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


@dataclass(frozen=True)
class Patch:
    path: Path
    files: tuple[str, ...]
    hunks: tuple[tuple[str, int, int], ...]   # (file, hunk number from 1, old start line)

    @property
    def name(self) -> str:
        return self.path.name

    def digest(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def load_patch(path: Path) -> Patch:
    """Read and validate a patch file; clear errors for missing or non-patch files.

    A patch is bytes: a comment in Latin-1 or a `git diff --binary` section is valid, and
    `git apply` reads the file itself, so only the headers are decoded here (undecodable
    bytes kept as surrogates, never an error)."""
    if not str(path).strip():   # Path('') is '.', and was shown so (fourth hostile tour)
        raise UsageError(f"patch file {str(path)!r}: empty path")
    path = Path(path)
    if not path.exists():
        raise UsageError(f"patch file {path} does not exist")
    if not path.is_file():
        raise UsageError(f"patch file {path} is not a regular file")
    files, hunks, binary = _scan(path.read_bytes().decode("utf-8", errors="surrogateescape"))
    if not files or not (hunks or binary):
        raise UsageError(f"{path} is not a patch (no ---/+++ file headers with @@ hunks, "
                         "no git binary patch)")
    return Patch(path=path.resolve(), files=tuple(files), hunks=tuple(hunks))


def load_patches(paths) -> list[Patch]:
    """The PATCHES of verify-patch, each loaded; one given twice is refused (it was applied
    twice and said "does not apply", after the clone; fourth hostile tour)."""
    loaded = [load_patch(p) for p in paths]
    seen = {}
    for given, patch in zip(paths, loaded):
        if patch.path in seen:
            raise UsageError(f"patch {given} is given twice (also as {seen[patch.path]})")
        seen[patch.path] = given
    return loaded


def _scan(text: str) -> tuple[list[str], list[tuple[str, int, int]], bool]:
    """(files, hunks as (file, number from 1, old start line), whether a binary section is in it)."""
    files, hunks, current, n, binary = [], [], None, 0, False
    for line in text.splitlines():
        if line.startswith("diff --git "):
            # a binary section has no +++ line: its file is named only here
            current, n = line.rsplit(" b/", 1)[-1], 0
        elif line.startswith("+++ "):
            target = line[4:].split("\t")[0]
            current = target[2:] if target.startswith(("b/", "a/")) else target
            files.append(current)
            n = 0
        elif line == "GIT binary patch" and current:
            files.append(current)
            binary = True
        elif (m := _HUNK.match(line)) and current:
            n += 1
            hunks.append((current, n, int(m.group(1))))
    return files, hunks, binary
