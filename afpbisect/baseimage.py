"""The base image every build and repro image starts FROM.

Pull the configured image; when no registry answers (air-gapped labs, and this machine),
make it once with debootstrap from Debian's packages and `docker import` it, under a tag
that says it is local, and say so.  Never fall back silently to something else.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker.errors

from .engine import LONG_SECONDS, Engine, patience
from .errors import InfraError

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "debian:bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# debootstrap suites we know how to name from an image reference.
_SUITES = {"debian:bookworm": "bookworm", "debian:12": "bookworm", "debian:trixie": "trixie"}


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
