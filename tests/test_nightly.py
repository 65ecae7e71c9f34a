"""The nightly job on the synthetic target (issue 7): main (with the culprit reverted, as
upstream did) is clean; a replay of a racy tag bisects and names the culprit, exit 1."""
import datetime as dt
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from afpbisect.core.percent import pct as _pct
from afpbisect.synthetic.target import make_synthetic_repo
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
    p.feed(re.sub(r'<section id="made">.*?</section>', "", html, flags=re.S))  # provenance apart
    circles = [a for t, a in p.tags if t == "circle"]
    rows = [a for t, a in p.tags if t == "tr"]
    assert any(t == "svg" for t, _ in p.tags)
    # issue 19: main's timeline holds main's night only; the replay of the racy tag is
    # listed apart (header + 1 row in each table)
    assert len(circles) == 1 and len(rows) == 4
    assert {c["class"] for c in circles} == {"night clean"}
    assert 'id="others"' in html and syn.planted[:7] in html   # the replay's culprit is named
    dates = re.findall(r'<text class="date"[^>]*>([^<]*)</text>', html)
    assert dates == [dt.datetime.now(dt.timezone.utc).strftime("%m-%d")]  # the point says which night it is


# --- issue 16: a hiccup is an error in every report, never a regression -------------------

import json
import os
import signal
import subprocess
import sys
import time

import docker

from dockerproxy import DockerProxy
from e2e_util import wait_for, workdir_filter


def _start_nightly(syn, work, out, env=None, *extra):
    args = [sys.executable, "-m", "afpbisect", "nightly", "--repo", str(syn.path), "--workdir", str(work),
            "--out", str(out), "--json", *SMALL, "--ref", syn.bad_ref, "--last-good", syn.good_ref, *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _junit_error(out):
    suite = ET.parse(out / "junit.xml").getroot()
    assert suite.get("errors") == "1" and suite.get("failures") == "0", ET.tostring(suite).decode()


def test_sigterm_mid_night_is_neither_clean_nor_regression(job, tmp_path):
    syn, _, _ = job
    work, out = tmp_path / "work", tmp_path / "out"
    proc = _start_nightly(syn, work, out)
    cycling = lambda: "cycles" in (work / "state" / "nightly.json").read_text() \
        if (work / "state" / "nightly.json").exists() else False
    try:
        assert wait_for(cycling, 900, proc), proc.communicate()[1] if proc.poll() is not None else "no cycle"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err             # 128 + SIGTERM: not 0, not 1
    assert "interrupted" in err and "Traceback" not in err, err
    _junit_error(out)
    report = json.loads((out / "nightly.json").read_text())
    assert report["status"] == "error" and report["exit_code"] == 143
    assert "interrupted" in (out / "nightly.md").read_text()
    assert not docker.from_env().containers.list(all=True, filters=workdir_filter(work))


def test_infrastructure_error_in_the_bisection_is_exit_3_with_reports(job, tmp_path):
    """The engine goes away for good once the bisection has started: exit 3, JUnit says error."""
    syn, _, _ = job
    work, out = tmp_path / "work", tmp_path / "out"
    proxy = DockerProxy(str(tmp_path / "docker.sock")).start()
    env = {"DOCKER_HOST": f"unix://{tmp_path}/docker.sock", "AFPBISECT_DOCKER_RETRY_SECONDS": "3"}
    proc = _start_nightly(syn, work, out, env)
    try:
        bisecting = lambda: any((work / "state").glob("run-*.json"))
        assert wait_for(bisecting, 900, proc), proc.communicate()[1] if proc.poll() is not None else "no bisection"
        proxy.stop()
        _, err = proc.communicate(timeout=600)
    finally:
        proxy.stop()
        if proc.poll() is None:
            proc.kill()
        for c in docker.from_env().containers.list(all=True, filters=workdir_filter(work)):
            c.remove(force=True)   # its own cleanup could not reach the engine
    assert proc.returncode == 3, err
    assert "Traceback" not in err, err
    _junit_error(out)
    report = json.loads((out / "nightly.json").read_text())
    assert report["status"] == "error" and report["error"], report


def test_last_good_not_an_ancestor_is_refused_before_any_build(job, tmp_path):
    syn, _, _ = job
    git(syn.path, "branch", "-f", "elsewhere", f"{syn.planted}^")
    git(syn.path, "checkout", "-q", "elsewhere")
    git(syn.path, "commit", "-q", "--allow-empty", "-m", "off the line")
    side = git(syn.path, "rev-parse", "HEAD")
    git(syn.path, "checkout", "-q", "main")
    code, _, err = afp("nightly", "--repo", str(syn.path), "--workdir", str(tmp_path / "w"),
                       "--out", str(tmp_path / "o"), "--ref", "main", "--last-good", side, *SMALL,
                       check_json=False)
    assert code == 2 and "not an ancestor" in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "w" / "products").exists()


def test_undecided_tip_check_is_an_undecided_night_not_an_error(job, tmp_path):
    """Issue 25: a tip check whose proof needs more clean cycles than --cycle-cap allows
    was recorded as an error night; it is "undecided" (exit 3), said so in every report,
    and the last good commit does not move."""
    syn, _, _ = job
    work, out = tmp_path / "work", tmp_path / "out"
    code, res, err = _nightly(syn, work, out, "--cycle-cap", "1")
    assert code == 3, err
    assert res["status"] == "undecided" and res["verdict"] == "undecided", res
    assert "needs" in res["error"] and res["last_good_after"] is None
    assert "undecided" in (out / "nightly.md").read_text()
