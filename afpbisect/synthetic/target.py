"""The synthetic target: a git repository holding a small C program with the start-up
mechanism of ticket 8667 and one planted bad commit.

The program (sources in `afpbisect/templates/synthetic/`) mirrors Suricata's
`src/source-af-packet.c`: one worker thread per (interface, thread index), a turn barrier
(`AFPPeersListWaitTurn` / `AFPPeersListReachedInc` / `AFPPeersListStarted`), per-thread
peers published by `AFPPeerUpdate()` (socket first, then state) and a capture loop that
forwards every frame with `sendto(SC_ATOMIC_GET(p->afp_v.peer->socket), ...)`.  It is built
and run under the same contracts as Suricata (docs/ARCHITECTURE.md): `./autogen.sh`,
`./configure --prefix=/usr/local`, `make`, `make install DESTDIR=/out` give
`/out/usr/local/bin/suricata`, which takes Suricata's command line, reads the `af-packet:`
section of suricata.yaml and prints Suricata's console lines.  The pipeline must not know
it is a fixture.

History: commit 0 (tag `suricata-1.0.0`) has the v7 order, where the barrier is bumped in
`ReceiveAFPLoop()` after `AFPCreateSocket()` returned, i.e. after the socket is published.
The planted commit makes exactly the change of upstream 923ad6af77 ("af-packet: speed up
thread sync during startup"): the bump moves into `AFPCreateSocket()` right after `bind()`,
before `AFPSetupRing()`, so `AFPSynchronizeStart()` can release a worker while its peer's
socket is still 0 and `sendto(0, ...)` fails with ENOTSOCK.  Every other commit is filler
(ChangeLog, doc, comments, version); commits listed in `broken_at` do not compile (a
missing semicolon in `src/util-misc.c`) and the next commit fixes them.  Two more planted
faults test that a cycle proves something only when the target really ran as an IPS
(issue 16), each undone by the next commit: at `exits_at` the program exits with an error
before "Engine started.", at `silent_at` it starts but `AFPWritePacket()` forwards nothing
(so it can never show the signature either).  A second kind of bug can be planted at
`option_bug_at`: "af-packet: validate block-size" with its test inverted, so that a
configuration with any page-aligned `block-size` makes the program exit at start with
`block-size N is not a multiple of the page size` -- a deterministic start-up error caused
by a configuration option, for the scenario tests (docs/scenarios.md, second example).  It
stays in every later commit; `git revert` of it is its fix.  The tip is tagged
`suricata-2.0.0`, branch `main`.

Determinism: authors, committers and dates come from the seed and are passed through the
environment with the user's git configuration switched off, so a (n_commits, bad_at,
broken_at, seed) tuple always gives the same shas.

The two fixes of the ticket are written as patches made with `git diff` against the tip:
fix A guards `AFPWritePacket()` on the peer's state, fix B moves the bump back after
`AFPSwitchState(ptv, AFP_STATE_UP)`.  Both apply after `patches/widener.patch`.

    python -m afpbisect.synthetic DEST [--commits N] [--bad-at K] [--broken-at I ...] [--seed S]

prints the planted sha.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from afpbisect.core.errors import UsageError
from afpbisect.synthetic.history import Tree, apply_step, load_templates, plan_history, render_tree
from afpbisect.synthetic.plant import AFP_SOURCE, apply_fix_a, apply_fix_b


GOOD_TAG = "suricata-1.0.0"
BAD_TAG = "suricata-2.0.0"
BRANCH = "main"


_BASE_EPOCH = 1704067200  # 2024-01-01T00:00:00Z

_PEOPLE = (
    ("Alice Maintainer", "alice@example.org"),
    ("Bob Developer", "bob@example.org"),
    ("Carol Reviewer", "carol@example.org"),
    ("Dan Packager", "dan@example.org"),
    ("Erin Tester", "erin@example.org"),
)


@dataclass(frozen=True)
class SyntheticRepo:
    """What `make_synthetic_repo` made.  `commits` is oldest first; commits[0] is `good_ref`,
    commits[-1] is `bad_ref` (and branch `main`)."""

    path: Path
    commits: list[str]
    planted: str
    good_ref: str
    bad_ref: str
    fixA_patch: Path
    fixB_patch: Path
    broken: list[str]
    planted_index: int = 0
    broken_indexes: tuple[int, ...] = ()
    seed: int = 0
    exits: tuple[str, ...] = ()      # commits that exit before start
    silent: tuple[str, ...] = ()     # commits that start and forward nothing
    option_bug: str | None = None    # the commit that plants the block-size bug


# ---------------------------------------------------------------------------------------
# Source transforms.  Each is an exact, anchored edit of src/source-af-packet.c; an anchor
# that is not found exactly once is a bug in the templates, not something to paper over.
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# The tree at one commit, and the plan of the history.
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# git
# ---------------------------------------------------------------------------------------

def _git_env(person: tuple[str, str], when: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    name, email = person
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", LC_ALL="C", TZ="UTC",
        GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email, GIT_AUTHOR_DATE=f"@{when} +0000",
        GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email, GIT_COMMITTER_DATE=f"@{when} +0000",
    )
    return env


def _git(repo: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(["git", "-C", str(repo), "-c", "commit.gpgsign=false",
                           "-c", "tag.gpgsign=false", "-c", "core.hooksPath=/dev/null", *args],
                          env=env, input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout


def _write_tree(repo: Path, files: dict[str, tuple[str, int]], previous: dict[str, tuple[str, int]]):
    for rel, (text, mode) in files.items():
        if previous.get(rel) == (text, mode):
            continue
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        os.chmod(p, mode)


def _make_patch(repo: Path, env: dict[str, str], tip_src: str, fixed_src: str, header: str,
                dest: Path) -> Path:
    target = repo / AFP_SOURCE
    target.write_text(fixed_src)
    try:
        diff = _git(repo, env, "diff", "--no-color", "--no-ext-diff", "--", AFP_SOURCE)
    finally:
        target.write_text(tip_src)
    if not diff.strip():
        raise RuntimeError(f"empty diff for {dest.name}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(header.rstrip("\n") + "\n\n" + diff)
    return dest


_FIX_A_HEADER = """\
Ticket 8667, fix A (synthetic target): guard AFPWritePacket() on the peer's state.

