"""Storage on an engine that may be another host (issue 20, `Engine.remote`).

A remote engine cannot see this host's files, so nothing is bind-mounted into its
containers.  Instead each engine keeps, in its own named volumes (`Engine.volume_name`):

  tree-<image key>   the build tree: sources synced from the host's tree + build outputs
  ccache, cargo      the compiler cache and the cargo home
  product-<dir>      a product, read-only in the repro container

and files travel as tar archives: `put_archive` into a container that is created but not
started (or a short helper container), `get_archive` back.  The host keeps the truth of what
a tree volume holds as a manifest (one digest per file) beside its own tree, so each build
sends only the files that changed since the last sync; the volume holds a sync id that must
match the manifest's, or the volume is not the one the manifest describes (removed,
replaced) and the next sync is a full one.

Volumes are caches kept across runs (like the workdir's cache dir): they carry the labels
afpbisect=1, afpbisect.workdir and afpbisect.engine, not the run's; `remove_volumes` is
their cleaner.  Transfers that fail are InfraError: the machinery, never a verdict.
"""
from __future__ import annotations

import hashlib
import io
import logging
import tarfile
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import docker.errors
import requests.exceptions
from docker.types import Mount

from afpbisect.machinery.engine import (
    ENGINE_LABEL,
    LABEL,
    TRANSPORT_ERRORS,
    WORKDIR_LABEL,
    Engine,
    _short,
    create_container,
    retrying,
    wait_exit,
)
from afpbisect.machinery.deadlines import patience
from afpbisect.core.errors import InfraError

TRANSFER_SECONDS = 1800   # an archive of a whole build tree, extracted before the reply

log = logging.getLogger(__name__)

PURPOSE_LABEL = "afpbisect.volume"
COMPLETE_MARK = ".afpbisect-complete"   # in a product volume: written after the product
HELPER_SECONDS = 1800                   # a full sync of a Suricata tree is seconds; bounded anyway


# ------------------------------------------------------------------ manifests (pure)


# ------------------------------------------------------------------ volumes

def volume_labels(engine: Engine, purpose: str) -> dict:
    """Cache labels, not the run's: a volume outlives the run that made it."""
    return {LABEL: "1", WORKDIR_LABEL: engine.workdir_tag or "noworkdir", ENGINE_LABEL: engine.name,
            PURPOSE_LABEL: purpose}


def ensure_volume(engine: Engine, purpose: str) -> str:
    """The engine's volume for `purpose`, created with our labels when absent.  Made here and
    not by `docker create`, which would make an unlabeled one that no cleaner finds."""
    name = engine.volume_name(purpose)
    try:
        retrying(engine.client.volumes.get)(name)
    except docker.errors.NotFound:
        # Idempotent: creating an existing volume of the same name returns it.
        retrying(engine.client.volumes.create)(name=name, labels=volume_labels(engine, purpose))
    except TRANSPORT_ERRORS as exc:
        raise InfraError(f"volume {name} on engine {engine.name}: {_short(exc)}") from exc
    return name


def volume_mount(volume: str, target: str, read_only: bool = False) -> Mount:
    return Mount(target=target, source=volume, type="volume", read_only=read_only)


def remove_volumes(engine: Engine, workdir_tag: str | None = None) -> list[str]:
    """Remove this engine's volumes of a workdir (default: the engine's own workdir tag):
    build trees, caches, products.  For `afpbisect clean --caches` and tests' teardown.  A
    volume in use by a container is left (logged) and not in the returned names."""
    tag = workdir_tag or engine.workdir_tag or "noworkdir"
    return _remove_matching(engine, [f"{LABEL}=1", f"{WORKDIR_LABEL}={tag}", f"{ENGINE_LABEL}={engine.name}"])


def remove_all_volumes(engine: Engine) -> list[str]:
    """Every afpbisect volume on the engine, any workdir's and any engine name's
    (`afpbisect clean --all --volumes`)."""
    return _remove_matching(engine, [f"{LABEL}=1"])


def _remove_matching(engine: Engine, labels: list[str]) -> list[str]:
    removed = []
    for vol in retrying(engine.client.volumes.list)(filters={"label": labels}):
        try:
            retrying(vol.remove)(force=True)
            removed.append(vol.name)
        except docker.errors.NotFound:
            pass
        except TRANSPORT_ERRORS as exc:
            log.warning("could not remove volume %s: %s", vol.name, _short(exc))
    return removed


