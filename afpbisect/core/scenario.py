"""A scenario: everything that belongs to one bug, as data (docs/scenarios.md).

What makes a cycle a hit, what makes it count at all, the test patches built into every
candidate and the environment they read, Suricata's configuration, the traffic, the cycle,
and the defaults of verify-patch and the nightly.  Ticket 8667 is the built-in default
(`afpbisect/scenarios/8667.toml`); nothing of it stays in code.  A scenario is one TOML file,
validated strictly when loaded: an unknown key, a wrong type, a regex that does not compile
or a patch that is missing is one line naming the file, the key and what is expected
(UsageError, exit 2), before Docker is touched.  The schema is `SCHEMA` below: the one table
the loader, `docs/scenarios.md` and its test agree on.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from afpbisect import PACKAGE_DIR, PATCHES_DIR
from afpbisect.core.errors import UsageError
from afpbisect.core.patch import load_patch
from afpbisect.core.scenario_rules import check_values

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package
    import tomli as tomllib

BUILTIN_DIR = PACKAGE_DIR / "scenarios"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")   # one rule for [[patch]] env and --env
DEFAULT = "8667"


# The sections, typed: each field's default is THE default of that key (ReproSettings, the
# yaml, the driver's config, the policy's confidence derive theirs from here;
# tests/test_scenarios.py fails when one is written twice).  A tuple is a TOML list of strings.
@dataclass(frozen=True)
class HitSection:
    console: tuple = ()
    eve: tuple = ()
    stats: tuple = ()
    exit_codes: tuple = ()
    crash: bool = False


@dataclass(frozen=True)
class HealthSection:
    start_marker: str = r"Engine started\."
    require_start: bool = True
    min_forwarded: int = 1
    require_clean_stop: bool = True


@dataclass(frozen=True)
class SuricataSection:
    pairs: int = 6
    threads: int = 2
    runmode: str = "workers"
    copy_mode: str = "ips"
    tpacket_v3: bool = False
    ring_size: int = 0
    block_size: int = 0
    defrag: bool = False
    bpf_filter: str = ""
    cluster_type: str = "cluster_flow"
    args: tuple = ()


@dataclass(frozen=True)
class TrafficSection:
    kind: str = "udp"
    pps: int = 3000
    size: int = 18
    pcap: str = ""
    both_ways: bool = False


@dataclass(frozen=True)
class CycleSection:
    kind: str = "restart"
    seconds: float = 2.0
    start_timeout: float = 120.0
    stop_timeout: float = 30.0


@dataclass(frozen=True)
class VerifySection:
    target: str = ""


@dataclass(frozen=True)
class NightlySection:
    branch: str = "main"
    confidence: float = 0.999      # also the default --confidence of run and verify-patch
    assumed_rate: float = 0.25


@dataclass(frozen=True)
class VerdictSection:
    """What a verification must rule out (policy/boundary.py, issue 25): a race on the clean
    side at any per-cycle rate >= rate_floor; and the most clean cycles one may ask for
    before the run ends "undecided" (exit 3) instead of running for days."""
    rate_floor: float = 0.1
    cycle_cap: int = 600


SECTIONS = {"hit": HitSection, "health": HealthSection, "suricata": SuricataSection,
            "traffic": TrafficSection, "cycle": CycleSection, "verify": VerifySection,
            "nightly": NightlySection, "verdict": VerdictSection}
_SCHEMA_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "tuple": list}


def _schema(model) -> dict[str, tuple[type, object]]:
    return {f.name: (_SCHEMA_TYPES[f.type], list(f.default) if f.type == "tuple" else f.default)
            for f in fields(model)}


# section -> key -> (type, default), derived from the models: what the loader checks.
# `list` means a list of strings; `dict` a table of strings.
SCHEMA: dict[str, dict[str, tuple[type, object]]] = {
    "": {"name": (str, None), "title": (str, ""), "ticket": (str, "")},
    **{name: _schema(model) for name, model in SECTIONS.items()},
}
PATCH_KEYS = {"file": str, "env": dict, "selftest_env": dict}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list of strings", dict: "a table of strings"}


@dataclass(frozen=True)
class TestPatch:
    """A test patch and the environment it reads.  `selftest_env`: what it reads when
    `afpbisect selftest` runs it on the small synthetic target (None: `env`); not part of
    the scenario's digest, which names what a run on the real target depends on."""
    path: Path
    env: dict
    selftest_env: dict | None = None


