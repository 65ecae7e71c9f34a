"""afpbisect.machinery.storage: builds and repro sessions on an engine that may be another host
(issue 20): nothing of this host is mounted; trees, caches and products live in the
engine's volumes, files travel as archives.

The manifest logic is tested without Docker.  The docker tests use the real engine as a
"remote" one (Engine.remote=True under a random name) and the synthetic target: two near
commits (the second build sends only what changed), a bind-mode build of the same commit
(same product), a deleted file, a removed volume (full sync + reconfigure), a repro session
on the planted commit (HIT, console.log copied back), and nothing left behind."""
from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from afpbisect.core.errors import InfraError
from afpbisect.machinery import storage, tree_sync
from afpbisect.machinery.engine import Engine
from conftest import git

# ---------------------------------------------------------------------------------------
# manifests and archives (no Docker)
# ---------------------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def test_scan_tree_skips_the_worktrees_git_file_and_sees_content_mode_and_links(tmp_path):
    root = _tree(tmp_path / "t", {"a.c": "int a;\n", "src/b.c": "int b;\n", ".gitignore": "*.o\n",
                                  ".git": "gitdir: /somewhere/else\n", "src/.git": "nested, kept\n"})
    os.symlink("a.c", root / "link")
    first = tree_sync.scan_tree(root)
    assert sorted(first) == [".gitignore", "a.c", "link", "src/.git", "src/b.c"]
    os.utime(root / "a.c", (1, 1))                    # mtime alone: same digest
    assert tree_sync.scan_tree(root) == first
    (root / "a.c").chmod(0o755)                       # the executable bit: a change
    assert tree_sync.scan_tree(root)["a.c"] != first["a.c"]
    (root / "a.c").chmod(0o644)
    (root / "src/b.c").write_text("int b2;\n")        # the bytes: a change
    assert tree_sync.scan_tree(root)["src/b.c"] != first["src/b.c"]
    os.unlink(root / "link")
    os.symlink("src/b.c", root / "link")              # a link's target: a change
    assert tree_sync.scan_tree(root)["link"] != first["link"]


def test_delta_sends_new_and_changed_deletes_the_gone_and_nothing_else():
    old = {"a": "1", "b": "2", "c": "3"}
    new = {"a": "1", "b": "2x", "d": "4"}
    d = tree_sync.delta(old, new)
    assert (d.changed, d.deleted, d.full) == (["b", "d"], ["c"], False)
    assert tree_sync.delta(new, new) == tree_sync.Delta([], [], False)


def test_a_directory_that_became_a_file_is_removed_whole_before_the_file_is_sent():
    old = {"src/x/a.c": "1", "src/x/b.c": "2", "README": "r"}
    new = {"src/x": "link", "README": "r"}
    d = tree_sync.delta(old, new)
    assert "src/x" in d.deleted and d.changed == ["src/x"]
    # and the other way round: a file that became a directory
    d = tree_sync.delta(new, old)
    assert d.deleted == ["src/x"] and d.changed == ["src/x/a.c", "src/x/b.c"]


def test_a_sync_cut_short_leaves_no_sync_id_so_the_next_one_is_full():
    script = tree_sync._SYNC_SCRIPT
    drop = script.index(f"rm -f /src/{tree_sync.SYNC_ID_FILE}")
    assert drop < script.index("xargs") < script.index("tar -x") < script.index(f"> /src/{tree_sync.SYNC_ID_FILE}")


def test_delta_without_a_trusted_manifest_is_a_full_sync():
    d = tree_sync.delta(None, {"z": "1", "a": "2"})
    assert (d.changed, d.deleted, d.full) == (["a", "z"], [], True)


def test_manifest_round_trip_and_an_unreadable_one_is_none(tmp_path):
    path = tmp_path / "m" / "tree.sync.json"
    tree_sync.save_manifest(path, "vol", "id1", {"a": "1"})
    assert tree_sync.load_manifest(path) == {"volume": "vol", "sync_id": "id1", "files": {"a": "1"}}
    path.write_text("{not json")
    assert tree_sync.load_manifest(path) == {}
    assert tree_sync.load_manifest(tmp_path / "absent.json") == {}


