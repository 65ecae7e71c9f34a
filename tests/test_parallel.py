"""parallel.py: the gate lets only waits overlap, and a stopped round touches nothing more."""
import threading
import time

import pytest

from afpbisect.parallel import Gate, Stopped, join_workers, run_all


def test_only_the_waits_overlap():
    gate, inside, most = Gate(), [0], [0]

    def task():
        for _ in range(20):
            inside[0] += 1                     # policy code: one thread at a time
            most[0] = max(most[0], inside[0])
            time.sleep(0.001)
            inside[0] -= 1
            with gate.released():              # a wait on an engine: others run meanwhile
                time.sleep(0.002)
        return threading.current_thread().name

    names = run_all([task] * 3, gate)
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
    started = threading.Event()

    def task():
        started.set()
        with gate.released():
            time.sleep(0.3)
        after.append("policy code after the wait")   # must never run

    box = []
    t = threading.Thread(target=lambda: box.append(run_all([task], gate)), daemon=True)
    t.start()
    started.wait(2)
    gate.stop()
    t.join(2)
    assert after == [] and isinstance(box[0][0], Stopped)
    assert join_workers(1.0) == 0
    with pytest.raises(Stopped):
        with gate:
            pass
