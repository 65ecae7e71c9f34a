"""Build eras: which toolchain, packages and fixups a candidate commit needs.

The knowledge lives in `eras.toml` (data, one rule per era boundary, each with the reason and
the commit or ticket that explains it, like syzkaller's backport tables); this module only
evaluates it.  `resolve()` walks the rules in file order and folds every rule whose `when`
holds for the candidate into one `Recipe`.  Nothing here runs git or Docker: the candidate is
seen through a `CommitView` (build.py hands in one backed by git, the tests one backed by dicts).

Folding, in rule order:
  - list actions (`apt`, `apt_sources`, `configure_flags`, `fetch_fixups`) append, keeping the
    first occurrence of a duplicate;
  - `rust` replaces (the last rule that sets it wins);
  - `env` entries replace by name, the position of the first setting is kept.

Conditions (`when`, a table with exactly one key; absent: always):
  path_exists = "rust"                       file or directory in the commit's tree
  path_missing = "rust/htp"
  ancestor_of_commit = "9c324b796e"          that commit is an ancestor of, or equal to, the candidate
  not_ancestor = "9c324b796e"                the negation (also true when the repo does not know it)
  file_matches = { path = "...", regex = "..." }   re.MULTILINE search; false when the file is absent
  all = [ {...}, {...} ]   any = [ {...}, {...} ]   not = {...}

`Recipe.rust` vocabulary (what build.Dockerfile.j2 does with it):
  "none"      no Rust toolchain in the image
  "debian"    Debian bookworm's `rustc` + `cargo` (1.63 / cargo 0.66)
  "rustc-web" Debian's `rustc-web` + `cargo-web` from bookworm-security (installs /usr/bin/rustc
              and /usr/bin/cargo; 1.85 when first published, 1.96 when checked on 2026-11-25)
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package
    import tomli as tomllib

from afpbisect import DOCKERFILES_DIR, TEMPLATES_DIR

DEFAULT_RULES = Path(__file__).resolve().parent / "eras.toml"
DOCKERFILE_TEMPLATE = DOCKERFILES_DIR / "build.Dockerfile.j2"
BUILD_SCRIPT_TEMPLATE = TEMPLATES_DIR / "build.sh.j2"

RUST_CHOICES = ("none", "debian", "rustc-web")
_LIST_ACTIONS = ("apt", "apt_sources", "configure_flags", "fetch_fixups")
_ACTIONS = (*_LIST_ACTIONS, "rust", "env")
_RULE_KEYS = {"id", "reason", "when", *_ACTIONS}
# Bump when the meaning of a recipe field changes without its content changing.
_KEY_SCHEMA = "eras-1"


class ErasError(ValueError):
    """eras.toml is malformed: unknown key, bad condition, bad regex, duplicate id."""


class CommitView(Protocol):
    """Read-only view of one candidate commit."""

    def has_path(self, path: str) -> bool:
        """A file or directory exists at `path` in the commit's tree."""

    def read(self, path: str) -> str | None:
        """The file's content at the commit, None when absent."""

    def is_ancestor(self, rev: str) -> bool:
        """`rev` is an ancestor of, or equal to, the commit; False when `rev` is unknown."""


# ---------------------------------------------------------------------------------------------
# conditions


@dataclass(frozen=True)
class Cond:
    """A parsed `when` condition: `kind` is one of the documented keys, `arg` its value."""

    kind: str
    arg: Any

    def holds(self, view: CommitView) -> bool:
        k, a = self.kind, self.arg
        if k == "always":
            return True
        if k == "path_exists":
            return view.has_path(a)
        if k == "path_missing":
            return not view.has_path(a)
        if k == "ancestor_of_commit":
            return view.is_ancestor(a)
        if k == "not_ancestor":
            return not view.is_ancestor(a)
        if k == "file_matches":
            path, rx = a
            text = view.read(path)
            return text is not None and rx.search(text) is not None
        if k == "all":
            return all(c.holds(view) for c in a)
        if k == "any":
            return any(c.holds(view) for c in a)
        if k == "not":
            return not a.holds(view)
        raise AssertionError(k)  # parse_cond only builds the kinds above


ALWAYS = Cond("always", None)


