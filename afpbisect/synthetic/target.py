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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from afpbisect import TEMPLATES_DIR
from afpbisect.core.errors import UsageError

SYNTHETIC_TEMPLATE_DIR = TEMPLATES_DIR / "synthetic"

GOOD_TAG = "suricata-1.0.0"
BAD_TAG = "suricata-2.0.0"
BRANCH = "main"
AFP_SOURCE = "src/source-af-packet.c"
MISC_SOURCE = "src/util-misc.c"
PLANTED_TITLE = "af-packet: speed up thread sync during startup"

# Files stored without their leading dot in the templates (package data globs skip dotfiles).
_RENAMES = {"gitignore": ".gitignore"}
_EXECUTABLE = {"autogen.sh", "configure"}

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

def _replace_once(text: str, old: str, new: str, what: str) -> str:
    n = text.count(old)
    if n != 1:
        raise ValueError(f"{what}: anchor found {n} times, expected once: {old!r}")
    return text.replace(old, new)


_BUMP_AFTER_BIND = (
    "    /* bind() done, allow next thread to continue */\n"
    "    if (peer_update) {\n"
    "        AFPPeersListReachedInc();\n"
    "    }\n"
)

# The edits of upstream 923ad6af77, one by one.
_PLANT_EDITS = (
    ("static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose);\n",
     "static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose, const bool peer_update);\n",
     "prototype"),
    ("    int afp_activate_r = AFPCreateSocket(ptv, ptv->iface, 0);\n",
     "    int afp_activate_r = AFPCreateSocket(ptv, ptv->iface, 0, false);\n",
     "AFPTryReopen call"),
    ("        r = AFPCreateSocket(ptv, ptv->iface, 1);\n",
     "        r = AFPCreateSocket(ptv, ptv->iface, 1, true);\n",
     "ReceiveAFPLoop call"),
    ("        }\n        AFPPeersListReachedInc();\n    }\n    if (ptv->afp_state == AFP_STATE_UP) {\n",
     "        }\n    }\n    if (ptv->afp_state == AFP_STATE_UP) {\n",
     "bump after AFPCreateSocket"),
    ("static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose)\n{\n",
     "/** \\param peer_update increment peers reached */\n"
     "static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose, const bool peer_update)\n{\n",
     "definition"),
    ("    }\n\n    ret = AFPSetupRing(ptv, devname);\n",
     "    }\n" + _BUMP_AFTER_BIND + "    ret = AFPSetupRing(ptv, devname);\n",
     "bump after bind"),
)


def plant_bad_order(src: str) -> str:
    """The planted regression: what 923ad6af77 did to Suricata."""
    for old, new, what in _PLANT_EDITS:
        src = _replace_once(src, old, new, what)
    return src


_FIX_A_ANCHOR = "static void AFPWritePacket(Packet *p)\n{\n    struct sockaddr_ll socket_address;\n    int socket;\n\n"
_FIX_A_GUARD = (
    "    /* Guard: peer fd not yet published during startup window.\n"
    "     * state is published *after* socket in AFPPeerUpdate(), so\n"
    "     * observing AFP_STATE_UP guarantees the fd is valid. */\n"
    "    if (SC_ATOMIC_GET(p->afp_v.peer->state) != AFP_STATE_UP) {\n"
    "        return;\n"
    "    }\n"
    "\n"
)


def apply_fix_a(src: str) -> str:
    """Ticket 8667 fix A: AFPWritePacket() returns while the peer is not AFP_STATE_UP."""
    return _replace_once(src, _FIX_A_ANCHOR, _FIX_A_ANCHOR + _FIX_A_GUARD, "fix A")


def apply_fix_b(src: str) -> str:
    """Ticket 8667 fix B: the bump goes back after AFPSwitchState(ptv, AFP_STATE_UP)."""
    src = _replace_once(src, _BUMP_AFTER_BIND, "", "fix B (remove)")
    old = "    /* Init is ok */\n    AFPSwitchState(ptv, AFP_STATE_UP);\n    return 0;\n"
    new = ("    /* Init is ok */\n    AFPSwitchState(ptv, AFP_STATE_UP);\n"
           "    /* fd published -- now allow next thread to proceed */\n"
           "    if (peer_update) {\n        AFPPeersListReachedInc();\n    }\n    return 0;\n")
    return _replace_once(src, old, new, "fix B (insert)")


