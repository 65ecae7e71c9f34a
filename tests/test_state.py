import json
import multiprocessing

import pytest

from afpbisect.core.errors import StateError, UsageError
from afpbisect.core.state import VERSION, State, WorkdirLock, check_writable


def test_roundtrip_and_resume(tmp_path):
    p = tmp_path / "s.json"
    st = State.load_or_new(p, "run", {"good": "a"}, say=lambda m: None)
    st.data["evidence"] = {"x": {"cycles": 3}}
    st.save()
    again = State.load_or_new(p, "run", {"good": "a"}, say=lambda m: None)
    assert again.data == {"evidence": {"x": {"cycles": 3}}}
    assert not list(tmp_path.glob("*.tmp*"))


def test_other_identity_refused_and_restart(tmp_path):
    p = tmp_path / "s.json"
    State(p, "run", {"good": "a"}).save()
    with pytest.raises(StateError, match="different run"):
        State.load_or_new(p, "run", {"good": "b"}, say=lambda m: None)
    fresh = State.load_or_new(p, "run", {"good": "b"}, restart=True, say=lambda m: None)
    assert fresh.data == {}


@pytest.mark.parametrize("body", ["{not json", "[]", json.dumps({"version": 1}),
                                  json.dumps({"version": VERSION + 1, "kind": "run", "identity": {},
                                              "created": 1.0, "data": {}})])
def test_corrupt_or_newer_is_clear_error(tmp_path, body):
    p = tmp_path / "s.json"
    p.write_text(body)
    with pytest.raises(StateError, match="corrupt|newer"):
        State.load(p)


def _hold(path, ready, release):
    with WorkdirLock(path):
        ready.set()
        release.wait(60)   # until the test has tried the lock (60 s: only if it never says so)


def test_lock_names_holder(tmp_path):
    ready, release = multiprocessing.Event(), multiprocessing.Event()
    proc = multiprocessing.Process(target=_hold, args=(tmp_path, ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(UsageError, match=f"in use by pid {proc.pid}"):
            with WorkdirLock(tmp_path):
                pass
    finally:
        release.set()
        proc.join()
    with WorkdirLock(tmp_path):   # released when the holder ends
        pass


def test_unwritable_workdir(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(UsageError, match="not writable"):
        check_writable(f / "sub")


def test_identity_digest_names_each_run_apart():
    """Issue 17: runs of one range with other options or another scenario keep their own
    state files; the same identity always gets the same name (resume)."""
    from afpbisect.core.state import identity_digest
    a = {"good": "1" * 40, "bad": "2" * 40, "env": {"X": "1"}, "scenario": "d1"}
    assert identity_digest(a) == identity_digest(dict(reversed(list(a.items()))))
    assert identity_digest(a) != identity_digest({**a, "env": {"X": "0"}})
    assert identity_digest(a) != identity_digest({**a, "scenario": "d2"})


def test_lock_that_is_a_directory(tmp_path):
    (tmp_path / "lock").mkdir()
    with pytest.raises(UsageError, match=f"lock {tmp_path / 'lock'} cannot be opened"):
        with WorkdirLock(tmp_path):
            pass


@pytest.mark.parametrize("data,where", [
    ({"builds": []}, "'builds'"),
    ({"builds": {"k": "x"}}, "'builds'"),
    ({"cycles": {"k": "x"}}, "'cycles'"),
    ({"cycles": {"k": ["x"]}}, "'cycles'"),
    ({"evidence": []}, "'evidence'"),
    ({"evidence": {"abc": 3}}, "'evidence'"),
    ({"refs": {"main": []}}, "'refs'"),
    ({"refs": {"main": {"history": {}}}}, "'refs'"),
    ({"refs": {"main": {"history": ["x"]}}}, "'refs'"),
    ({"result": []}, "'result'"),
])
def test_data_of_the_wrong_shape_is_corrupt(tmp_path, data, where):
    """A valid header over wrong-typed data was a TypeError deep in a run (issue 17)."""
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"version": VERSION, "kind": "run", "identity": {}, "created": 1.0, "data": data}))
    with pytest.raises(StateError, match=f"{p} is corrupt .*{where}.*--restart"):
        State.load(p)


def test_data_of_the_right_shape_loads(tmp_path):
    p = tmp_path / "s.json"
    data = {"builds": {"a:w": {"ok": True}}, "cycles": {"a:w": [{"index": 1}]}, "evidence": {"a": {}},
            "refs": {"main": {"last_good": None, "history": [{"date": "x"}]}}, "result": {}, "other": 1}
    State(p, "run", {}, data).save()
    assert State.load(p).data == data


@pytest.mark.parametrize("body", ["{not json", "[]", json.dumps({"version": 1}),
                                  json.dumps({"version": VERSION, "kind": "run", "identity": {"good": "a"},
                                              "created": 1.0, "data": {"about": "x"}}),
                                  json.dumps({"version": VERSION, "kind": "run", "identity": {"good": "a"},
                                              "created": 1.0, "data": {"steps": [3]}})])
def test_a_corrupt_state_is_kept_aside_and_said_when_asked(tmp_path, body):
    """Issue 25: what `run` finds unreadable under its own name is moved to
    NAME.json.bad-<time> (kept for a post-mortem, never overwritten), said in one line, and
    the run starts over."""
    p = tmp_path / "s.json"
    p.write_bytes(body.encode())
    said = []
    st = State.load_or_new(p, "run", {"good": "a"}, say=said.append, set_aside=True)
    assert st.data == {} and not p.exists()
    kept = list(tmp_path.glob("s.json.bad-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == body.encode()
    assert len(said) == 1 and str(p) in said[0] and kept[0].name in said[0] and "unreadable" in said[0]
    p.write_bytes(body.encode())   # a second one in the same second is kept too
    State.load_or_new(p, "run", {"good": "a"}, say=said.append, set_aside=True)
    assert len(list(tmp_path.glob("s.json.bad-*"))) == 2


def test_what_is_not_corrupt_is_never_set_aside(tmp_path):
    """A newer afpbisect's state or another run's is not ours to move: refused as before."""
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"version": VERSION + 1, "kind": "run", "identity": {}, "created": 1.0, "data": {}}))
    with pytest.raises(StateError, match="newer"):
        State.load_or_new(p, "run", {}, say=lambda m: None, set_aside=True)
    State(p, "run", {"good": "a"}).save()
    with pytest.raises(StateError, match="different run"):
        State.load_or_new(p, "run", {"good": "b"}, say=lambda m: None, set_aside=True)
    assert not list(tmp_path.glob("*.bad-*"))
    p.write_text("{")   # and without set_aside (the nightly's job state), corrupt is an error
    with pytest.raises(StateError, match="corrupt"):
        State.load_or_new(p, "run", {"good": "b"}, say=lambda m: None)


def test_a_state_whose_about_is_not_names_is_corrupt():
    """Second hostile tour of issue 25: `about` of the wrong shape was listed by status as
    'run {'a': 1}..['x'] (scenario 5)' and resumed from."""
    from afpbisect.core.state import data_problem
    assert data_problem({"about": {"good": {"a": 1}, "bad": ["x"], "scenario": 5}})
    assert data_problem({"about": {"scenario": "8667", "good": "v1", "patches": ["fixA.patch"]}}) is None