@dataclass(frozen=True)
class Scenario:
    """One bug, typed: one model a section, every default filled in."""

    name: str
    title: str
    ticket: str
    source: Path
    hit: HitSection = HitSection()
    health: HealthSection = HealthSection()
    suricata: SuricataSection = SuricataSection()
    traffic: TrafficSection = TrafficSection()
    cycle: CycleSection = CycleSection()
    verify: VerifySection = VerifySection()
    nightly: NightlySection = NightlySection()
    verdict: VerdictSection = VerdictSection()
    patches: tuple[TestPatch, ...] = field(default=())

    def sections(self) -> dict:
        """section -> key -> value, as the TOML says them (lists as lists)."""
        return {name: {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(getattr(self, name)).items()}
                for name in SECTIONS}

    @property
    def env(self) -> dict:
        """The environment the test patches read, merged in file order."""
        out: dict = {}
        for p in self.patches:
            out.update(p.env)
        return out

    @property
    def selftest_env(self) -> dict:
        """The environment the test patches read in `afpbisect selftest` (its 2 pairs x 2
        threads on the synthetic target), merged in file order."""
        out: dict = {}
        for p in self.patches:
            out.update(p.env if p.selftest_env is None else {**p.env, **p.selftest_env})
        return out

    def hit_patterns(self, where: str) -> list[re.Pattern]:
        return [re.compile(rx) for rx in getattr(self.hit, where)]

    def digest(self) -> str:
        """Of what the scenario says, patches' contents included: reports carry it."""
        blob = json.dumps({"sections": self.sections(),
                           "patches": [[p.path.name, p.path.read_bytes().hex(), p.env] for p in self.patches]},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def summary(self) -> dict:
        return {"name": self.name, "title": self.title, "ticket": self.ticket, "file": self.source.name,
                "digest": self.digest(), "patches": [p.path.name for p in self.patches]}


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def builtin_files() -> list[Path]:
    """The package data the built-in scenarios need (`afpbisect doctor` checks it was
    installed): each scenario file, the default's even when missing, and the test patches it
    names.  Read from the TOML alone, so a missing patch is named, not raised."""
    out = []
    for name in sorted(set(builtin_names()) | {DEFAULT}):
        path = BUILTIN_DIR / f"{name}.toml"
        out.append(path)
        try:
            raw = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            continue   # missing: named above; broken: every command says so when it loads it
        patches = raw.get("patch", [])
        out += [PATCHES_DIR / t["file"] for t in (patches if isinstance(patches, list) else [])
                if isinstance(t, dict) and isinstance(t.get("file"), str)]
    return out


def load(ref: str | Path | None = None) -> Scenario:
    """A built-in by name (default: ticket 8667) or a scenario file by path."""
    ref = DEFAULT if ref is None else str(ref)
    path = BUILTIN_DIR / f"{ref}.toml" if ref in builtin_names() else Path(ref)
    if not path.is_file():
        raise UsageError(f"scenario {ref!r} is neither a built-in ({', '.join(builtin_names())}) "
                         f"nor a file")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise UsageError(f"scenario {path}: not valid TOML ({str(exc).splitlines()[0]})") from None
    return parse(raw, path, builtin=path.parent == BUILTIN_DIR)


def parse(raw: dict, path: Path, builtin: bool = False) -> Scenario:
    sections = {"": _section(raw, "", path, skip=set(SCHEMA) | {"patch"})}
    for name in SCHEMA:
        if name:
            sub = raw.get(name, {})
            if not isinstance(sub, dict):
                raise UsageError(f"scenario {path}: [{name}] must be a table")
            sections[name] = _section(sub, name, path)
    top = sections.pop("")
    for key in ("title", "ticket"):   # one line in every report (second hostile tour)
        if re.search(r"[\x00-\x1f\x7f]", top[key]):
            raise UsageError(f"scenario {path}: key {key!r} must be one line without control characters")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", top["name"]):
        # it names state and report files: a long one made "File name too long" after a build
        raise UsageError(f"scenario {path}: key 'name' must be 1 to 64 letters, digits, '.', '_' "
                         f"or '-', starting with a letter or digit")
    check_values(sections, path)
    patches = tuple(_patch(p, i, path, builtin) for i, p in enumerate(_list_of_tables(raw, path)))
    models = {name: model(**{k: tuple(v) if isinstance(v, list) else v for k, v in sections[name].items()})
              for name, model in SECTIONS.items()}
    return Scenario(top["name"], top["title"], top["ticket"], path, **models, patches=patches)


def _section(table: dict, name: str, path: Path, skip: set = frozenset()) -> dict:
    where = f"[{name}] " if name else ""
    out = {}
    for key in table:
        if key not in SCHEMA[name] and key not in skip:
            # at the top the sections are keys too: '[helth]' listed only name, ticket,
            # title (fourth hostile tour)
            sections = [f"[[{k}]]" if k == "patch" else f"[{k}]" for k in sorted(skip) if k]
            known = sorted(SCHEMA[name]) + (sections if not name else [])
            raise UsageError(f"scenario {path}: unknown key {where}{key!r} (known: {', '.join(known)})")
    for key, (typ, default) in SCHEMA[name].items():
        value = table.get(key, default)
        if value is None:
            raise UsageError(f"scenario {path}: key {where}{key!r} is required ({_TYPE_NAMES[typ]})")
        out[key] = _typed(value, typ, f"{where}{key!r}", path)
    return out


# Lists of integers; every other list is of strings (a number where a regex or an argument
# goes was accepted and failed after the clone, in the container: issue 25's hostile tour).
INT_LISTS = {"'exit_codes'"}


def _typed(value, typ, what: str, path: Path):
    ok = (isinstance(value, typ) and not (typ is int and isinstance(value, bool))) or \
        (typ is float and isinstance(value, int) and not isinstance(value, bool))
    if ok and typ is list:
        item = int if what.split()[-1] in INT_LISTS else str
        ok = all(isinstance(v, item) and not isinstance(v, bool) for v in value)
        if not ok:
            raise UsageError(f"scenario {path}: key {what} must be a list of "
                             f"{'integers' if item is int else 'strings'}, got {value!r}")
    if ok and typ is dict:
        ok = all(isinstance(v, str) for v in value.values())
    if not ok:
        raise UsageError(f"scenario {path}: key {what} must be {_TYPE_NAMES[typ]}, got {value!r}")
    return float(value) if typ is float else list(value) if typ is list else value


def _list_of_tables(raw: dict, path: Path) -> list:
    patches = raw.get("patch", [])
    if not isinstance(patches, list) or not all(isinstance(p, dict) for p in patches):
        raise UsageError(f"scenario {path}: [[patch]] must be an array of tables")
    return patches


def _patch(table: dict, i: int, path: Path, builtin: bool) -> TestPatch:
    what = f"[[patch]] #{i + 1}"
    for key in table:
        if key not in PATCH_KEYS:
            raise UsageError(f"scenario {path}: unknown key {what} {key!r} (known: {', '.join(PATCH_KEYS)})")
    if "file" not in table:
        raise UsageError(f"scenario {path}: key {what} 'file' is required (a patch file)")
    name = _typed(table["file"], str, f"{what} 'file'", path)
    if not name.strip():   # it named the scenario's directory: "/dir is not a regular file"
        raise UsageError(f"scenario {path}: key {what} 'file' must not be empty (a patch file)")
    env = _env_table(table, "env", what, path)
    small = _env_table(table, "selftest_env", what, path) if "selftest_env" in table else None
    if small is not None and not set(small) <= set(env):
        # it states the same variables at the synthetic target's scale, nothing new
        raise UsageError(f"scenario {path}: key {what} 'selftest_env': {sorted(set(small) - set(env))[0]!r} "
                         f"is not in its 'env'")
    # Built-ins name the project's patches/; a user's file names files beside it.
    p = (PATCHES_DIR if builtin else path.parent) / name
    try:
        load_patch(p)   # a patch at all: checked now, before anything is cloned
    except UsageError as exc:
        raise UsageError(f"scenario {path}: key {what} 'file': {exc}") from None
    return TestPatch(p.resolve(), dict(env), None if small is None else dict(small))


def _env_table(table: dict, key: str, what: str, path: Path) -> dict:
    """A [[patch]] table of environment variables: names a shell takes, one-line values."""
    env = _typed(table.get(key, {}), dict, f"{what} {key!r}", path)
    bad = [k for k in env if not ENV_NAME.fullmatch(k)]
    if bad:
        raise UsageError(f"scenario {path}: key {what} {key!r}: {bad[0]!r} is not a variable name "
                         f"(letters, digits and _, not starting with a digit)")
    odd = [k for k, v in env.items() if re.search(r"[\x00-\x1f\x7f]", v)]
    if odd:   # a NUL cannot be in an environment: it failed in the container, after a build
        raise UsageError(f"scenario {path}: key {what} {key!r}: the value of {odd[0]} holds a "
                         f"control character")
    return env