def _function_body(src: str, signature_start: str) -> str:
    """The body (braces included) of the function whose definition starts with
    `signature_start` (a prototype, ending in ';', is skipped)."""
    pos = 0
    while True:
        i = src.find(signature_start, pos)
        if i < 0:
            raise ValueError(f"no definition of {signature_start!r}")
        j = src.find("\n", i)
        if not src[i:j].rstrip().endswith(";"):
            break
        pos = j
    start = src.index("{", i)
    depth = 0
    for k in range(start, len(src)):
        if src[k] == "{":
            depth += 1
        elif src[k] == "}":
            depth -= 1
            if depth == 0:
                return src[start:k + 1]
    raise ValueError(f"unbalanced braces after {signature_start!r}")


_EXIT_ANCHOR = "\n    SetupSignals();\n"
_EXIT_EARLY = ('\n    SCLogError("af-packet: ring setup: no default for option \'block-size\'");\n'
               "    return EXIT_FAILURE;\n")


def plant_early_exit(src: str) -> str:
    """A commit that cannot start: main() gives up before the workers exist."""
    return _replace_once(src, _EXIT_ANCHOR, _EXIT_EARLY + _EXIT_ANCHOR, "early exit")


def plant_silence(src: str) -> str:
    """A commit whose IPS path forwards nothing: AFPWritePacket() drops every frame."""
    return _replace_once(src, _FIX_A_ANCHOR,
                         _FIX_A_ANCHOR + "    (void)socket_address;\n    (void)socket;\n    return;\n",
                         "silence")


CONF_SOURCE = "src/conf-yaml.c"
_OPTION_ANCHOR = '    } else if (strcmp(key, "ring-size") == 0)\n        SET(ring_size);\n'
_OPTION_BUG = (
    '    else if (strcmp(key, "block-size") == 0) {\n'
    '        /* block-size must be a multiple of the page size */\n'
    '        if (UtilParseInt(val, 0) % 4096 == 0) {\n'
    '            SCLogError("af-packet: %s: block-size %s is not a multiple of the page size",\n'
    '                    item->iface, val);\n'
    '            exit(EXIT_FAILURE);\n'
    '        }\n'
    '    }\n')
OPTION_BUG_TITLE = "af-packet: validate block-size"


def plant_option_bug(src: str) -> str:
    """The second kind of bug: a validation of `block-size` whose test is inverted."""
    return _replace_once(src, _OPTION_ANCHOR, _OPTION_ANCHOR + _OPTION_BUG, "block-size validation")


def barrier_before_ring(src: str) -> bool:
    """True when AFPCreateSocket() bumps the turn barrier before AFPSetupRing(): the bad
    order, where turn == 0 no longer implies that every peer socket is published."""
    body = _function_body(src, "static int AFPCreateSocket(")
    bump = body.find("AFPPeersListReachedInc();")
    ring = body.find("AFPSetupRing(ptv, devname)")
    return bump != -1 and ring != -1 and bump < ring


# ---------------------------------------------------------------------------------------
# The tree at one commit, and the plan of the history.
# ---------------------------------------------------------------------------------------

def _load_templates() -> dict[str, tuple[str, int]]:
    files: dict[str, tuple[str, int]] = {}
    for p in sorted(SYNTHETIC_TEMPLATE_DIR.rglob("*")):
        if not p.is_file() or "__pycache__" in p.parts or p.suffix in (".o", ".d"):
            continue
        rel = p.relative_to(SYNTHETIC_TEMPLATE_DIR).as_posix()
        rel = _RENAMES.get(rel, rel)
        files[rel] = (p.read_text(), 0o755 if rel in _EXECUTABLE else 0o644)
    if AFP_SOURCE not in files or MISC_SOURCE not in files:
        raise RuntimeError(f"synthetic templates incomplete in {SYNTHETIC_TEMPLATE_DIR}")
    return files


