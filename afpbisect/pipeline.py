"""The real environment behind the policy's small interface (policy.Env), as syzkaller
keeps `Env` apart from the bisection policy: build a commit (cached), run one cold-start
cycle on it, release it.  Every build and every cycle record goes into the run state,
which is saved after each one, so a killed run resumes without redoing finished work."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import git

from .build import BuildResult, DockerBuilder
from .errors import InfraError, StateError
from .repro import CycleRecord, ReproEnv, ReproSession
from .state import State
from .verdict import CycleOutcome, Evidence
from .worktree import Patch


@dataclass
class Variant:
    """What is built for a commit: the test patches (widener, maybe a candidate fix)."""
    name: str
    patches: list[Patch] = field(default_factory=list)


class PipelineEnv:
    def __init__(self, repo: git.Repo, builder: DockerBuilder, repro: ReproEnv, state: State,
                 workdir: Path, variant: Variant, say=print):
        self.repo, self.builder, self.repro, self.state = repo, builder, repro, state
        self.workdir = Path(workdir)
        self.variant = variant
        self.say = say
        self.sessions: dict[str, ReproSession] = {}
        self.builds: dict[str, BuildResult] = {}
        for k in ("builds", "cycles", "evidence"):
            state.data.setdefault(k, {})

    # ------------------------------------------------------------ policy.Env
    def build(self, commit) -> str | None:
        key = self.key_of(commit)
        res = self._build(commit)
        self.state.data["builds"][key] = res.to_dict()
        self.state.save()
        if res.ok:
            return None
        tail = (res.tail or "").strip().splitlines()
        return f"{res.step}: {tail[-1] if tail else 'failed'} (log {res.log_path})"

    def cycle(self, commit) -> CycleOutcome:
        key = self.key_of(commit)
        session = self._session(commit)
        records = self.state.data["cycles"].setdefault(key, [])
        index = len(records) + 1
        t0 = time.time()
        rec: CycleRecord = session.cycle(index)
        d = rec.to_dict()
        d["wall"] = round(time.time() - t0, 2)
        records.append(d)
        self.state.save()
        out = rec.outcome()
        extra = (f", {len(rec.signature_lines)} signature line(s)" if out == CycleOutcome.HIT else
                 f", {rec.error or 'no start marker'}" if out == CycleOutcome.INFRA else "")
        start = f"started in {rec.start_seconds:.1f}s" if rec.start_seconds is not None else "did not start"
        self.say(f"    {key[:10]} cycle {index}: {out.value} ({start}{extra})")
        return out

    def release(self, commit) -> None:
        s = self.sessions.pop(self.key_of(commit), None)
        if s is not None:
            s.close()

    def close(self) -> None:
        for k in list(self.sessions):
            self.sessions.pop(k).close()

    # ------------------------------------------------------------ helpers
    def key_of(self, sha: str) -> str:
        # One commit is built in several variants (with and without a candidate fix).
        return f"{sha}:{self.variant.name}"

    def _build(self, commit) -> BuildResult:
        key = self.key_of(commit)
        if key not in self.builds:
            sha = commit
            self.say(f"  building {sha[:10]} ({self.variant.name}: {', '.join(p.name for p in self.variant.patches) or 'no patches'})")
            res = self.builder.build(self.repo, sha, self.variant.patches, label=self.variant.name)
            how = "cache hit" if res.cached else f"{res.seconds:.0f}s"
            self.say(f"  built {sha[:10]}: {'ok' if res.ok else 'FAILED in ' + str(res.step)} ({how})")
            self.builds[key] = res
        return self.builds[key]

    def _session(self, commit) -> ReproSession:
        key = self.key_of(commit)
        if key not in self.sessions:
            res = self._build(commit)
            if not res.ok:
                raise InfraError(f"asked to run {key[:10]}, which did not build")
            logs = self.workdir / "logs" / "repro" / Path(res.product_dir).name
            logs.mkdir(parents=True, exist_ok=True)
            self.sessions[key] = self.repro.session(res.image, Path(res.product_dir), logs)
        return self.sessions[key]

    # ------------------------------------------------------------ report helpers
    def step_facts(self, commit) -> dict:
        key = self.key_of(commit)
        b = self.state.data["builds"].get(key, {})
        recs = self.state.data["cycles"].get(key, [])
        starts = [r["start_seconds"] for r in recs if r.get("start_seconds") is not None]
        return {
            "build_seconds": b.get("seconds"), "build_cached": b.get("cached", False),
            "build_log": b.get("log_path"), "build_ok": b.get("ok"), "build_steps": b.get("steps", {}),
            "build_ccache": b.get("ccache", {}),
            "repro_seconds": round(sum(r.get("wall", r.get("duration", 0)) for r in recs), 1),
            "start_seconds": [r.get("start_seconds") for r in recs],
            "start_median": statistics.median(starts) if starts else None,
            "forwarded_after_start": [sum(v or 0 for v in (r.get("forwarded_after_start") or {}).values()) for r in recs],
            "repro_logs": sorted({str(Path(r["log_path"]).parent.parent) for r in recs if r.get("log_path")}),
        }


def evidence_store(state: State) -> dict:
    """The policy's store (commit -> Evidence), backed by the state file."""
    raw = state.data.setdefault("evidence", {})
    try:
        return {k: Evidence.from_dict(v) for k, v in raw.items()}
    except ValueError as exc:
        raise StateError(f"state file {state.path} is corrupt ({exc}); use --restart to discard it") from None


def save_evidence(state: State, store: dict) -> None:
    state.data["evidence"] = {str(k): v.to_dict() for k, v in store.items()}
    state.save()
