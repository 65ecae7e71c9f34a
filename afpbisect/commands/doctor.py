"""`afpbisect doctor`: can this machine run afpbisect?  One check a line, each a name,
ok or not, and one line of detail that says what to do when it fails.

The checks are plain functions over what they look at (paths, a Docker client, numbers),
so the tests can feed them anything.  Doctor changes nothing: it creates nothing in the
workdir, pulls no image, and starts a container only from an image afpbisect built.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from afpbisect import DOCKERFILES_DIR, PACKAGE_DIR, TEMPLATES_DIR
from afpbisect.core.scenario import builtin_files
from afpbisect.machinery.baseimage import DEFAULT_IMAGE, local_tag

DOCKER_TIMEOUT = 10          # seconds: a daemon that does not answer by then is "unreachable"
DISK_NEEDED_GIB = 20         # a real Suricata run (images, ccache, build trees, products) used about that
# What the tool reads at run time, relative to the installed package (see pyproject): the
# built-in scenarios and their test patches as they name them (core/scenario.py), the rest here.
PACKAGE_FILES = (
    DOCKERFILES_DIR / "build.Dockerfile.j2",
    *builtin_files(),
    PACKAGE_DIR / "core" / "eras.toml",
    *(PACKAGE_DIR / "machinery" / "container" / "afpdriver" / m   # the repro driver, shipped whole
      for m in ("__main__.py", "net.py", "traffic.py", "serve.py", "cycle.py")),
    *(TEMPLATES_DIR / t for t in ("build.sh.j2", "suricata.yaml.j2", "run.md.j2", "verify.md.j2",
                                  "nightly.md.j2", "nightly.html.j2", "junit.xml.j2")),
    TEMPLATES_DIR / "synthetic" / "src" / "source-af-packet.c",
)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def check_package_data(files=PACKAGE_FILES) -> Check:
    missing = [str(p) for p in files if not Path(p).is_file()]
    if missing:
        return Check("package data", False, f"missing {', '.join(missing)}; reinstall afpbisect")
    try:   # parsed too: a broken eras.toml (or no TOML parser) would stop every build
        from afpbisect.core.eras import load_rules
        n = len(load_rules())
    except Exception as exc:
        return Check("package data", False, f"eras.toml does not load ({str(exc)[:150]})")
    return Check("package data", True, f"{len(files)} files in {PACKAGE_DIR}, eras.toml has {n} rules")


def check_git(which: Callable = shutil.which) -> Check:
    path = which("git")
    if path is None:
        return Check("git", False, "not on PATH; install git")
    out = subprocess.run([path, "--version"], capture_output=True, text=True)
    return Check("git", out.returncode == 0, (out.stdout or out.stderr).strip() or f"{path} failed")


def docker_url() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def connect_docker(url: str):
    """(client, Check): the client is None when the engine did not answer in time."""
    import docker
    from afpbisect.machinery.engine import client_options, ssh_stderr
    first = None
    with ssh_stderr(url) as ssh_said:   # ssh's "Connection refused": in the check's line
        try:
            client = docker.DockerClient(base_url=url, timeout=DOCKER_TIMEOUT, **client_options(url))
            version = client.version()
        except Exception as exc:   # any failure to talk to it means the same to the user
            first = (ssh_said() or (str(exc).splitlines() or [type(exc).__name__])[0])[:160]
    if first is not None:
        return None, Check("docker", False, f"unreachable at {url} within {DOCKER_TIMEOUT} s ({first}); "
                                            "start the daemon or set DOCKER_HOST")
    return client, Check("docker", True, f"engine {version.get('Version', '?')} at {url} "
                                         f"(API {version.get('ApiVersion', '?')})")


def check_engine_info(info: dict) -> Check:
    """Storage driver and cgroup version: what bug reports about builds and caps ask first."""
    driver = info.get("Driver") or "?"
    cgroup = info.get("CgroupVersion") or "?"
    return Check("docker info", True, f"storage driver {driver}, cgroup v{cgroup}")


def check_base_image(has_image: Callable[[str], bool], which: Callable = shutil.which) -> Check:
    for ref in (DEFAULT_IMAGE, local_tag(DEFAULT_IMAGE)):
        if has_image(ref):
            return Check("base image", True, f"{ref} present locally")
    if which("debootstrap"):
        return Check("base image", True, f"no {DEFAULT_IMAGE} locally; debootstrap will build "
                                         f"{local_tag(DEFAULT_IMAGE)} when no registry answers")
    return Check("base image", False, f"neither {DEFAULT_IMAGE} locally nor debootstrap on PATH; "
                                      "install debootstrap (apt-get install debootstrap) or load the image")


def _image_present(client, ref: str) -> bool:
    import docker.errors
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def find_own_image(client) -> str | None:
    """A tagged image afpbisect built (it has python3 and iproute2, as the repro needs)."""
    for img in client.images.list(filters={"label": "afpbisect"}):
        if img.tags:
            return img.tags[0]
    return None


def check_capabilities(client, caps: tuple) -> Check:
    """Start one short container the way the repro does and make a veth pair in it."""
    name, wanted = "capabilities", "+".join(caps)
    image = find_own_image(client)
    if image is None:   # never pull: a first run builds the image anyway
        return Check(name, True, f"{wanted} not checked: no local afpbisect image yet (a first run builds one)")
    cname = f"afpbisect-doctor-{uuid.uuid4().hex[:8]}"
    cmd = ["sh", "-c", "ip link add afpd0 type veth peer name afpd1 && ip link del afpd0"]
    try:
        client.containers.run(image, cmd, name=cname, cap_add=list(caps), network_mode="none",
                              labels={"afpbisect": "1", "afpbisect.run": "doctor"}, stderr=True)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        return Check(name, False, f"a {wanted} container from {image} could not make a veth pair "
                                  f"({first}); the repro needs a rootful engine that grants them")
    finally:
        _remove_quietly(client, cname)
    return Check(name, True, f"{wanted}: veth pair made in a --network none container from {image}")


def _remove_quietly(client, cname: str) -> None:
    try:
        client.containers.get(cname).remove(force=True)
    except Exception:   # never created, or already gone: nothing of ours is left either way
        pass


def nearest_existing(path: Path) -> Path:
    """The path itself or its closest existing parent: doctor must not create the workdir."""
    p = Path(path).expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_disk(workdir: Path, usage: Callable = shutil.disk_usage) -> Check:
    where = nearest_existing(workdir)
    if not where.is_dir():
        # A regular file (or a FIFO) where the workdir or one of its parents would be: no
        # run could make its directories there.
        return Check("disk", False, f"{where} is not a directory, so --workdir {workdir} cannot "
                                    "be made there; pick another --workdir")
    free_gib = usage(where).free / 2**30
    detail = f"{free_gib:.1f} GiB free on the filesystem of {where}"
    if free_gib < DISK_NEEDED_GIB:
        return Check("disk", False, f"{detail}; a real run needs about {DISK_NEEDED_GIB} GiB "
                                    "(images, caches, build trees): free some or pick another --workdir")
    return Check("disk", True, f"{detail} (a real run needs about {DISK_NEEDED_GIB} GiB)")


def check_python(version=sys.version_info) -> Check:
    text = ".".join(str(v) for v in version[:3])
    if tuple(version[:2]) < (3, 10):
        return Check("python", False, f"{text}; afpbisect needs Python >= 3.10")
    return Check("python", True, f"{text} ({sys.executable})")


def run_checks(workdir: Path, caps: tuple, engines: tuple = ()) -> list[Check]:
    """The host's checks, then the Docker checks of each engine: the default one, or each
    --engine (name, URL) with its name in front of every check's name."""
    checks = [check_python(), check_package_data(), check_git(), check_disk(workdir)]
    for name, url in engines or ((None, docker_url()),):
        found = engine_checks(url, caps, remote=name is not None)
        checks += [Check(f"{name}: {c.name}", c.ok, c.detail) if name else c for c in found]
    return checks


