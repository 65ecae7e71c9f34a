"""bench/naive_vs_afpbisect.py reads a real run's report: the settings it repeats and the
length of git bisect's own walk (the naive side of issue 18's ratio)."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import naive_vs_afpbisect as naive  # noqa: E402

REPORT = ROOT / "docs/results/2026-12-01-run-v7.0.0..v8.0.3-lazy-weighted.json"


def test_settings_and_walk_of_the_real_run():
    rep = json.loads(REPORT.read_text())
    s = naive.settings_of(rep)   # it once named a function it did not import
    assert s.pairs == 6 and s.env["SURICATA_RING_SETUP_DELAY_US"] == "500000"
    # git bisect's walk to 923ad6af77 in 3070 commits: both endpoints + 12 midpoints,
    # whatever fewer questions afpbisect asked
    assert naive.naive_steps(rep) == 14
    assert len([st for st in rep["steps"] if st["role"] == "search"]) < 12