AFPPeerUpdate() publishes the socket before the state, so a peer seen AFP_STATE_UP has a
valid socket; frames that arrive while the peer is still down are dropped instead of being
sent on socket 0.  Made with `git diff` against the tip; applies after patches/widener.patch.
"""

_FIX_B_HEADER = """\
Ticket 8667, fix B (synthetic target): bump the turn barrier after the socket is published.

Moves AFPPeersListReachedInc() back after AFPSwitchState(ptv, AFP_STATE_UP) in
AFPCreateSocket(), so turn == 0 implies every peer socket is published again (ring setups
are serialised again).  Made with `git diff` against the tip; applies after
patches/widener.patch.
"""


def make_synthetic_repo(path, n_commits: int = 80, bad_at: int | None = None,
                        broken_at: Iterable[int] = (), seed: int = 0,
                        patch_dir: Path | None = None, exits_at: Iterable[int] = (),
                        silent_at: Iterable[int] = (), option_bug_at: int | None = None) -> SyntheticRepo:
    """Create the synthetic target at `path` (must not exist, or be an empty directory).

    n_commits: commits in `suricata-1.0.0..suricata-2.0.0` plus commit 0 (>= 3).
    bad_at: index of the planted commit (1 .. n_commits-1); default drawn from `seed`.
    broken_at: indexes of commits that do not compile (1 .. n_commits-2); commit i+1 fixes
        the build.  The planted commit may be one of them.
    exits_at / silent_at: indexes of commits that exit before start / forward nothing
        (1 .. n_commits-2, not the planted commit); commit i+1 undoes each.
    option_bug_at: index of the commit that plants the block-size bug (1 .. n_commits-1,
        not the planted commit); it stays.
    patch_dir: where fix A / fix B go; default `<path>/.git/afpbisect/` (outside the work
        tree, removed with the repo).
    """
    path = Path(path).resolve()
    n = int(n_commits)
    rng = random.Random(f"afpbisect-synthetic:{seed}")
    bad_at = _bad_at(n, bad_at, rng)
    broken = _indexes("broken_at", broken_at, n)
    exits = _indexes("exits_at", exits_at, n, bad_at)
    silent = _indexes("silent_at", silent_at, n, bad_at)
    option = _indexes("option_bug_at", [] if option_bug_at is None else [option_bug_at], n + 1, bad_at)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"{path} exists and is not an empty directory")
    path.mkdir(parents=True, exist_ok=True)

    steps = plan_history(n, bad_at, broken, rng, option)
    commits, previous, env = _commit_history(path, steps, rng, exits, silent)

    tip_src = previous[AFP_SOURCE][0]
    pdir = Path(patch_dir).resolve() if patch_dir else path / ".git" / "afpbisect"
    fix_a = _make_patch(path, env, tip_src, apply_fix_a(tip_src), _FIX_A_HEADER, pdir / "fixA.patch")
    fix_b = _make_patch(path, env, tip_src, apply_fix_b(tip_src), _FIX_B_HEADER, pdir / "fixB.patch")

    return SyntheticRepo(
        path=path, commits=commits, planted=commits[bad_at], good_ref=GOOD_TAG, bad_ref=BAD_TAG,
        fixA_patch=fix_a, fixB_patch=fix_b, broken=[commits[b] for b in sorted(broken)],
        planted_index=bad_at, broken_indexes=tuple(sorted(broken)), seed=seed,
        exits=tuple(commits[i] for i in sorted(exits)), silent=tuple(commits[i] for i in sorted(silent)),
        option_bug=commits[option_bug_at] if option_bug_at is not None else None)


def _commit_history(path: Path, steps: list, rng: random.Random, exits: set, silent: set):
    """One git commit a planned step, tagged GOOD_TAG (the first) and BAD_TAG (the last):
    (the shas, the last commit's files, the last committer's git environment)."""
    templates = load_templates()
    tree = Tree()
    when = _BASE_EPOCH
    env = _git_env(_PEOPLE[0], when)
    _git(path, env, "init", "-q", "-b", BRANCH)

    commits: list[str] = []
    previous: dict[str, tuple[str, int]] = {}
    for i, step in enumerate(steps):
        if i:
            when += rng.randint(2 * 3600, 40 * 3600)
        person = _PEOPLE[0] if step.kind in ("initial", "release") else rng.choice(_PEOPLE)
        env = _git_env(person, when)
        msg = apply_step(tree, i, step, rng, when)
        tree.exits, tree.silent = i in exits, i in silent
        msg = _FAULT_TITLES["exits"] if tree.exits else _FAULT_TITLES["silent"] if tree.silent else msg

        files = render_tree(tree, templates)
        _write_tree(path, files, previous)
        previous = files
        _git(path, env, "add", "-A")
        _git(path, env, "commit", "-q", "--no-verify", "-F", "-", stdin=msg + "\n")
        commits.append(_git(path, env, "rev-parse", "HEAD").strip())
        if i == 0:
            _git(path, env, "tag", "-a", GOOD_TAG, "-m", "Suricata 1.0.0", commits[0])
    _git(path, env, "tag", "-a", BAD_TAG, "-m", "Suricata 2.0.0", commits[-1])
    return commits, previous, env


_FAULT_TITLES = {"exits": "af-packet: require a block-size for ring setup",
                 "silent": "af-packet: rework the IPS write path"}


def _bad_at(n: int, bad_at: int | None, rng: random.Random) -> int:
    """The planted commit's index: given, or drawn from the seed (before anything else is)."""
    if n < 3:
        raise UsageError(f"n_commits must be >= 3, got {n}")
    bad_at = int(rng.randrange(1, n) if bad_at is None else bad_at)
    if not 1 <= bad_at <= n - 1:
        raise UsageError(f"bad_at must be in 1..{n - 1}, got {bad_at}")
    return bad_at


