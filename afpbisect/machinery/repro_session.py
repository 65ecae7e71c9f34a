"""The repro environment: one elevated container per build, many cold-start cycles in it.

A session starts ONE container from the build's image (NET_ADMIN + NET_RAW, `--network
none`, the product read-only at /opt/product, the logs at /logs, the driver and its inputs
at /afp) whose main process is `afpdriver serve`: the veth pairs and a traffic generator
that keeps frames flowing between cycles.  `cycle()` is one `docker exec afpdriver cycle`:
a cold start of the target per the run contract (docs/ARCHITECTURE.md), 2 s of traffic,
SIGTERM.  The console log is read here, on the host, through the /logs mount, and turned
into signals by afpbisect/core/console_log.py.

Keeping the container (and its traffic) across the cycles of one build is what makes "one
more cycle" cheap for the policy: the veths and the generator are set up once, not per cycle.

On a remote engine (`Engine.remote`) nothing is bind-mounted: the product is the engine's
volume of it (filled once from the local product dir), /afp (the inputs and the driver's
directory, subdirectories and all) is sent as an archive before the container starts, /logs
stays in the container, and each cycle's directory is copied back into the local cycle dir
after the cycle, so everything after it reads the same files.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from pathlib import Path

import docker.errors
import requests.exceptions

from afpbisect.machinery import storage
from afpbisect.machinery.engine import (
    TRANSPORT_ERRORS,
    Engine,
    _short,
    check_capability_error,
    create_container,
    retrying,
)
from afpbisect.machinery.deadlines import patience
from afpbisect.core.errors import InfraError
from afpbisect.machinery.repro_record import CycleRecord, fill_from_logs
from afpbisect.machinery.repro_settings import C_AFP, C_LOGS, C_PRODUCT, ReproSettings, driver_config, render_suricata_yaml

log = logging.getLogger(__name__)

DRIVER = Path(__file__).resolve().parent / "container" / "afpdriver"   # python3 runs its __main__.py
DRIVER_CMD = ["python3", f"{C_AFP}/{DRIVER.name}"]

# Keeps the veths quiet: with IPv6 on, the kernel sends router solicitations and MLD reports
# out of SFE_i_RX, which far_i_rx would count as forwarded.  /proc/sys is read-only in the
# container; new interfaces inherit `default`.
IPV6_OFF = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}


class ReproEnv:
    def __init__(self, engine: Engine, settings: ReproSettings):
        self.engine = engine
        self.settings = settings

    def session(self, image: str, product_dir: Path, logs_dir: Path) -> "ReproSession":
        """Start one container for this build and wait until its traffic flows.

        Usable as a context manager; `close()` removes the container in any case."""
        s = ReproSession(self.engine, self.settings, image, Path(product_dir), Path(logs_dir))
        try:
            s.start()
        except BaseException:
            s.close()
            raise
        return s


class ReproSession:
    def __init__(self, engine: Engine, settings: ReproSettings, image: str, product_dir: Path,
                 logs_dir: Path):
        self.engine = engine
        self.settings = settings
        self.image = image
        self.product_dir = product_dir.resolve()
        self.logs_dir = logs_dir.resolve()
        self.afp_dir = self.logs_dir / "afp"
        self.container = None
        self.ready: dict = {}
        self.ready_seconds: float | None = None   # container create to ready.json
        self._started_at = 0.0
        self._sysctls = dict(IPV6_OFF)

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> "ReproSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        binary = self.product_dir / "usr/local/bin/suricata"
        if not binary.is_file():
            raise InfraError(f"no target binary at {binary}: the product directory is incomplete")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        token = uuid.uuid4().hex[:12]
        self._stage(token)
        t0 = time.monotonic()
        self.container = self._create_and_start(token)
        self._wait_ready(token, t0)
        self.ready_seconds = round(time.monotonic() - t0, 3)
        self._started_at = t0
        log.info("repro container %s ready in %.2fs (%s)", self.container.name, self.ready_seconds,
                 self.ready)

    def close(self) -> None:
        """Remove the container (idempotent; also after KeyboardInterrupt)."""
        c, self.container = self.container, None
        if c is None:
            return
        if self.engine.remote:
            self._copy_serve_back(c)
        try:
            _remove(c)
        except docker.errors.NotFound:
            pass
        except TRANSPORT_ERRORS as exc:
            # The run's label cleanup (Engine.cleanup_run) is the second net.
            log.warning("could not remove repro container %s: %s", c.name, exc)

    # ------------------------------------------------------------ one cycle
    def cycle(self, index: int) -> CycleRecord:
        if self.container is None:
            raise InfraError("repro session is closed")
        self._renew_if_old()
        self._check_alive("before cycle %d" % index)
        cycle_dir = self.logs_dir / f"cycle-{index:03d}"
        # The fallback below must never read the record of an earlier run of this index.
        (cycle_dir / "record.json").unlink(missing_ok=True)
        cmd = [*DRIVER_CMD, "cycle", "--config", f"{C_AFP}/config.json", "--index", str(index)]
        api = self.engine.client.api
        try:
            exec_id = _exec_create(api, self.container.id, cmd)
        except TRANSPORT_ERRORS as exc:
            self._check_alive("creating the exec of cycle %d" % index)
            raise InfraError(f"docker exec of cycle {index} could not be created: {exc}") from exc
        stdout = stderr = b""
        try:
            # The driver says nothing until the cycle ends: the reply may take the cycle's
            # whole budget. A read that times out (TimeoutError: docker-py reads the socket
            # itself) is found out below by polling, each poll with the API's deadline.
            with patience(self.settings.cycle_budget()):
                stdout, stderr = api.exec_start(exec_id, demux=True)
            stdout, stderr = stdout or b"", stderr or b""
        except (*TRANSPORT_ERRORS, TimeoutError) as exc:
            # Not retried: the cycle may be running.  Wait for it, then take its record.json.
            log.warning("docker exec of cycle %d: %s; waiting for it to end", index, exc)
            self._wait_exec(api, exec_id)
        self._check_alive("during cycle %d" % index)
        if self.engine.remote:
            self._copy_back(f"cycle-{index:03d}", cycle_dir)
        exit_code = _exec_inspect(api, exec_id).get("ExitCode")
        raw = _last_json_line(stdout)
        if raw is None and (cycle_dir / "record.json").is_file():
            raw = _last_json_line((cycle_dir / "record.json").read_bytes())
        if raw is None:
            tail = (stderr or stdout).decode("utf-8", "replace").strip().splitlines()[-5:]
            if exit_code is None:
                raise InfraError(f"docker exec of cycle {index} did not run")
            return self._fill(CycleRecord(
                index=index, log_path=str(cycle_dir / "console.log"),
                error=f"driver exited {exit_code} without a record: {' | '.join(tail) or 'no output'}"))
        return self._fill(self._from_driver(raw, cycle_dir))

    # ------------------------------------------------------------ helpers
    def _stage(self, token: str) -> None:
        self.afp_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.afp_dir / DRIVER.name, ignore_errors=True)   # exactly this package's files
        shutil.copytree(DRIVER, self.afp_dir / DRIVER.name, ignore=shutil.ignore_patterns("__pycache__"))
        (self.afp_dir / "suricata.yaml").write_text(render_suricata_yaml(self.settings))
        (self.afp_dir / "config.json").write_text(
            json.dumps(driver_config(self.settings, token), indent=2) + "\n")
        if self.settings.traffic_kind == "pcap":
            shutil.copyfile(self.settings.pcap, self.afp_dir / "traffic.pcap")
        stale = self.logs_dir / "serve" / "ready.json"
        if stale.exists():
            stale.unlink()

    def _create_and_start(self, token: str):
        caps = list(self.settings.caps)
        name = f"afpbisect-repro-{self.engine.run_id}-{token[:6]}"
        labels = {**self.engine.labels, "afpbisect.role": "repro"}
        storage_kw = self._storage_kw()
        cmd = [*DRIVER_CMD, "serve", "--config", f"{C_AFP}/config.json"]
        container = None
        try:
            try:
                container = _create(self.engine.client, image=self.image, command=cmd, name=name,
                                    labels=labels, cap_add=caps, network_mode="none",
                                    sysctls=self._sysctls or None, init=True,
                                    stdin_open=False, tty=False, **storage_kw)
            except docker.errors.APIError as exc:
                if "sysctl" not in str(exc).lower() or not self._sysctls:
                    raise
                # An engine that refuses per-container sysctls: the driver's own writes are
                # the second chance (ready.json says whether IPv6 is off).
                log.warning("engine refused container sysctls (%s); going on without", exc)
                self._sysctls = {}
                container = _create(self.engine.client, image=self.image, command=cmd, name=name,
                                    labels=labels, cap_add=caps, network_mode="none", init=True,
                                    stdin_open=False, tty=False, **storage_kw)
            self.container = container
            if self.engine.remote:
                storage.put_dir(self.engine, container, self.afp_dir, C_AFP)
            _start(container)
            return container
        except docker.errors.ImageNotFound as exc:
            raise InfraError(f"repro image {self.image} not found: {exc}") from exc
        except docker.errors.APIError as exc:
            check_capability_error(exc, caps)
            hint = (" (the repro image needs python3 and iproute2)"
                    if "executable file not found" in str(exc) else "")
            raise InfraError(f"repro container did not start: {_short(exc)}{hint}") from exc
        except requests.exceptions.RequestException as exc:
            raise InfraError(f"Docker engine failed while starting the repro container: {exc}") from exc

    def _wait_ready(self, token: str, t0: float) -> None:
        deadline = t0 + self.settings.ready_timeout
        next_check = 0.0
        while True:
            raw = self._read_ready()
            if raw is not None:
                try:
                    info = json.loads(raw)
                except ValueError:
                    info = {}
                if info.get("session") == token:
                    self.ready = info
                    if not info.get("ipv6_disabled", True):
                        log.warning("IPv6 is on on the repro veths: far_i_rx may count a few "
                                    "kernel frames as forwarded")
                    return
            now = time.monotonic()
            if now >= next_check:
                self._check_alive("while setting up veths and traffic")
                next_check = now + 0.5
            if now >= deadline:
                raise InfraError(f"repro container not ready after {self.settings.ready_timeout:.0f}s; "
                                 f"its output: {self._logs_tail()}")
            # A remote poll is an API call, not a stat: not 20 a second.
            time.sleep(0.25 if self.engine.remote else 0.05)

    # ------------------------------------------------------------ storage (bind or remote)
    def _storage_kw(self) -> dict:
        """The container's storage: the local engine bind-mounts product, logs and inputs;
        a remote engine gets the product as its read-only volume, the rest by archive."""
        if not self.engine.remote:
            return {"volumes": {
                str(self.product_dir): {"bind": C_PRODUCT, "mode": "ro"},
                str(self.logs_dir): {"bind": C_LOGS, "mode": "rw"},
                str(self.afp_dir): {"bind": C_AFP, "mode": "ro"},
            }}
        volume = storage.product_volume(self.engine, self.image, self.product_dir, C_PRODUCT)
        return {"mounts": [storage.volume_mount(volume, C_PRODUCT, read_only=True)]}

    def _read_ready(self) -> bytes | None:
        if not self.engine.remote:
            path = self.logs_dir / "serve" / "ready.json"
            try:
                return path.read_bytes() if path.is_file() else None
            except OSError:
                return None
        return storage.read_file(self.engine, self.container, f"{C_LOGS}/serve/ready.json")

    def _copy_back(self, name: str, dest: Path) -> None:
        """A directory of the container's /logs into the local `dest`, replacing it (what a
        bind mount would show: only this run's files)."""
        shutil.rmtree(dest, ignore_errors=True)
        try:
            storage.get_tree(self.engine, self.container, f"{C_LOGS}/{name}", dest)
        except docker.errors.NotFound:
            log.warning("no %s/%s in repro container %s", C_LOGS, name, self.container.name)

    def _copy_serve_back(self, c) -> None:
        """serve's own log and ready.json, for diagnostics; never worth failing a close for."""
        try:
            storage.get_tree(self.engine, c, f"{C_LOGS}/serve", self.logs_dir / "serve")
        except (InfraError, docker.errors.APIError, OSError) as exc:
            log.warning("could not copy %s/serve back from %s: %s", C_LOGS, c.name, exc)

    def _renew_if_old(self) -> None:
        """The container stops itself after max_seconds (the driver's bound on its traffic);
        start a fresh one before a cycle could run into that."""
        age = time.monotonic() - self._started_at
        if age + self.settings.cycle_budget() < self.settings.max_seconds:
            return
        log.info("repro container %s is %.0fs old; starting a fresh one", self.container.name, age)
        self.close()
        try:
            self.start()
        except BaseException:
            self.close()
            raise

    def _check_alive(self, when: str) -> None:
        c = self.container
        try:
            _reload(c)
        except docker.errors.NotFound as exc:
            raise InfraError(f"repro container {c.name} vanished {when}") from exc
        except TRANSPORT_ERRORS as exc:
            raise InfraError(f"Docker engine failed {when}: {exc}") from exc
        if c.status != "running":
            state = c.attrs.get("State", {})
            hint = ""
            out = self._logs_tail()
            if "python3" in out and ("not found" in out or "no such file" in out.lower()):
                hint = " (the repro image needs python3 and iproute2)"
            elif "ip" in out and "not found" in out:
                hint = " (the repro image needs iproute2)"
            raise InfraError(
                f"repro container {c.name} is {c.status} {when} (exit {state.get('ExitCode')}, "
                f"OOM {state.get('OOMKilled')}){hint}; its output: {out}")

    def _logs_tail(self) -> str:
        try:
            text = self.container.logs(tail=15).decode("utf-8", "replace").strip()
        except Exception:  # noqa: BLE001 - diagnostics only
            return "(no output)"
        return " | ".join(text.splitlines()[-8:]) or "(no output)"

    def _wait_exec(self, api, exec_id) -> None:
        deadline = time.monotonic() + self.settings.cycle_budget()
        while time.monotonic() < deadline:
            if not _exec_inspect(api, exec_id).get("Running"):
                return
            time.sleep(0.5)
        raise InfraError("docker exec of a cycle did not end in time")

    def _from_driver(self, raw: dict, cycle_dir: Path) -> CycleRecord:
        return CycleRecord(
            index=int(raw.get("index", 0)),
            started=bool(raw.get("started")),
            start_seconds=raw.get("start_seconds"),
            exit_code=raw.get("exit_code"),
            killed=bool(raw.get("killed")),
            early_exit=bool(raw.get("early_exit")),
            start_timeout=bool(raw.get("start_timeout")),
            died=bool(raw.get("died")),
            forwarded_after_start=dict(raw.get("forwarded_after_start") or {}),
            offered=dict(raw.get("offered") or {}),
            stray_into_rx=dict(raw.get("stray_into_rx") or {}),
            log_path=str(cycle_dir / "console.log"),
            duration=float(raw.get("duration") or 0.0),
            error=raw.get("error"),
        )

    def _fill(self, rec: CycleRecord) -> CycleRecord:
        return fill_from_logs(rec, self.settings)


# ------------------------------------------------------------ Docker calls, retried

def _create(client, image, command, name, **kw):
    return create_container(client, image, command, name, **kw)


@retrying
def _start(container):
    # engine.retrying does not retry the runtime refusing the container (capabilities,
    # missing command): those come straight back for check_capability_error.
    container.start()


@retrying
def _reload(container):
    container.reload()


@retrying
def _remove(container):
    container.remove(force=True)


@retrying
def _exec_create(api, container_id, cmd):
    return api.exec_create(container_id, cmd, stdout=True, stderr=True, stdin=False, tty=False)["Id"]


@retrying
def _exec_inspect(api, exec_id) -> dict:
    return api.exec_inspect(exec_id)


def _last_json_line(data: bytes) -> dict | None:
    for line in reversed((data or b"").decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None
