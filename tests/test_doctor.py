"""afpbisect doctor: each check on its own inputs, and the command as a user runs it."""
from collections import namedtuple

import pytest

from afpbisect.commands import doctor
from afpbisect.commands.doctor import Check
from e2e_util import afp, docker_ok

Usage = namedtuple("Usage", "total used free")
GIB = 2**30


def test_line_format():
    assert Check("git", True, "git version 2").line() == "ok   git: git version 2"
    assert Check("git", False, "not on PATH").line() == "FAIL git: not on PATH"


def test_package_data_present_in_this_tree():
    c = doctor.check_package_data()
    assert c.ok, c.detail
    assert "eras.toml has" in c.detail


def test_package_data_names_what_is_missing(tmp_path):
    there = tmp_path / "a.j2"
    there.write_text("x")
    c = doctor.check_package_data((there, tmp_path / "widener.patch"))
    assert not c.ok and "widener.patch" in c.detail and "a.j2" not in c.detail


def test_git_missing():
    assert not doctor.check_git(which=lambda name: None).ok


def test_disk_uses_nearest_existing_parent_and_creates_nothing(tmp_path):
    seen = []
    target = tmp_path / "not" / "yet"
    c = doctor.check_disk(target, usage=lambda p: seen.append(p) or Usage(0, 0, 50 * GIB))
    assert c.ok and seen == [tmp_path] and not (tmp_path / "not").exists()
    assert "20 GiB" in c.detail


def test_disk_low_fails_with_the_figure(tmp_path):
    c = doctor.check_disk(tmp_path, usage=lambda p: Usage(0, 0, 3 * GIB))
    assert not c.ok and "3.0 GiB free" in c.detail and "about 20 GiB" in c.detail


def test_python_version():
    assert doctor.check_python((3, 10, 0)).ok
    assert not doctor.check_python((3, 9, 18)).ok


def test_base_image_or_debootstrap():
    assert doctor.check_base_image(lambda ref: ref == "debian:bookworm", which=lambda n: None).ok
    assert doctor.check_base_image(lambda ref: False, which=lambda n: "/usr/sbin/debootstrap").ok
    c = doctor.check_base_image(lambda ref: False, which=lambda n: None)
    assert not c.ok and "debootstrap" in c.detail


def test_engine_info():
    c = doctor.check_engine_info({"Driver": "overlay2", "CgroupVersion": "2"})
    assert c.ok and c.detail == "storage driver overlay2, cgroup v2"


class FakeImages:
    def __init__(self, tags):
        self.tags = tags

    def list(self, filters):
        assert filters == {"label": "afpbisect"}
        return [namedtuple("Img", "tags")(t) for t in self.tags]


class FakeContainers:
    def __init__(self, error=None):
        self.error, self.runs, self.removed = error, [], []

    def run(self, image, cmd, name, **kw):
        self.runs.append((image, kw))
        if self.error:
            raise self.error

    def get(self, name):
        return namedtuple("C", "remove")(lambda force: self.removed.append(name))


class FakeClient:
    def __init__(self, tags, error=None):
        self.images, self.containers = FakeImages(tags), FakeContainers(error)


def test_capabilities_not_checked_without_own_image():
    client = FakeClient([[]])       # only an untagged afpbisect image: nothing to start
    c = doctor.check_capabilities(client, ("NET_ADMIN", "NET_RAW"))
    assert c.ok and "not checked" in c.detail and client.containers.runs == []


def test_capabilities_refused_fails_and_removes_the_container():
    client = FakeClient([["afpbisect/build:abc"]], error=RuntimeError("unable to apply caps"))
    c = doctor.check_capabilities(client, ("NET_ADMIN", "NET_RAW"))
    assert not c.ok and "apply caps" in c.detail
    image, kw = client.containers.runs[0]
    assert image == "afpbisect/build:abc" and kw["cap_add"] == ["NET_ADMIN", "NET_RAW"]
    assert kw["network_mode"] == "none" and len(client.containers.removed) == 1


def test_cli_docker_away_fails_each_line_and_creates_nothing(tmp_path):
    work = tmp_path / "work"
    code, data, err = afp("doctor", "--workdir", str(work), "--json",
                          env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert code == 1, err
    lines = err.strip().splitlines()
    assert all(l.startswith(("ok   ", "FAIL ")) for l in lines), err
    assert any(l.startswith("FAIL docker: unreachable") and "10 s" in l for l in lines), err
    assert data["ok"] is False and {c["name"] for c in data["checks"]} >= {"python", "disk", "docker"}
    assert not work.exists()


@pytest.mark.docker
@pytest.mark.skipif(not docker_ok(), reason="needs the Docker engine")
def test_cli_on_the_real_engine(tmp_path):
    code, data, err = afp("doctor", "--workdir", str(tmp_path / "w"), "--json")
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["docker"]["ok"] and by_name["docker info"]["ok"], err
    assert code == (0 if data["ok"] else 1)
    assert not (tmp_path / "w").exists()


def test_package_data_is_what_the_builtin_scenarios_name():
    """Issue 26: doctor checks the scenario files and the test patches they name, read from
    the scenarios, not a list of patch names of its own."""
    from afpbisect.core.scenario import builtin_files, load
    names = {p.name for p in doctor.PACKAGE_FILES}
    assert {"8667.toml", "widener.patch"} <= names and not {"fixA.patch", "fixB.patch"} & names
    assert {p.path for p in load().patches} <= {p.resolve() for p in builtin_files()}