def _engine(name="e1", tag="abc") -> Engine:
    return Engine(client=None, run_id="r", workdir_tag=tag, name=name, remote=True)


def test_why_full_trusts_the_manifest_only_when_the_volume_holds_its_sync_id(tmp_path):
    rt = tree_sync.RemoteTree(_engine(), "key", tmp_path / "tree")
    good = {"volume": rt.volume, "sync_id": "s1", "files": {}}
    assert rt._why_full(good, b"s1") == ""
    assert "no manifest" in rt._why_full({}, b"s1")
    assert "new or was emptied" in rt._why_full(good, None)
    assert "replaced" in rt._why_full(good, b"s0")
    assert "another volume" in rt._why_full({**good, "volume": "x"}, b"s1")
    # per engine: the same key on another engine is another volume and another manifest
    other = tree_sync.RemoteTree(_engine("e2"), "key", tmp_path / "tree2")
    assert other.volume != rt.volume and other.manifest_path != rt.manifest_path


def test_control_tar_holds_the_changed_files_the_delete_list_and_the_id(tmp_path):
    root = _tree(tmp_path / "tree", {"a.c": "A\n", "src/b.c": "B\n", "c.c": "C\n"})
    (root / "a.c").chmod(0o755)
    rt = tree_sync.RemoteTree(_engine(), "key", root)
    buf = io.BytesIO()
    size = rt._control_tar(tree_sync.Delta(["a.c", "src/b.c"], ["gone.c", "old dir/x.h"], False), "ID", buf)
    assert size == 4
    outer = tarfile.open(fileobj=io.BytesIO(buf.getvalue()))
    names = outer.getnames()
    assert sorted(names) == ["afpbisect-sync/delete", "afpbisect-sync/id", "afpbisect-sync/payload.tar"]
    assert outer.extractfile("afpbisect-sync/delete").read() == b"gone.c\0old dir/x.h\0"
    assert outer.extractfile("afpbisect-sync/id").read() == b"ID"
    inner = tarfile.open(fileobj=outer.extractfile("afpbisect-sync/payload.tar"))
    members = {m.name: m for m in inner.getmembers()}
    assert sorted(members) == ["a.c", "src/b.c"]
    assert members["a.c"].mode & 0o111 and members["a.c"].uid == 0
    buf = io.BytesIO()
    rt._control_tar(tree_sync.Delta(["c.c"], [], True), "ID2", buf)
    assert "afpbisect-sync/full" in tarfile.open(fileobj=io.BytesIO(buf.getvalue())).getnames()


def test_an_archive_from_the_engine_is_extracted_without_its_top_directory(tmp_path):
    src = _tree(tmp_path / "out", {"usr/local/bin/suricata": "#!/bin/sh\n", "usr/local/lib/x.so.1": "so"})
    (src / "usr/local/bin/suricata").chmod(0o755)
    os.symlink("x.so.1", src / "usr/local/lib/x.so")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(str(src), arcname="out")
    buf.seek(0)
    dest = tmp_path / "product"
    dest.mkdir()
    storage._extract_stripped(buf, dest)
    assert (dest / "usr/local/bin/suricata").stat().st_mode & 0o111
    assert os.readlink(dest / "usr/local/lib/x.so") == "x.so.1"
    assert not (dest / "out").exists()


@pytest.mark.parametrize("old_python", [False, True])
def test_an_archive_escaping_its_directory_is_refused(tmp_path, monkeypatch, old_python):
    if old_python:   # before 3.10.12 tarfile has no extraction filters: checked by hand
        monkeypatch.delattr(tarfile, "tar_filter", raising=False)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("out/../../evil")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    buf.seek(0)
    (tmp_path / "d").mkdir()
    with pytest.raises(tarfile.TarError):
        storage._extract_stripped(buf, tmp_path / "d")
    assert not (tmp_path / "evil").exists()


