"""The Docker engine, reached through the SDK, with bounded retries and run labels.

Every container, network and image the tool makes carries the label `afpbisect=1` and
`afpbisect.run=<run id>`, so that an interrupted run (or `afpbisect clean`) can find and
remove exactly what it left, and nothing of the user's.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import requests.exceptions
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

from afpbisect.core.errors import InfraError, UsageError
from afpbisect.machinery.deadlines import (_timed_out, api_seconds, check_seconds, ping_seconds,
                                           retry_seconds, with_deadlines)

log = logging.getLogger(__name__)

LABEL = "afpbisect"
RUN_LABEL = "afpbisect.run"
WORKDIR_LABEL = "afpbisect.workdir"
ENGINE_LABEL = "afpbisect.engine"   # which engine of a farm (--engine) made the object



# What talking to an engine can raise: Docker's answers and docker-py's own errors,
# requests' errors, and the socket's own (docker-py's ssh transport lets a BrokenPipeError
# through when ssh has gone). The one tuple every handler of "the engine failed" uses.
TRANSPORT_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, ConnectionError)


def _transient(exc: BaseException) -> bool:
    """Errors worth retrying: the daemon did not answer, or answered 5xx."""
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                        ConnectionError)):
        return True
    if isinstance(exc, docker.errors.APIError) and not isinstance(
        exc, (docker.errors.NotFound, docker.errors.ImageNotFound)
    ):
        status = getattr(exc, "status_code", None)
        # A 500 that is the runtime refusing the container (capabilities, bad mount) will
        # say the same on every try: not transient.
        permanent = ("No such", "OCI runtime", "apply caps", "invalid mount")
        return status is not None and status >= 500 and not any(m in str(exc) for m in permanent)
    return False


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.warning(
        "docker: %s failed (%s); retry %d in %.1fs",
        getattr(state.fn, "__name__", "call"),
        type(exc).__name__ if exc else "?",
        state.attempt_number,
        state.next_action.sleep if state.next_action else 0.0,
    )


def retrying(fn):
    """Decorator: retry transient Docker errors with backoff, a log line per retry."""
    return retry(
        retry=retry_if_exception(_transient),
        # How long a daemon may stay away before a call gives up, bounded so that a daemon
        # gone for good is a clear error, not a hang; read per call (deadlines.retry_seconds).
        stop=lambda state: stop_after_delay(retry_seconds())(state),
        wait=wait_exponential(multiplier=0.5, max=10),
        before_sleep=_log_retry,
        reraise=True,
    )(fn)


def engine_slug(name: str) -> str:
    """[a-z0-9-] only, bounded, and unique per name (a hash of the name is kept)."""
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or "engine"
    return f"{base}-{hashlib.sha256(name.encode()).hexdigest()[:6]}" if base != name else base


def workdir_tag(workdir, remote: bool = False) -> str:
    """The `afpbisect.workdir` label value of a workdir: its resolved path, hashed. For a
    remote engine the path is not enough (two machines may both use ~/.cache/afpbisect on
    one engine, and would sweep each other's containers and share volumes): the hash then
    also covers an id made once in the workdir. A workdir that is gone has no id: its path
    alone (what `clean` of a removed workdir can still find)."""
    path = Path(workdir).expanduser().resolve()
    key = str(path)
    if remote and path.is_dir():
        id_file = path / "engine-id"
        if not id_file.is_file():
            id_file.write_text(uuid.uuid4().hex + "\n")
        key += ":" + id_file.read_text().strip()
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@dataclass
class Engine:
    """A connected Docker client and the run id whose label this run's objects carry."""

    client: docker.DockerClient
    run_id: str
    base_url: str = ""
    workdir_tag: str = ""
    # The engine's name in labels, logs and reports: the --engine NAME (a Docker context) or
    # URL as given; "local" for the default engine.
    name: str = "local"
    # True for every engine named with --engine: it may be another host, so nothing of this
    # host is bind-mounted into its containers (sources, caches, products and logs travel
    # as archives into the engine's own volumes and back).  False: the default local engine,
    # whose containers bind-mount the workdir (the path the measured runs took).
    remote: bool = False

    @property
    def labels(self) -> dict:
        out = {LABEL: "1", RUN_LABEL: self.run_id, ENGINE_LABEL: self.name}
        if self.workdir_tag:
            out[WORKDIR_LABEL] = self.workdir_tag
        return out

    @property
    def slug(self) -> str:
        """The name as it may appear in Docker object names and local directories."""
        return engine_slug(self.name)

    def volume_name(self, purpose: str) -> str:
        """This engine's volume for `purpose` (e.g. "ccache", "tree-<key>") of this workdir.
        Two engines that are the same daemon (two contexts) get different volumes."""
        return f"afpbisect-{self.workdir_tag or 'noworkdir'}-{self.slug}-{purpose}"

    def sweep_workdir(self) -> int:
        """Remove containers left by earlier runs on this workdir (a kill -9 cannot clean
        up after itself).  Only called while holding the workdir lock, so every such
        container belongs to a run that is dead."""
        n = 0
        flt = {"label": [f"{WORKDIR_LABEL}={self.workdir_tag}"]}
        for c in self.client.containers.list(all=True, filters=flt):
            if c.labels.get(RUN_LABEL) != self.run_id:
                c.remove(force=True)
                n += 1
        return n

    @retrying
    def ping(self) -> None:
        self.client.ping()

    def cleanup_run(self, run_id: str | None = None) -> int:
        """Remove this run's containers (or every afpbisect container on the host, any
        user's and any live run's, with run_id='*': only `afpbisect clean --all` asks that)."""
        rid = run_id or self.run_id
        flt = {"label": [LABEL] if rid == "*" else [f"{RUN_LABEL}={rid}"]}
        n = 0
        for c in self.client.containers.list(all=True, filters=flt):
            try:
                c.remove(force=True)
                n += 1
            except docker.errors.NotFound:
                pass
        for net in self.client.networks.list(filters=flt):
            try:
                net.remove()
            except docker.errors.APIError:
                pass
        return n


class DockerUnreachable(UsageError):
    """No engine at the start of a run: a setup problem the user fixes (exit 2).  An
    engine that goes away in the middle of a run is retried, then an InfraError."""


def client_options(url: str) -> dict:
    """DockerClient options for `url`: ssh:// through the system ssh (its config, agent
    and known_hosts), not paramiko's own."""
    return {"use_ssh_client": True} if url.startswith("ssh://") else {}


def connect(run_id: str, base_url: str | None = None) -> Engine:
    """Connect to the engine (DOCKER_HOST or the default socket); clear error if away."""
    url = base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    check_seconds()   # clean and selftest: before the first call, as the other commands
    wait = ping_seconds()
    ssh = client_options(url)
    failed = None
    with ssh_stderr(url) as ssh_said:
        try:
            probe = docker.DockerClient(base_url=url, timeout=wait, **ssh)   # asks /version at once
            try:
                probe.ping()
                version = probe.api.api_version
            finally:
                probe.close()
        except (*TRANSPORT_ERRORS, ValueError) as exc:   # ValueError: a malformed URL
            failed, ssh_words = exc, ssh_said()
    if failed is not None:
        if _timed_out(failed):
            raise DockerUnreachable(
                f"Docker engine at {url} did not answer within {wait:g} s; restart the daemon, set "
                "DOCKER_HOST, or wait longer with AFPBISECT_DOCKER_PING_SECONDS") from None
        # ssh's own words ("ssh: connect to host ...: Connection refused") say more than
        # docker-py's broken pipe behind them.
        why = ssh_words or _short(failed)
        raise DockerUnreachable(
            f"Docker engine unreachable at {url} ({why[:200]}); start the daemon or set DOCKER_HOST"
        ) from None
    try:
        client = docker.DockerClient(base_url=url, version=version, timeout=api_seconds(), **ssh)
    except (*TRANSPORT_ERRORS, ValueError) as exc:
        raise DockerUnreachable(
            f"Docker engine unreachable at {url} ({_short(exc)}); start the daemon or set DOCKER_HOST"
        ) from None
    return Engine(client=with_deadlines(client, url, api_seconds()), run_id=run_id, base_url=url)


@contextlib.contextmanager
def ssh_stderr(url: str):
    """While the first contact with an ssh:// engine is made, the ssh client's stderr (it
    inherits ours: "Connection refused" printed before our own line) goes to a file;
    yields a function that returns its last line.  Said again on our stderr if the
    contact succeeded (a host key warning is the user's to see)."""
    import sys
    import tempfile
    try:
        saved = os.dup(2) if url.startswith("ssh://") else None
    except OSError:   # no stderr at all: nothing to keep apart
        saved = None
    if saved is None:
        yield lambda: ""
        return
    text = ""
    with tempfile.TemporaryFile() as f:
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(f.fileno(), 2)

            def said() -> str:
                nonlocal text
                if f.closed:
                    return ""
                f.flush()
                f.seek(0)
                text = f.read().decode(errors="replace")
                lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
                return lines[-1] if lines else ""

            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        if not text:   # not asked for (the contact worked): ssh's words are the user's
            said()
            if text.strip():
                try:
                    os.write(2, text.encode())
                except OSError:
                    pass


def wait_exit(container, limit: float, what: str, poll: float = 1.0) -> int:
    """The exit code of `container` once it has stopped, polling its state: each poll is a
    short call with its own deadline (EngineStalled when the engine stops answering), so
    a stall is found in API seconds, not after `limit` (Docker's own wait is one call that
    may rightly last hours). InfraError when it still runs after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        retrying(container.reload)()
        state = container.attrs.get("State", {})
        if state.get("Status") in ("exited", "dead"):
            return int(state.get("ExitCode", -1))
        if time.monotonic() >= deadline:
            raise InfraError(f"{what} still running after {limit:g} s")
        time.sleep(poll)


# Runs that are stopping: their cleanup has begun, so a worker thread of theirs (several
# engines, parallel.py) must not make a container the cleanup would miss.
_halted: set = set()


def halt(run_id: str) -> None:
    """From now on `create_container` refuses containers labelled with this run."""
    _halted.add(run_id)


def create_container(client: docker.DockerClient, image: str, command, name: str, **kw):
    """containers.create, retried, and idempotent: when the daemon created the container
    but the answer was lost (connection cut), the retry's 409 Conflict on our own unique
    name means it exists: take it. Refused once the run is halted (an InfraError)."""
    run = (kw.get("labels") or {}).get(RUN_LABEL)

    @retrying
    def attempt():
        if run in _halted:   # checked on every try: a retry may come after the cleanup began
            raise InfraError(f"run {run} is stopping: no new container")
        try:
            return client.containers.create(image, command, name=name, **kw)
        except docker.errors.APIError as exc:
            if getattr(exc, "status_code", None) == 409 and "already in use" in str(exc):
                return client.containers.get(name)
            raise
    return attempt()


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def check_capability_error(exc: Exception, caps: list[str]) -> None:
    """Turn an engine refusal of our capabilities into a usage error with the fix."""
    msg = str(exc)
    if "apply caps" in msg or "capabilit" in msg.lower() or "operation not permitted" in msg.lower():
        raise UsageError(
            f"the Docker engine refused capabilities {','.join(caps)} for the repro container "
            f"({_short(exc)}); run on an engine that allows them (rootful Docker, not a "
            "restricted runtime)"
        ) from exc
