"""Issue 19: run and verify-patch write HTML (with an inline SVG plot) and JUnit beside JSON
and Markdown; every report says how it was made; committed examples carry no machine paths."""
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from afpbisect.commands.rerender_result import main as rerender_main
from afpbisect.reports import provenance
from afpbisect.reports.plot import run_plot, verify_plot
from afpbisect.reports.report import redact, render, write_command_reports
from afpbisect.reports.results import RunResult, VerifyResult, result_from_dict

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
RUN = RESULTS / "2026-12-01-run-v7.0.0..v8.0.3-scenario-8667.json"
VERIFY = RESULTS / "2026-12-01-verify-fixA.json"


def _load(p):
    r = json.loads(p.read_text())
    r.pop("reports", None)
    return r


def test_run_plot_draws_each_probe_at_its_index_and_the_final_window():
    r = _load(RUN)
    plot = run_plot(RunResult.from_dict(r))
    assert len(plot["rows"]) == 16
    # x grows with the commit index; GOOD [0] at the left edge, BAD [3070] at the right
    by_pos = {row["step"]["position"]: row["x"] for row in plot["rows"]}
    assert by_pos[0] == plot["left"] and by_pos[3070] == plot["right"]
    assert by_pos[1535] < by_pos[1918] < by_pos[2302]
    assert [row["color"] for row in plot["rows"][:4]] == ["#c62828", "#2e7d32", "#2e7d32", "#c62828"]
    assert plot["band"]["label"] == "[1603] .. [1604]"
    # the window narrows: step 4 (after GOOD at 1535) starts at 1535, step 6 ends at 1918
    assert plot["rows"][3]["x_lo"] == by_pos[1535]
    assert plot["rows"][5]["x_hi"] == by_pos[1918]
    # the last probes are a few commits apart: a zoom draws them apart
    zoom = plot["zoom"]
    assert zoom and zoom["lo"] <= 1594 and zoom["hi"] >= 1606
    xs = [row["x"] for row in zoom["rows"] if row["step"]["role"] == "search"]
    assert len(set(xs)) == len(xs)


def test_verify_plot_has_a_cell_per_cycle_with_and_without_the_patch():
    plot = verify_plot(VerifyResult.from_dict(_load(VERIFY)))
    base, fix = plot["rows"]
    assert [c["hit"] for c in base["cells"]] == [True] * 8
    assert [c["hit"] for c in fix["cells"]] == [False] * 6
    assert plot["ordered"]                       # all hit / none hit: the order is known
    mixed = verify_plot(VerifyResult.from_dict({"baseline": {"cycles": 4, "hits": 1},
                                                "patched": {"cycles": 0, "hits": 0}}))
    assert not mixed["ordered"]
    # per-cycle outcomes recorded since issue 19: the order and the signature lines are drawn
    rec = verify_plot(VerifyResult.from_dict({
        "baseline": {"cycles": 3, "hits": 2},
        "baseline_facts": {"cycle_outcomes": ["hit", "unhealthy", "clean", "hit"], "signature_counts": [3, 0, 0, 1]},
        "patched": {"cycles": 0, "hits": 0}}))
    assert [(c["hit"], c["lines"]) for c in rec["rows"][0]["cells"]] == [(True, 3), (False, 0), (True, 1)]


def _write(tmp_path, src, stem):
    r = _load(src)
    r["made"] = {"date": "2026-12-01T06:20:57+00:00", "tool_version": "0.1.0 (v0.1-3-gabc)",
                 "host": {"hostname": "bench1", "cores": 2}, "options": {"pairs": 6, "cycles": None}}
    return write_command_reports(tmp_path, stem, result_from_dict(r))