@dataclass
class _Tree:
    """Everything that varies between commits; `_render` turns it into files."""

    version: str = "1.0.0"
    dev_section: bool = False
    released_on: str | None = None
    changelog: list[str] = field(default_factory=list)
    doc_paras: list[str] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    bad_order: bool = False
    helpers: list[list] = field(default_factory=list)  # [id, broken]
    exits: bool = False      # this commit exits before start (planted fault)
    silent: bool = False     # this commit forwards nothing (planted fault)
    option_bug: bool = False  # the block-size bug is in (from option_bug_at on)


def _insert_header_notes(text: str, notes: list[str]) -> str:
    """Notes go at the end of the file's opening comment block (far from any code)."""
    if not notes:
        return text
    lines = text.split("\n")
    end = lines.index(" */")
    return "\n".join(lines[:end] + [" *"] + [f" * {n}" for n in notes] + lines[end:])


def _render(tree: _Tree, templates: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    out = dict(templates)
    afp = templates[AFP_SOURCE][0]
    if tree.bad_order:
        afp = plant_bad_order(afp)
    if tree.silent:
        afp = plant_silence(afp)
    out[AFP_SOURCE] = (afp, 0o644)
    if tree.exits:
        out["src/suricata.c"] = (plant_early_exit(out["src/suricata.c"][0]), 0o644)
    if tree.option_bug:
        out[CONF_SOURCE] = (plant_option_bug(out[CONF_SOURCE][0]), 0o644)
    for rel, notes in tree.notes.items():
        out[rel] = (_insert_header_notes(out[rel][0], notes), out[rel][1])

    misc = out[MISC_SOURCE][0]
    for hid, broken in tree.helpers:
        misc += (f"\n/** \\brief round x up to a multiple of {hid} */\n"
                 f"int UtilAlignTo{hid}(int x)\n{{\n"
                 f"    return ((x + {hid - 1}) / {hid}) * {hid}{'' if broken else ';'}\n}}\n")
    out[MISC_SOURCE] = (misc, 0o644)

    out["src/version.h"] = (
        "/* Set by the release process. */\n\n"
        "#ifndef SURICATA_VERSION_H\n#define SURICATA_VERSION_H\n\n"
        '#define PROG_NAME "Suricata"\n'
        f'#define PROG_VER "{tree.version}"\n\n'
        "#endif /* SURICATA_VERSION_H */\n", 0o644)

    cl = []
    if tree.dev_section:
        cl.append(f"2.0.0 -- {tree.released_on or 'unreleased'}")
        cl.extend(f"- {e}" for e in reversed(tree.changelog))
        cl.append("")
    cl += ["1.0.0 -- 2024-01-01",
           "- af-packet: IPS mode with per-thread peers and ordered socket creation",
           "- device: per-interface counters at shutdown", ""]
    out["ChangeLog"] = ("\n".join(cl), 0o644)

    doc = templates["doc/af-packet.rst"][0]
    for para in tree.doc_paras:
        doc += "\n" + para + "\n"
    out["doc/af-packet.rst"] = (doc, 0o644)
    return out


# Files whose opening comment may get filler notes, with the module name used in titles.
_NOTE_FILES = {
    "src/source-af-packet.c": "af-packet",
    "src/suricata.c": "suricata",
    "src/conf-yaml.c": "conf",
    "src/util-device.c": "device",
    "src/tm-threads.c": "threads",
    "src/util-debug.c": "debug",
    "src/util-misc.c": "util",
}
_TOPICS = (
    "cluster-id handling", "copy-iface pairing", "ring sizing", "thread naming",
    "promiscuous mode", "shutdown counters", "the defrag option", "default interface values",
    "the poll timeout", "interface down handling", "fanout groups", "the start-up order",
    "send error accounting", "the console format", "MTU mismatches", "reopen after errors",
    "quoted values", "comment handling", "the threads option", "signal handling",
)
_VERBS = ("document", "clarify", "explain", "note on", "describe")


@dataclass(frozen=True)
class _Step:
    kind: str            # initial, devbump, planted, option, fix, release, changelog, note, doc
    breaks: bool         # also adds a helper that does not compile
    fixes: bool          # fixes the helpers broken by the previous commit


def _plan(n: int, bad_at: int, broken: set[int], rng: random.Random, option: set[int] = frozenset()) -> list[_Step]:
    steps = []
    for i in range(n):
        fixes = (i - 1) in broken
        if i == 0:
            kind = "initial"
        elif i == bad_at:
            kind = "planted"
        elif i in option:
            kind = "option"   # the commit is the bug alone, so `git revert` of it is a clean fix
        elif i == n - 1:
            kind = "release"
        elif fixes:
            kind = "fix"
        elif i == 1:
            kind = "devbump"
        else:
            kind = rng.choices(("changelog", "note", "doc"), weights=(3, 4, 2))[0]
        steps.append(_Step(kind, i in broken, fixes))
    return steps


def _apply_step(tree: _Tree, i: int, step: _Step, rng: random.Random, when: int) -> str:
    """Change `tree` for commit i; return the commit message."""
    topic = rng.choice(_TOPICS)
    ticket = 1000 + 7 * i
    msg = ""
    if step.kind == "initial":
        msg = "Suricata 1.0.0\n\nFirst release of the AF_PACKET IPS engine."
    elif step.kind == "devbump":
        tree.version, tree.dev_section = "2.0.0-dev", True
        msg = "version: start work on 2.0.0"
    elif step.kind == "planted":
        tree.bad_order = True
        msg = (f"{PLANTED_TITLE}\n\n"
               "Threads are initialized sequentially to allow for a predictable mapping\n"
               "of threads and queues. Not all parts of the start up need to be done\n"
               "sequentially. The setting up of the rings can be very expensive, taking\n"
               "of a couple of hundred milliseconds. The ring setup doesn't need to be\n"
               "done sequentially though.\n\n"
               "This patch releases the thread early, after bind but before the ring\n"
               "setups.\n\nTicket: #7272.")
    elif step.kind == "option":
        tree.option_bug = True
        msg = f"{OPTION_BUG_TITLE}\n\nReject a block-size that the kernel would refuse, before the ring setup."
    elif step.kind == "fix":
        msg = "util: fix build\n\nAdd the missing semicolon in the alignment helper."
    elif step.kind == "release":
        tree.version = "2.0.0"
        tree.dev_section = True
        tree.released_on = _iso_date(when)
        msg = "release: 2.0.0"
    elif step.kind == "changelog":
        tree.dev_section = True
        comp = rng.choice(list(_NOTE_FILES.values()))
        tree.changelog.append(f"{comp}: {rng.choice(('fix', 'improve', 'rework'))} {topic} (#{ticket})")
        msg = f"changelog: add #{ticket}"
    elif step.kind == "note":
        rel = rng.choice(sorted(_NOTE_FILES))
        verb = rng.choice(_VERBS)
        tree.notes.setdefault(rel, []).append(f"\\todo {verb} {topic} (#{ticket})")
        msg = f"{_NOTE_FILES[rel]}: {verb} {topic}\n\nTicket: #{ticket}."
    elif step.kind == "doc":
        tree.doc_paras.append(
            f"The engine handles {topic} the same way on every interface (see ticket #{ticket}).")
        msg = f"doc: {rng.choice(_VERBS)} {topic}"
    else:  # pragma: no cover - _plan only makes the kinds above
        raise AssertionError(step.kind)

    if step.fixes:
        for h in tree.helpers:
            h[1] = False
    if step.breaks:
        tree.helpers.append([i + 2, True])
        if step.kind in ("changelog", "note", "doc", "fix"):
            msg = "util: add an alignment helper" if step.kind != "fix" else \
                "util: fix build, add another alignment helper"
    return msg


def _iso_date(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


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

    templates = _load_templates()
    steps = _plan(n, bad_at, broken, rng, option)
    tree = _Tree()
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
        msg = _apply_step(tree, i, step, rng, when)
        tree.exits, tree.silent = i in exits, i in silent
        msg = _FAULT_TITLES["exits"] if tree.exits else _FAULT_TITLES["silent"] if tree.silent else msg

        files = _render(tree, templates)
        _write_tree(path, files, previous)
        previous = files
        _git(path, env, "add", "-A")
        _git(path, env, "commit", "-q", "--no-verify", "-F", "-", stdin=msg + "\n")
        commits.append(_git(path, env, "rev-parse", "HEAD").strip())
        if i == 0:
            _git(path, env, "tag", "-a", GOOD_TAG, "-m", "Suricata 1.0.0", commits[0])
    _git(path, env, "tag", "-a", BAD_TAG, "-m", "Suricata 2.0.0", commits[-1])

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
