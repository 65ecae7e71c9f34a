"""docs/results/2026-12-01-time-to-answer.md and the README's "Time and disk" state the figures
bench/report_figures.py computes from the committed run report, word for word (issue 25: the
document said 341 s of cycles where its report says 400.7 s, and a cost model the run did not
use)."""
import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("report_figures", ROOT / "bench" / "report_figures.py")
rf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rf)


def _pattern(line: str) -> re.Pattern:
    """The line, exactly, but for the naive method's figures (not in the report)."""
    return re.compile(re.escape(line).replace(re.escape("{naive}"), ".+?").replace(re.escape("{ratio}"), ".+?"))


def _figures():
    return rf.figures(json.loads(rf.REPORT.read_text()))


def test_the_documents_figures_are_the_reports():
    doc = rf.DOCUMENT.read_text()
    lines = rf.document_lines(_figures())
    missing = [l for l in lines if not _pattern(l).search(doc)]
    assert not missing, "figures the document does not state as the report has them:\n" + "\n".join(missing)
    assert "341 s" not in doc and "88 builds recorded in the committed\n  reports: 0 s" not in doc


def test_the_readme_repeats_them():
    readme = (ROOT / "README.md").read_text()
    missing = [l for l in rf.readme_lines(_figures()) if not _pattern(l).search(readme)]
    assert not missing, missing


def test_the_figures_themselves():
    """A few by hand, so that a mistake in the script cannot agree with the same mistake in
    the document."""
    f = _figures()
    assert (f["far_builds"], f["near_builds"], f["cycles"]) == (5, 1, 35)
    assert round(f["repro_seconds"], 1) == 400.7 and round(f["build_seconds"], 1) == 866.8
    assert f["cost_model"] == {"near": 25.0, "far": 330.0, "horizon": 256}
    assert [b[3] for b in f["builds"]] == [None, 559, 83, 137, 136, 1]
    assert f["calibration"] == (2027, 8, 8) and f["confirm"] == (8, 8) and f["verify"] == (1603, 7)


# Issue 27: every other document that states a committed report's figures, and the Markdown
# each report was committed with, against the JSON (bench/report_figures.py --check).

def test_every_document_states_its_reports_figures():
    problems = rf.claim_problems()
    assert not problems, "figures the documents do not state as their reports have them:\n" + "\n".join(problems)


def test_every_reports_own_markdown_is_its_json():
    problems = [p for j in sorted(rf.RESULTS.glob("*.json")) for p in rf.generated_problems(j)]
    assert not problems, "\n".join(problems)


def test_every_committed_report_is_checked_somewhere():
    stems = {p.stem for p in rf.RESULTS.glob("*.json")}
    assert stems == {c[2] for c in rf.CLAIMS}
    assert {c[0] for c in rf.CLAIMS} >= {"README.md", "docs/results/real-suricata.md", "docs/results/lab-notebook.md",
                                         "docs/results/2026-12-01-trust-and-scenarios.md"}


def test_the_checker_sees_a_wrong_figure(tmp_path):
    """The figures issue 27 found wrong, as the documents had them, fail the check."""
    doc = tmp_path / "doc.md"
    doc.write_text("## Sixth\n- 10 were built, 1,054 s of building in all.\n"
                   "## Next\n10 were built, 858 s of building in all\n")
    claims = [(str(doc), "## Sixth", rf.RS, ["{builds} were built, {build_s} s of building in all"])]
    assert rf.claim_problems(claims) == [f"{doc}: 10 were built, 858 s of building in all "
                                         f"(from {rf.RS}.json)"]
    doc.write_text("2 min 44 s for\n  fixB")
    assert rf.claim_problems([(str(doc), None, rf.V2B, ["{wall} for fixB"])])
    doc.write_text("2 min 43 s for\n  fixB")
    assert not rf.claim_problems([(str(doc), None, rf.V2B, ["{wall} for fixB"])])


def test_a_reports_markdown_that_drifted_fails(tmp_path):
    src = rf.RESULTS / f"{rf.R1}.json"
    (tmp_path / src.name).write_text(src.read_text())
    md = (rf.RESULTS / f"{rf.R1}.md").read_text()
    (tmp_path / f"{rf.R1}.md").write_text(md.replace("| 9m19s |", "| 9m20s |").replace("55m38s", "55m39s"))
    problems = rf.generated_problems(tmp_path / src.name)
    assert any("wall time" in p for p in problems) and any("step 1 build" in p for p in problems)


def test_the_other_figures_by_hand():
    """Issue 27's corrections, from the JSON by hand, so that a mistake in the script cannot
    agree with the same mistake in a document."""
    up, down = rf.report_figures(rf.RS)
    assert (up["builds"], up["cached"], up["commits"], up["build_s"]) == (10, 4, 14, "858")
    assert (up["wall"], down["wall"]) == ("20 min 21 s", "20 min 20 s")   # 1,220.5 s
    assert rf.report_figures(rf.R2B)[0]["repro_s"] == "339"
    assert rf.report_figures(rf.V2B)[0]["wall"] == "2 min 43 s"
    first = rf.report_figures(rf.R1)[0]
    assert first["pc"]["923ad6af77"] == {"cycles": 2, "hits": 2}
    assert first["pc"]["b58b886db7"] == {"cycles": 8, "hits": 0}
    assert first["pc"]["21ec99aa76"] == {"cycles": 1, "hits": 0}
    assert [s["t"] for s in rf.report_figures(rf.R5)[0]["s"][2:9]] == [366, 441, 380, 293, 198, 208, 188]
    assert rf.report_figures(rf.V1B)[0]["base"]["fwd"] == "6,005-6,054"
    assert rf.report_figures(rf.N1)[0]["clean_confidence"] == "99.925%"
