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
