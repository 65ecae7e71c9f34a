import git as gitpy
import pytest

from afpbisect.core.errors import UsageError
from afpbisect.core.refs import commit_range, resolve, split_range
from conftest import git


def test_v_tag_falls_back_to_suricata_tag(small_repo):
    r = resolve(gitpy.Repo(small_repo), "v1.0.0")
    assert r.name == "suricata-1.0.0"
    assert r.sha == git(small_repo, "rev-parse", "suricata-1.0.0")
    assert "using suricata-1.0.0" in r.note


def test_annotated_tag_resolves_to_commit(small_repo):
    r = resolve(gitpy.Repo(small_repo), "v2.0.0")
    assert r.sha == git(small_repo, "rev-parse", "main")


def test_master_falls_back_to_main(small_repo):
    r = resolve(gitpy.Repo(small_repo), "master")
    assert (r.name, r.note) == ("main", "master does not exist; using main")


def test_unknown_ref_is_usage_error(small_repo):
    with pytest.raises(UsageError, match="unknown ref 'v9.9.9'.*suricata-9.9.9"):
        resolve(gitpy.Repo(small_repo), "v9.9.9")


@pytest.mark.parametrize("text", ["v1", "a...b", "..b", "a..", "a..b..c"])
def test_bad_range_syntax(text):
    with pytest.raises(UsageError):
        split_range(text)


def test_range_lists_oldest_first_with_good_endpoint(small_repo):
    rng = commit_range(gitpy.Repo(small_repo), "v1.0.0", "v2.0.0")
    subjects = [gitpy.Repo(small_repo).commit(c).summary for c in rng.commits]
    assert subjects == [f"c{i}" for i in range(10)]
    assert rng.position(rng.bad.sha) == 9 and rng.position(rng.good.sha) == 0


def test_good_not_ancestor(small_repo):
    with pytest.raises(UsageError, match="not an ancestor"):
        commit_range(gitpy.Repo(small_repo), "v2.0.0", "v1.0.0")
    with pytest.raises(UsageError, match="not an ancestor"):
        commit_range(gitpy.Repo(small_repo), "main~2", "side")


def test_empty_range(small_repo):
    with pytest.raises(UsageError, match="empty range"):
        commit_range(gitpy.Repo(small_repo), "v2.0.0", "main")
