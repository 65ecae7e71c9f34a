"""Issue 19, the nightly's reports without Docker: replays stay off main's timeline; the
JUnit has the attributes dashboards read; every report says how it was made."""
import xml.etree.ElementTree as ET

from afpbisect.commands.nightly import _timeline, history_view
from afpbisect.reports.report import render


def _night(date, ref, status, replay=False, **kw):
    return {"date": date, "ref": ref, "sha": (ref[:1] * 40), "subject": "s", "status": status,
            "replay": replay, "cycles": 3, "hits": 1 if status == "regression" else 0, "bisection": None,
            "last_good": None, **kw}


NIGHTS = [_night("2026-11-25T02:17:00+00:00", "main", "clean"),
          _night("2026-11-25T09:00:00+00:00", "suricata-8.0.3", "regression", replay=True,
                 bisection={"first_bad": "923ad6af77" + "0" * 30, "subject": "af-packet", "status": "found"}),
          _night("2026-11-26T02:17:00+00:00", "main", "clean"),
          _night("2026-11-26T03:00:00+00:00", "main", "regression", replay=True)]


def test_replays_and_other_refs_stay_off_mains_timeline():
    for ref, replay in (("main", False), ("suricata-8.0.3", True), ("main", True)):
        v = history_view(NIGHTS, ref, replay)
        assert v["ref"] == "main"
        assert [n["date"][:10] for n in v["timeline"]] == ["2026-11-25", "2026-11-26"]
        assert all(n["status"] == "clean" for n in v["timeline"])
        assert len(v["others"]) == 2
    # a job that only ever replayed draws no timeline for the replayed ref
    assert history_view(NIGHTS[1:2], "suricata-8.0.3", True)["timeline"] == []


def _result(**kw):
    r = {"afpbisect": "0.1.0", "command": "nightly", "status": "regression", "date": "2026-11-25T09:00:00+00:00",
         "wall_seconds": 900.0, "sha": "3" * 40, "subject": "s", "hits": 2, "cycles": 2, "last_good": "1" * 40,
         "ref": {"typed": "v8.0.3", "name": "suricata-8.0.3", "sha": "3" * 40, "note": None},
         "scenario": {"name": "8667", "title": "race", "ticket": "https://redmine.openinfosecfoundation.org/issues/8667"},
         "build_seconds": 301.5, "repro_seconds": 12.0, "verdict": "bad", "unhealthy": 0, "infra": 0,
         "build_error": None, "exit_code": 1, "last_good_after": None,
         "bisection": {"first_bad": "9" * 40, "subject": "af-packet", "confidence": 0.9997, "report": "r.md",
                       "status": "found", "candidates": ["9" * 40], "wall_seconds": 1220.5},
         "made": {"date": "2026-11-25T09:00:00+00:00", "tool_version": "0.1.0 (abc)",
                  "host": {"hostname": "runner-7", "cores": 2}, "options": {"ref": "v8.0.3"}}}
    r.update(kw)
    return r


def test_nightly_junit_has_time_per_case_failure_type_and_hostname():
    s = ET.fromstring(render("junit.xml.j2", r=_result()).encode())
    assert s.get("hostname") == "runner-7" and s.get("timestamp")
    cases = s.findall("testcase")
    assert [c.get("time") for c in cases] == ["301.5", "12.0", "1220.5"]
    assert [c.find("failure").get("type") for c in cases[1:]] == ["regression", "regression"]
    err = ET.fromstring(render("junit.xml.j2", r=_result(status="error", bisection=None, error="x")).encode())
    assert err.find("testcase/error").get("type") == "infrastructure"


def test_nightly_html_and_markdown_say_how_they_were_made():
    r = _result()
    v = history_view(NIGHTS, "suricata-8.0.3", True)
    html = render("nightly.html.j2", ref=v["ref"], repo="R", nights=v["timeline"], others=v["others"],
                  svg=_timeline(v["timeline"]), scenario=r["scenario"], r=r)
    assert html.count('<circle class="night') == 2 and 'id="others"' in html and "(replay from" in html
    for text in (html, render("nightly.md.j2", r=r)):
        assert "0.1.0 (abc)" in text and "runner-7, 2 cores" in text and "v8.0.3" in text and "3" * 40 in text
