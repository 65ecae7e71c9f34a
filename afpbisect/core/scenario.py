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
from afpbisect.core.pcap import pcap_problem
from afpbisect.machinery.worktree import load_patch

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
PATCH_KEYS = {"file": str, "env": dict}
# The lowest per-cycle rate a scenario or option may state: 1 in 1,000 already asks for about
# 7,000 clean cycles at the default budget, above any sensible --cycle-cap.
MIN_RATE = 0.001
CHOICES = {("suricata", "copy_mode"): ("ips", "tap"), ("suricata", "runmode"): ("workers", "autofp"),
           ("suricata", "cluster_type"): ("cluster_flow", "cluster_qm", "cluster_cpu", "cluster_round_robin"),
           ("traffic", "kind"): ("udp", "none", "pcap"), ("cycle", "kind"): ("restart", "hold")}
# Lines every healthy cycle leaves, per log a [hit] rule reads (docs/ARCHITECTURE.md,
# "Console lines that matter"; Suricata's eve.json and stats.log formats).  A hit rule that
# matches one of them, or the empty line, makes every cycle a hit: refused (issue 25),
# because one hit is taken as proof of the bug.
INNOCENT_LINES = {
    "console": ["Notice: suricata: This is Suricata version 8.0.3 RELEASE running in SYSTEM mode",
                "Notice: threads: Threads created -> W: 24 FM: 1 FR: 1   Engine started.",
                *(f"Notice: device: SFE_{i}_{d}: packets: 1234, drops: 0 (0.00%), invalid chksum: 0"
                  for i in range(32) for d in ("TX", "RX")),
                "Notice: suricata: Signal Received.  Stopping engine."],
    "eve": ['{"timestamp":"2025-01-01T10:00:02.000000+0000","event_type":"stats","stats":{"uptime":2,'
            '"capture":{"kernel_packets":10,"kernel_drops":0},"decoder":{"pkts":10,"bytes":600,'
            '"ipv4":10,"ethernet":10,"udp":10}}}'],
    "stats": ["-" * 84, "Date: 1/1/2025 -- 10:00:02 (uptime: 0d, 00h 00m 02s)",
              "Counter                                       | TM Name                   | Value",
              *(f"{c:<46}| Total                     | {n}" for c, n in (
                  ("capture.kernel_packets", 10), ("capture.kernel_drops", 0), ("decoder.pkts", 10),
                  ("decoder.bytes", 600), ("decoder.ipv4", 10), ("decoder.ethernet", 10),
                  ("decoder.udp", 10), ("flow.memuse", 7154304), ("tcp.memuse", 4587520)))],
}
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list of strings", dict: "a table of strings"}


@dataclass(frozen=True)
class TestPatch:
    path: Path
    env: dict


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
    _check_values(sections, path)
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


def _check_values(s: dict, path: Path) -> None:
    for (sec, key), allowed in CHOICES.items():
        if s[sec][key] not in allowed:
            raise UsageError(f"scenario {path}: key [{sec}] {key!r} must be one of {', '.join(allowed)}")
    regexes = [("hit", w, rx) for w in ("console", "eve", "stats") for rx in s["hit"][w]]
    for sec, key, rx in regexes + [("health", "start_marker", s["health"]["start_marker"])]:
        if re.search(r"[\n\r]", str(rx)) or re.search(r"(?<!\\)\\[nr]", str(rx)):
            # matched against one line at a time, which never holds one: a rule that never
            # matches (a hit never seen: "not reproducible" after the builds; fourth tour)
            raise UsageError(f"scenario {path}: key [{sec}] {key!r}: regex {str(rx)[:80]!r} holds a "
                             f"line break, and is matched against one line at a time")
        try:
            re.compile(str(rx))
        except (re.error, OverflowError, RecursionError) as exc:   # a{4294967296}, ((((...
            raise UsageError(f"scenario {path}: key [{sec}] {key!r}: regex {str(rx)[:80]!r} does "
                             f"not compile ({str(exc)[:120] or type(exc).__name__})") from None
    _check_specific(s, path)
    if not any(s["hit"][k] for k in ("console", "eve", "stats", "exit_codes")) and not s["hit"]["crash"]:
        raise UsageError(f"scenario {path}: [hit] says nothing is a hit: give console, eve, stats, "
                         f"exit_codes or crash")
    if not all(isinstance(c, int) and 0 <= c <= 255 for c in s["hit"]["exit_codes"]):
        raise UsageError(f"scenario {path}: key [hit] 'exit_codes' must be a list of integers "
                         f"in 0..255 (a signal is [hit] crash)")
    _check_ranges(s, path)


