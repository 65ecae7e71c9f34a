"""The synthetic target (afpbisect/synthetic/target.py): repo shape, the planted commit, the fix
patches, and (as root) the race itself, natively in a private network namespace."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from afpbisect import PATCHES_DIR
from afpbisect.core.errors import UsageError
from afpbisect.synthetic.plant import apply_fix_a, apply_fix_b, barrier_before_ring
from afpbisect.synthetic.plant import AFP_SOURCE, PLANTED_TITLE
from afpbisect.synthetic.target import BAD_TAG, GOOD_TAG, main, make_synthetic_repo

WIDENER = PATCHES_DIR / "widener.patch"
HARNESS = Path(__file__).resolve().parent / "synthetic_netns.py"
N, BAD_AT, BROKEN = 60, 23, (11, 40, 41)


def git(repo, *args, check=True) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=check, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_synthetic_repo(tmp_path_factory.mktemp("syn") / "target", n_commits=N,
                               bad_at=BAD_AT, broken_at=BROKEN, seed=5)


def _export(repo, sha, dest: Path) -> Path:
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(repo), "archive", sha], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


# --- repo shape -------------------------------------------------------------------------

def test_shape_tags_and_branch(syn):
    assert len(syn.commits) == N
    assert git(syn.path, "rev-list", "--reverse", "HEAD").split() == syn.commits
    assert int(git(syn.path, "rev-list", "--count", f"{GOOD_TAG}..{BAD_TAG}")) == N - 1
    assert (syn.good_ref, syn.bad_ref) == (GOOD_TAG, BAD_TAG)
    assert git(syn.path, "rev-parse", f"{GOOD_TAG}^{{commit}}") == syn.commits[0]
    assert git(syn.path, "rev-parse", f"{BAD_TAG}^{{commit}}") == syn.commits[-1]
    assert git(syn.path, "cat-file", "-t", BAD_TAG) == "tag"          # annotated, like upstream
    assert git(syn.path, "rev-parse", "main") == syn.commits[-1]
    assert git(syn.path, "symbolic-ref", "HEAD") == "refs/heads/main"
    assert git(syn.path, "status", "--porcelain") == ""
    assert git(syn.path, "rev-list", "--merges", "HEAD") == ""         # linear
    assert syn.planted == syn.commits[BAD_AT] and syn.planted_index == BAD_AT
    assert syn.broken == [syn.commits[i] for i in BROKEN]
    # Build contract files, executable where they must be.
    tree = git(syn.path, "ls-tree", "-r", "HEAD")
    assert "100755 blob" in next(l for l in tree.splitlines() if l.endswith("\tconfigure"))
    assert "100755 blob" in next(l for l in tree.splitlines() if l.endswith("\tautogen.sh"))
    assert git(syn.path, "show", f"{BAD_TAG}:src/version.h").count('"2.0.0"') == 1


def test_planted_commit_is_the_only_barrier_change(syn):
    order = [barrier_before_ring(git(syn.path, "show", f"{c}:{AFP_SOURCE}")) for c in syn.commits]
    assert order == [False] * BAD_AT + [True] * (N - BAD_AT)
    assert git(syn.path, "log", "-1", "--format=%s", syn.planted) == PLANTED_TITLE
    assert git(syn.path, "diff-tree", "--no-commit-id", "--name-only", "-r", syn.planted) == AFP_SOURCE
    # The source file changes in other commits too (comments), so a path filter alone
    # does not give the answer away.
    touching = git(syn.path, "log", "--format=%H", "--", AFP_SOURCE).split()
    assert len(touching) > 2


def test_widener_and_fixes_apply_to_tip(syn, tmp_path):
    wt = tmp_path / "wt"
    git(syn.path, "worktree", "add", "-q", "--detach", str(wt), BAD_TAG)
    try:
        for patch in (syn.fixA_patch, syn.fixB_patch):
            assert Path(patch).is_file()
        git(wt, "apply", "--check", str(WIDENER))
        git(wt, "apply", str(WIDENER))
        git(wt, "apply", "--check", str(syn.fixA_patch))
        git(wt, "apply", "--check", str(syn.fixB_patch))
        git(wt, "apply", str(syn.fixA_patch))
        git(wt, "apply", "--check", str(syn.fixB_patch))     # and together
        src = (wt / AFP_SOURCE).read_text()
        assert "SURICATA_RING_SETUP_DELAY_US" in src and "!= AFP_STATE_UP" in src
        # The widener also applies at the good end and at the planted commit.
        for ref in (GOOD_TAG, syn.planted):
            git(wt, "checkout", "-q", "-f", ref)
            git(wt, "apply", "--check", str(WIDENER))
    finally:
        git(syn.path, "worktree", "remove", "--force", str(wt))


def test_fix_transforms_restore_the_invariant(syn):
    tip = git(syn.path, "show", f"{BAD_TAG}:{AFP_SOURCE}")
    assert barrier_before_ring(tip)
    assert not barrier_before_ring(apply_fix_b(tip))
    assert barrier_before_ring(apply_fix_a(tip))      # fix A keeps the parallel start


def test_broken_commits_do_not_compile_and_the_next_one_does(syn, tmp_path):
    if shutil.which("gcc") is None:
        pytest.skip("gcc missing")

    def compiles(idx: int) -> bool:
        d = _export(syn.path, syn.commits[idx], tmp_path / f"c{idx}")
        r = subprocess.run("gcc -fsyntax-only -D_GNU_SOURCE -Isrc src/*.c", shell=True, cwd=d,
                           capture_output=True, text=True)
        return r.returncode == 0

    assert compiles(0) and compiles(N - 1)
    for i in BROKEN:
        assert not compiles(i), i
    assert compiles(12) and compiles(42)  # the commit after a broken run fixes it


def test_deterministic(tmp_path):
    a = make_synthetic_repo(tmp_path / "a", n_commits=12, broken_at=(3,), seed=9)
    b = make_synthetic_repo(tmp_path / "b", n_commits=12, broken_at=(3,), seed=9)
    c = make_synthetic_repo(tmp_path / "c", n_commits=12, broken_at=(3,), seed=10)
    assert a.commits == b.commits and a.planted == b.planted
    assert a.fixA_patch.read_text() == b.fixA_patch.read_text()
    assert a.commits != c.commits
    assert 1 <= a.planted_index <= 11


@pytest.mark.parametrize("kw", [dict(bad_at=0), dict(bad_at=12), dict(broken_at=(0,)),
                                dict(broken_at=(11,)), dict(n_commits=2)])
def test_rejects_bad_arguments(tmp_path, kw):
    with pytest.raises(UsageError):
        make_synthetic_repo(tmp_path / "x", **{"n_commits": 12, **kw})


def test_rejects_non_empty_destination(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    with pytest.raises(UsageError):
        make_synthetic_repo(tmp_path / "x", n_commits=5)


def test_cli_prints_planted_sha(tmp_path, capsys):
    assert main([str(tmp_path / "r"), "--commits", "8", "--bad-at", "5"]) == 0
    sha = capsys.readouterr().out.strip()
    assert sha == git(tmp_path / "r", "rev-list", "--reverse", "HEAD").split()[5]


# --- the race, natively ------------------------------------------------------------------

def _build(syn, ref, dest: Path, patches) -> Path:
    """The build contract of docs/ARCHITECTURE.md, natively."""
    src = _export(syn.path, git(syn.path, "rev-parse", f"{ref}^{{commit}}"), dest / "src")
    for p in patches:
        subprocess.run(["git", "apply", str(p)], cwd=src, check=True, capture_output=True)
    for cmd in (["./autogen.sh"], ["./configure", "--prefix=/usr/local", "--disable-gccmarch-native"],
                ["make", "-j2"], ["make", "install", f"DESTDIR={dest / 'out'}"]):
        r = subprocess.run(cmd, cwd=src, capture_output=True, text=True)
        assert r.returncode == 0, f"{cmd}: {r.stdout}\n{r.stderr}"
    binary = dest / "out" / "usr" / "local" / "bin" / "suricata"
    assert os.access(binary, os.X_OK)
    return binary


def _cycles(binary: Path, cycles: int, delay_us: int = 100_000) -> dict:
    """Cold starts in an anonymous network namespace (unshare --net): it disappears with
    its last process, so neither veths nor a namespace can outlive the test."""
    proc = subprocess.Popen(["unshare", "--net", sys.executable, str(HARNESS), "--binary", str(binary),
                             "--pairs", "2", "--threads", "2", "--delay-us", str(delay_us),
                             "--cycles", str(cycles), "--traffic-s", "0.5", "--start-timeout", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    return json.loads(out)


def _race_tools_missing():
    if os.geteuid() != 0:
        return "needs root (veths, AF_PACKET sockets)"
    for tool in ("ip", "unshare", "gcc", "make"):
        if shutil.which(tool) is None:
            return f"needs `{tool}`"
    return None


def test_race_bad_hits_good_and_fixes_do_not(syn, tmp_path):
    why = _race_tools_missing()
    if why:
        pytest.skip(why)
    bad = _build(syn, BAD_TAG, tmp_path / "bad", [WIDENER])
    good = _build(syn, GOOD_TAG, tmp_path / "good", [WIDENER])
    fix_a = _build(syn, BAD_TAG, tmp_path / "fixa", [WIDENER, syn.fixA_patch])
    fix_b = _build(syn, BAD_TAG, tmp_path / "fixb", [WIDENER, syn.fixB_patch])

    r = _cycles(bad, 2)
    for c in r["cycles"]:
        assert c["started"] and c["rc"] == 0, c
        assert c["signature"], c
        assert all("sending packet failed on socket 0: Socket operation on non-socket" in l
                   for l in c["signature"])
        assert {l.split()[2] for l in c["signature"]} <= {"SFE_0_RX:", "SFE_1_RX:"}
        assert c["signature_before_start"]

    for binary in (good, fix_a, fix_b):
        r = _cycles(binary, 2)
        for c in r["cycles"]:
            assert c["started"] and c["rc"] == 0, c
            assert c["signature"] == [], (binary, c)
            assert c["forwarded_after_start"] > 0, c          # forwarding works
            assert c["devices"]["SFE_0_TX"]["packets"] > 0, c
            assert c["stop_s"] < 2, c
