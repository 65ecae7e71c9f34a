"""The real environment behind the policy's small interface (policy.Env), as syzkaller
keeps `Env` apart from the bisection policy: build a commit (cached), run one cold-start
cycle on it, release it.  Every build and every cycle record goes into the run state,
which is saved after each one, so a killed run resumes without redoing finished work."""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import git

from afpbisect.core.cost import build_estimate
from afpbisect.core.errors import InfraError
from afpbisect.core.patch import Patch, load_patch
from afpbisect.core.state import State
from afpbisect.core.verdict import CycleOutcome
from afpbisect.machinery.build import BuildResult, DockerBuilder
from afpbisect.machinery.cpu_load import cpu_busy, cpu_times
from afpbisect.machinery.farm import Lane, pick
from afpbisect.machinery.parallel import Gate
from afpbisect.machinery.placement import prepare_builds
from afpbisect.machinery.repro_record import CycleRecord
from afpbisect.machinery.repro_session import ReproEnv, ReproSession


@dataclass
class Variant:
    """What is built for a commit: the scenario's test patches (8667: the widener), maybe
    more (a candidate fix, a revert).  Only patches go into the build key (build.py), so a
    scenario's traffic or cycle can change without throwing the build cache away."""
    name: str
    patches: list[Patch] = field(default_factory=list)

    @classmethod
    def of(cls, scenario, extra: list[Patch] = (), label: str = "") -> "Variant":
        base = [load_patch(tp.path) for tp in scenario.patches]
        name = "+".join(p.path.stem for p in base) or "no-test-patches"
        return cls(f"{name}+{label}" if label else name, [*base, *extra])