# ---------------------------------------------------------------------------------------
# docker: a "remote" engine (the real one, remote=True)
# ---------------------------------------------------------------------------------------

BASE = "debian:bookworm"


def _docker_ok() -> bool:
    try:
        import docker
        docker.from_env().ping()
        return True
    except Exception:  # noqa: BLE001
        return False


docker_only = [pytest.mark.docker, pytest.mark.skipif(not _docker_ok(), reason="needs the Docker engine")]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The synthetic target, a remote engine with its own name, every container create of
    the module recorded (ContainerCollection.create wrapped: the engine itself is real)."""
    import docker.models.containers as dmc

    from afpbisect.machinery.engine import connect, workdir_tag
    from afpbisect.synthetic.target import make_synthetic_repo
    base = tmp_path_factory.mktemp("storage")
    syn = make_synthetic_repo(base / "target", n_commits=12, seed=3)
    work = base / "work"
    local = connect(f"test-storage-{uuid.uuid4().hex[:8]}")
    eng = Engine(client=local.client, run_id=local.run_id, base_url=local.base_url,
                 workdir_tag=workdir_tag(work), name=f"e-test-{uuid.uuid4().hex[:8]}", remote=True)
    created: list[dict] = []
    real_create = dmc.ContainerCollection.create

    def recording_create(self, *a, **kw):
        c = real_create(self, *a, **kw)
        created.append(c.attrs)   # the daemon's inspect of the new container
        return c
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dmc.ContainerCollection, "create", recording_create)
        yield {"syn": syn, "work": work, "base": base, "engine": eng, "created": created, "results": {}}
    eng.cleanup_run()
    storage.remove_volumes(eng)


def _ours(eng):
    return eng.client.containers.list(all=True, filters={"label": f"afpbisect.run={eng.run_id}"})


def _volumes(eng):
    return eng.client.volumes.list(filters={"label": f"afpbisect.engine={eng.name}"})


def _no_host_path_mounted(attrs: dict) -> None:
    assert not attrs["HostConfig"].get("Binds"), (attrs["Name"], attrs["HostConfig"].get("Binds"))
    assert all(m["Type"] == "volume" for m in attrs.get("Mounts") or []), (attrs["Name"], attrs["Mounts"])
    assert all(m["Type"] == "volume" for m in attrs["HostConfig"].get("Mounts") or []), attrs["Name"]


def _files(product: Path) -> dict[str, str]:
    """relative path -> sha256 of every file of a product, but afpbisect's own record."""
    return {str(p.relative_to(product)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(product.rglob("*")) if p.is_file() and p.name != "afpbisect-build.json"}


def _volume_file(eng, image, volume, path):
    with storage.helper(eng, image, [storage.volume_mount(volume, "/v")]) as c:
        return storage.read_file(eng, c, f"/v/{path}")


@pytest.mark.docker
@pytest.mark.skipif(not _docker_ok(), reason="needs the Docker engine")
def test_remote_builds_sync_only_what_changed_and_mount_nothing_of_this_host(world):
    import git as gitpython

    from afpbisect.machinery.build import DockerBuilder
    syn, eng = world["syn"], world["engine"]
    repo = gitpython.Repo(syn.path)
    p = syn.planted_index
    near_a, near_b = syn.commits[p - 2], syn.commits[p - 1]
    builder = DockerBuilder(eng, world["work"], BASE, say=lambda m: None)
    live = []   # the build containers as the daemon shows them while they run
    builder.on_step = lambda step: live.extend(c.attrs for c in _ours(eng))

    t0 = time.monotonic()
    first = builder.build(repo, near_a, [])
    t_first, sync_first = time.monotonic() - t0, builder.last_sync
    assert first.ok, first.tail
    assert sync_first.full and "no manifest" in sync_first.reason and first.reconfigured
    assert sync_first.sent == len(git(syn.path, "ls-tree", "-r", "--name-only", near_a).split())

    t0 = time.monotonic()
    second = builder.build(repo, near_b, [])
    t_second, sync = time.monotonic() - t0, builder.last_sync
    assert second.ok, second.tail
    changed = git(syn.path, "diff", "--name-only", near_a, near_b).split()
    assert not sync.full and sync.paths == changed and sync.deleted == 0, sync
    assert not second.reconfigured and "AFPBISECT-STEP: configure" not in Path(second.log_path).read_text()
    assert second.ccache == {"hits": 0, "misses": len([f for f in changed if f.endswith(".c")])}
    assert sync.line() in Path(second.log_path).read_text()

    product = Path(second.product_dir)
    assert product == world["work"] / "products" / f"{near_b[:12]}-{second.key}"
    assert os.access(product / "usr/local/bin/suricata", os.X_OK)
    # The same commit built the local way (bind mounts, its own workdir): the same product.
    from afpbisect.machinery.engine import workdir_tag
    bind_engine = Engine(client=eng.client, run_id=eng.run_id, workdir_tag=workdir_tag(world["base"] / "bind"))
    bind = DockerBuilder(bind_engine, world["base"] / "bind", BASE, say=lambda m: None).build(repo, near_b, [])
    assert bind.ok and bind.key == second.key
    assert _files(Path(bind.product_dir)) == _files(product)
    bind_attrs = world["created"][-2:]
    assert all(a["HostConfig"]["Binds"] for a in bind_attrs)   # the local path still binds
    del world["created"][-2:]

    remote_created = [a for a in world["created"]]
    roles = sorted({a["Config"]["Labels"].get("afpbisect.role", "build") for a in remote_created})
    assert roles == ["build", "sync"] and len(remote_created) == 6   # per build: sync, fetch, compile
    for attrs in remote_created + live:
        _no_host_path_mounted(attrs)
    assert {m["Destination"] for a in live for m in a["Mounts"]} == {"/src", "/cache/ccache", "/cache/cargo"}
    assert _ours(eng) == []
    world["results"]["near_b"] = second
    print(f"\nfirst build {t_first:.1f}s: {sync_first.line()}\nsecond build {t_second:.1f}s: {sync.line()}")


@pytest.mark.docker
@pytest.mark.skipif(not _docker_ok(), reason="needs the Docker engine")
def test_a_deleted_file_goes_and_a_removed_volume_means_full_sync_and_reconfigure(world, tmp_path):
    import git as gitpython

    from afpbisect.machinery.build import DockerBuilder
    from afpbisect.core.patch import load_patch
    syn, eng = world["syn"], world["engine"]
    repo = gitpython.Repo(syn.path)
    near_b = syn.commits[syn.planted_index - 1]
    # A patch that deletes README (made with git in a scratch worktree).
    scratch = tmp_path / "scratch"
    git(syn.path, "worktree", "add", "--detach", str(scratch), near_b)
    git(scratch, "rm", "-q", "README")
    (tmp_path / "rm-readme.patch").write_text(git(scratch, "diff", "--cached", "--no-color") + "\n")
    git(syn.path, "worktree", "remove", "--force", str(scratch))
    builder = DockerBuilder(eng, world["work"], BASE, say=lambda m: None)

    res = builder.build(repo, near_b, [load_patch(tmp_path / "rm-readme.patch")])
    assert res.ok, res.tail
    sync = builder.last_sync
    assert not sync.full and sync.sent == 0 and sync.deleted == 1, sync
    assert _volume_file(eng, res.image, sync.volume, "README") is None
    assert _volume_file(eng, res.image, sync.volume, "Makefile") is not None

    eng.client.volumes.get(sync.volume).remove(force=True)
    widener = load_patch(Path(__file__).resolve().parent.parent / "patches" / "widener.patch")
    res = builder.build(repo, syn.planted, [widener])
    assert res.ok, res.tail
    sync = builder.last_sync
    assert sync.full and "new or was emptied" in sync.reason, sync
    log = Path(res.log_path).read_text()
    assert res.reconfigured and "reconfigure: full sync" in log and "AFPBISECT-STEP: configure" in log
    assert _volume_file(eng, res.image, sync.volume, "README") is not None
    world["results"]["planted"] = res
    assert _ours(eng) == []


@pytest.mark.docker
@pytest.mark.skipif(not _docker_ok(), reason="needs the Docker engine")
def test_remote_repro_session_hits_on_the_planted_commit_with_its_logs_copied_back(world, caplog):
    from afpbisect.machinery.repro_session import ReproEnv
    from afpbisect.machinery.repro_settings import C_PRODUCT, ReproSettings
    from afpbisect.core.scenario import load as load_scenario
    from afpbisect.core.verdict import CycleOutcome
    eng, res = world["engine"], world["results"].get("planted")
    if res is None:
        pytest.skip("needs the planted commit built by the previous test")
    settings = ReproSettings.from_scenario(load_scenario(), pairs=2, threads=2,
                                           env={"SURICATA_RING_SETUP_DELAY_US": "100000"})
    logs = world["base"] / "cycles"
    caplog.set_level(logging.INFO, logger="afpbisect.machinery.storage")
    t0 = time.monotonic()
    with ReproEnv(eng, settings).session(res.image, Path(res.product_dir), logs) as s:
        attrs = eng.client.api.inspect_container(s.container.id)
        _no_host_path_mounted(attrs)
        assert [(m["Destination"], m["RW"]) for m in attrs["Mounts"]] == [(C_PRODUCT, False)]
        recs = [s.cycle(i) for i in (1, 2)]
    seconds = time.monotonic() - t0
    assert [r.outcome() for r in recs] == [CycleOutcome.HIT, CycleOutcome.HIT], recs
    for r in recs:
        console = Path(r.log_path)
        assert console.parent.parent == logs and console.is_file()
        assert "sending packet failed on socket 0" in console.read_text()
        assert (console.parent / "record.json").is_file()
        assert all(n > 0 for n in r.forwarded_after_start.values()), r.forwarded_after_start
    assert (logs / "serve" / "ready.json").is_file()
    # A second session on the same product reuses the engine's copy of it.
    with ReproEnv(eng, settings).session(res.image, Path(res.product_dir), world["base"] / "cycles2"):
        pass
    assert len([r for r in caplog.records if r.getMessage().startswith("sending product")]) == 1
    assert _ours(eng) == []
    print(f"\nrepro session with 2 cycles on engine {eng.name}: {seconds:.1f}s")


@pytest.mark.docker
@pytest.mark.skipif(not _docker_ok(), reason="needs the Docker engine")
def test_a_failed_transfer_is_an_infrastructure_error(world):
    eng = world["engine"]
    image = (world["results"].get("near_b") or pytest.skip("needs a build")).image
    with storage.helper(eng, image, []) as c:
        pass
    with pytest.raises(InfraError, match="sending files"):
        storage.put(eng, c, "/", storage.tar_bytes({"x": b"1"}))
    with pytest.raises(InfraError, match="reading"):
        storage.read_file(eng, c, "/etc/hostname")


@pytest.mark.docker
@pytest.mark.skipif(not _docker_ok(), reason="needs the Docker engine")
def test_teardown_leaves_no_container_and_no_volume(world):
    eng = world["engine"]
    made = {v.name for v in _volumes(eng)}
    assert {eng.volume_name("ccache"), eng.volume_name("cargo")} <= made
    assert any("-tree-" in v for v in made) and any("-product-" in v for v in made)
    # another engine's volumes of the same workdir are not this engine's to remove
    other = Engine(client=eng.client, run_id=eng.run_id, workdir_tag=eng.workdir_tag,
                   name=eng.name + "-other", remote=True)
    keep = storage.ensure_volume(other, "ccache")
    try:
        assert set(storage.remove_volumes(eng)) == made
        assert _volumes(eng) == [] and _ours(eng) == []
        assert eng.client.volumes.get(keep)
    finally:
        storage.remove_volumes(other)
    assert _volumes(other) == []