def _check_specific(s: dict, path: Path) -> None:
    """Rules that would decide nothing: a hit rule matching every cycle (the empty line, or a
    line every healthy engine leaves), a start marker matching every line (issue 25)."""
    for where, lines in INNOCENT_LINES.items():
        for rx in s["hit"][where]:
            if re.search(str(rx), ""):
                raise UsageError(f"scenario {path}: key [hit] {where!r}: regex {rx!r} matches every "
                                 f"line (it matches the empty one); a hit rule must match only what the bug leaves")
            line = next((ln for ln in lines if re.search(str(rx), ln)), None)
            if line is not None:
                raise UsageError(f"scenario {path}: key [hit] {where!r}: regex {rx!r} matches a line a "
                                 f"healthy engine prints ({line!r}); a hit rule must match only what the bug leaves")
    if 0 in s["hit"]["exit_codes"]:
        raise UsageError(f"scenario {path}: key [hit] 'exit_codes': 0 is how a healthy engine stops on "
                         f"SIGTERM, so every cycle would be a hit")
    marker = s["health"]["start_marker"]
    if not marker:
        raise UsageError(f"scenario {path}: key [health] 'start_marker' must not be empty (the console "
                         f"line that says the engine is up, e.g. 'Engine started\\.')")
    if re.search(marker, ""):
        raise UsageError(f"scenario {path}: key [health] 'start_marker': regex {marker!r} matches every "
                         f"line (it matches the empty one)")
    banner = INNOCENT_LINES["console"][0]   # the first line, long before the engine is up
    if re.search(marker, banner):   # '.' was taken (fourth hostile tour)
        raise UsageError(f"scenario {path}: key [health] 'start_marker': regex {marker!r} matches the "
                         f"first line an engine prints ({banner!r}), long before it is up")


