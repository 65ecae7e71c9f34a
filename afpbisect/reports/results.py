"""What `run`, `verify-patch` and `nightly` report, typed (issue 26): one frozen dataclass
per command, built where the command produces it, read by attribute in the reports.

The JSON they write is a public, versioned format: `to_dict()` gives it key for key, and
`from_dict()` reads it back (afpbisect/rerender.py renders saved results again).  Two
rules keep that exact for results of every version:
- a key the JSON does not have stays absent (`ABSENT`, falsy), never becomes null: the
  2026-11 results have no "made", no "kind", no "search_order";
- a key this version does not model is kept in `extra` as it was and written back.

The templates read the JSON form (`to_dict()`): it is the contract they render."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


class _Absent:
    """The value of a key a saved result does not have (an older version's)."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


def given(value, default=None):
    """`value`, or `default` when its key was absent: what `dict.get(key, default)` said."""
    return default if value is ABSENT else value


def _key(typed: type | None = None, many: bool = False, key: str | None = None):
    """A field read from the JSON key `key` (default: its name), typed as `typed` (a Record;
    a list of them with `many`), absent until given."""
    return field(default=ABSENT, metadata={"typed": typed, "many": many, "key": key})


@dataclass(frozen=True, kw_only=True)
class Record:
    extra: Mapping = field(default_factory=dict)   # keys this version does not model

    @classmethod
    def from_dict(cls, data: Mapping):
        """The typed record of a JSON object; TypeError when it is not one (rerender says
        so as a result of the wrong shape)."""
        if not isinstance(data, Mapping):
            raise TypeError(f"{cls.__name__}: an object expected, not {type(data).__name__}")
        kw, known = {}, set()
        for f in fields(cls):
            if f.name == "extra":
                continue
            key = f.metadata["key"] or f.name
            known.add(key)
            if key in data:
                kw[f.name] = _typed(f, data[key])
        return cls(**kw, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict:
        """The JSON object, key for key as it was read or as the command made it."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or value is ABSENT:
                continue
            if f.metadata["many"] and value is not None:
                value = [x.to_dict() for x in value]
            elif isinstance(value, Record):
                value = value.to_dict()
            out[f.metadata["key"] or f.name] = value
        out.update(self.extra)
        return out


def _typed(f, value):
    typed = f.metadata["typed"]
    if typed is None or value is None:   # null stays null ("bisection": null, "made": null)
        return value
    if not f.metadata["many"]:
        return typed.from_dict(value)
    if not isinstance(value, list):
        raise TypeError(f"{f.name}: a list expected, not {type(value).__name__}")
    return tuple(typed.from_dict(x) for x in value)


@dataclass(frozen=True, kw_only=True)
class Ref(Record):
    """What a name given on the command line resolved to that day."""
    typed: str = _key()
    name: str = _key()
    sha: str = _key()
    note: str | None = _key()


@dataclass(frozen=True, kw_only=True)
class ScenarioInfo(Record):
    """`Scenario.summary()`: which bug, from which file, with which test patches."""
    name: str = _key()
    title: str = _key()
    ticket: str | None = _key()
    file: str = _key()
    digest: str = _key()
    patches: list = _key()


@dataclass(frozen=True, kw_only=True)
class Made(Record):
    """How a report was made (reports/provenance.py); host and options as recorded."""
    date: str | None = _key()
    tool_version: str | None = _key()
    host: dict = _key()
    options: dict = _key()
    note: str = _key()


@dataclass(frozen=True, kw_only=True)
class Step(Record):
    """One decision of a bisection with its build and cycle facts (reports/facts.py; the
    facts not named here stay in `extra`)."""
    commit: str = _key()
    position: int = _key()
    role: str = _key()
    verdict: str = _key()
    cycles: int = _key()
    new_cycles: int = _key()
    hits: int = _key()
    note: str = _key()
    subject: str = _key()
    build_seconds: float | None = _key()
    build_cached: bool = _key()
    repro_seconds: float = _key()
    cpu_busy: float | None = _key()
    unhealthy: list = _key()
    build_engine: str | None = _key()
    cycle_engines: list = _key()


@dataclass(frozen=True, kw_only=True)
class Answer(Record):
    """A bisection's answer (the JSON's "result"): see policy.records.BisectResult."""
    status: str = _key()
    message: str = _key()
    candidates: list = _key()
    first_bad: str | None = _key()
    first_fixed: str | None = _key()
    subject: str = _key()
    confidence: float | None = _key()
    p_estimate: float | None = _key()
    p_lower: float | None = _key()
    total_cycles: int = _key()
    kind: str | None = _key()
    lower_sample: list | None = _key()
    rate_sample: list | None = _key()
    rate_floor: float | None = _key()


@dataclass(frozen=True, kw_only=True)
class RangeInfo(Record):
    good: Ref = _key(Ref)
    bad: Ref = _key(Ref)
    size: int = _key()
    notes: list = _key()


@dataclass(frozen=True, kw_only=True)
class RunResult(Record):
    """`afpbisect run` (commands/run.py)."""
    afpbisect: str = _key()
    command: str = _key()
    mode: str = _key()
    repo: str = _key()
    workdir: str = _key()
    range: RangeInfo = _key(RangeInfo)
    scenario: ScenarioInfo = _key(ScenarioInfo)
    patches: list = _key()
    settings: dict = _key()
    answer: Answer = _key(Answer, key="result")
    reference: dict | None = _key()
    calibrations: list = _key()
    engines: list = _key()
    steps: tuple[Step, ...] = _key(Step, many=True)
    skips: list = _key()
    trace: list = _key()
    wall_seconds: float = _key()
    search_order: dict = _key()
    made: Made = _key(Made)
    revert_check: dict = _key()   # --confirm-revert: a verify-patch check of the revert
    reports: dict = _key()


@dataclass(frozen=True, kw_only=True)
class Side(Record):
    """One side of a patch check: the evidence on the build with or without the patch."""
    cycles: int = _key()
    hits: int = _key()
    infra: int = _key()
    unhealthy: int = _key()
    build_error: str | None = _key()


@dataclass(frozen=True, kw_only=True)
class VerifyResult(Record):
    """`afpbisect verify-patch` (commands/verify_patch.py); the facts are
    reports/facts.step_facts of each side's build, as recorded."""
    afpbisect: str = _key()
    command: str = _key()
    repo: str = _key()
    target: Ref = _key(Ref)
    patches: list = _key()
    scenario: ScenarioInfo = _key(ScenarioInfo)
    test_patches: list = _key()
    settings: dict = _key()
    verdict: str = _key()
    summary: str = _key()
    confidence: float | None = _key()
    p_estimate: float | None = _key()
    p_lower: float | None = _key()
    clean_needed: int | None = _key()
    baseline: Side = _key(Side)
    patched: Side = _key(Side)
    trace: list = _key()
    baseline_facts: dict = _key()
    patched_facts: dict = _key()
    wall_seconds: float = _key()
    made: Made = _key(Made)
    reports: dict = _key()


@dataclass(frozen=True, kw_only=True)
class NightBisection(Record):
    """What a night keeps of the bisection it ran."""
    status: str = _key()
    candidates: list = _key()
    first_bad: str | None = _key()
    subject: str = _key()
    confidence: float | None = _key()
    report: str = _key()
    wall_seconds: float = _key()


@dataclass(frozen=True, kw_only=True)
class NightlyResult(Record):
    """`afpbisect nightly` (commands/nightly.py): the night (also kept in the job's
    history) with the ref it resolved and how it was made."""
    afpbisect: str = _key()
    command: str = _key()
    repo: str = _key()
    date: str = _key()
    ref: Ref = _key(Ref)
    sha: str = _key()
    subject: str = _key()
    last_good: str | None = _key()
    replay: bool = _key()
    bisection: NightBisection | None = _key(NightBisection)
    verdict: str | None = _key()
    cycles: int = _key()
    hits: int = _key()
    unhealthy: int = _key()
    infra: int = _key()
    build_error: str | None = _key()
    error: str | None = _key()
    p_assumed: float | None = _key()
    reference: dict | None = _key()
    build_seconds: float | None = _key()
    repro_seconds: float | None = _key()
    clean_cycles: int = _key()
    clean_confidence: float = _key()
    status: str = _key()
    exit_code: int = _key()
    wall_seconds: float = _key()
    scenario: ScenarioInfo = _key(ScenarioInfo)
    made: Made = _key(Made)
    last_good_after: str | None = _key()
    reports: dict = _key()


BY_COMMAND = {"run": RunResult, "verify-patch": VerifyResult, "nightly": NightlyResult}


def result_from_dict(data: Mapping) -> RunResult | VerifyResult | NightlyResult:
    """A saved result, typed by its "command"; TypeError or KeyError for another object."""
    if not isinstance(data, Mapping):
        raise TypeError(f"a result is an object, not {type(data).__name__}")
    return BY_COMMAND[data["command"]].from_dict(data)
