"""Deadlines on every call to a Docker engine (issue 25: a daemon that answered the ping and
then stalled on a call hung a run for good)."""
from __future__ import annotations

import contextlib
import os
import threading
import urllib.parse

import docker
import requests.exceptions
import urllib3.exceptions

from afpbisect.core.errors import InfraError, UsageError

# Every call has a deadline: a daemon that answers the ping and then stalls on a call hung
# a run for good (issue 25). Ordinary calls get API_SECONDS; the few that are long by
# nature (an image build or import, a cycle's exec) are given more with `patience`, and
# waiting on a container is polling (wait_exit), each poll a short call. The first contact
# gets a short deadline of its own (AFPBISECT_DOCKER_PING_SECONDS).
LONG_SECONDS = 3 * 3600   # an image build or import: as long as a build may take


def _seconds(name: str, default: str) -> float:
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):   # also false for nan
        raise UsageError(f"{name}={raw!r} is not a positive number of seconds")
    return value


def ping_seconds() -> float:
    return _seconds("AFPBISECT_DOCKER_PING_SECONDS", "10")


def api_seconds() -> float:
    return _seconds("AFPBISECT_DOCKER_TIMEOUT_SECONDS", "120")


def retry_seconds() -> float:
    """How long a daemon may stay away before a call gives up. Read when used, not at
    import: a bad value was a traceback in every command, even `scenarios` (fourth tour)."""
    return _seconds("AFPBISECT_DOCKER_RETRY_SECONDS", "120")


def check_seconds() -> None:
    """Every AFPBISECT_DOCKER_*_SECONDS, checked before the workdir or the clone is made
    (a bad one was refused only at the first Docker call, after both; fourth tour)."""
    ping_seconds(), api_seconds(), retry_seconds()


class EngineStalled(InfraError):
    """The engine took the connection and then did not answer a call in time."""


_patience = threading.local()


@contextlib.contextmanager
def patience(seconds: float):
    """Calls made by this thread meanwhile may take up to `seconds` (thread-local: the
    engines of a farm are called from several threads)."""
    before = getattr(_patience, "seconds", None)
    _patience.seconds = seconds
    try:
        yield
    finally:
        _patience.seconds = before


def _stalled(exc: BaseException) -> bool:
    """A read that timed out, however it surfaces: requests' Timeout, or a read timeout
    met while a body was streamed (requests wraps urllib3's in a ConnectionError)."""
    if isinstance(exc, requests.exceptions.Timeout):
        return True
    return isinstance(exc, requests.exceptions.ConnectionError) and any(
        isinstance(a, urllib3.exceptions.ReadTimeoutError) for a in exc.args)


def with_deadlines(client: docker.DockerClient, name: str, seconds: float) -> docker.DockerClient:
    """Give every call of `client` a deadline; one that passes is EngineStalled, naming the
    call. docker-py's APIClient is a requests Session: its get/post/... go through
    `request`, wrapped here on the instance."""
    api = client.api
    api.timeout = seconds
    send = api.request

    def request(method, url, *a, **kw):
        longer = getattr(_patience, "seconds", None)
        if longer is not None and kw.get("timeout") == api.timeout:
            kw["timeout"] = longer
        try:
            return send(method, url, *a, **kw)
        except requests.exceptions.RequestException as exc:
            if not _stalled(exc):
                raise
            path = urllib.parse.urlsplit(url).path
            raise EngineStalled(
                f"the Docker engine {name} stopped answering (no reply in {kw.get('timeout') or seconds:g} s "
                f"to {method} {path}); state kept: run the same command again to resume "
                "(AFPBISECT_DOCKER_TIMEOUT_SECONDS gives it longer)") from None
    api.request = request
    return client


def _timed_out(exc: BaseException | None) -> bool:
    """docker-py wraps the requests timeout of its first call (the version query)."""
    while exc is not None:
        if isinstance(exc, requests.exceptions.Timeout):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
