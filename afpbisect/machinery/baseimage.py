"""The base image every build and repro image starts FROM.

Pull the configured image; when no registry answers (air-gapped labs, and this machine),
make it once with debootstrap from Debian's packages and `docker import` it, under a tag
that says it is local, and say so.  Never fall back silently to something else.
"""
from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker.errors

from afpbisect.core.errors import InfraError
from afpbisect.machinery.deadlines import LONG_SECONDS, patience
from afpbisect.machinery.engine import Engine

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "debian:bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# debootstrap suites we know how to name from an image reference.
_SUITES = {"debian:bookworm": "bookworm", "debian:12": "bookworm", "debian:trixie": "trixie"}


# An image reference as Docker parses it: docker/distribution's reference/regexp.go
# (ReferenceRegexp: [domain[:port]/]path[:tag][@digest]), checked before anything so that a
# typo is one line and exit 2, not a pull that fails after the clone (issue 25).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_NAME = rf"(?:{_HOST}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
REFERENCE_RE = re.compile(rf"(?P<name>{_NAME})(?::{_TAG})?(?:@{_DIGEST})?", re.ASCII)
NAME_MAX = 255   # distribution's NameTotalLengthMax


def image_reference_problem(image: str) -> str | None:
    """Why `image` is not a Docker image reference, or None."""
    m = REFERENCE_RE.fullmatch(image)
    if m is None:
        return (f"{image!r} is not a Docker image reference ([registry[:port]/]name[:tag][@digest], "
                "name in lower case, e.g. debian:bookworm)")
    if len(m.group("name")) > NAME_MAX:
        return f"{image!r}: the repository name is longer than {NAME_MAX} characters"
    return None


def local_tag(image: str) -> str:
    """Tag of the debootstrapped stand-in for `image` (marked local, never mistaken
    for the registry's image)."""
    suite = _SUITES.get(image, image.split(":")[-1])
    return f"afpbisect/debian-local:{suite}"


def ensure_base_image(engine: Engine, image: str = DEFAULT_IMAGE, mirror: str = DEFAULT_MIRROR,
                      say=print) -> str:
    """Return an image reference that exists locally: `image` itself, or its local build."""
    client = engine.client
    for ref in (image, local_tag(image)):
        try:
            client.images.get(ref)
            return ref
        except docker.errors.ImageNotFound:
            pass
    try:
        say(f"base image {image} not present; pulling it")
        client.images.pull(image)
        return image
    except docker.errors.APIError as exc:
        say(f"pull of {image} failed ({str(exc).splitlines()[0][:120]}); "
            f"building {local_tag(image)} with debootstrap from {mirror} instead")
    return debootstrap_import(engine, image, mirror, say)


def debootstrap_import(engine: Engine, image: str, mirror: str, say=print) -> str:
    suite = _SUITES.get(image)
    if suite is None:
        raise InfraError(f"cannot pull {image} and do not know which Debian suite to debootstrap for it; "
                         f"use --base-image {DEFAULT_IMAGE} or pre-load the image")
    if shutil.which("debootstrap") is None:
        raise InfraError("cannot pull the base image and `debootstrap` is not installed; "
                         "install it (apt-get install debootstrap) or pre-load the image")
    tag = local_tag(image)
    with tempfile.TemporaryDirectory(prefix="afpbisect-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        cmd = ["debootstrap", "--variant=minbase", suite, str(root), mirror]
        say("running: " + " ".join(cmd) + "  (about a minute)")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
            raise InfraError(f"debootstrap of {suite} failed (exit {proc.returncode}):\n{tail}")
        # Keep the image small: package lists come back with the first apt-get update.
        for junk in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        tar_path = Path(tmp) / "rootfs.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add(root, arcname=".")
        repo, _, t = tag.partition(":")
        with patience(LONG_SECONDS):   # one call: the upload and the import of a root fs
            engine.client.api.import_image_from_file(
                str(tar_path), repository=repo, tag=t,
                changes=['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                         'CMD ["/bin/bash"]', f'LABEL afpbisect.base="{image}"'],
            )
    say(f"built base image {tag} (debootstrap {suite}, minbase)")
    return tag