def _indexes(name: str, values: Iterable[int], n: int, planted: int | None = None) -> set[int]:
    """Indexes of planted faults: inside the range, never commit 0, the tip or the planted
    commit (the endpoints must build and run; the planted commit must show the race)."""
    out = {int(v) for v in values}
    wrong = sorted(v for v in out if not 1 <= v <= n - 2 or v == planted)
    if wrong:
        raise UsageError(f"{name} must be in 1..{n - 2} (commit 0 and the tip build and run)"
                         f"{' and not the planted commit' if planted is not None else ''}: {wrong}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m afpbisect.synthetic",
                                 description="Create the synthetic target repo; print the planted sha.")
    ap.add_argument("dest", type=Path)
    ap.add_argument("--commits", type=int, default=80, help="number of commits (default 80)")
    ap.add_argument("--bad-at", type=int, default=None, help="index of the planted commit")
    ap.add_argument("--broken-at", type=int, action="append", default=[],
                    help="index of a commit that does not build (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        syn = make_synthetic_repo(args.dest, n_commits=args.commits, bad_at=args.bad_at,
                                  broken_at=args.broken_at, seed=args.seed)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(syn.planted)
    print(f"{syn.path}: {len(syn.commits)} commits {syn.good_ref}..{syn.bad_ref}, planted at index "
          f"{syn.planted_index}; broken {list(syn.broken_indexes)}; fix A {syn.fixA_patch}; "
          f"fix B {syn.fixB_patch}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
