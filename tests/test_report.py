"""Reports: a re-run never overwrites an earlier run's report (afpbisect/reports/report.py)."""
import json
import os

from afpbisect.reports.report import keep_previous, write_reports
from afpbisect.reports.results import NightlyResult

T0 = 1795892800   # 2026-11-28T19:06:40Z


def _run(out, stem, wall):
    """The files one run leaves: its JSON, its Markdown, its bisect-replay."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps({"wall_seconds": wall}))
    (out / f"{stem}.md").write_text(f"wall {wall}\n")
    (out / f"{stem}.bisect-replay").write_text(f"replay {wall}\n")
    os.utime(out / f"{stem}.json", (T0, T0))


def test_earlier_run_moves_to_previous_with_its_time(tmp_path):
    out = tmp_path / "reports"
    _run(out, "run-a-b", 3326)
    moved = keep_previous(out, "run-a-b")
    assert sorted(p.name for p in moved) == [
        "run-a-b-20261128T190640Z.bisect-replay", "run-a-b-20261128T190640Z.json",
        "run-a-b-20261128T190640Z.md"]
    assert json.loads((out / "previous" / "run-a-b-20261128T190640Z.json").read_text()) == {"wall_seconds": 3326}
    assert not list(out.glob("run-a-b.*"))


def test_other_stems_and_temp_files_stay(tmp_path):
    out = tmp_path / "reports"
    _run(out, "run-a-b", 1)
    _run(out, "run-a-bc", 2)          # a longer stem with the same prefix is another run's
    (out / "run-a-b.json.tmp").write_text("partial")
    keep_previous(out, "run-a-b")
    assert (out / "run-a-bc.json").exists() and (out / "run-a-b.json.tmp").exists()
    assert keep_previous(out, "nothing-here") == []


def test_runs_in_the_same_second_never_overwrite(tmp_path):
    out = tmp_path / "reports"
    for wall in (1, 2, 3):
        _run(out, "s", wall)
        keep_previous(out, "s")
    walls = sorted(json.loads(p.read_text())["wall_seconds"] for p in (out / "previous").glob("s-*.json"))
    assert walls == [1, 2, 3]


def test_write_reports_keeps_the_earlier_report(tmp_path):
    out = tmp_path / "nightly"
    _run(out, "nightly", 751)
    night = {"status": "clean", "bisection": None, "wall_seconds": 12, "date": "2026-11-28",
             "scenario": {"name": "8667", "title": "t"},
             "ref": {"name": "main"}, "sha": "0" * 40, "subject": "s", "hits": 0, "cycles": 25}
    res = write_reports(out, "nightly", NightlyResult.from_dict(night), "junit.xml.j2")
    assert json.loads((out / "nightly.json").read_text())["wall_seconds"] == 12
    assert res.reports["json"] == str(out / "nightly.json")
    assert json.loads((out / "previous" / "nightly-20261128T190640Z.json").read_text())["wall_seconds"] == 751
    # the earlier run's replay file went with its report: none is left to pass for the new run's
    assert not (out / "nightly.bisect-replay").exists()


def test_forwarding_facts_and_their_markdown():
    """Issue 16: per step, offered and forwarded per pair, shutdown counters, unhealthy cycles."""
    from afpbisect.reports.facts import forwarding_facts
    from afpbisect.reports.report import render
    recs = [
        {"index": 1, "started": True, "forwarded_after_start": {"SFE_0_RX": 900, "SFE_1_RX": 0},
         "offered": {"SFE_0_TX": 901, "SFE_1_TX": 899}, "unhealthy": "forwarded nothing after start on SFE_1_RX",
         "shutdown_counters": {"SFE_0_TX": {"packets": 2008}, "SFE_0_RX": {"packets": 0}}},
        {"index": 2, "started": True, "forwarded_after_start": {"SFE_0_RX": 850, "SFE_1_RX": 830},
         "offered": {"SFE_0_TX": 851, "SFE_1_TX": 840}},
        {"index": 3, "started": False, "unhealthy": "exited before start (exit 1)"},
    ]
    facts = forwarding_facts(recs)
    assert facts["pairs"] == {"SFE_0_RX": {"offered_min": 851, "forwarded_min": 850},
                              "SFE_1_RX": {"offered_min": 840, "forwarded_min": 0}}
    assert facts["unhealthy"] == [{"cycle": 1, "reason": "forwarded nothing after start on SFE_1_RX"},
                                  {"cycle": 3, "reason": "exited before start (exit 1)"}]
    md = render("forwarding.md.j2", r={"steps": [{"commit": "a" * 40, **facts}]})
    assert "SFE_0_RX 850 of 851; SFE_1_RX 0 of 840" in md
    assert "SFE_0 2008 / 0" in md
    assert "cycle 3: exited before start (exit 1)" in md
