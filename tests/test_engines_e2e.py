"""Issue 20 end to end: two engines that are this machine's daemon under two Docker contexts
(made with the docker CLI, as a user makes them), the second one over ssh on loopback where
this machine can run sshd. `afpbisect selftest --engine A --engine B`
names the planted commit, its report says which engine built and ran each probe, and a
build container of one engine killed in the middle of a round is survived: the probe moves
to the other engine and the answer is the same. Nothing is left: no container, no volume."""
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import docker
import pytest

from e2e_util import dangling_images, docker_ok, leftovers

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not docker_ok(), reason="needs the Docker engine")]

SOCKET = "unix:///var/run/docker.sock"


def _ssh_engine() -> str:
    """tests/ssh_engine.sh's loopback sshd as an ssh:// engine ("" where none can be made;
    .ci/run installs openssh-server)."""
    return subprocess.run(["bash", str(Path(__file__).with_name("ssh_engine.sh"))],
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def two_contexts(tmp_path):
    cfg = tmp_path / "docker-config"
    cfg.mkdir()
    names = [f"afp-e2e-{os.getpid()}-{i}" for i in (1, 2)]
    local = os.environ.get("DOCKER_HOST", SOCKET)
    # the second context reaches the same daemon over ssh where this machine can run sshd
    for n, host in zip(names, (local, _ssh_engine() or local)):
        subprocess.run(["docker", "--config", str(cfg), "context", "create", n, "--docker",
                        f"host={host}"], check=True, capture_output=True)
    yield cfg, names
    # a failed test leaves nothing either (the test itself checks that a passing run does)
    client = docker.from_env()
    for n in set(names):
        flt = {"label": f"afpbisect.engine={n}"}
        for c in client.containers.list(all=True, filters=flt):
            c.remove(force=True)
        for v in client.volumes.list(filters=flt):
            v.remove(force=True)


def _killer(victim: str, other: str, done: threading.Event, killed: list) -> None:
    """Kill, once, the first compile-phase build container of engine `victim` seen once a
    build container of engine `other` was seen: the round's builds start together, so that
    is the middle of a round (over ssh the victim's build can outlast the other's)."""
    api = docker.from_env().api
    other_built = False
    while not done.is_set() and not killed:
        # the low-level list: no inspect per container, which races with their removal
        for c in api.containers(filters={"label": "afpbisect"}):
            name, engine = c["Names"][0].lstrip("/"), c["Labels"].get("afpbisect.engine")
            other_built |= engine == other and "-build-" in name
            if engine == victim and "-compile-" in name and other_built:
                try:
                    api.kill(c["Id"])
                    killed.append(name)
                except docker.errors.APIError:
                    pass
                break
        time.sleep(0.05)


def test_two_engines_name_the_planted_commit_and_survive_a_killed_build(tmp_path, two_contexts):
    """The second context reaches the daemon over ssh where this machine can run sshd
    (every byte of its sources, products and logs then goes through the system ssh); its
    build container is the one killed."""
    cfg, (e1, e2) = two_contexts
    before = dangling_images()
    work = tmp_path / "work"
    done, killed = threading.Event(), []
    watcher = threading.Thread(target=_killer, args=(e2, e1, done, killed), daemon=True)
    watcher.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "afpbisect", "selftest", "--commits", "50", "--workdir", str(work),
             "--engine", e1, "--engine", e2, "--json"],
            capture_output=True, text=True, timeout=1500, env={**os.environ, "DOCKER_CONFIG": str(cfg)})
    finally:
        done.set()
        watcher.join(5)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout)
    assert res["ok"] and res["named"] == res["planted"] and res["fixA"] == "cleared"
    assert res["engines"] == [e1, e2]
    # the report says which engine did each probe, and both engines did some
    built_on = {p["built_on"] for p in res["probes"]}
    assert built_on == {e1, e2}, res["probes"]
    report = (work / "reports").glob("run-*.md")
    assert f"Engines: {e1}, {e2}" in next(report).read_text()
    # the kill happened mid-round, was an infrastructure error, and the probe moved
    assert killed, "no build container of the second engine was seen in a round"
    lost = re.search(r"  (\w{10}): the build failed on infrastructure \((.*)\); another engine will build it",
                     proc.stderr)
    assert lost and "killed by SIGKILL" in lost.group(2), proc.stderr[-3000:]
    assert f"built {lost.group(1)} on {e1}: ok" in proc.stderr[lost.end():]
    # caches of the named engines stay with the workdir; `clean --caches` removes them
    clean = subprocess.run([sys.executable, "-m", "afpbisect", "clean", "--workdir", str(work), "--caches",
                            "--engine", e1, "--engine", e2], capture_output=True, text=True,
                           env={**os.environ, "DOCKER_CONFIG": str(cfg)})
    assert clean.returncode == 0 and "volume(s)" in clean.stderr, clean.stderr
    client = docker.from_env()
    for kind in (client.volumes, client.containers):   # the engines' own workdir label differs
        assert [x.name for e in (e1, e2) for x in kind.list(
            **({"all": True} if kind is client.containers else {}),
            filters={"label": f"afpbisect.engine={e}"})] == []
    assert leftovers(work, before) == {"containers": [], "networks": [], "dangling": [], "veths": [],
                                       "netns": []}

