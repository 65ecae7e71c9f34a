"""Issue 19: the README reads in a newcomer's order, its links resolve, and every link to
the ticket goes to the ticket itself."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_sections_in_a_newcomers_order():
    heads = re.findall(r"^## (.+)$", README, re.M)
    want = ["Quick start", "Time and disk", "What it found on the real history", "Commands"]
    assert [h for h in heads if h in want] == want
    quick = README[README.index("## Quick start"):README.index("## Time and disk")]
    order = ["git clone", "venv", "pip install .", "afpbisect doctor", "OISF/suricata", "afpbisect run"]
    assert [quick.index(w) for w in order] == sorted(quick.index(w) for w in order)
    assert "--user" not in quick and "GiB" in README and "cores" in README


def test_relative_links_resolve():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to missing {target}"


def test_every_ticket_link_is_the_ticket():
    files = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "afpbisect" / "scenarios").glob("*.toml")]
    for f in files:
        text = f.read_text()
        for label, target in re.findall(r"\[([^]]*(?:ticket|8667)[^]]*)\]\(([^)]+)\)", text, re.I):
            assert target == "https://redmine.openinfosecfoundation.org/issues/8667", (f.name, label, target)
    assert "https://redmine.openinfosecfoundation.org/issues/8667" in README


def test_the_lab_notebook_moved_with_a_link():
    assert "(docs/results/lab-notebook.md)" in README
    assert "48 min 20 s" in (ROOT / "docs" / "results" / "lab-notebook.md").read_text()
    assert "48 min 20 s" not in README


def _format_patterns() -> list:
    """Every string the package's code can print, as a regex: an f-string's fields (and a
    plain string's {} / %s fields) match any text, its literal parts only themselves. Only
    strings with a word of their own (2 letters or more outside the fields): `f"{a}: {b}"`
    would match any line."""
    import ast
    out = []
    for path in sorted((ROOT / "afpbisect").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                literal = [v.value if isinstance(v, ast.Constant) else None for v in node.values]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                literal = [x or None for x in re.split(r"(\{[^}]*\}|%[-0-9.]*[sdfr])", node.value)]
                literal = [None if x and re.fullmatch(r"\{[^}]*\}|%[-0-9.]*[sdfr]", x) else x for x in literal]
            else:
                continue
            if re.search(r"[A-Za-z]{2,}", " ".join(x for x in literal if x)):
                out.append(re.compile("".join(".+?" if x is None else re.escape(x) for x in literal)))
    return out


def _sample_output_lines() -> list:
    """The lines the README shows the tool printing: in its ``` blocks, each line after a
    `$ afpbisect ...` line that is not another command, an elision (...) or blank."""
    lines = []
    for block in re.findall(r"^```\n(.*?)^```", README, re.M | re.S):
        for line in block.splitlines():
            if line.startswith("$ ") or line.strip() in ("", "..."):
                continue
            lines.append(line)
    return lines


def test_every_sample_output_line_is_printed_by_the_code():
    """A README sample line is what a format string of the code prints, word for word
    outside its fields: rewording a message without the README (or the reverse) fails here."""
    lines = _sample_output_lines()
    assert len(lines) >= 8, lines
    patterns = _format_patterns()
    for line in lines:
        assert any(p.fullmatch(line) for p in patterns), f"README sample line printed by no format string: {line!r}"


def test_sample_report_paths_are_the_default_state_directory(monkeypatch):
    """The reports go to the state directory (dirs.py), not the cache directory; their names
    are the commands' stems (run-GOOD10-BAD10-SCENARIO, verify-TARGET10-PATCHES-SCENARIO)."""
    from afpbisect.core import dirs
    monkeypatch.setenv("HOME", "/home/u")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    state = str(dirs.state_dir()).replace("/home/u", "~")
    cache = str(dirs.cache_dir()).replace("/home/u", "~")
    reports = [l.split()[1] for l in _sample_output_lines() if l.startswith("report: ")]
    assert len(reports) == 2
    assert re.fullmatch(re.escape(state) + r"/reports/run-[0-9a-f]{10}-[0-9a-f]{10}-8667\.md", reports[0])
    assert re.fullmatch(re.escape(state) + r"/reports/verify-[0-9a-f]{10}-fixA-8667\.md", reports[1])
    assert f"`{state}`" in README and f"`{cache}`" in README
    assert "WORKDIR/reports" not in README and f"{cache}/reports" not in README
