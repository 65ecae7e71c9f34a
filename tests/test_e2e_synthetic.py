"""End to end on the real Docker engine: the synthetic target with a planted bad commit
goes through exactly the code path a Suricata run takes (issue 2)."""
import json
import subprocess
from pathlib import Path

import pytest

from afpbisect.synthetic.target import make_synthetic_repo
from conftest import git, history_with_revert
from e2e_util import SMALL, afp, dangling_images, docker_ok, leftovers

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not docker_ok(), reason="needs the Docker engine")]


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    # Two planted faults on the search's path exercise SKIP (issue 16): seed 7 plants the
    # race at 50; the commits touching its file (the prior's suspects, issue 18) are 20, 23,
    # 30, 39, 50 and the faults' own 51, 52, so the search probes 34, 33, 49, 51, 50: 34
    # exits before start, 51 (racy side) starts and forwards nothing. 20 does not compile.
    syn = make_synthetic_repo(base / "target", n_commits=60, broken_at=(20,), exits_at=(34,),
                              silent_at=(51,), seed=7)
    assert syn.planted_index == 50
    return syn, base / "work", dangling_images()


def _run(syn, work, *extra):
    return afp("run", f"{syn.good_ref}..{syn.bad_ref}", "--repo", str(syn.path), "--workdir", str(work),
               "--json", *SMALL, *extra)


def test_run_names_planted_commit(target):
    syn, work, _ = target
    code, res, err = _run(syn, work)
    assert code == 0, err
    assert res["result"]["first_bad"] == syn.planted, err
    assert res["result"]["candidates"] == [syn.planted]
    assert res["result"]["confidence"] >= 0.999
    roles = {s["role"] for s in res["steps"]}
    assert res["steps"] and all(s["verdict"] in ("good", "bad", "skip") for s in res["steps"]), roles
    # The planted faults are SKIP with the reason, after a bounded number of cycles, and the
    # run still names the culprit (before issue 16: 44 aborted the run, 51 was GOOD).
    skips = {s["commit"]: s["reason"] for s in res["skips"]}
    assert "exited before start (exit 1)" in skips[syn.exits[0]], skips
    assert "forwarded nothing after start on SFE_0_RX" in skips[syn.silent[0]], skips
    for fault in (*syn.exits, *syn.silent):
        step = next(s for s in res["steps"] if s["commit"] == fault)
        assert step["verdict"] == "skip" and step["cycles"] == 3 and len(step["unhealthy"]) == 3
    # Forwarding health per step, in the JSON and the Markdown.
    healthy = [s for s in res["steps"] if s["verdict"] == "good"]
    assert healthy and all(row["forwarded_min"] > 0 for s in healthy for row in s["pairs"].values())
    assert all(set(s["pairs"]) == {"SFE_0_RX", "SFE_1_RX"} for s in healthy)
    # Reports exist and name the commit; per-step logs exist.
    md = Path(res["reports"]["markdown"]).read_text()
    assert syn.planted[:10] in md
    for s in res["steps"]:
        if s["build_log"]:
            assert Path(s["build_log"]).exists()
    # Where each fresh build's time went, and how many C units it really compiled.
    fresh = [s for s in res["steps"] if s["build_ok"] and not s["build_cached"] and s["build_seconds"]]
    assert fresh
    for s in fresh:
        assert {"make", "install"} <= set(s["build_steps"]), s["build_steps"]
        assert sum(v for k, v in s["build_steps"].items() if k != "cargo") <= s["build_seconds"] + 1
        assert set(s["build_ccache"]) == {"hits", "misses"}, s
    assert max(s["build_ccache"]["misses"] for s in fresh) >= 1   # a first build compiles it all
    # ccache's depend mode only in a tree compiled before whose config headers are unchanged
    # since (build.sh.j2): not for the first build, then for later steps (this target has none).
    depend = ["afpbisect: ccache depend mode" in Path(s["build_log"]).read_text() for s in fresh]
    assert not depend[0] and any(depend[1:]), depend
    assert "(C " in md
    assert "## Forwarding health per step" in md and "SFE_0_RX" in md
    assert "forwarded nothing after start" in md and "exited before start" in md


def test_git_bisect_agrees(target, tmp_path):
    """Our decisions replayed through `git bisect replay` give git's own first bad commit."""
    syn, work, _ = target
    replay = next((work / "reports").glob("run-*.bisect-replay"))
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(syn.path), str(clone)], check=True)
    out = subprocess.run(["git", "-C", str(clone), "bisect", "replay", str(replay)],
                         capture_output=True, text=True)
    assert f"{syn.planted} is the first bad commit" in out.stdout + out.stderr, out.stdout + out.stderr


def test_resume_redoes_nothing(target):
    syn, work, _ = target
    state = next((work / "state").glob("run-*.json"))
    before = json.loads(state.read_text())["data"]
    code, res, err = _run(syn, work)
    assert code == 0 and res["result"]["first_bad"] == syn.planted
    after = json.loads(state.read_text())["data"]
    assert after["cycles"] == before["cycles"], "a finished step was run again"
    assert "resuming" in err


