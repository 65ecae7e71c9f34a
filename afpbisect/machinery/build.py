"""Build environment: a candidate commit + patches -> an installed product, in Docker.

Two containers per build, both from the recipe's image:
  fetch    network host: configure when needed, fetch crates into the cargo cache, fixups
  compile  network none: make + make install DESTDIR=/out  (hermetic: nothing downloaded)
The product is stored under products/<commit>-<key>, key = hash(commit, patches, recipe,
templates): a second request for the same key is a cache hit that builds nothing.
ccache, the cargo home and the build tree persist between builds; that is where a
bisection's time is won.

On the local engine they are bind-mounted from the workdir.  On a remote engine
(`Engine.remote`) nothing of this host is mounted: the tree is checked out here (per engine)
and synced into the engine's volumes, the product comes back as an archive (storage.py).
"""
from __future__ import annotations

import json
import os
import logging
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import git
import requests.exceptions

from afpbisect import TEMPLATES_DIR
from afpbisect.core import eras
from afpbisect.machinery import baseimage, build_image, tree_sync
from afpbisect.machinery.build_image import DOCKERFILE, digest, render
from afpbisect.machinery.build_log import (
    STEP_MARK,
    LogFollower,
    infrastructure_cause,
    log_facts,
    rust_incremental_state,
)
from afpbisect.machinery.engine import (
    TRANSPORT_ERRORS,
    Engine,
    create_container,
    retrying,
    wait_exit,
)
from afpbisect.core.errors import BuildFailure, InfraError, UsageError
from afpbisect.core.patch import Patch
from afpbisect.machinery.worktree import BuildTree, GitCommitView, PatchDoesNotApply

log = logging.getLogger(__name__)

BUILD_SCRIPT = TEMPLATES_DIR / "build.sh.j2"
# A change to any of these means autogen + configure must run again.
_BUILD_SYSTEM = re.compile(r"(^|/)(configure\.ac|Makefile\.am|autogen\.sh|configure|Cargo\.toml\.in|[^/]*\.m4)$")
BUILD_TIMEOUT = 3 * 3600
# Steps of the fetch phase that talk to the network: their failure says nothing about the
# commit (registry down, proxy, certificates), so it is an infrastructure error, not SKIP.
NETWORK_STEPS = ("fetch", "fixup")


def host_ca_bundle() -> Path | None:
    """The host's CA bundle, given to the fetch container: behind a TLS-intercepting proxy
    (corporate networks, this lab) the registries are trusted only through it."""
    for cand in (os.environ.get("AFPBISECT_CA_BUNDLE"), os.environ.get("SSL_CERT_FILE"),
                 "/etc/ssl/certs/ca-certificates.crt"):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


# Worktrees of the one clone are added (and pruned) under its .git: builders of several
# engines, in threads, must not do that at the same time.
_WORKTREE_LOCK = threading.Lock()


@dataclass
class BuildResult:
    commit: str
    key: str
    ok: bool
    cached: bool
    seconds: float
    product_dir: str | None
    image: str
    log_path: str
    rules: list = field(default_factory=list)
    step: str | None = None       # failing step when not ok
    tail: str | None = None       # last lines of the failing step's log
    reconfigured: bool = False
    steps: dict = field(default_factory=dict)   # seconds per build step (step_seconds)
    ccache: dict = field(default_factory=dict)  # C units: hits and misses (ccache_counts)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def skip_reason(self) -> str:
        return f"build failed in step {self.step}: {(self.tail or '').strip().splitlines()[-1:] or ''}"


