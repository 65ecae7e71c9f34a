"""bench/strong_user.py's table, from the committed measurements (issue 27): the figures
docs/results/2026-12-04-strong-user.md states come from these JSON files."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "docs" / "results" / "bench"


def _bench():
    spec = importlib.util.spec_from_file_location("strong_user", ROOT / "bench" / "strong_user.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_doc_states_the_tables_of_its_json():
    su = _bench()
    run1 = json.loads((BENCH / "2026-12-04-strong-user-run1.json").read_text())["rows"]
    run2 = json.loads((BENCH / "2026-12-04-strong-user-run2-quiet.json").read_text())["rows"]
    rows = {r["method"]: su.recount(r) for r in run1 if not r.get("partial")}
    # a step's `cycles` re-counts a commit's earlier ones: afpbisect ran 56, not 71
    assert rows["afpbisect"]["cycles"] == 56
    doc = (ROOT / "docs" / "results" / "2026-12-04-strong-user.md").read_text()
    assert f"{rows['afpbisect']['wall_seconds'] / 60:.1f} min" in doc
    assert f"{run2[0]['wall_seconds'] / 60:.1f} min" in doc
    ratio = run2[0]["wall_seconds"] / rows["afpbisect"]["wall_seconds"]
    assert f"{ratio:.2f}x" in doc and ratio < 1.0   # slower than the path user: said so
    assert "| path | `923ad6af77` | 26.5 min |" in su.table([run2[0]])
