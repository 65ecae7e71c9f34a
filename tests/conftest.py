import os
import subprocess
from pathlib import Path

import pytest

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}


def git(cwd, *args) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


@pytest.fixture
def small_repo(tmp_path) -> Path:
    """A linear repo: 10 commits touching src/a.c; tags suricata-1.0.0 (c0) and suricata-2.0.0 (c9),
    branch main; plus a side branch `side` off c3 (not an ancestor of main)."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "src").mkdir()
    for i in range(10):
        (r / "src" / "a.c").write_text("".join(f"int v{j} = {j};\n" for j in range(i + 5)))
        git(r, "add", "-A")
        git(r, "commit", "-q", "-m", f"c{i}")
        if i == 0:
            git(r, "tag", "suricata-1.0.0")
        if i == 3:
            git(r, "branch", "side")
    git(r, "tag", "-a", "suricata-2.0.0", "-m", "annotated like upstream")
    return r


def history_with_revert(repo: Path, culprit: str, commits: int, revert_after: int) -> str:
    """On main after the tip: `commits` ChangeLog commits with upstream's revert of `culprit`
    after the `revert_after`-th (as upstream reverted 923ad6af77); returns the revert's sha."""
    git(repo, "checkout", "-q", "main")
    for i in range(commits):
        (repo / "ChangeLog").write_text((repo / "ChangeLog").read_text() + f"\nafter {i}\n")
        git(repo, "commit", "-qam", f"changelog: after {i}")
        if i == revert_after:
            git(repo, "revert", "--no-edit", culprit)
    return git(repo, "log", "--format=%H", "-1", "--grep", "^Revert")
