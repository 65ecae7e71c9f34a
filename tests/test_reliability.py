"""Interruption, resume and a daemon that goes away (issue 8), on the real engine with the
synthetic target."""
import json
import os
import signal
import subprocess
import sys
import time

import docker
import docker.errors
import pytest

from afpbisect.core.eras import DEFAULT_RULES
from afpbisect.synthetic.target import make_synthetic_repo
from dockerproxy import DockerProxy
from e2e_util import SMALL, afp, docker_ok, wait_for, workdir_filter

pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not docker_ok(), reason="needs the Docker engine")]


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return make_synthetic_repo(tmp_path_factory.mktemp("rel") / "target", n_commits=60, seed=11)


def _start(syn, work, env=None, extra=()):
    args = [sys.executable, "-m", "afpbisect", "run", f"{syn.good_ref}..{syn.bad_ref}", "--repo",
            str(syn.path), "--workdir", str(work), "--json", *SMALL, *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _state(work):
    files = list((work / "state").glob("run-*.json"))
    if not files:
        return {}
    try:
        return json.loads(files[0].read_text())["data"]
    except (json.JSONDecodeError, KeyError):
        return {}


def _ours(work):
    """This workdir's containers; one removed between the listing and its inspection (the
    run cleans up as it goes) is simply not there: retry rather than fail on NotFound."""
    for _ in range(5):
        try:
            return docker.from_env().containers.list(all=True, filters=workdir_filter(work))
        except docker.errors.NotFound:
            time.sleep(0.2)
    return docker.from_env().containers.list(all=True, filters=workdir_filter(work))


def test_kill9_then_resume(syn, tmp_path):
    work = tmp_path / "work"
    proc = _start(syn, work)
    decided = lambda: sum(1 for e in _state(work).get("evidence", {}).values() if e.get("verdict")) >= 3
    assert wait_for(decided, 900, proc), proc.communicate()[1] if proc.poll() is not None else "no progress"
    proc.kill()
    proc.wait()
    # finished: decided, and not a calibration cut short (that one goes on where it stopped);
    # a GOOD decided before any calibration is judged again at the calibrated level by
    # design (policy/search.py), killed or not, so it is finished only once one exists
    ev = _state(work)["evidence"]
    calibrated = any(len(v.get("calib") or []) == 4 for v in ev.values())
    before = {k: v for k, v in ev.items()
              if v.get("verdict") and len(v.get("calib") or [0] * 4) == 4
              and (calibrated or v["verdict"] != "good")}
    logs = {p: p.stat().st_mtime for p in (work / "logs" / "build").glob("*.log")}
    code, res, err = afp("run", f"{syn.good_ref}..{syn.bad_ref}", "--repo", str(syn.path), "--workdir",
                         str(work), "--json", *SMALL)
    assert code == 0, err
    assert res["result"]["first_bad"] == syn.planted
    assert "resuming" in err
    for s in res["steps"]:
        if s["commit"] in before and s["role"] in ("calibrate", "endpoint", "search"):
            assert s["new_cycles"] == 0, f"finished step redone: {s}"
    for p, mtime in logs.items():
        if any(p.name.startswith(c[:12]) for c in before):
            assert p.stat().st_mtime == mtime, f"finished build redone: {p.name}"
    assert not _ours(work), "containers left"


def test_sigint_mid_cycle_exits_fast_and_clean(syn, tmp_path):
    work = tmp_path / "work"
    proc = _start(syn, work)
    cycling = lambda: bool(docker.from_env().containers.list(filters={"label": "afpbisect.role=repro"})) \
        and len(_state(work).get("cycles", {})) >= 1
    assert wait_for(cycling, 900, proc), "never reached a repro cycle"
    # A repro container is up: the interrupt lands in a cycle. No time is asserted (a
    # loaded machine must not fail it); communicate's timeout is the guard against a hang.
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume" in err and "Traceback" not in err
    assert not _ours(work), "containers left after SIGINT"
    assert _state(work), "state lost"


def test_daemon_away_for_a_while(syn, tmp_path):
    work = tmp_path / "work"
    proxy = DockerProxy(str(tmp_path / "docker.sock")).start()
    env = {"DOCKER_HOST": f"unix://{tmp_path}/docker.sock", "AFPBISECT_DOCKER_RETRY_SECONDS": "90"}
    proc = _start(syn, work, env)
    try:
        assert wait_for(lambda: len(_state(work).get("cycles", {})) >= 2, 900, proc), "no progress"
        proxy.stop()
        time.sleep(8)
        proxy.start()
        out, err = proc.communicate(timeout=1200)
    finally:
        proxy.stop()
        if proc.poll() is None:
            proc.kill()
    if proc.returncode == 0:
        assert json.loads(out)["result"]["first_bad"] == syn.planted
    else:
        # Allowed: a clear error and a resumable state; the resume must then finish.
        assert proc.returncode == 3 and "Traceback" not in err, err
        code, res, err2 = afp("run", f"{syn.good_ref}..{syn.bad_ref}", "--repo", str(syn.path),
                              "--workdir", str(work), "--json", *SMALL)
        assert code == 0 and res["result"]["first_bad"] == syn.planted, err2
    assert not _ours(work)


def _eras_with_fixup(tmp_path, cmd: str) -> tuple[str, str]:
    """`--eras` for the shipped era rules plus one rule, for every commit, whose fetch fixup is `cmd`."""
    eras = tmp_path / "eras.toml"
    eras.write_text(DEFAULT_RULES.read_text() + '\n[[rule]]\nid = "test-fixup"\nreason = "test"\n'
                    f'fetch_fixups = [{json.dumps(cmd)}]\n')
    return "--eras", str(eras)


def test_sigint_in_the_fetch_phase_is_an_interrupt_not_a_fetch_failure(syn, tmp_path):
    """Ctrl-C while a build's networked fetch phase runs must say "interrupted" (exit 130), not
    blame the network or the registry (exit 3), and leave nothing running."""
    work = tmp_path / "work"
    # A fixup that only waits keeps the fetch container up long enough to be interrupted.
    proc = _start(syn, work, extra=_eras_with_fixup(tmp_path, "sleep 120"))
    fetching = lambda: any("-fetch-" in c.name for c in _ours(work) if c.status == "running")
    assert wait_for(fetching, 600, proc), "never reached a fetch phase"
    proc.send_signal(signal.SIGINT)   # the fetch container runs its `sleep 120` now
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "fetching dependencies failed" not in err and "Traceback" not in err, err
    assert "resume" in err
    assert not _ours(work), "containers left after SIGINT"


def test_a_build_step_killed_by_a_signal_is_an_infrastructure_error_not_a_skip(syn, tmp_path):
    """A process of the build killed from outside (here the fixup step's own shell, by SIGINT)
    says nothing about the commit: exit 3 naming the signal, no SKIP, no fetch failure."""
    work = tmp_path / "work"
    proc = _start(syn, work, extra=_eras_with_fixup(tmp_path, "sh -c 'kill -INT $$'"))
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 3, err
    assert "killed by SIGINT" in err and "not a verdict" in err, err
    assert "fetching dependencies failed" not in err and "Traceback" not in err, err
    assert not any(e.get("verdict") for e in _state(work).get("evidence", {}).values())
    assert not _ours(work), "containers left"