def _check_ranges(s: dict, path: Path) -> None:
    for sec, key, lo, hi in (("suricata", "pairs", 1, 32), ("suricata", "threads", 1, 16),
                             ("traffic", "pps", 0, 1_000_000), ("traffic", "size", 0, 1400),
                             ("health", "min_forwarded", 0, 10**9), ("suricata", "ring_size", 0, 10**7),
                             ("suricata", "block_size", 0, 1 << 30)):
        if not lo <= s[sec][key] <= hi:
            raise UsageError(f"scenario {path}: key [{sec}] {key!r} must be in {lo}..{hi}")
    for key in ("seconds", "start_timeout", "stop_timeout"):
        if not 0.1 <= s["cycle"][key] <= 3600.0:   # 1e-300 s was taken and ran for nothing
            raise UsageError(f"scenario {path}: key [cycle] {key!r} must be in [0.1, 3600] seconds")
    if s["traffic"]["kind"] != "none" and s["traffic"]["pps"] == 0 and s["health"]["min_forwarded"] > 0:
        # no packet offered, and every cycle waited for one forwarded (second hostile tour)
        raise UsageError(f"scenario {path}: key [traffic] 'pps' must be > 0 when [health] "
                         f"min_forwarded > 0 (nothing would be offered to forward)")
    if not MIN_RATE <= s["verdict"]["rate_floor"] < 1.0 or not 1 <= s["verdict"]["cycle_cap"] <= 1_000_000:
        raise UsageError(f"scenario {path}: [verdict] rate_floor must be in [{MIN_RATE}, 1), cycle_cap "
                         f"in 1..1000000")
    if not 0.5 <= s["nightly"]["confidence"] < 1.0 or not MIN_RATE <= s["nightly"]["assumed_rate"] <= 1.0:
        raise UsageError(f"scenario {path}: [nightly] confidence must be in [0.5, 1), assumed_rate "
                         f"in [{MIN_RATE}, 1]")
    for sec, key in (("nightly", "branch"), ("verify", "target")):
        value = s[sec][key]
        if (not value.strip() and (value or key == "branch")) or re.search(r"[\s\x00-\x1f]", value) \
                or value.startswith("-"):   # an option to git, not a ref
            raise UsageError(f"scenario {path}: key [{sec}] {key!r} must be a git ref, got {value!r}")

            raise UsageError(f"scenario {path}: key [{sec}] {key!r} must be a git ref, got {value!r}")
    # Values that go into suricata.yaml or onto the command line: no quote, backslash or
    # line break can smuggle in another key.
    for key, values in (("bpf_filter", [s["suricata"]["bpf_filter"]]), ("args", s["suricata"]["args"])):
        if any(re.search(r'["\\\x00-\x1f\x7f]', str(v)) for v in values):
            raise UsageError(f"scenario {path}: key [suricata] {key!r} must not contain quotes, "
                             f"backslashes, line breaks or other control characters")
    if s["traffic"]["kind"] == "none" and s["health"]["min_forwarded"] > 0:
        raise UsageError(f"scenario {path}: key [health] 'min_forwarded' must be 0 when "
                         f"[traffic] kind = \"none\" (nothing is offered to forward)")
    if s["traffic"]["pcap"] and s["traffic"]["kind"] != "pcap":   # never played (fourth tour)
        raise UsageError(f"scenario {path}: key [traffic] 'pcap' is played only with kind = \"pcap\" "
                         f"(kind is {s['traffic']['kind']!r})")
    if s["traffic"]["kind"] == "pcap":
        pcap = (path.parent / s["traffic"]["pcap"]) if s["traffic"]["pcap"] else None
        if pcap is None or not pcap.is_file():
            raise UsageError(f"scenario {path}: key [traffic] 'pcap' must name a pcap file "
                             f"(relative to the scenario) when kind = \"pcap\"")
        problem = pcap_problem(pcap)
        if problem:
            raise UsageError(f"scenario {path}: key [traffic] 'pcap': {s['traffic']['pcap']} {problem}")
        s["traffic"]["pcap"] = str(pcap.resolve())


def _list_of_tables(raw: dict, path: Path) -> list:
    patches = raw.get("patch", [])
    if not isinstance(patches, list) or not all(isinstance(p, dict) for p in patches):
        raise UsageError(f"scenario {path}: [[patch]] must be an array of tables")
    return patches


def _patch(table: dict, i: int, path: Path, builtin: bool) -> TestPatch:
    what = f"[[patch]] #{i + 1}"
    for key in table:
        if key not in PATCH_KEYS:
            raise UsageError(f"scenario {path}: unknown key {what} {key!r} (known: file, env)")
    if "file" not in table:
        raise UsageError(f"scenario {path}: key {what} 'file' is required (a patch file)")
    name = _typed(table["file"], str, f"{what} 'file'", path)
    if not name.strip():   # it named the scenario's directory: "/dir is not a regular file"
        raise UsageError(f"scenario {path}: key {what} 'file' must not be empty (a patch file)")
    env = _typed(table.get("env", {}), dict, f"{what} 'env'", path)
    bad = [k for k in env if not ENV_NAME.fullmatch(k)]
    if bad:
        raise UsageError(f"scenario {path}: key {what} 'env': {bad[0]!r} is not a variable name "
                         f"(letters, digits and _, not starting with a digit)")
    odd = [k for k, v in env.items() if re.search(r"[\x00-\x1f\x7f]", v)]
    if odd:   # a NUL cannot be in an environment: it failed in the container, after a build
        raise UsageError(f"scenario {path}: key {what} 'env': the value of {odd[0]} holds a "
                         f"control character")
    # Built-ins name the project's patches/; a user's file names files beside it.
    p = (PATCHES_DIR if builtin else path.parent) / name
    try:
        load_patch(p)   # a patch at all: checked now, before anything is cloned
    except UsageError as exc:
        raise UsageError(f"scenario {path}: key {what} 'file': {exc}") from None
    return TestPatch(p.resolve(), dict(env))
