"""`python3 -m afpbisect.rerender` on bad input (issue 25): one line, exit 2, nothing written."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
RUN = RESULTS / "2026-12-01-run-v7.0.0..v8.0.3-scenario-8667.json"


def rerender(*args):
    proc = subprocess.run([sys.executable, "-m", "afpbisect.rerender", *map(str, args)],
                          capture_output=True, text=True)
    return proc.returncode, proc.stderr


def _run_result() -> dict:
    r = json.loads(RUN.read_text())
    r.pop("reports", None)
    return r


def _cases(tmp_path) -> dict:
    """name -> (file, what the error line must say)."""
    d = tmp_path / "in"
    d.mkdir()
    broken = _run_result()
    broken["steps"] = "many"
    no_result = _run_result()
    del no_result["result"]
    files = {
        "missing": (d / "nope.json", "no such file"),
        "directory": (d, "not a regular file"),
        "binary": (d / "bin.json", b"\x00\xff\xfe\x89PNG", "not a JSON result"),
        "text": (d / "t.json", b"hello", "not a JSON result"),
        "a list": (d / "l.json", b"[1, 2]", "not a saved run or verify-patch result"),
        "another command": (d / "n.json", json.dumps({"command": "nightly"}).encode(),
                            "a 'nightly' result; only run, verify-patch re-render"),
        "steps not a list": (d / "s.json", json.dumps(broken).encode(), "does not have the shape"),
        "no result": (d / "r.json", json.dumps(no_result).encode(), "does not have the shape"),
    }
    out = {}
    for name, spec in files.items():
        if len(spec) == 3:
            spec[0].write_bytes(spec[1])
            spec = (spec[0], spec[2])
        out[name] = spec
    return out


CASES = ["missing", "directory", "binary", "text", "a list", "another command", "steps not a list", "no result"]


@pytest.mark.parametrize("case", CASES)
def test_bad_result_file_is_one_line_exit_2_and_writes_nothing(tmp_path, case):
    path, expected = _cases(tmp_path)[case]
    out = tmp_path / "out"
    code, err = rerender(path, "--out", out)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert expected in lines[0] and str(path) in lines[0], lines[0]
    assert not out.exists(), "something was written for a bad input"


def test_bad_arguments_are_one_line_exit_2(tmp_path):
    code, err = rerender(RUN, "--out", tmp_path / "o", "--redact", "nothing-to-split")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "--redact" in lines[0], err


def test_a_good_result_still_renders(tmp_path):
    src = tmp_path / "r.json"
    src.write_text(json.dumps(_run_result()))
    code, err = rerender(src, "--out", tmp_path / "o")
    assert code == 0, err
    assert sorted(p.suffix for p in (tmp_path / "o").iterdir()) == [".html", ".json", ".md", ".xml"]
