"""Helpers for the tests that drive the real CLI against the real Docker engine."""
import json
import os
import subprocess
import sys

SMALL = ["--pairs", "2", "--threads", "2", "--widen-us", "100000"]


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


def leftovers() -> dict:
    """What a run may leave behind: containers/networks with our label, dangling images,
    network namespaces, veths named like ours on the host."""
    import docker
    c = docker.from_env()
    ip = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.strip()
    return {
        "containers": [x.name for x in c.containers.list(all=True, filters={"label": "afpbisect"})],
        "networks": [n.name for n in c.networks.list(filters={"label": "afpbisect"})],
        "dangling": [i.id for i in c.images.list(filters={"dangling": True})],
        "veths": [l for l in ip.splitlines() if "SFE_" in l or "far_" in l],
        "netns": netns.splitlines() if netns else [],
    }
