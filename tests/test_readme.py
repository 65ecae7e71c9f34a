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
