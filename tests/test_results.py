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


def _fake_run():
    """What run._result reads, faked: a range of 6 commits, a found culprit."""
    from types import SimpleNamespace as NS

    from afpbisect.core.scenario import load
    from afpbisect.core.verdict import Verdict
    from afpbisect.policy.records import BisectResult, StepRecord
    commits = [f"{i:040x}" for i in range(1, 7)]
    ctx = NS(repo=NS(commit=lambda sha: NS(summary=f"subject {sha[-2:]}")), workdir=Path("/w"),
             opts=NS(repo="/r", settings=NS(pairs=6, threads=2, env={}), scenario=load()),
             lanes=[NS(name="local", remote=False)])
    rng = NS(good=NS(typed="v1", name="v1", sha=commits[0], note=None),
             bad=NS(typed="main", name="main", sha=commits[-1], note=None), commits=commits,
             position=commits.index)
    recs = [{"wall": 3.0, "cpu_busy": 0.5, "outcome": "hit"}]
    state = NS(data={"cycles": {c[:12]: recs for c in commits}, "evidence": {},
                     "builds": {c[:12]: {"seconds": 100.0, "ok": True} for c in commits}})
    env = NS(state=state, key_of=lambda c: c[:12], variant=NS(patches=[NS(name="widener.patch")]))
    steps = [StepRecord("calibrate", commits[-1], 5, Verdict.BAD, 1, 1, 0, 0, 1),
             StepRecord("search", commits[3], 3, Verdict.BAD, 1, 1, 0, 0, 1)]
    res = BisectResult([commits[3]], commits[3], 0.9991, 1.0, 0.7, 2, steps, ["t"], calibration=(1, 1))
    return ctx, rng, state, env, res


def test_a_run_builds_its_result_with_the_keys_of_the_format():
    """The run's result as commands/run.py builds it (a Docker run, faked): the keys of the
    committed 2026-12-01 results, plus what was added since ("engines"; the answer's rate
    fields); "made", "search_order" and "reports" are added after."""
    from afpbisect.commands.run import _headline, _result, run_outcome
    ctx, rng, state, env, res = _fake_run()
    result = _result(ctx, rng, state, env, res, "found", "", False, 0.999, 0.0)
    saved = json.loads((RESULTS / "2026-12-01-run-v7.0.0..v8.0.3-lazy-weighted.json").read_text())
    data = result.to_dict()
    assert set(data) == set(saved) - {"made", "search_order", "reports"} | {"engines"}
    assert set(data["result"]) == set(saved["result"]) | {"kind", "lower_sample", "rate_sample", "rate_floor"}
    assert set(data["steps"][0]) >= set(saved["steps"][0]) and data["range"]["size"] == 5
    assert RunResult.from_dict(data) == result
    assert _headline(result).startswith("first bad commit: " + rng.commits[3]) and run_outcome(result).exit_code == 0
