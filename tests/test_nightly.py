"""The nightly job on the synthetic target (issue 7): main (with the culprit reverted, as
upstream did) is clean; a replay of a racy tag bisects and names the culprit, exit 1."""
import datetime as dt
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from afpbisect.report import _pct
from afpbisect.synthetic import make_synthetic_repo
from conftest import git
from e2e_util import SMALL, afp, docker_ok

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not docker_ok(), reason="needs the Docker engine")]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    base = tmp_path_factory.mktemp("nightly")
    syn = make_synthetic_repo(base / "target", n_commits=50, seed=3)
    # Upstream reverted the culprit on main (ticket 8667): do the same here.
    git(syn.path, "checkout", "-q", "main")
    git(syn.path, "revert", "--no-edit", syn.planted)
    return syn, base / "work", base / "out"


def _nightly(syn, work, out, *extra):
    return afp("nightly", "--repo", str(syn.path), "--workdir", str(work), "--out", str(out), "--json",
               *SMALL, *extra)


def test_main_is_clean_and_becomes_last_good(job):
    syn, work, out = job
    code, res, err = _nightly(syn, work, out, "--ref", "master")   # users still say master
    assert code == 0, err
    assert res["status"] == "clean" and res["ref"]["name"] == "main"
    assert res["last_good_after"] == git(syn.path, "rev-parse", "main")
    # "clean" carries what it is worth: 1 - (1 - p)^cycles for the assumed rate
    assert res["hits"] == 0
    assert res["clean_cycles"] == res["cycles"]            # no infrastructure failure here
    assert res["clean_confidence"] == pytest.approx(1 - (1 - res["p_assumed"]) ** res["clean_cycles"])
    assert res["clean_confidence"] >= 0.999
    assert f"clean at {_pct(res['clean_confidence'])} confidence" in (out / "nightly.md").read_text()
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.get("failures") == "0" and suite.get("errors") == "0"


def test_replay_of_racy_tag_bisects_and_names_culprit(job):
    syn, work, out = job
    parent = git(syn.path, "rev-parse", f"{syn.planted}^")
    code, res, err = _nightly(syn, work, out, "--ref", syn.bad_ref, "--last-good", parent)
    assert code == 1, err
    assert res["status"] == "regression"
    assert res["bisection"]["first_bad"] == syn.planted
    suite = ET.parse(out / "junit.xml").getroot()
    failing = [tc for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert any(syn.planted[:10] in tc.find("failure").get("message") for tc in failing), \
        ET.tostring(suite).decode()


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_history_html_renders_one_point_per_night(job):
    syn, work, out = job
    html = (out / "history.html").read_text()
    p = _Collect()
    p.feed(html)
    circles = [a for t, a in p.tags if t == "circle"]
    rows = [a for t, a in p.tags if t == "tr"]
    assert any(t == "svg" for t, _ in p.tags)
    assert len(circles) == 2 and len(rows) == 3           # two nights (+ header row)
    assert {c["class"] for c in circles} == {"night clean", "night regression"}
    assert syn.planted[:7] in html                         # the bisection's culprit is drawn
    dates = re.findall(r'<text class="date"[^>]*>([^<]*)</text>', html)
    assert dates == [dt.datetime.now(dt.timezone.utc).strftime("%m-%d")] * 2  # each point says which night it is
