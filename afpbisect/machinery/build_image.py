"""The build image of a recipe: the Dockerfile rendered from the recipe (core/eras.py) over
the base image, built once per engine and tag (the tag is the digest of what it is made of).
Also the helpers the build shares with it: template rendering, digests, per-key locks."""
from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from pathlib import Path

import docker.errors
import jinja2

from afpbisect import DOCKERFILES_DIR
from afpbisect.core import eras
from afpbisect.core.errors import InfraError
from afpbisect.machinery.deadlines import LONG_SECONDS, patience
from afpbisect.machinery.engine import Engine, retrying

DOCKERFILE = DOCKERFILES_DIR / "build.Dockerfile.j2"


def ensure(engine: Engine, base_image: str, recipe: eras.Recipe, workdir: Path, say=print) -> str:
    """The tag of the recipe's build image on `engine`, built when it is not there."""
    dockerfile = render(DOCKERFILE, base_image=base_image, recipe=recipe)
    tag = f"afpbisect/build:{digest(dockerfile, recipe.image_key())}"
    # Engines of a farm build at once; two that are one daemon (two contexts) must not
    # both build the image: the second waits and finds it.
    with lock_for((engine.base_url, tag)):
        try:
            retrying(engine.client.images.get)(tag)
            return tag
        except docker.errors.ImageNotFound:
            return _build(engine, tag, dockerfile, workdir, say)


def _build(engine: Engine, tag: str, dockerfile: str, workdir: Path, say) -> str:
    where = f"-{engine.slug}" if engine.remote else ""
    log_path = workdir / "logs" / "images" / f"{tag.split(':')[1]}{where}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    say(f"building image {tag} (packages from the Debian archive; log {log_path})")
    with tempfile.TemporaryDirectory(prefix="afpbisect-ctx-") as ctx:
        (Path(ctx) / "Dockerfile").write_text(dockerfile)
        t0 = time.time()
        try:
            with open(log_path, "w") as logf, patience(LONG_SECONDS):   # apt may be quiet long
                for chunk in engine.client.api.build(
                        path=ctx, tag=tag, network_mode="host", rm=True, forcerm=True,
                        labels={"afpbisect": "1"}, decode=True):
                    if "stream" in chunk:
                        logf.write(chunk["stream"])
                    if "error" in chunk:
                        logf.write(chunk["error"] + "\n")
                        raise InfraError(f"building image {tag} failed: {chunk['error'].strip()[:300]} "
                                         f"(log {log_path})")
        except docker.errors.APIError as exc:
            raise InfraError(f"building image {tag} failed: {exc} (log {log_path})") from exc
    say(f"image {tag} built in {time.time() - t0:.0f}s")
    return tag


def render(path: Path, **kw) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(path.parent)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template(path.name).render(**kw)


_locks: dict = {}
_locks_guard = threading.Lock()


def lock_for(key) -> threading.Lock:
    """One lock per key for the whole process (threads of a farm's round)."""
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
