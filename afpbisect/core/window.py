"""Pure: the window a bisection has left, from the verdicts it has given so far.

The search (search.py, policy) keeps its own bounds while it runs; the live progress and
`afpbisect status` only see the verdicts (StepRecords as they come, or the evidence in a
state file), and need the same answer git bisect gives: the commits after the last one
on the old side and up to the first one on the new side.  Verdicts are in race terms
(BAD = race seen), as everywhere: in find-fix mode the old side is the racy one."""
from __future__ import annotations

import math
from dataclasses import dataclass

from afpbisect.core.verdict import Verdict


@dataclass(frozen=True)
class Window:
    last_old: int    # index of the newest commit known on the old side (0 when none)
    first_new: int   # index of the oldest commit known on the new side (n - 1 when none)

    @property
    def commits(self) -> int:
        """Commits the answer can still be: (last_old, first_new]."""
        return self.first_new - self.last_old

    @property
    def steps_left(self) -> int:
        """Search steps a plain bisection still needs (git bisect's "roughly K steps")."""
        return math.ceil(math.log2(self.commits)) if self.commits > 1 else 0


def window(n: int, verdicts: dict[int, Verdict], find_fix: bool = False) -> Window:
    """The window over indexes 0..n-1 given `verdicts` (index -> Verdict; SKIP and other
    verdicts say nothing about the side).  A commit on the old side beyond the first on
    the new side (a false GOOD caught later) does not move the window past the new one."""
    old, new = (Verdict.BAD, Verdict.GOOD) if find_fix else (Verdict.GOOD, Verdict.BAD)
    first_new = min((i for i, v in verdicts.items() if v is new and 0 <= i < n), default=n - 1)
    last_old = max((i for i, v in verdicts.items() if v is old and 0 <= i < first_new), default=0)
    return Window(last_old, first_new)