# ------------------------------------------------------------------ archives

def tar_bytes(files: dict[str, bytes | Path], mode: int = 0o644) -> bytes:
    """A tar of {archive name: bytes or host file} (small things: scripts, configs, marks)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            if isinstance(data, Path):
                data = data.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Files in the engine belong to the containers' root, whoever owns them here.
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def tar_tree(root: Path, rels: list[str], dest) -> int:
    """Write to the open binary file `dest` a tar of `rels` (files, symlinks) under `root`,
    each with its own mode; returns the bytes of file content it holds."""
    size = 0
    with tarfile.open(fileobj=dest, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for rel in rels:
            info = tf.gettarinfo(str(Path(root) / rel), arcname=rel)
            if info.isreg():
                size += info.size
                with open(Path(root) / rel, "rb") as fh:
                    tf.addfile(_root_owned(info), fh)
            else:
                tf.addfile(_root_owned(info))
    return size


def put(engine: Engine, container, path: str, data) -> None:
    """put_archive, retried (extracting the same archive again is harmless); bytes or a
    seekable file, rewound before each try."""
    @retrying
    def attempt():
        if hasattr(data, "seek"):
            data.seek(0)
        if not container.put_archive(path, data):
            raise InfraError(f"engine {engine.name} refused the archive for {path}")
    try:
        with patience(TRANSFER_SECONDS):   # the reply comes once a whole tree is extracted
            attempt()
    except TRANSPORT_ERRORS as exc:
        raise InfraError(f"sending files to {path} on engine {engine.name}: {_short(exc)}") from exc


def read_file(engine: Engine, container, path: str) -> bytes | None:
    """A file's bytes from a container (created, running or exited), None when absent."""
    @retrying
    def attempt():
        stream, _ = container.get_archive(path)
        return b"".join(stream)
    try:
        raw = attempt()
    except docker.errors.NotFound as exc:
        if "no such container" not in str(exc).lower():
            return None   # the file is absent; a container that is gone is an error
        raise InfraError(f"reading {path} on engine {engine.name}: {_short(exc)}") from exc
    except TRANSPORT_ERRORS as exc:
        raise InfraError(f"reading {path} on engine {engine.name}: {_short(exc)}") from exc
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        member = next((m for m in tf.getmembers() if m.isreg()), None)
        return tf.extractfile(member).read() if member else None


def get_tree(engine: Engine, container, path: str, dest: Path) -> int:
    """Copy the directory `path` of a container into `dest` (its contents, not the directory
    itself); returns the bytes copied; NotFound when `path` is absent.  Through a temp file:
    a retry starts the download over."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=dest.parent) as tmp:
        @retrying
        def attempt():
            tmp.seek(0)
            tmp.truncate()
            stream, _ = container.get_archive(path)
            for chunk in stream:
                tmp.write(chunk)
        try:
            attempt()
        except docker.errors.NotFound:
            raise   # the caller knows whether an absent directory is an error
        except TRANSPORT_ERRORS as exc:
            raise InfraError(f"copying {path} back from engine {engine.name}: {_short(exc)}") from exc
        size = tmp.tell()
        tmp.seek(0)
        _extract_stripped(tmp, dest)
    return size


def _extract_stripped(fileobj, dest: Path) -> None:
    """Extract a get_archive tar (whose top entry is the directory itself) into `dest`;
    the "tar" filter refuses anything that would land outside it."""
    with tarfile.open(fileobj=fileobj, mode="r|") as tf:
        for member in tf:
            top, _, rest = member.name.partition("/")
            if not rest:
                continue   # the directory itself: dest stands for it
            member.name = rest
            if member.islnk():   # a hard link names its target by archive path too
                member.linkname = member.linkname.partition("/")[2]
            _extract_one(tf, member, dest)


def _extract_one(tf: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    """The "tar" filter where this Python has it (3.10.12+, 3.11.4+); before that, the same
    refusal of absolute names, `..` and links that leave `dest`, checked here."""
    if hasattr(tarfile, "tar_filter"):
        tf.extract(member, dest, filter="tar")
        return
    for name in (member.name, member.linkname if member.issym() or member.islnk() else ""):
        if name.startswith("/") or ".." in Path(name).parts:
            raise tarfile.TarError(f"refused an archive member that leaves {dest}: {member.name}")
    tf.extract(member, dest)


# ------------------------------------------------------------------ helper containers

@contextmanager
def helper(engine: Engine, image: str, mounts: list[Mount], command: list[str] | None = None,
           role: str = "storage"):
    """A container for moving files: created (not started unless the caller does), with
    the run's labels, no network, removed in any case."""
    name = f"afpbisect-{role}-{engine.run_id}-{uuid.uuid4().hex[:8]}"
    labels = {**engine.labels, "afpbisect.role": role}
    try:
        c = create_container(engine.client, image, command or ["true"], name=name, labels=labels,
                             mounts=mounts, network_mode="none", entrypoint=[])
    except TRANSPORT_ERRORS as exc:
        raise InfraError(f"helper container on engine {engine.name}: {_short(exc)}") from exc
    try:
        yield c
    finally:
        try:
            retrying(engine.client.api.remove_container)(name, force=True)
        except docker.errors.NotFound:
            pass
        except TRANSPORT_ERRORS as exc:   # the run's label cleanup is the second net
            log.warning("could not remove helper container %s: %s", name, _short(exc))


