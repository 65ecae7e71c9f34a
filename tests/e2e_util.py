"""Helpers for the tests that drive the real CLI against the real Docker engine."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SMALL = ["--pairs", "2", "--threads", "2", "--env", "SURICATA_RING_SETUP_DELAY_US=100000"]


def afp(*args, check_json=True, timeout=1500, env=None):
    """Run the installed CLI as a user would; returns (exit code, parsed JSON or None, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "afpbisect", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    data = None
    if check_json and proc.stdout.strip():
        data = json.loads(proc.stdout)
    return proc.returncode, data, proc.stderr


def docker_ok() -> bool:
    try:
        import docker
        docker.from_env().ping()
        return True
    except Exception:
        return False


def workdir_filter(work) -> dict:
    """Docker filter for what runs on this workdir made (the tool labels it with a hash)."""
    import hashlib
    tag = hashlib.sha256(str(Path(work).resolve()).encode()).hexdigest()[:12]
    return {"label": f"afpbisect.workdir={tag}"}


def dangling_images() -> set:
    import docker
    return {i.id for i in docker.from_env().images.list(filters={"dangling": True})}


def leftovers(work, dangling_before: set) -> dict:
    """What runs on `work` may leave behind: their containers and networks, images that
    went dangling meanwhile, network namespaces, veths named like ours on the host."""
    import docker
    c = docker.from_env()
    ip = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.strip()
    return {
        "containers": [x.name for x in c.containers.list(all=True, filters=workdir_filter(work))],
        "networks": [n.name for n in c.networks.list(filters=workdir_filter(work))],
        "dangling": sorted(dangling_images() - dangling_before),
        "veths": [l for l in ip.splitlines() if "SFE_" in l or "far_" in l],
        "netns": netns.splitlines() if netns else [],
    }


def wait_for(pred, timeout, proc=None) -> bool:
    """Poll `pred` until it holds (True), the timeout passes or `proc` exits (False)."""
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.3)
    return False
