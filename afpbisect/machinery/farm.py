"""Several Docker engines for one run (issue 20): `--engine NAME|URL`, one lane each.

A lane is an engine with its own builder and repro environment. Which lane builds a commit
is chosen here (`pick`): the engine that failed least recently first, so that a probe an
engine lost on infrastructure moves to another engine instead of waiting for the same one.
The state stays local and is the single source of truth; engines hold only caches.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from afpbisect.core.errors import UsageError


@dataclass
class Lane:
    """One engine of the farm with what builds and runs on it."""

    engine: object          # engine.Engine
    builder: object         # build.DockerBuilder
    repro: object           # repro.ReproEnv
    strikes: int = 0        # infrastructure failures since its last success
    last_built: str | None = None   # the commit its build tree was last built at (this run)
    # One build at a time: the engine has one build tree per recipe.
    build_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        return getattr(self.engine, "name", "local")

    @property
    def remote(self) -> bool:
        return bool(getattr(self.engine, "remote", False))


def resolve(spec: str) -> tuple[str, str]:
    """(name, Docker URL) of one --engine value: a URL (unix://, tcp://, ssh://) as given, or
    the name of a Docker context (`docker context ls`), whose endpoint is read from the
    docker CLI's context store. One clear line when it is neither."""
    spec = spec.strip()
    if not spec:
        raise UsageError("--engine: an empty name")
    if "://" in spec:
        scheme = spec.split("://", 1)[0]
        if scheme not in ("unix", "tcp", "ssh", "http", "https", "npipe"):
            raise UsageError(f"--engine {spec}: unknown scheme {scheme!r} (unix://, tcp:// or ssh://)")
        try:   # checked here, before the clone: docker-py would say it only on connecting
            parts = urlsplit(spec)
            where = parts.path if scheme in ("unix", "npipe") else parts.hostname
            parts.port
        except ValueError as exc:
            raise UsageError(f"--engine {spec}: not a valid URL ({exc})") from None
        if not where:
            raise UsageError(f"--engine {spec}: no {'socket path' if scheme == 'unix' else 'host'} in the URL")
        return spec, spec
    host = context_host(spec)
    if host is None:
        raise UsageError(f"--engine {spec}: no Docker context of that name and not a URL "
                         "(see `docker context ls`, or give unix://, tcp:// or ssh://host)")
    return spec, host


def context_host(name: str, config_dir: str | None = None) -> str | None:
    """The Docker endpoint of context `name` in the docker CLI's store, or None. Read here
    because docker-py's ContextAPI looks for the store beside a config.json and finds none
    when the CLI has not written one (seen on this lab's machines)."""
    if name == "default":
        return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    root = Path(config_dir or os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    meta = root / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
    try:
        data = json.loads(meta.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--engine {name}: the Docker context store is unreadable ({meta}: {exc})") from None
    endpoints = data.get("Endpoints") if isinstance(data, dict) else None
    docker_ep = endpoints.get("docker") if isinstance(endpoints, dict) else None
    host = docker_ep.get("Host") if isinstance(docker_ep, dict) else None
    if not host:
        raise UsageError(f"--engine {name}: the context has no Docker endpoint ({meta})")
    return host


def resolve_all(specs) -> list[tuple[str, str]]:
    """Every --engine, checked before anything is touched; a name given twice is refused
    (two contexts of one daemon are fine: that is how the e2e test makes two engines).
    Without --engine, the environment's DOCKER_CONTEXT (environment_context)."""
    if not specs:
        return environment_context()
    out = [resolve(s) for s in specs]
    names = [n for n, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise UsageError(f"--engine {dup[0]} given twice")
    return out


def environment_context() -> list[tuple[str, str]]:
    """The engine DOCKER_CONTEXT names, in the docker CLI's order (DOCKER_HOST wins; the
    context `default` is the local engine): [] for the local engine, else that context as
    if named with --engine.  An unknown name is refused like an unknown --engine (issue
    25): falling back to the local engine would build and run somewhere the user did not ask."""
    name, said = os.environ.get("DOCKER_CONTEXT", "").strip(), "DOCKER_CONTEXT"
    if not name and "DOCKER_CONTEXT" not in os.environ:
        name, said = _config_context()
    if os.environ.get("DOCKER_HOST") or not name or name == "default":
        return []
    try:
        host = context_host(name)
    except UsageError as exc:
        raise UsageError(f"{said}={name}: {str(exc).split(': ', 1)[-1]}") from None
    if host is None:
        back = "unset DOCKER_CONTEXT" if said == "DOCKER_CONTEXT" else "`docker context use default`"
        raise UsageError(f"{said}={name}: no Docker context of that name (see `docker "
                         f"context ls`; {back} for the local engine)")
    return [(name, host)]


def _config_context() -> tuple[str, str]:
    """config.json's currentContext, which the docker CLI uses when DOCKER_CONTEXT is not
    set (`docker context use`); ignored, it sent a run to the local engine instead (fourth
    hostile tour). A config.json that cannot be read: none, as the CLI warns and goes on."""
    cfg = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"
    try:
        data = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return "", ""
    name = data.get("currentContext") if isinstance(data, dict) else None
    return (name.strip(), f"{cfg} currentContext") if isinstance(name, str) else ("", "")


def ranked(lanes: list[Lane], among=None) -> list[Lane]:
    """`among` (default: all) fewest strikes first, then in the order given on the command
    line (a stable choice, so a resumed run asks the same engines)."""
    return sorted(lanes if among is None else among, key=lambda ln: (ln.strikes, lanes.index(ln)))


def pick(lanes: list[Lane], busy: set = frozenset()) -> Lane:
    """The lane for the next build: not busy if one is free, then `ranked`."""
    return ranked(lanes, [ln for ln in lanes if ln.name not in busy] or list(lanes))[0]


def assign(costs: list) -> list:
    """costs[p][e]: build seconds of probe p on engine e (len(costs) <= engines). One engine
    per probe, minimising the slowest build (the round waits for it) and then the sum (the
    machines' time); ties: the lower engines. Exact: the least bound under which an
    assignment exists (binary search), then the cheapest assignment under it."""
    values = sorted({c for row in costs for c in row})
    lo, hi = 0, len(values) - 1          # values[-1] always admits one: probes <= engines
    while lo < hi:
        mid = (lo + hi) // 2
        if _cheapest_under(costs, values[mid]) is None:
            lo = mid + 1
        else:
            hi = mid
    return list(_cheapest_under(costs, values[lo])[1])


def _cheapest_under(costs: list, bound: float):
    """(sum, engines) of the cheapest assignment using no build dearer than `bound`, or
    None; dynamic programming over the set of engines taken (2**8 sets at most)."""
    best: dict = {0: (0.0, ())}
    for row in costs:
        nxt: dict = {}
        for taken, (total, engines) in best.items():
            for e, c in enumerate(row):
                if taken >> e & 1 or c > bound:
                    continue
                key, cand = taken | 1 << e, (total + c, engines + (e,))
                if key not in nxt or cand < nxt[key]:
                    nxt[key] = cand
        best = nxt
    return min(best.values()) if best else None