def run_helper(engine: Engine, c, what: str) -> str:
    """Start a helper container, wait for it, return its output; a failure is InfraError."""
    try:
        retrying(c.start)()
        code = wait_exit(c, HELPER_SECONDS, what)   # polled: each call with a deadline
        out = retrying(c.logs)().decode(errors="replace")
    except TRANSPORT_ERRORS as exc:
        raise InfraError(f"{what} on engine {engine.name}: {_short(exc)}") from exc
    if code != 0:
        tail = " | ".join(out.strip().splitlines()[-5:])
        raise InfraError(f"{what} on engine {engine.name} failed (exit {code}): {tail}")
    return out


# ------------------------------------------------------------------ build trees


# ------------------------------------------------------------------ products

def product_volume(engine: Engine, image: str, product_dir: Path, target: str) -> str:
    """The engine's read-only copy of a local product, filled from it once (a volume per
    product: a product never changes under its key).  The mark is written after the
    product, so a fill cut short is done again, never used half."""
    product_dir = Path(product_dir).resolve()
    # products/<sha12>-<key> names its content; the path's hash keeps two directories of the
    # same name elsewhere (tests, a product dir given by hand) apart.
    where = hashlib.sha256(str(product_dir).encode()).hexdigest()[:8]
    # ...and its build record's digest: a product rebuilt under the same key (a crash
    # between the product and its record) gets a new volume, never the old copy.
    meta = product_dir / "afpbisect-build.json"
    made = hashlib.sha256(meta.read_bytes() if meta.is_file() else b"").hexdigest()[:6]
    volume = ensure_volume(engine, f"product-{product_dir.name}-{where}{made}")
    with helper(engine, image, [volume_mount(volume, target)], role="product") as c:
        if read_file(engine, c, f"{target}/{COMPLETE_MARK}") is not None:
            return volume
        with tempfile.TemporaryFile(dir=product_dir.parent) as tmp:
            with tarfile.open(fileobj=tmp, mode="w", format=tarfile.PAX_FORMAT) as tf:
                tf.add(str(product_dir), arcname=".", filter=_root_owned)
            log.info("sending product %s (%d bytes) to engine %s", product_dir.name, tmp.tell(),
                     engine.name)
            put(engine, c, target, tmp)
        put(engine, c, target, tar_bytes({COMPLETE_MARK: product_dir.name.encode()}))
    return volume


def put_dir(engine: Engine, container, src: Path, target: str) -> None:
    """Send the files of the host directory `src`, subdirectories and all (no __pycache__),
    to the directory `target` of a container before it starts.  The archive holds files
    only: the engine makes `target` and every directory on the way, as the bind mount shows
    them to a local engine's container."""
    files = {f"{target.strip('/')}/{rel.as_posix()}": p for p, rel in _files_under(Path(src))}
    put(engine, container, "/", tar_bytes(files))


def _files_under(src: Path) -> list[tuple[Path, Path]]:
    """(path, path relative to src) of every regular file under src, sorted; no __pycache__."""
    return [(p, p.relative_to(src)) for p in sorted(src.rglob("*"))
            if p.is_file() and "__pycache__" not in p.relative_to(src).parts]