class PipelineEnv:
    """`lanes` (farm.Lane per --engine): where builds and cycles may run; None = the one
    engine of `builder` and `repro`. A commit runs its cycles on the engine that built it
    while that engine works; a lane that failed is chosen last (farm.pick)."""

    def __init__(self, repo: git.Repo, builder: DockerBuilder, repro: ReproEnv, state: State,
                 workdir: Path, variant: Variant, say=print, progress=None, lanes=None):
        self.repo, self.builder, self.repro, self.state = repo, builder, repro, state
        self.lanes: list[Lane] = list(lanes) if lanes else [Lane(getattr(builder, "engine", None), builder, repro)]
        self.owner: dict[str, Lane] = {}      # build key -> the lane that built it (this run)
        self.session_lane: dict[str, Lane] = {}
        # Held by the policy's code while a round's probes run at once (parallel.py); let go
        # around every long wait on an engine below.
        self.gate = Gate()
        self.progress = progress   # progress.Progress: the build's status line, when given
        self.workdir = Path(workdir)
        self.variant = variant
        self.say = say
        self.sessions: dict[str, ReproSession] = {}
        # Cycle logs per command and run: the state file names the command's run, and its
        # creation time tells a --restart apart, so no run overwrites another's evidence.
        created = time.strftime("%Y%m%dT%H%M%S", time.gmtime(state.created))
        self.log_root = self.workdir / "logs" / "repro" / f"{state.path.stem}-{created}"
        self.builds: dict[str, BuildResult] = {}
        self._products: set | None = None
        for k in ("builds", "cycles", "evidence"):
            state.data.setdefault(k, {})

    # ------------------------------------------------------------ policy.Env
    def build(self, commit) -> str | None:
        key = self.key_of(commit)
        res = self._build(commit)
        self._record_build(key, res)
        if res.ok:
            return None
        tail = (res.tail or "").strip().splitlines()
        return f"{res.step}: {tail[-1] if tail else 'failed'} (log {res.log_path})"

    def cycle(self, commit) -> CycleOutcome:
        key = self.key_of(commit)
        session = self._session(commit)
        lane = self.session_lane[key]
        records = self.state.data["cycles"].setdefault(key, [])
        index = len(records) + 1
        t0, cpu0 = time.time(), cpu_times()
        try:
            with self.gate.released():
                rec: CycleRecord = session.cycle(index)
        except InfraError:
            # The container or its engine failed: this session proves nothing more. The
            # next cycle gets a new container, on another engine when there is one.
            lane.strikes += 1
            self.release(commit)
            raise
        lane.strikes = 0
        d = rec.to_dict()
        d["engine"] = lane.name
        d["wall"] = round(time.time() - t0, 2)
        d["cpu_busy"] = cpu_busy(cpu0, cpu_times())
        records.append(d)
        self.state.save()
        rule = self.repro.settings.health
        out = rec.outcome(rule)
        d["outcome"] = out.value
        if out is CycleOutcome.UNHEALTHY:
            d["unhealthy"] = rule.problem(rec)
        self.state.save()
        extra = {CycleOutcome.HIT: f", {len(rec.signature_lines)} signature line(s)",
                 CycleOutcome.INFRA: f", {rec.error}",
                 CycleOutcome.UNHEALTHY: f", {d.get('unhealthy')}"}.get(out, "")
        start = f"started in {rec.start_seconds:.1f}s" if rec.start_seconds is not None else "did not start"
        self.say(f"    {key[:10]} cycle {index}: {out.value} ({start}{extra})")
        return out

    def release(self, commit) -> None:
        self.session_lane.pop(self.key_of(commit), None)
        s = self.sessions.pop(self.key_of(commit), None)
        if s is not None:
            with self.gate.released():   # copying logs back and removing it: waits on Docker
                s.close()

    def prepare(self, commits) -> None:
        """Build `commits` at once, one engine each (a round of the k-ary search)."""
        prepare_builds([(self, c) for c in dict.fromkeys(commits)])

    def close(self) -> None:
        self.session_lane.clear()
        for k in list(self.sessions):
            s = self.sessions.pop(k, None)   # a stopped round's worker may release its own
            if s is not None:
                s.close()

    def built_prefixes(self) -> set:
        """sha[:12] of every commit built in this workdir (any run, any variant): what the
        cost model counts as near. Products are named <sha12>-<key> (build.py); read once,
        then this run's builds are added as they happen."""
        if self._products is None:
            root = self.builder.products
            self._products = {p.name[:12] for p in root.iterdir()} if root.is_dir() else set()
        return self._products | {k[:12] for k, r in self.builds.items() if r.ok}

    # ------------------------------------------------------------ helpers
    def key_of(self, sha: str) -> str:
        # One commit is built in several variants (with and without a candidate fix).
        return f"{sha}:{self.variant.name}"

    def _build(self, commit, lane: Lane | None = None, status: bool = True) -> BuildResult:
        key = self.key_of(commit)
        if key in self.builds:
            return self.builds[key]
        lane = lane or pick(self.lanes, self._busy())
        sha, on = commit, (f" on {lane.name}" if len(self.lanes) > 1 or lane.remote else "")
        # A round's worker shows no status line (several would fight over one); the estimate
        # is read while the gate is held, before other workers may write the builds.
        status = status and not self.gate.held()
        estimate = build_estimate(self.state.data["builds"]) if status and self.progress else None
        self.say(f"  building {sha[:10]}{on} ({self.variant.name}: "
                 f"{', '.join(p.name for p in self.variant.patches) or 'no patches'})")
        try:
            # One build at a time in an engine's tree, whoever asks (a round's worker that
            # lost its engine may come to this one).
            with self.gate.released(), lane.build_lock, self._status(sha, lane.builder, estimate):
                res = lane.builder.build(self.repo, sha, self.variant.patches, label=self.variant.name)
        except InfraError:
            lane.strikes += 1
            raise
        lane.strikes = 0
        if not res.cached:
            lane.last_built = commit   # its tree is at this commit now: near ones are cheap there
        how = "cache hit" if res.cached else f"{res.seconds:.0f}s"
        self.say(f"  built {sha[:10]}{on}: {'ok' if res.ok else 'FAILED in ' + str(res.step)} ({how})")
        self.owner[key] = lane
        self.builds[key] = res
        return res

    def _record_build(self, key: str, res: BuildResult) -> None:
        d = res.to_dict()
        d["engine"] = self.owner[key].name if key in self.owner else None
        self.state.data["builds"][key] = d
        self.state.save()

    @contextlib.contextmanager
    def _status(self, sha: str, builder, estimate):
        """The live status line of this build, with `estimate` (progress.build_estimate of
        the builds this run timed); None: no line (no console, or a round's build)."""
        if self.progress is None or estimate is None:
            yield
            return
        with self.progress.building(sha, estimate) as on_step:
            builder.on_step = on_step
            try:
                yield
            finally:
                builder.on_step = None

    def _session(self, commit) -> ReproSession:
        key = self.key_of(commit)
        if key not in self.sessions:
            res = self._build(commit)
            if not res.ok:
                raise InfraError(f"asked to run {key[:10]}, which did not build")
            logs = self.log_root / Path(res.product_dir).name
            logs.mkdir(parents=True, exist_ok=True)
            lane = self._repro_lane(key)
            image = res.image
            try:
                with self.gate.released():
                    if self.owner.get(key, lane) is not lane:   # its image may not be there
                        image = lane.builder.image_for(lane.builder.recipe_for(self.repo, commit))
                    session = lane.repro.session(image, Path(res.product_dir), logs)
                self.sessions[key] = session
            except InfraError:
                lane.strikes += 1
                raise
            self.session_lane[key] = lane
        return self.sessions[key]

    def _repro_lane(self, key: str) -> Lane:
        """The engine that built it (its image and product are there) unless it has failed
        since; then the best other one, a free one first: two repros on one engine load
        it more than the calibration's did (the product travels from the local store)."""
        owner = self.owner.get(key)
        if owner is not None and owner.strikes == 0:
            return owner
        return pick(self.lanes, self._busy())

    def _busy(self) -> set:
        """Engines running a cycle session or a build of this env now."""
        return ({ln.name for ln in self.session_lane.values()}
                | {ln.name for ln in self.lanes if ln.build_lock.locked()})
