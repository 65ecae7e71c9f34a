"""The typed results (reports/results.py, issue 26): the JSON a command writes is a public,
versioned format, so a saved result read back and written again is the same, key for key."""
import json
from pathlib import Path

import pytest

from afpbisect.reports.results import ABSENT, NightlyResult, RunResult, VerifyResult, given, result_from_dict

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
SAVED = sorted(RESULTS.glob("2026-12-01-*.json"))


def test_the_committed_examples_are_there():
    assert {json.loads(p.read_text())["command"] for p in SAVED} == {"run", "verify-patch", "nightly"}


@pytest.mark.parametrize("path", SAVED, ids=lambda p: p.name)
def test_a_saved_result_round_trips_key_for_key(path):
    data = json.loads(path.read_text())
    typed = result_from_dict(data)
    assert type(typed) is {"run": RunResult, "verify-patch": VerifyResult, "nightly": NightlyResult}[data["command"]]
    assert data["afpbisect"] == "0.1.0"   # the format these dataclasses model
    assert typed.to_dict() == data
    assert json.dumps(typed.to_dict(), sort_keys=True) == json.dumps(data, sort_keys=True)


@pytest.mark.parametrize("path", sorted(RESULTS.glob("2026-11-*.json")), ids=lambda p: p.name)
def test_older_results_without_the_newer_keys_round_trip_too(path):
    data = json.loads(path.read_text())
    assert result_from_dict(data).to_dict() == data


def test_an_absent_key_stays_absent_and_an_unknown_one_is_kept():
    r = RunResult.from_dict({"command": "run", "result": {"status": "found", "future": 1}, "x": [1]})
    assert r.made is ABSENT and not r.made and given(r.made, "none") == "none"
    assert r.answer.status == "found" and r.answer.kind is ABSENT
    assert r.to_dict() == {"command": "run", "result": {"status": "found", "future": 1}, "x": [1]}
    assert RunResult.from_dict({"reference": None}).to_dict() == {"reference": None}


def test_a_result_of_the_wrong_shape_is_a_type_error():
    with pytest.raises(TypeError):
        RunResult.from_dict({"steps": "many"})
    with pytest.raises(TypeError):
        RunResult.from_dict({"result": [1]})
    with pytest.raises(TypeError):
        result_from_dict([1, 2])