def test_run_writes_html_with_inline_svg_and_junit(tmp_path):
    res = _write(tmp_path, RUN, "run")
    assert set(res.reports) == {"json", "markdown", "html", "junit"}
    html = (tmp_path / "run.html").read_text()
    assert '<svg id="bisection"' in html and html.count('class="probe ') >= 16
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//(?!redmine)', html)
    for fact in ("2026-12-01T06:20:57+00:00", "0.1.0 (v0.1-3-gabc)", "bench1, 2 cores",
                 "21ec99aa76cc5406007ce12a4891f2eaedb02291", "3bd9f773bdc65d7bede2f0576790a68fb68b7476",
                 "https://redmine.openinfosecfoundation.org/issues/8667", "pairs=6"):
        assert fact in html
        assert fact in (tmp_path / "run.md").read_text()
    suites = ET.parse(tmp_path / "run.junit.xml").getroot()
    s = suites.find("testsuite")
    assert s.get("hostname") == "bench1" and s.get("timestamp") == "2026-12-01T06:20:57+00:00"
    cases = s.findall("testcase")
    assert len(cases) == 17 and all(c.get("time") for c in cases)
    assert float(cases[4].get("time")) == pytest.approx(236.2 + 5.2)
    fail = cases[-1].find("failure")
    assert fail.get("type") == "regression" and "923ad6af77" in fail.get("message")
    assert s.get("failures") == "1" and s.get("errors") == "0"


def test_verify_writes_html_and_junit(tmp_path):
    _write(tmp_path, VERIFY, "v")
    html = (tmp_path / "v.html").read_text()
    assert '<svg id="cycles"' in html and html.count('class="cycle hit"') == 8
    assert html.count('class="cycle clean"') == 6
    s = ET.parse(tmp_path / "v.junit.xml").getroot().find("testsuite")
    assert [c.find("failure") for c in s.findall("testcase")] == [None, None]
    r = _load(VERIFY)
    r.update(verdict="present", summary="bug PRESENT with fixA", patched={**r["patched"], "hits": 2})
    write_command_reports(tmp_path, "p", result_from_dict(r))
    f = ET.parse(tmp_path / "p.junit.xml").getroot().find("testsuite").findall("testcase")[1].find("failure")
    assert f.get("type") == "bug-present"


def test_html_and_xml_escape_what_they_insert(tmp_path):
    """A `<` in a subject or a log line once made the JUnit unreadable (autoescape off for .j2)."""
    r = _load(RUN)
    r["result"]["subject"] = "x < y & <b>z</b>"
    r["trace"] = ["miss <= 0.001"]
    write_command_reports(tmp_path, "e", result_from_dict(r))
    ET.parse(tmp_path / "e.junit.xml")
    assert "<b>z</b>" not in (tmp_path / "e.html").read_text()


def test_no_answer_is_an_error_not_a_failure(tmp_path):
    r = _load(RUN)
    r["result"].update(status="NotReproducible", message="no hit at BAD", candidates=[])
    write_command_reports(tmp_path, "n", result_from_dict(r))
    s = ET.parse(tmp_path / "n.junit.xml").getroot().find("testsuite")
    assert s.get("failures") == "0" and s.get("errors") == "1"
    assert s.findall("testcase")[-1].find("error").get("type") == "no-answer:NotReproducible"


def test_redact_replaces_machine_prefixes_longest_first():
    r = {"workdir": "/w/x", "logs": ["/w/x/logs/a", "/w/y"], "n": 3}
    assert redact(r, {"/w/x/": "WORKDIR", "/w": "ROOT"}) == {
        "workdir": "WORKDIR", "logs": ["WORKDIR/logs/a", "ROOT/y"], "n": 3}


def test_rerender_a_saved_result_without_machine_paths(tmp_path):
    src = tmp_path / "in.json"
    r = _load(RUN)
    r["workdir"] = "/home/someone/w"
    for s in r["steps"]:
        s["build_log"] = "/home/someone/w/logs/build/x.log"
    src.write_text(json.dumps(r))
    out = tmp_path / "out"
    assert rerender_main([str(src), "--out", str(out), "--redact", "/home/someone/w=WORKDIR", "--cores", "2"]) == 0
    for f in out.iterdir():
        text = f.read_text()
        assert "/home/someone" not in text and str(tmp_path) not in text, f.name
    saved = json.loads((out / "in.json").read_text())
    assert saved["made"]["host"]["cores"] == 2 and "re-rendered" in saved["made"]["note"]
    assert saved["reports"]["html"] == "in.html"


