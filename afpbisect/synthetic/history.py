"""The synthetic history's content: the source tree rendered from templates/synthetic, and
the plan of commits (notes, the planted commit, broken builds, the other bugs) with the edit
each makes. target.py turns the plan into git commits."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from afpbisect import TEMPLATES_DIR
from afpbisect.synthetic.plant import (
    AFP_SOURCE,
    CONF_SOURCE,
    MISC_SOURCE,
    OPTION_BUG_TITLE,
    PLANTED_TITLE,
    plant_bad_order,
    plant_early_exit,
    plant_option_bug,
    plant_silence,
)


SYNTHETIC_TEMPLATE_DIR = TEMPLATES_DIR / "synthetic"


# Files stored without their leading dot in the templates (package data globs skip dotfiles).
_RENAMES = {"gitignore": ".gitignore"}


_EXECUTABLE = {"autogen.sh", "configure"}


def load_templates() -> dict[str, tuple[str, int]]:
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
class Tree:
    """Everything that varies between commits; `render_tree` turns it into files."""

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


def render_tree(tree: Tree, templates: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
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
class Step:
    kind: str            # initial, devbump, planted, option, fix, release, changelog, note, doc
    breaks: bool         # also adds a helper that does not compile
    fixes: bool          # fixes the helpers broken by the previous commit


def plan_history(n: int, bad_at: int, broken: set[int], rng: random.Random, option: set[int] = frozenset()) -> list[Step]:
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
        steps.append(Step(kind, i in broken, fixes))
    return steps


def apply_step(tree: Tree, i: int, step: Step, rng: random.Random, when: int) -> str:
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
        tree.released_on = iso_date(when)
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
    else:  # pragma: no cover - plan_history only makes the kinds above
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


def iso_date(epoch: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))