def engine_checks(url: str, caps: tuple, remote: bool = False) -> list[Check]:
    """One engine: reachable, its info, a base image, the repro's capabilities; for a named
    (remote) engine also that it keeps volumes and takes archives, which it is sent in."""
    client, docker_check = connect_docker(url)
    checks = [docker_check]
    names = ("docker info", "base image", "capabilities") + (("volumes",) if remote else ())
    if client is None:
        return checks + [Check(n, False, "not checked: Docker unreachable") for n in names]
    try:
        checks.append(check_engine_info(client.info()))
        checks.append(check_base_image(lambda ref: _image_present(client, ref)))
        checks.append(check_capabilities(client, caps))
        if remote:
            checks.append(check_volumes(client))
    finally:
        client.close()
    return checks


def check_volumes(client) -> Check:
    """Make a volume, copy a file into it through a created (never started) container, and
    remove both: how sources, products and the driver reach a remote engine."""
    from afpbisect.machinery.storage import tar_bytes
    # Never started, so any image will do: ours, or the base image.
    image = find_own_image(client) or next(
        (r for r in (DEFAULT_IMAGE, local_tag(DEFAULT_IMAGE)) if _image_present(client, r)), None)
    if image is None:
        return Check("volumes", True, "not checked: no image yet (a first run makes one)")
    tag = uuid.uuid4().hex[:8]
    labels = {"afpbisect": "1", "afpbisect.run": "doctor"}
    vol, cname = f"afpbisect-doctor-{tag}", f"afpbisect-doctor-{tag}"
    try:
        client.volumes.create(vol, labels=labels)
        c = client.containers.create(image, ["true"], name=cname, labels=labels,
                                     volumes={vol: {"bind": "/v", "mode": "rw"}})
        if not c.put_archive("/v", tar_bytes({"probe": b"ok"})):
            return Check("volumes", False, "the engine refused an archive into a volume")
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        return Check("volumes", False, f"could not make a volume and copy into it ({first})")
    finally:
        _remove_quietly(client, cname)
        try:
            client.volumes.get(vol).remove(force=True)
        except Exception:   # never made: nothing to remove
            pass
    return Check("volumes", True, "a volume made, an archive copied into it, both removed")


def as_json(checks: list[Check]) -> dict:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