def test_committed_example_reports_carry_no_machine_paths():
    leaks = [f.name for f in RESULTS.glob("2026-*")
             if re.search(r"(^|[\s\"'`(=])/(work|home|root|tmp|Users)/", f.read_text())]
    assert leaks == []


def test_stamp_states_version_host_and_options(monkeypatch):
    from afpbisect.commands.context import Options
    from afpbisect.core.scenario import load as load_scenario
    from afpbisect.machinery.repro_settings import ReproSettings
    opts = Options(repo="https://github.com/OISF/suricata", workdir=Path("/x"), base_image="b", jobs=2,
                   settings=ReproSettings(pairs=3, threads=1, env={"A": "1"}), fixed_cycles=10,
                   scenario=load_scenario("8667"))
    m = provenance.stamp(opts, command="run", confidence=0.999)
    assert m["host"]["cores"] >= 1 and m["date"].endswith("+00:00")
    assert m["options"]["pairs"] == 3 and m["options"]["cycles"] == 10 and m["options"]["scenario"] == "8667"
    assert m["options"]["confidence"] == 0.999
    # a checkout says which commit (git describe), an install says its version
    assert provenance.tool_version().startswith("0.1.0")
    assert provenance.tool_version(Path("/nonexistent")) == "0.1.0"


def test_a_raised_rate_is_reported_as_such_with_both_rates(tmp_path):
    """Issue 25: when the parent carries the race at a lower rate, no report may say the
    culprit brought it: headline, Markdown and HTML say it raised the rate, with both."""
    from afpbisect.commands.run import _headline
    r = _load(RUN)
    r["result"].update(kind="raised", lower_sample=[3, 60], rate_sample=[8, 8], confidence=0.99994)
    write_command_reports(tmp_path, "r", result_from_dict(r))
    md, html = (tmp_path / "r.md").read_text(), (tmp_path / "r.html").read_text()
    for text in (md, html):
        assert "the race was already there" in text.lower() and "raised" in text
        assert "3 hits in 60" in text
    case = ET.parse(tmp_path / "r.junit.xml").getroot().find("testsuite").findall("testcase")[-1]
    assert case.find("failure").get("type") == "rate-raised"   # not counted as a regression
    head = _headline(RunResult.from_dict(r))
    assert head.startswith("raised the race's rate: 923ad6af77") and "3 hits in 60 cycles" in head
    assert "99.994%" in head


def test_an_undecided_run_exits_3_and_says_what_it_needs():
    from afpbisect.commands.run import _headline
    from afpbisect.commands.run import run_outcome
    r = _load(RUN)
    r["result"].update(status="Undecided", message="undecided: c0029 needs 500 more clean cycles")
    r = RunResult.from_dict(r)
    assert run_outcome(r).exit_code == 3 and run_outcome(r).label == "undecided"
    assert _headline(r) == "undecided: c0029 needs 500 more clean cycles"


def test_how_it_was_made_is_escaped_in_html():
    """Fifth hostile tour: the shared "How this report was made" section (made.j2, imported
    by the HTML templates) was inserted unescaped: a scenario title, an --env value or a
    hostname became markup, and a javascript: ticket a link."""
    import json, pathlib
    from afpbisect.reports.report import FORMATS, rendered
    from afpbisect.reports.results import VerifyResult
    r = json.loads((pathlib.Path(__file__).parent.parent / "docs/results/2026-12-01-verify-fixA.json").read_text())
    r["scenario"] = {**r["scenario"], "title": "<script>alert(1)</script>", "ticket": "javascript:alert(2)"}
    r["made"]["host"]["hostname"] = "<img src=x onerror=alert(3)>"
    html = dict(rendered(VerifyResult.from_dict(r), FORMATS["verify-patch"]))["html"]
    assert "<script>alert" not in html and "<img src=x" not in html and 'href="javascript:' not in html
    assert "&lt;script&gt;" in html