class DockerBuilder:
    def __init__(self, engine: Engine, workdir: Path, base_image: str, jobs: int = 2, say=print,
                 eras_file: Path | None = None):
        self.engine = engine
        self.workdir = Path(workdir)
        self.base_image_name = base_image
        self._base_image: str | None = None
        self.jobs = jobs
        self.say = say
        # Told each build step's name as the build script starts it (progress.py's status
        # line shows the phase of the build; the script prints AFPBISECT-STEP markers).
        self.on_step: Callable[[str], None] | None = None
        self.products = self.workdir / "products"
        self.cache = self.workdir / "cache"
        self.logs = self.workdir / "logs" / "build"
        # The last sync of a build tree into a remote engine's volume (tree_sync.SyncReport).
        self.last_sync: tree_sync.SyncReport | None = None
        try:
            self.rules = eras.load_rules(eras_file)
        except eras.ErasError as exc:   # it names the file, and wraps OSError and TOML errors
            raise UsageError(f"era rules {exc}") from None

    # ------------------------------------------------------------ keys and recipe
    def recipe_for(self, repo: git.Repo, sha: str) -> eras.Recipe:
        return eras.resolve(GitCommitView(repo, sha), self.rules)

    def key(self, sha: str, patches: list[Patch], recipe: eras.Recipe) -> str:
        return digest(sha, *(p.digest() for p in patches), recipe.key(),
                       DOCKERFILE.read_bytes(), BUILD_SCRIPT.read_bytes())

    def product_dir(self, sha: str, key: str) -> Path:
        return self.products / f"{sha[:12]}-{key}"

    # ------------------------------------------------------------ image
    @property
    def base_image(self) -> str:
        """The configured base image, pulled or debootstrapped on first use."""
        if self._base_image is None:
            self._base_image = baseimage.ensure_base_image(self.engine, self.base_image_name, say=self.say)
        return self._base_image

    def image_for(self, recipe: eras.Recipe) -> str:
        return build_image.ensure(self.engine, self.base_image, recipe, self.workdir, self.say)

    # ------------------------------------------------------------ build
    def build(self, repo: git.Repo, sha: str, patches: list[Patch], label: str = "") -> BuildResult:
        recipe = self.recipe_for(repo, sha)
        key = self.key(sha, patches, recipe)
        out = self.product_dir(sha, key)
        log_path = self.logs / f"{sha[:12]}-{key}.log"
        rules = [list(r) for r in recipe.fired]
        meta = out / "afpbisect-build.json"
        image = self.image_for(recipe)
        if meta.exists() and (out / "usr/local/bin/suricata").is_file():
            # The product is kept, but the image it runs in may have been pruned since:
            # image_for has just rebuilt it under the same tag, so a cache hit never points
            # at an image that is gone (issue 16).
            cached = json.loads(meta.read_text())
            cached.update(cached=True, seconds=0.0, image=image)
            return BuildResult(**cached)
        t0 = time.time()
        self.logs.mkdir(parents=True, exist_ok=True)
        tree = BuildTree(repo, self._trees() / recipe.image_key())
        with _WORKTREE_LOCK:
            tree.ensure()
        with open(log_path, "w") as logf:
            logf.write(f"# afpbisect build of {sha} {label}\n# key {key}\n# image {image}\n")
            for rid, reason in recipe.fired:
                logf.write(f"# rule fired: {rid}: {reason}\n")
            logf.write(f"# patches: {', '.join(p.name for p in patches) or 'none'}\n")
        try:
            reconfigure = self._prepare_tree(tree, sha, patches, recipe, log_path)
        except PatchDoesNotApply as exc:
            return self._failed(sha, key, image, log_path, rules, t0, "patch", str(exc))
        remote, sync = self._sync_remote(tree, recipe, image, log_path) if self.engine.remote else (None, None)
        reconfigure = reconfigure or bool(sync and sync.full)
        # A reused tree can trip over stale generated files after a big jump in history, and
        # over rustc's incremental state (rule rust-incremental) left by an earlier build: one
        # retry with a reconfigure and without that state before calling the commit
        # unbuildable.  A failure with neither to blame is the commit's.
        earlier_state = sync.rust_incremental if sync else rust_incremental_state(tree.path)
        try:
            try:
                self._run_phases(image, tree, recipe, out, log_path, reconfigure, remote)
            except BuildFailure as first:
                if reconfigure and not earlier_state:
                    raise
                if remote:
                    remote.clear_rust_incremental(image)
                for state in rust_incremental_state(tree.path):
                    shutil.rmtree(state, ignore_errors=True)
                with open(log_path, "a") as logf:
                    logf.write(f"\n# build in a reused tree failed in {first.step}; retrying with reconfigure"
                               f"{' and without rustc incremental state' if earlier_state else ''}\n")
                self._run_phases(image, tree, recipe, out, log_path, True, remote)
                reconfigure = True
        except BuildFailure as exc:
            return self._failed(sha, key, image, log_path, rules, t0, exc.step, exc.tail)
        self._remember_tree(tree, sha, recipe)
        res = BuildResult(commit=sha, key=key, ok=True, cached=False, seconds=round(time.time() - t0, 1),
                          product_dir=str(out), image=image, log_path=str(log_path), rules=rules,
                          reconfigured=reconfigure, **log_facts(log_path))
        meta.write_text(json.dumps(res.to_dict(), indent=1))
        return res

    def _failed(self, sha, key, image, log_path, rules, t0, step, tail) -> BuildResult:
        with open(log_path, "a") as logf:
            logf.write(f"\n# BUILD FAILED in step {step}\n")
        return BuildResult(commit=sha, key=key, ok=False, cached=False, seconds=round(time.time() - t0, 1),
                           product_dir=None, image=image, log_path=str(log_path), rules=rules,
                           step=step, tail=tail, **log_facts(log_path))

    def _trees(self) -> Path:
        """Where the host's build trees are: the workdir's own for the local engine (whose
        containers mount them); one set per remote engine, since engines build in parallel
        threads and each tree is synced into one engine's volume."""
        if self.engine.remote:
            return self.workdir / "engines" / self.engine.slug / "trees"
        return self.workdir / "trees"

    def _sync_remote(self, tree: BuildTree, recipe, image: str, log_path: Path):
        """Bring the engine's tree volume up to the host tree just checked out: (the remote
        tree, its tree_sync.SyncReport).  A full sync (the volume is new, was removed or
        replaced) also means configure runs again."""
        remote = tree_sync.RemoteTree(self.engine, recipe.image_key(), tree.path)
        sync = self.last_sync = remote.sync(image)
        with open(log_path, "a") as logf:
            logf.write(f"# {sync.line()}\n")
            if sync.full:
                logf.write("# reconfigure: full sync of the build tree\n")
        return remote, sync

    def _tree_meta(self, tree: BuildTree) -> Path:
        return tree.path.parent / f"{tree.path.name}.json"

    def _prepare_tree(self, tree: BuildTree, sha: str, patches: list[Patch], recipe, log_path) -> bool:
        meta_path = self._tree_meta(tree)
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        tree.checkout(sha, patches)
        last = meta.get("configured_at")
        if not last or meta.get("recipe") != recipe.key():
            return True
        changed = [f for f in tree.changed_since(last, sha) if _BUILD_SYSTEM.search(f)]
        if changed:
            with open(log_path, "a") as logf:
                logf.write(f"# reconfigure: build system changed since {last[:10]}: {', '.join(changed[:8])}\n")
        return bool(changed)

    def _remember_tree(self, tree: BuildTree, sha: str, recipe) -> None:
        self._tree_meta(tree).write_text(json.dumps({"configured_at": sha, "recipe": recipe.key()}))

    def _run_phases(self, image, tree, recipe, out: Path, log_path: Path, reconfigure: bool,
                    remote: tree_sync.RemoteTree | None = None) -> None:
        script = render(BUILD_SCRIPT, recipe=recipe, jobs=self.jobs)
        # Engines of a farm may build the same key at once: each its own temp dir.
        tmp_out = out.with_name(out.name + (f".tmp-{self.engine.slug}" if remote else ".tmp"))
        shutil.rmtree(tmp_out, ignore_errors=True)
        tmp_out.mkdir(parents=True)
        env = dict(recipe.env)
        env.update(RECONFIGURE="1" if reconfigure else "0", CCACHE_DIR="/cache/ccache",
                   CARGO_HOME="/cache/cargo")
        ca = host_ca_bundle()
        if remote is not None:
            fetch_io = tree_sync.remote_phase(self.engine, remote, "fetch", script, ca, tmp_out)
            compile_io = tree_sync.remote_phase(self.engine, remote, "compile", script, ca, tmp_out)
        else:
            fetch_io, compile_io = self._bind_phases(tree, script, ca, tmp_out)
        try:
            self._container(image, "fetch", env, fetch_io, "host", log_path)
        except BuildFailure as exc:
            if exc.step in NETWORK_STEPS:
                last = [l for l in exc.tail.splitlines() if l.strip()][-1:] or ["?"]
                who = ("network, registry, certificates or the era rule's own command" if exc.step == "fixup"
                       else "network, registry or certificates")
                raise InfraError(f"fetching dependencies failed in step {exc.step} ({who}, not the commit): "
                                 f"{last[0][:200]}; log {log_path}") from None
            raise
        self._container(image, "compile", env, compile_io, "none", log_path)
        shutil.rmtree(out, ignore_errors=True)
        tmp_out.rename(out)

    def _bind_phases(self, tree, script: str, ca: Path | None, tmp_out: Path):
        """The local engine's phases (the path the measured runs took): the workdir's tree,
        caches, script and the product dir bind-mounted."""
        afp = self.workdir / "run" / "build"
        afp.mkdir(parents=True, exist_ok=True)
        (afp / "build.sh").write_text(script)
        for d in ("ccache", "cargo"):
            (self.cache / d).mkdir(parents=True, exist_ok=True)
        vols = {str(tree.path): {"bind": "/src", "mode": "rw"},
                str(afp): {"bind": "/afp", "mode": "ro"},
                str(self.cache / "ccache"): {"bind": "/cache/ccache", "mode": "rw"},
                str(self.cache / "cargo"): {"bind": "/cache/cargo", "mode": "rw"}}
        # The worktree's .git file points into our clone: mount it at the same path so
        # git inside the container (version scripts) sees a valid repository.
        vols[str(tree.repo.git_dir)] = {"bind": str(tree.repo.git_dir), "mode": "ro"}
        fetch_vols = dict(vols)
        if ca is not None:
            fetch_vols[str(ca)] = {"bind": "/etc/ssl/certs/ca-certificates.crt", "mode": "ro"}
        vols[str(tmp_out)] = {"bind": "/out", "mode": "rw"}
        return tree_sync.PhaseIO({"volumes": fetch_vols}), tree_sync.PhaseIO({"volumes": vols})

    def _container(self, image, phase, env, io: tree_sync.PhaseIO, network, log_path: Path) -> None:
        client = self.engine.client
        name = f"afpbisect-build-{self.engine.run_id}-{phase}-{int(time.time() * 1000) % 10**8}"
        try:
            c = create_container(client, image, ["bash", "/afp/build.sh", phase], name=name,
                                 environment=env, network_mode=network, working_dir="/src",
                                 labels=self.engine.labels, **io.create_kw)
            if io.before_start is not None:
                io.before_start(c)
            retrying(c.start)()
            with open(log_path, "a") as logf:
                logf.write(f"\n# ---- phase {phase} (network {network})\n")
                logf.flush()
                follow = LogFollower(c, logf, self.on_step)
                # Polled, not Docker's wait: each poll has a deadline, so an engine that
                # stops answering is an error in API seconds, not a hang (issue 25).
                try:
                    status = {"StatusCode": wait_exit(c, BUILD_TIMEOUT, f"{phase} container {name}")}
                except BaseException:
                    follow.done(grace=0)   # nothing more goes into the log file
                    raise
                if not follow.done():
                    logf.write("\n# ---- log stream lost (daemon connection); full phase log:\n")
                    logf.write(retrying(c.logs)().decode(errors="replace"))
            if status.get("StatusCode", -1) == 0 and io.after_success is not None:
                io.after_success(c)   # before the container goes: the product is in it
        except TRANSPORT_ERRORS as exc:
            raise InfraError(f"docker failed during the {phase} phase: {str(exc)[:300]}") from exc
        finally:
            try:
                retrying(client.api.remove_container)(name, force=True)
            except TRANSPORT_ERRORS:
                pass
        code = status.get("StatusCode", -1)
        if code != 0:
            text = log_path.read_text(errors="replace")
            phase_text = text[text.rfind(f"# ---- phase {phase}"):]
            steps = STEP_MARK.findall(phase_text)
            step = steps[-1] if steps else phase
            tail = "\n".join(phase_text.rstrip().splitlines()[-25:])
            why = infrastructure_cause(code, phase_text)
            if why:
                raise InfraError(f"{phase} container, step {step}: {why}; not a verdict on the "
                                 f"commit (log {log_path})")
            raise BuildFailure(step, tail, log_path)
