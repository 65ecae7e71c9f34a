"""afpbisect clean on the real engine: by default only the containers of dead runs of the
given workdir go; a live run's workdir (its lock held) is left alone; nobody else's is
touched.  The containers are created, never started, from an empty image imported here;
everything made here is removed at the end, whatever happened."""
import io
import tarfile
import uuid

import pytest

from afpbisect.core.state import WorkdirLock
from afpbisect.machinery.engine import workdir_tag
from e2e_util import afp, docker_ok


def test_volumes_without_all_is_a_usage_error(tmp_path):
    code, _, err = afp("clean", "--volumes", "--workdir", str(tmp_path), check_json=False)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--all" in err, err


@pytest.fixture
def engine_objects():
    """(client, make_container(workdir) -> id); the image and every container made with it
    are removed afterwards."""
    import docker
    client = docker.from_env()
    mark = f"afpbisect-test-{uuid.uuid4().hex[:8]}"
    buf = io.BytesIO()
    tarfile.open(fileobj=buf, mode="w").close()   # an empty root: enough to create, not to run
    client.api.import_image_from_data(buf.getvalue(), repository=mark, tag="empty")
    image = f"{mark}:empty"
    image_id = client.images.get(image).id

    def make(workdir, run="deadrun"):
        labels = {"afpbisect": "1", "afpbisect.run": f"{run}-{mark}", "afpbisect.workdir": workdir_tag(workdir),
                  "afpbisect.test": mark}
        return client.containers.create(image, ["true"], name=f"{mark}-{uuid.uuid4().hex[:6]}", labels=labels).id

    try:
        yield client, make
    finally:
        for c in client.containers.list(all=True, filters={"label": f"afpbisect.test={mark}"}):
            c.remove(force=True)
        client.images.remove(image, force=True)
        assert image_id not in {i.id for i in client.images.list(all=True)}


def _exists(client, cid) -> bool:
    return any(c.id == cid for c in client.containers.list(all=True, filters={"id": cid}))


@pytest.mark.docker
@pytest.mark.skipif(not docker_ok(), reason="needs the Docker engine")
def test_clean_removes_only_dead_runs_of_its_workdir(tmp_path, engine_objects):
    client, make = engine_objects
    a, b, gone = tmp_path / "A", tmp_path / "B", tmp_path / "gone"
    a.mkdir()
    b.mkdir()
    in_a, in_b, in_gone = make(a), make(b), make(gone)

    code, _, err = afp("clean", "--workdir", str(a), check_json=False)
    assert code == 0 and "removed 1 container(s) of dead runs" in err, err
    assert not _exists(client, in_a) and _exists(client, in_b) and _exists(client, in_gone)

    # A workdir that no longer exists cannot be in use: its leftovers go, it is not created.
    code, _, err = afp("clean", "--workdir", str(gone), check_json=False)
    assert code == 0 and not _exists(client, in_gone) and not gone.exists(), err

    # A live run holds A's lock: clean says so and removes nothing.
    live = make(a, run="liverun")
    with WorkdirLock(a):
        code, _, err = afp("clean", "--workdir", str(a), check_json=False)
    assert code == 0 and "in use by" in err and "nothing removed" in err, err
    assert _exists(client, live) and _exists(client, in_b)
