"""parallel.py: the gate lets only waits overlap, and a stopped round touches nothing more."""
import threading

import pytest

from afpbisect.machinery.parallel import Gate, Stopped, join_workers, run_all


WAIT = 60   # seconds an event or barrier wait may take; only reached when the test fails


def test_only_the_waits_overlap():
    gate, inside, most = Gate(), [0], [0]
    waits = threading.Barrier(3, timeout=WAIT)   # passed only when all 3 waits are at once

    def task():
        for _ in range(20):
            inside[0] += 1                     # policy code: one thread at a time
            most[0] = max(most[0], inside[0])
            assert gate.held() and not gate._lock.acquire(blocking=False)   # under the gate
            inside[0] -= 1
            with gate.released():              # a wait on an engine: others run meanwhile
                waits.wait()
        return threading.current_thread().name

    names = run_all([task] * 3, gate)
    assert all(n is not None and not isinstance(n, BaseException) for n in names), names
    assert most[0] == 1 and len(set(names)) == 3


def test_released_is_a_no_op_outside_the_gate():
    gate = Gate()
    with gate.released():
        pass
    with gate:
        with gate.released():
            assert gate._lock.acquire(blocking=False)   # really let go
            gate._lock.release()


def test_errors_come_back_in_order():
    def bad():
        raise ValueError("x")
    out = run_all([lambda: 1, bad, lambda: 3], Gate())
    assert out[0] == 1 and isinstance(out[1], ValueError) and out[2] == 3


def test_a_stopped_gate_lets_no_worker_back_in():
    gate, after = Gate(), []
    waiting, proceed = threading.Event(), threading.Event()

    def task():
        with gate.released():
            waiting.set()                      # in the wait on the engine...
            proceed.wait(WAIT)                 # ...until the gate has been stopped
        after.append("policy code after the wait")   # must never run

    box = []
    t = threading.Thread(target=lambda: box.append(run_all([task], gate)), daemon=True)
    t.start()
    assert waiting.wait(WAIT)
    gate.stop()
    proceed.set()
    t.join(WAIT)
    assert not t.is_alive() and after == [] and isinstance(box[0][0], Stopped)