def test_verify_fixA_clears_and_baseline_reproduces(target):
    syn, work, _ = target
    code, res, err = afp("verify-patch", str(syn.fixA_patch), "--target", syn.bad_ref, "--repo",
                         str(syn.path), "--workdir", str(work), "--json", *SMALL)
    assert code == 0, err
    assert res["verdict"] == "cleared"
    assert res["baseline"]["hits"] > 0          # without the fix the race is there
    assert res["patched"]["hits"] == 0
    assert res["confidence"] >= 0.999


def test_verify_useless_patch_says_present(target, tmp_path):
    syn, work, _ = target
    clone = tmp_path / "c"
    subprocess.run(["git", "clone", "-q", str(syn.path), str(clone)], check=True)
    readme = clone / "ChangeLog"   # not part of the build: the race must still be there
    readme.write_text(readme.read_text() + "\nnot a fix\n")
    patch = tmp_path / "nofix.patch"
    patch.write_text(git(clone, "diff") + "\n")
    code, res, err = afp("verify-patch", str(patch), "--target", syn.bad_ref, "--repo", str(syn.path),
                         "--workdir", str(work), "--json", *SMALL)
    assert code == 1, err
    assert res["verdict"] == "present" and res["patched"]["hits"] > 0


def test_nothing_left_behind(target):
    _, work, dangling_before = target
    assert leftovers(work, dangling_before) == {"containers": [], "networks": [], "dangling": [],
                                                "veths": [], "netns": []}


def test_confirm_revert_clears_the_race(target):
    """--confirm-revert: the culprit reverted on BAD, the race must be gone (search resumed)."""
    syn, work, _ = target
    code, res, err = _run(syn, work, "--confirm-revert")
    assert code == 0, err
    assert res["result"]["first_bad"] == syn.planted
    assert res["revert_check"]["verdict"] == "cleared", res["revert_check"]
    assert res["revert_check"]["baseline"]["hits"] > 0


def test_find_fix_names_the_revert(tmp_path):
    syn = make_synthetic_repo(tmp_path / "target", n_commits=50, seed=5)
    fix = history_with_revert(syn.path, syn.planted, 6, 2)
    code, res, err = afp("run", "--find-fix", f"{syn.bad_ref}..main", "--repo", str(syn.path),
                         "--workdir", str(tmp_path / "work"), "--json", *SMALL)
    assert code == 0, err
    assert res["mode"] == "find-fix" and res["result"]["first_fixed"] == fix
    # git accepts the find-fix replay (terms racy/fixed) and agrees on the first fixed commit
    replay = next((tmp_path / "work" / "reports").glob("run-*.bisect-replay"))
    out = subprocess.run(["git", "-C", str(syn.path), "bisect", "replay", str(replay)],
                         capture_output=True, text=True)
    git(syn.path, "bisect", "reset")
    assert f"{fix} is the first fixed commit" in out.stdout + out.stderr, out.stdout + out.stderr


def test_a_pruned_image_is_rebuilt_not_a_permanent_failure(target):
    """Products are cached, images can be pruned under them: a cache hit rebuilds the image
    (issue 16). The layers stay under a second tag, so the rebuild is quick."""
    import docker
    syn, work, dangling_before = target
    if not list((work / "state").glob("run-*.json")):   # run alone (-k): make the products first
        assert _run(syn, work)[0] == 0
    state = json.loads(next((work / "state").glob("run-*.json")).read_text())["data"]
    image = next(b["image"] for b in state["builds"].values() if b.get("ok"))
    client = docker.from_env()
    client.images.get(image).tag("afpbisect-test/keep", "layers")
    try:
        client.images.remove(image)   # the tag only: the layers stay under the second tag
        code, res, err = _run(syn, work, "--restart")
        assert code == 0, err
        assert res["result"]["first_bad"] == syn.planted
        assert all(s["build_cached"] for s in res["steps"] if s["build_ok"]), "products were rebuilt"
        client.images.get(image)
    finally:
        client.images.remove("afpbisect-test/keep:layers")
    assert leftovers(work, dangling_before)["containers"] == []


def test_a_proof_over_the_cycle_cap_is_undecided_exit_3(target):
    """Issue 25: a check that needs more clean cycles than --cycle-cap ends undecided
    (exit 3, never a verdict's exit code) and says how many it needs; nothing is left."""
    syn, work, _ = target
    code, res, err = afp("verify-patch", str(syn.fixA_patch), "--target", syn.bad_ref, "--repo",
                         str(syn.path), "--workdir", str(work), "--json", "--confidence", "0.9999",
                         "--cycle-cap", "5", *SMALL)
    assert code == 3, err
    assert res["verdict"] == "undecided" and res["baseline"]["hits"] > 0
    assert "more clean cycles" in res["summary"] and "--cycle-cap" in res["summary"]
