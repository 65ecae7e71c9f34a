"""A build tree kept in an engine's volume (issue 20, `Engine.remote`): the host keeps a manifest
(one digest per file) beside its own tree, so each sync sends only the files that changed; a
sync id in the volume says whether it is still the one the manifest describes. Also the
build phases run over such a tree (`remote_phase`). Transfers: storage.py."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import stat
import tarfile
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from docker.types import Mount

from afpbisect.machinery.engine import Engine
from afpbisect.machinery.storage import (
    ensure_volume,
    get_tree,
    helper,
    put,
    read_file,
    run_helper,
    tar_bytes,
    tar_tree,
    volume_mount,
)

log = logging.getLogger(__name__)


SYNC_ID_FILE = ".afpbisect-sync-id"     # in a tree volume: the id of the last complete sync


SYNC_DIR = "/afpbisect-sync"            # in the sync helper: the payload and the delete list


# What the host's tree has that is not the project's sources: the worktree's .git file
# (a path into our clone, meaningless on another host).
SKIP_TOP = (".git",)


def file_digest(path: Path) -> str:
    """What a sync must preserve of a file: its kind, its executable bit and its bytes
    (a symlink: its target).  mtime is not in it: an unchanged file is not sent again."""
    st = path.lstat()
    h = hashlib.sha256()
    if stat.S_ISLNK(st.st_mode):
        h.update(b"link\0" + os.readlink(path).encode())
    else:
        h.update(b"file-x\0" if st.st_mode & 0o111 else b"file\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:32]


def scan_tree(root: Path) -> dict[str, str]:
    """{relative path: digest} of every file and symlink under `root`, but the .git file."""
    root = Path(root)
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d not in SKIP_TOP]
            filenames = [f for f in filenames if f not in SKIP_TOP]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            out[rel] = file_digest(Path(dirpath) / name)
    return out


@dataclass
class Delta:
    """What a sync sends (changed: new or different) and removes (deleted) in the volume."""
    changed: list[str]
    deleted: list[str]
    full: bool


def delta(old: dict[str, str] | None, new: dict[str, str]) -> Delta:
    """The files to send and to delete to turn a volume that holds `old` into `new`; `old`
    None (no manifest, or a volume that is not the manifest's): everything, a full sync."""
    if old is None:
        return Delta(changed=sorted(new), deleted=[], full=True)
    changed = sorted(p for p, d in new.items() if old.get(p) != d)
    # A directory that became a file (or a symlink) goes whole, with the build outputs in
    # it: tar cannot write a file over a directory that is not empty.
    old_dirs = {parent for p in old for parent in _parents(p)}
    deleted = sorted({p for p in old if p not in new} | {p for p in new if p in old_dirs})
    return Delta(changed=changed, deleted=deleted, full=False)


def _parents(path: str):
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path


def load_manifest(path: Path) -> dict:
    """The manifest of a tree volume ({} when absent or unreadable: then a full sync)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else {}


def save_manifest(path: Path, volume: str, sync_id: str, files: dict[str, str]) -> None:
    """Written atomically after a sync completed: a crash leaves the previous one, whose
    sync id no longer matches the volume's, so the next sync is full (safe, not wrong)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"volume": volume, "sync_id": sync_id, "files": files}))
    tmp.replace(path)


# Run in the sync helper, cwd /src = the tree volume.  A full sync first empties the volume:
# its content is of unknown provenance (the manifest does not describe it), and only a tree
# the manifest describes can be built incrementally.  `tar -m`: every file sent gets the
# engine's time of now as its mtime, newer than any object an earlier build made there (on
# the same clock), so make rebuilds what depends on it; files not sent keep their mtimes.
# The sync id is removed first and written last: a sync cut short (a killed helper, an
# interrupted run) leaves no id, so the next sync is a full one; an old id would make it
# send only what differs from the old manifest onto a volume that is half another tree.
_SYNC_SCRIPT = f"""set -eu
cd /src
rm -f /src/{SYNC_ID_FILE}
if [ -e {SYNC_DIR}/full ]; then find /src -mindepth 1 -delete; fi
if [ -s {SYNC_DIR}/delete ]; then xargs -0 rm -rf -- < {SYNC_DIR}/delete; fi
tar -x -m -f {SYNC_DIR}/payload.tar -C /src
cat {SYNC_DIR}/id > /src/{SYNC_ID_FILE}
for d in rust/target/*/incremental rust/target/*/*/incremental; do
    if [ -d "$d" ]; then echo "AFPBISECT-RUST-INCREMENTAL: $d"; fi
done
"""


_CLEAR_INCREMENTAL = "rm -rf /src/rust/target/*/incremental /src/rust/target/*/*/incremental"


@dataclass
class SyncReport:
    """What one sync of a host tree into its volume did (the build log gets it as a line)."""
    volume: str
    full: bool
    reason: str = ""              # why it was full
    sent: int = 0                 # files sent
    deleted: int = 0              # files removed in the volume
    bytes: int = 0                # their content
    archive_bytes: int = 0        # what went over the wire
    seconds: float = 0.0
    rust_incremental: list = field(default_factory=list)   # rustc incremental state in the volume
    paths: list = field(default_factory=list)   # the files sent, on an incremental sync (a few)

    def line(self) -> str:
        kind = f"full ({self.reason})" if self.full else "incremental"
        return (f"sync to volume {self.volume}: {kind}: {self.sent} files sent ({self.bytes} bytes, "
                f"archive {self.archive_bytes}), {self.deleted} deleted, {self.seconds:.1f}s")

    def to_dict(self) -> dict:
        return asdict(self)


class RemoteTree:
    """A host build tree and its image in the engine's tree volume (mounted at /src)."""

    def __init__(self, engine: Engine, key: str, host_tree: Path):
        self.engine = engine
        self.purpose = f"tree-{key}"
        self.host_tree = Path(host_tree)
        self.manifest_path = self.host_tree.with_name(self.host_tree.name + ".sync.json")

    @property
    def volume(self) -> str:
        return self.engine.volume_name(self.purpose)

    def mounts(self) -> list[Mount]:
        """The build container's storage: the tree, ccache and the cargo home."""
        return [volume_mount(ensure_volume(self.engine, self.purpose), "/src"),
                volume_mount(ensure_volume(self.engine, "ccache"), "/cache/ccache"),
                volume_mount(ensure_volume(self.engine, "cargo"), "/cache/cargo")]

    def _why_full(self, manifest: dict, volume_id: bytes | None) -> str:
        if not manifest:
            return "no manifest on this host"
        if manifest.get("volume") != self.volume:
            return "the manifest is of another volume"
        if volume_id is None:
            return "the volume is new or was emptied"
        if volume_id.decode(errors="replace").strip() != manifest.get("sync_id"):
            return "the volume was replaced or synced from elsewhere"
        return ""

    def sync(self, image: str) -> SyncReport:
        """Make the volume hold exactly the host tree's files (build outputs there stay)."""
        t0 = time.monotonic()
        volume = ensure_volume(self.engine, self.purpose)
        manifest = load_manifest(self.manifest_path)
        files = scan_tree(self.host_tree)
        with helper(self.engine, image, [volume_mount(volume, "/src")],
                    ["sh", "-c", _SYNC_SCRIPT], role="sync") as c:
            why = self._why_full(manifest, read_file(self.engine, c, f"/src/{SYNC_ID_FILE}"))
            d = delta(None if why else manifest["files"], files)
            sync_id = uuid.uuid4().hex
            with tempfile.TemporaryFile(dir=self.manifest_path.parent) as control:
                size = self._control_tar(d, sync_id, control)
                report = SyncReport(volume=volume, full=d.full, reason=why, sent=len(d.changed),
                                    deleted=len(d.deleted), bytes=size, archive_bytes=control.tell(),
                                    paths=[] if d.full else d.changed)
                put(self.engine, c, "/", control)
            out = run_helper(self.engine, c, f"syncing the build tree into volume {volume}")
        save_manifest(self.manifest_path, volume, sync_id, files)
        report.rust_incremental = [l.split(": ", 1)[1] for l in out.splitlines()
                                   if l.startswith("AFPBISECT-RUST-INCREMENTAL: ")]
        report.seconds = round(time.monotonic() - t0, 2)
        log.info("%s", report.line())
        return report

    def _control_tar(self, d: Delta, sync_id: str, dest) -> int:
        """The helper's input, at /: SYNC_DIR/{payload.tar, delete, id[, full]}; returns the
        bytes of file content in the payload."""
        with tempfile.TemporaryFile(dir=self.manifest_path.parent) as payload:
            size = tar_tree(self.host_tree, d.changed, payload)
            payload.seek(0)
            name = SYNC_DIR.lstrip("/")
            small = {f"{name}/delete": "".join(f"{p}\0" for p in d.deleted).encode(),
                     f"{name}/id": sync_id.encode()}
            if d.full:
                small[f"{name}/full"] = b""
            with tarfile.open(fileobj=dest, mode="w") as tf:
                info = tarfile.TarInfo(f"{name}/payload.tar")
                info.size = os.fstat(payload.fileno()).st_size
                tf.addfile(info, payload)
                for arc, data in small.items():
                    info = tarfile.TarInfo(arc)
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
        return size

    def clear_rust_incremental(self, image: str) -> None:
        """rustc's incremental state in the volume (the retry of rule rust-incremental)."""
        with helper(self.engine, image, [volume_mount(self.volume, "/src")],
                    ["sh", "-c", _CLEAR_INCREMENTAL], role="sync") as c:
            run_helper(self.engine, c, f"clearing rustc's incremental state in volume {self.volume}")


@dataclass
class PhaseIO:
    """How a build phase's container gets its files: what goes into its create call, what
    is sent before it starts, what is fetched after it succeeded."""
    create_kw: dict
    before_start: object = None   # callable(container) or None
    after_success: object = None  # callable(container) or None


def remote_phase(engine: Engine, tree: RemoteTree, phase: str, script: str, ca: Path | None,
                 out: Path) -> PhaseIO:
    """A build phase on an engine that cannot see this host: the tree and caches are the
    engine's volumes; the script (and, to fetch, the CA bundle) go in as an archive; the
    compile phase's /out comes back into `out`."""
    files: dict[str, bytes | Path] = {"afp/build.sh": script.encode()}
    if phase == "fetch" and ca is not None:
        files["etc/ssl/certs/ca-certificates.crt"] = Path(ca)
    archive = tar_bytes(files)

    def before_start(c):
        put(engine, c, "/", archive)

    def after_success(c):
        if phase == "compile":
            get_tree(engine, c, "/out", out)
    return PhaseIO(create_kw={"mounts": tree.mounts()}, before_start=before_start,
                   after_success=after_success)