def parse_cond(raw: Any, where: str) -> Cond:
    """Parse one `when` table (see the module doc); `where` names the rule in errors."""
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise ErasError(f"{where}: a condition is a table with exactly one key, got {raw!r}")
    ((kind, arg),) = raw.items()
    if kind in ("path_exists", "path_missing", "ancestor_of_commit", "not_ancestor"):
        if not isinstance(arg, str) or not arg:
            raise ErasError(f"{where}: {kind} takes a non-empty string")
        return Cond(kind, arg)
    if kind == "file_matches":
        if (not isinstance(arg, Mapping) or set(arg) != {"path", "regex"}
                or not all(isinstance(v, str) and v for v in arg.values())):
            raise ErasError(f"{where}: file_matches takes {{ path = ..., regex = ... }}, two non-empty strings")
        try:
            rx = re.compile(arg["regex"], re.MULTILINE)
        except re.error as e:
            raise ErasError(f"{where}: bad regex {arg['regex']!r}: {e}") from e
        return Cond(kind, (arg["path"], rx))
    if kind in ("all", "any"):
        if not isinstance(arg, list) or not arg:
            raise ErasError(f"{where}: {kind} takes a non-empty list of conditions")
        return Cond(kind, tuple(parse_cond(c, where) for c in arg))
    if kind == "not":
        return Cond(kind, parse_cond(arg, where))
    raise ErasError(f"{where}: unknown condition {kind!r}")


# ---------------------------------------------------------------------------------------------
# rules


@dataclass(frozen=True)
class Rule:
    id: str
    reason: str
    when: Cond = ALWAYS
    apt: tuple[str, ...] = ()
    apt_sources: tuple[str, ...] = ()
    configure_flags: tuple[str, ...] = ()
    fetch_fixups: tuple[str, ...] = ()
    rust: str | None = None
    env: tuple[tuple[str, str], ...] = ()

    def applies(self, view: CommitView) -> bool:
        return self.when.holds(view)


def _str_list(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) and x for x in raw):
        raise ErasError(f"{where}: expected a list of non-empty strings")
    return tuple(raw)


