"""Work of one round on several engines at once, with the policy still single-threaded.

The probes of a round (issue 20) each build and cycle on their own engine. Their waits on
Docker overlap; the policy's code, the state and the console do not: every worker runs
while holding the `Gate` and lets go of it only around a long wait on an engine
(`Gate.released`). So the store, the state file and the trace see one writer at a time,
as with one engine, and the policy needs no locks of its own.

Stopping: when the main thread is interrupted (a signal, an error) it calls `Gate.stop`.
A worker then stops at its next boundary (before or after a wait on Docker) with `Stopped`,
and never touches the state again; the run's cleanup removes the containers it waits on.
Workers are daemon threads and are registered, so the cleanup can wait for them briefly
(`join_workers`) before its last sweep.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable


class Stopped(BaseException):
    """The run is stopping: a worker leaves at once (not an Exception: no handler of
    infrastructure errors may catch it and go on)."""


class Gate:
    """A lock the policy's code runs under when several probes run at once; a no-op in a
    thread that does not hold it (one engine: nobody does)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mine = threading.local()
        self.stopped = False

    def __enter__(self) -> "Gate":
        self._take()
        return self

    def __exit__(self, *exc) -> None:
        if self.held():   # not when `released` ended in Stopped
            self._mine.held = False
            self._lock.release()

    def _take(self) -> None:
        self._lock.acquire()
        if self.stopped:
            self._lock.release()
            raise Stopped()
        self._mine.held = True

    def held(self) -> bool:
        """Whether this thread holds the gate (it is a round's worker)."""
        return bool(getattr(self._mine, "held", False))

    @contextlib.contextmanager
    def released(self):
        """Around a long wait on Docker: others may run meanwhile."""
        if not self.held():
            yield
            return
        self._mine.held = False
        self._lock.release()
        try:
            yield
        finally:
            self._take()

    def run_all(self, tasks: list[Callable[[], object]]) -> list:
        """`run_all` under this gate: how the policy runs a round's probes at once
        (policy.config.Env's optional `gate`; the policy imports no machinery)."""
        return run_all(tasks, self)

    def stop(self, wait: float = 30.0) -> None:
        """No worker runs policy code after this returns (within `wait` seconds: a worker
        in the middle of a state save finishes it first)."""
        self.stopped = True
        if self._lock.acquire(timeout=wait):
            self._lock.release()


_workers: set = set()
_workers_lock = threading.Lock()


def run_all(tasks: list[Callable[[], object]], gate: Gate | None = None) -> list:
    """Run each task in its own thread (under `gate` when given) and wait for all: the
    result or the exception of each, in order. On an interrupt of the waiting thread the
    gate is stopped and the interrupt goes on up."""
    out: list = [None] * len(tasks)

    def work(i: int, task) -> None:
        try:
            if gate is None:
                out[i] = task()
            else:
                with gate:
                    out[i] = task()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            out[i] = exc
        finally:
            with _workers_lock:
                _workers.discard(threading.current_thread())

    threads = [threading.Thread(target=work, args=(i, t), daemon=True, name=f"afpbisect-{i}")
               for i, t in enumerate(tasks)]
    with _workers_lock:
        _workers.update(threads)
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():   # a timed join: signals reach this thread meanwhile
                t.join(0.2)
    except BaseException:
        if gate is not None:
            gate.stop()
        raise
    return out


def join_workers(timeout: float) -> int:
    """Wait up to `timeout` seconds for the workers still running; how many are left."""
    deadline = time.monotonic() + timeout
    while True:
        with _workers_lock:
            alive = [t for t in _workers if t.is_alive()]
        if not alive or time.monotonic() >= deadline:
            return len(alive)
        alive[0].join(min(0.2, max(0.0, deadline - time.monotonic())))
