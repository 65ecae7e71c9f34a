"""patches/*.patch against the real history: widener first, then fix A or fix B, checked with
`git apply` on every distinct version of src/source-af-packet.c in suricata-7.0.0..suricata-8.0.3
and on the branch tips.  Fast (git show + git apply in a temp dir), no Docker; skipped without the
Suricata mirror."""
import os
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from afpbisect import PATCHES_DIR

MIRROR = Path(os.environ.get("AFPBISECT_SURICATA_MIRROR", "/work/.mirror/OISF+suricata/repo"))
pytestmark = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no Suricata mirror at {MIRROR}")
FILE = "src/source-af-packet.c"
CULPRIT = "923ad6af77"


def g(*args) -> str:
    return subprocess.run(["git", "--git-dir", str(MIRROR), *args], capture_output=True,
                          text=True, check=True).stdout


@lru_cache(maxsize=None)
def versions() -> list[str]:
    """One commit per distinct version of FILE over the range (7.0.0 itself included)."""
    changed = g("rev-list", "--reverse", "suricata-7.0.0..suricata-8.0.3", "--", FILE).split()
    return ["suricata-7.0.0", *changed]


def apply(tmp_path: Path, rev: str, *patches: str) -> subprocess.CompletedProcess:
    """Check out FILE at rev into tmp_path, apply all but the last patch, --check the last."""
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / FILE).write_text(g("show", f"{rev}:{FILE}"))
    for p in patches[:-1]:
        subprocess.run(["git", "apply", str(PATCHES_DIR / p)], cwd=tmp_path, check=True,
                       capture_output=True)
    return subprocess.run(["git", "apply", "--check", str(PATCHES_DIR / patches[-1])],
                          cwd=tmp_path, capture_output=True, text=True)


def has_culprit(rev: str) -> bool:
    return subprocess.run(["git", "--git-dir", str(MIRROR), "merge-base", "--is-ancestor",
                           CULPRIT, rev]).returncode == 0


def test_range_has_the_versions_notes_describe():
    assert len(versions()) == 24


def test_every_version_takes_widener_then_fix_a(tmp_path):
    bad = [r for r in versions() if apply(tmp_path, r, "widener.patch", "fixA.patch").returncode]
    assert bad == []


def test_fix_b_applies_exactly_where_the_culprit_is(tmp_path):
    got = {r: apply(tmp_path, r, "widener.patch", "fixB.patch").returncode == 0 for r in versions()}
    want = {r: has_culprit(r) for r in versions()}
    assert got == want
    culprit = g("rev-parse", CULPRIT).strip()
    assert got[culprit] and got[versions()[-1]]


@pytest.mark.parametrize("tip,fix_b", [("refs/heads/main", False),          # reverted upstream
                                       ("refs/heads/main-8.0.x", False),    # reverted upstream
                                       ("refs/heads/main-7.0.x", False),    # never had it
                                       ("suricata-8.0.3", True)])
def test_branch_tips(tmp_path, tip, fix_b):
    assert apply(tmp_path, tip, "widener.patch", "fixA.patch").returncode == 0
    assert (apply(tmp_path, tip, "widener.patch", "fixB.patch").returncode == 0) is fix_b


def test_fix_b_moves_the_increment_after_switch_state(tmp_path):
    assert apply(tmp_path, CULPRIT, "widener.patch", "fixB.patch").returncode == 0
    subprocess.run(["git", "apply", str(PATCHES_DIR / "fixB.patch")], cwd=tmp_path, check=True)
    text = (tmp_path / FILE).read_text()
    body = text[text.index("static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose"
                           ", const bool peer_update)\n{"):]
    body = body[:body.index("\n}\n")]
    assert body.count("AFPPeersListReachedInc();") == 1
    assert body.index("AFPSwitchState(ptv, AFP_STATE_UP);") < body.index("AFPPeersListReachedInc();")
    assert body.index("AFPSetupRing(ptv, devname)") < body.index("AFPPeersListReachedInc();")