def parse_rule(raw: Mapping[str, Any], index: int) -> Rule:
    if not isinstance(raw, Mapping):
        # `rule = [1, 2]` parses as TOML but is no [[rule]] table
        raise ErasError(f"rule #{index + 1}: a rule is a table ([[rule]]), got {raw!r}")
    where = f"rule #{index + 1} ({raw.get('id', '?')})"
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ErasError(f"{where}: unknown keys {sorted(unknown)}")
    rid, reason = raw.get("id"), raw.get("reason")
    if not isinstance(rid, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", rid):
        raise ErasError(f"{where}: id must be a lower-case slug")
    if not isinstance(reason, str) or not reason.strip():
        raise ErasError(f"{where}: every rule needs a reason")
    kw: dict[str, Any] = {}
    for name in _LIST_ACTIONS:
        if name in raw:
            kw[name] = _str_list(raw[name], f"{where}.{name}")
    if "rust" in raw:
        if raw["rust"] not in RUST_CHOICES:
            raise ErasError(f"{where}: rust must be one of {RUST_CHOICES}")
        kw["rust"] = raw["rust"]
    if "env" in raw:
        env = raw["env"]
        if not isinstance(env, Mapping) or not all(isinstance(v, str) for v in env.values()):
            raise ErasError(f"{where}: env is a table of strings")
        kw["env"] = tuple(env.items())
    when = parse_cond(raw["when"], where) if "when" in raw else ALWAYS
    return Rule(id=rid, reason=" ".join(reason.split()), when=when, **kw)


def load_rules(path: Path | None = None) -> list[Rule]:
    """Parse eras.toml (default: the package's own) into rules, in file order."""
    path = Path(path) if path is not None else DEFAULT_RULES
    data = _read_toml(path)
    raw_rules = data.get("rule")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ErasError(f"{path}: no [[rule]] entries")
    try:
        rules = [parse_rule(r, i) for i, r in enumerate(raw_rules)]
    except ErasError as exc:   # a user's --eras file: say which file the rule is in
        raise ErasError(f"{path}: {exc}") from None
    seen: set[str] = set()
    for r in rules:
        if r.id in seen:
            raise ErasError(f"{path}: duplicate rule id {r.id!r}")
        seen.add(r.id)
    return rules


def _read_toml(path: Path) -> dict:
    """The file's TOML; every way of not being one (missing, a directory, not UTF-8, bad
    syntax) is an ErasError naming the file, so a --eras typo is one line, not a traceback."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ErasError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ErasError(f"{path}: not valid TOML (not UTF-8)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ErasError(f"{path}: not valid TOML ({exc})") from None


# ---------------------------------------------------------------------------------------------
# recipe


def _short_hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True)
class Recipe:
    apt_packages: tuple[str, ...]
    apt_sources: tuple[str, ...]
    rust: str
    configure_flags: tuple[str, ...]
    fetch_fixups: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    fired: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def image_key(self) -> str:
        """Stable short hash of what the build image depends on: packages, sources, toolchain
        and the Dockerfile template itself (a template change must give a new image)."""
        return _short_hash(
            {
                "schema": _KEY_SCHEMA,
                "apt": self.apt_packages,
                "sources": self.apt_sources,
                "rust": self.rust,
                "dockerfile": _file_digest(DOCKERFILE_TEMPLATE),
            }
        )

    def key(self) -> str:
        """Stable short hash of everything that affects the product: the image, the configure
        flags, fixups, environment and the build script template.  Which rules fired is not in
        it: two eras that resolve to the same recipe build the same product."""
        return _short_hash(
            {
                "image": self.image_key(),
                "flags": self.configure_flags,
                "fixups": self.fetch_fixups,
                "env": self.env,
                "script": _file_digest(BUILD_SCRIPT_TEMPLATE),
            }
        )

    def describe(self) -> list[str]:
        """Human lines for the build log: `rule id: reason`, in the order they fired."""
        return [f"{rid}: {reason}" for rid, reason in self.fired]


def _append_unique(acc: list[str], items: Sequence[str]) -> None:
    for x in items:
        if x not in acc:
            acc.append(x)


def resolve(view: CommitView, rules: list[Rule] | None = None) -> Recipe:
    """Fold every rule whose condition holds for `view` (in rule order) into a Recipe."""
    if rules is None:
        rules = load_rules()
    acc: dict[str, list[str]] = {name: [] for name in _LIST_ACTIONS}
    rust = "none"
    env: dict[str, str] = {}
    fired: list[tuple[str, str]] = []
    for rule in rules:
        if not rule.applies(view):
            continue
        fired.append((rule.id, rule.reason))
        for name in _LIST_ACTIONS:
            _append_unique(acc[name], getattr(rule, name))
        if rule.rust is not None:
            rust = rule.rust
        env.update(rule.env)
    return Recipe(
        apt_packages=tuple(acc["apt"]),
        apt_sources=tuple(acc["apt_sources"]),
        rust=rust,
        configure_flags=tuple(acc["configure_flags"]),
        fetch_fixups=tuple(acc["fetch_fixups"]),
        env=tuple(env.items()),
        fired=tuple(fired),
    )


# ---------------------------------------------------------------------------------------------
# simple views (tests, scratch scripts; build.py may bring its own)


@dataclass
class DictView:
    """A CommitView over plain data: `files` maps paths to content (directories are implied by
    their files, or listed in `dirs`), `ancestors` holds the revs that count as ancestors."""

    files: Mapping[str, str] = field(default_factory=dict)
    dirs: frozenset[str] | set[str] = frozenset()
    ancestors: frozenset[str] | set[str] = frozenset()

    def has_path(self, path: str) -> bool:
        path = path.strip("/")
        if path in self.files or path in self.dirs:
            return True
        return any(p.startswith(path + "/") for p in (*self.files, *self.dirs))

    def read(self, path: str) -> str | None:
        return self.files.get(path.strip("/"))

    def is_ancestor(self, rev: str) -> bool:
        return rev in self.ancestors


class GitView:
    """A CommitView over a git directory and a commit, with plain `git` subprocess calls
    (no work tree needed).  build.py may use it or its own."""

    def __init__(self, git_dir: str | Path, commit: str):
        import subprocess

        self._run = subprocess.run
        self.git_dir = str(git_dir)
        self.commit = self._git("rev-parse", "--verify", f"{commit}^{{commit}}").stdout.strip()

    def _git(self, *args: str, check: bool = True):
        return self._run(
            ["git", "--git-dir", self.git_dir, *args],
            capture_output=True,
            text=True,
            errors="replace",
            check=check,
        )

    def has_path(self, path: str) -> bool:
        r = self._git("cat-file", "-e", f"{self.commit}:{path.strip('/')}", check=False)
        return r.returncode == 0

    def read(self, path: str) -> str | None:
        r = self._git("cat-file", "blob", f"{self.commit}:{path.strip('/')}", check=False)
        return r.stdout if r.returncode == 0 else None

    def is_ancestor(self, rev: str) -> bool:
        r = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if r.returncode != 0:
            return False
        r = self._git("merge-base", "--is-ancestor", r.stdout.strip(), self.commit, check=False)
        return r.returncode == 0
