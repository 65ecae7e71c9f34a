"""Issue 19: the nightly workflow is checked as data (PyYAML): least permissions, one night
at a time, dispatch inputs through env (never pasted into a script), every report and
result.json uploaded, JUnit published, current action versions, no `pip install --user`."""
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

WF = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "afpbisect-nightly.yml"


@pytest.fixture(scope="module")
def wf():
    return yaml.safe_load(WF.read_text())


def _steps(wf):
    return [s for job in wf["jobs"].values() for s in job["steps"]]


def test_permissions_are_least(wf):
    perms = wf["permissions"]
    assert isinstance(perms, dict) and perms.get("contents") == "read"
    assert set(perms) <= {"contents", "checks"} and all(v in ("read", "write") for v in perms.values())
    assert perms.get("contents") != "write"


def test_one_night_at_a_time(wf):
    c = wf["concurrency"]
    assert c["group"] and c.get("cancel-in-progress") is False


def test_inputs_reach_the_shell_only_through_env(wf):
    # PyYAML reads the `on:` key as True
    inputs = (wf.get("on") or wf.get(True))["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"ref", "last_good"}
    for s in _steps(wf):
        script = s.get("run", "")
        assert "${{" not in script, f"expression pasted into the script of {s.get('name')!r}"
    job = next(s for s in _steps(wf) if s.get("id") == "job")
    assert set(job["env"].values()) >= {"${{ github.event.inputs.ref }}", "${{ github.event.inputs.last_good }}"}


def test_installs_in_a_venv_with_setup_python(wf):
    uses = [s.get("uses", "") for s in _steps(wf)]
    assert "actions/checkout@v4" in uses and "actions/setup-python@v5" in uses
    scripts = " ".join(s.get("run", "") for s in _steps(wf))
    assert "--user" not in scripts and "python -m venv" in scripts


def test_all_reports_and_result_json_are_uploaded(wf):
    up = next(s for s in _steps(wf) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert up["uses"] == "actions/upload-artifact@v4" and up.get("if") == "always()"
    paths = up["with"]["path"].split()
    assert "result.json" in paths and "reports/" in paths
    assert "--out reports" in next(s for s in _steps(wf) if s.get("id") == "job")["run"]


def test_junit_is_published(wf):
    pub = [s for s in _steps(wf) if re.match(r"(mikepenz/action-junit-report@v[45]|"
                                             r"EnricoMi/publish-unit-test-result-action@v2)", s.get("uses", ""))]
    assert pub and pub[0].get("if") == "always()"
    assert "reports/junit.xml" in str(pub[0]["with"])


def test_no_action_on_a_removed_runtime(wf):
    old = {"actions/checkout": 4, "actions/setup-python": 5, "actions/upload-artifact": 4}
    for s in _steps(wf):
        name, _, ver = s.get("uses", "").partition("@v")
        if name in old:
            assert int(ver.split(".")[0]) >= old[name], s["uses"]
