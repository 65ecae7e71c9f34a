"""`afpbisect selftest` as a user runs it (issue 2): names the planted commit, cleans up."""
import pytest

from e2e_util import afp, dangling_images, docker_ok, leftovers

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not docker_ok(), reason="needs the Docker engine")]


def test_selftest_names_planted_commit_twice_and_leaves_nothing(tmp_path):
    """Run twice in one workdir, as a user would: the second passes too (it once stopped on
    the first one's state, which named another generated repository) and keeps the first
    one's reports in reports/previous/."""
    before = dangling_images()
    work = tmp_path / "work"
    for _ in range(2):
        code, res, err = afp("selftest", "--commits", "50", "--workdir", str(work), "--json")
        assert code == 0, err
        assert res["ok"] and res["named"] == res["planted"]
        assert f"planted {res['planted'][:10]}" in err and "PASS" in err
    previous = {p.suffix for p in (work / "reports" / "previous").glob("run-*")}
    assert previous == {".json", ".md", ".html", ".xml", ".bisect-replay"}   # .junit.xml
    assert leftovers(work, before) == {"containers": [], "networks": [], "dangling": [], "veths": [],
                                       "netns": []}
