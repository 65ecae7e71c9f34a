import subprocess

import pytest

from afpbisect import PATCHES_DIR
from afpbisect.core.errors import UsageError
from afpbisect.core.patch import load_patch
from afpbisect.machinery.worktree import BuildTree, PatchDoesNotApply, open_clone
from conftest import git


def _patch(tmp_path, old_line, new_line, start=3):
    p = tmp_path / "p.patch"
    p.write_text(f"header text\n\n--- a/src/a.c\n+++ b/src/a.c\n@@ -{start},3 +{start},3 @@\n"
                 f" int v{start - 1} = {start - 1};\n-{old_line}\n+{new_line}\n int v{start + 1} = {start + 1};\n")
    return p


def test_load_patch_rejects_missing_and_non_patch(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_patch(tmp_path / "nope.patch")
    (tmp_path / "x.patch").write_text("just words\n")
    with pytest.raises(UsageError, match="not a patch"):
        load_patch(tmp_path / "x.patch")


def test_real_patches_parse():
    p = load_patch(PATCHES_DIR / "widener.patch")
    assert p.files == ("src/source-af-packet.c",) and len(p.hunks) == 1


def test_clone_is_separate_and_tree_applies_patch(small_repo, tmp_path):
    repo = open_clone(tmp_path / "work", str(small_repo))
    assert repo.bare and repo.git_dir != str(small_repo / ".git")
    tree = BuildTree(repo, tmp_path / "work" / "trees" / "t")
    sha = git(small_repo, "rev-parse", "main")
    tree.checkout(sha, [load_patch(_patch(tmp_path, "int v3 = 3;", "int v3 = 33;", start=3))])
    assert "int v3 = 33;" in (tree.path / "src" / "a.c").read_text()
    # the user's checkout is untouched
    assert git(small_repo, "status", "--porcelain") == ""


def test_patch_that_does_not_apply_names_file_and_hunk(small_repo, tmp_path):
    repo = open_clone(tmp_path / "work", str(small_repo))
    tree = BuildTree(repo, tmp_path / "work" / "trees" / "t")
    bad = load_patch(_patch(tmp_path, "int v3 = 999;", "int v3 = 4;", start=3))
    with pytest.raises(PatchDoesNotApply, match=r"src/a.c, hunk #1 \(at line 3\)"):
        tree.checkout(git(small_repo, "rev-parse", "main"), [bad])
    # tree left pristine
    assert "int v3 = 3;" in (tree.path / "src" / "a.c").read_text()


def test_repo_not_git(tmp_path):
    with pytest.raises(UsageError, match="not a git repository"):
        open_clone(tmp_path / "work", str(tmp_path))


def test_update_says_which_refs_moved(small_repo, tmp_path):
    open_clone(tmp_path / "work", str(small_repo))
    said = []
    open_clone(tmp_path / "work", str(small_repo), update=True, say=said.append)
    assert said == [f"updated from {small_repo.resolve()}: no ref changed"]
    (small_repo / "src" / "b.c").write_text("int b;\n")
    git(small_repo, "add", "-A")
    git(small_repo, "commit", "-q", "-m", "new upstream commit")
    said.clear()
    repo = open_clone(tmp_path / "work", str(small_repo), update=True, say=said.append)
    assert said == [f"updated from {small_repo.resolve()}: 1 ref(s) changed (main)"]
    assert repo.git.rev_parse("main") == git(small_repo, "rev-parse", "main")


def test_repo_spellings_are_one_source(small_repo, monkeypatch):
    """A trailing slash or a relative path must not make "a different run" (issue 17)."""
    from afpbisect.machinery.worktree import normalise_source
    monkeypatch.chdir(small_repo.parent)
    same = {normalise_source(s) for s in ("repo", "./repo/", str(small_repo) + "/", str(small_repo))}
    assert same == {str(small_repo.resolve())}
    assert normalise_source("https://example.org/x.git/") == "https://example.org/x.git"
    # a .git suffix may name another repository on some hosts: kept as typed
    assert normalise_source("https://example.org/x") == "https://example.org/x"
    assert normalise_source("git@example.org:x/") == "git@example.org:x"
    with pytest.raises(UsageError, match="no such directory"):
        normalise_source("./nonexistent/")


def _diff_of(repo, change, *diff_args) -> bytes:
    """The patch git writes for `change` made in the user's repo, which is then reset."""
    change(repo)
    git(repo, "add", "-A")
    out = subprocess.run(["git", "-C", str(repo), "diff", "--cached", *diff_args],
                         check=True, capture_output=True).stdout
    git(repo, "reset", "-q", "--hard")
    return out


def _latin1_comment(repo):
    with open(repo / "src" / "a.c", "ab") as f:
        f.write(b"/* caf\xe9: Latin-1, not UTF-8 */\n")


def _binary_file(repo):
    (repo / "src" / "blob.bin").write_bytes(bytes(range(256)) * 2)


@pytest.mark.parametrize("change,args,path", [
    (_latin1_comment, (), "src/a.c"),
    (_binary_file, ("--binary",), "src/blob.bin"),
])
def test_non_utf8_and_binary_patches_load_and_apply(small_repo, tmp_path, change, args, path):
    """Valid patches git itself writes were refused as "not a patch" (issue 17)."""
    sha = git(small_repo, "rev-parse", "main")
    patch_file = tmp_path / "p.patch"
    patch_file.write_bytes(_diff_of(small_repo, change, *args))
    p = load_patch(patch_file)
    assert p.files == (path,)
    repo = open_clone(tmp_path / "work", str(small_repo))
    tree = BuildTree(repo, tmp_path / "work" / "trees" / "t")
    tree.checkout(sha, [p])
    expected = tmp_path / "expected"
    git(small_repo, "worktree", "add", "-q", "--detach", str(expected), sha)
    change(expected)
    assert (tree.path / path).read_bytes() == (expected / path).read_bytes()
