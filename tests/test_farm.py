"""Issue 20 without Docker: --engine resolution, the lane choice, a round's builds at once
(one engine each, one build at a time per engine), and a probe an engine lost moving to
another engine. The Docker side is tests/test_engines_e2e.py (and the one test here marked
`docker`: clean on the real daemon as one of two engines)."""
import hashlib
import json
import threading
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from afpbisect import PATCHES_DIR
from afpbisect.cli import cli
from afpbisect.core.errors import InfraError, UsageError
from afpbisect.core.state import State
from afpbisect.machinery.build import BuildResult
from afpbisect.machinery.farm import Lane, context_host, pick, resolve, resolve_all
from afpbisect.machinery.pipeline_env import PipelineEnv, Variant
from afpbisect.machinery.placement import prepare_builds
from e2e_util import docker_ok


def _context(root, name, host):
    d = root / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest()
    d.mkdir(parents=True)
    (d / "meta.json").write_text(json.dumps({"Name": name, "Metadata": {},
                                             "Endpoints": {"docker": {"Host": host}}}))


def test_a_context_name_resolves_to_its_endpoint(tmp_path, monkeypatch):
    _context(tmp_path, "farm-a", "ssh://builder@host-a")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert resolve("farm-a") == ("farm-a", "ssh://builder@host-a")
    assert context_host("nope") is None
    assert resolve("tcp://10.0.0.2:2375") == ("tcp://10.0.0.2:2375",) * 2
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/other.sock")
    assert resolve("default") == ("default", "unix:///run/other.sock")


@pytest.mark.parametrize("bad, says", [("", "empty"), ("nope", "no Docker context"),
                                       ("ftp://x", "unknown scheme"), ("ssh://", "no host"),
                                       ("tcp://[::1", "not a valid URL"), ("tcp://h:99999", "not a valid URL"),
                                       ("unix://", "no socket path")])
def test_a_bad_engine_is_one_clear_error(tmp_path, monkeypatch, bad, says):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(UsageError, match=says):
        resolve(bad)


def test_the_same_engine_twice_is_refused_two_contexts_of_one_daemon_are_not(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for n in ("a", "b"):
        _context(tmp_path, n, "unix:///var/run/docker.sock")
    assert [n for n, _ in resolve_all(["a", "b"])] == ["a", "b"]
    with pytest.raises(UsageError, match="given twice"):
        resolve_all(["a", "a"])


@pytest.mark.parametrize("command", [["run", "a..b"], ["verify-patch", str(PATCHES_DIR / "fixA.patch")], ["nightly"],
                                     ["selftest"], ["doctor"]])
def test_every_command_refuses_an_unknown_engine_before_touching_anything(tmp_path, monkeypatch, command):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    work = tmp_path / "work"
    res = CliRunner().invoke(cli, [*command, "--engine", "no-such-context", *(
        ["--workdir", str(work)] if command[0] != "selftest" else [])])
    assert res.exit_code == 2, res.output
    assert "--engine no-such-context: no Docker context" in res.output
    assert "Traceback" not in res.output and not work.exists()


def _lanes(*names):
    return [Lane(SimpleNamespace(name=n, remote=True), None, None) for n in names]


def test_pick_prefers_a_free_engine_then_the_one_that_failed_least():
    a, b, c = _lanes("a", "b", "c")
    assert pick([a, b, c]) is a
    assert pick([a, b, c], busy={"a"}) is b
    a.strikes = 1
    assert pick([a, b, c]) is b
    b.strikes = c.strikes = 2
    assert pick([a, b, c]) is a


MEET_TIMEOUT = 60   # seconds a build waits for its partner; only reached when they never meet


class _Builder:
    """`fail` = how many builds fail on infrastructure first. `meet`: a threading.Barrier
    each build waits at, so builds that must run at once can only pass together: builds
    made one after the other break it (BrokenBarrierError, a failed test) instead of only
    taking longer. Records overlapping builds on the same builder (which must never
    happen: one tree)."""

    def __init__(self, name, fail=0, meet=None):
        self.name, self.fail, self.meet = name, fail, meet
        self.engine = SimpleNamespace(name=name, remote=True)
        self.products = None
        self.built: list = []
        self.active = 0
        self.overlap = False
        self.on_step = None
        self._lock = threading.Lock()

    base_image = "base"

    def build(self, repo, sha, patches, label=""):
        with self._lock:
            self.active += 1
            self.overlap |= self.active > 1
        try:
            if self.meet is not None:
                self.meet.wait(MEET_TIMEOUT)
            if self.fail:
                self.fail -= 1
                raise InfraError(f"{self.name}: build container killed")
            self.built.append(sha)
            return BuildResult(commit=sha, key="k", ok=True, cached=False, seconds=1.0,
                               product_dir=f"/p/{sha}", image="img", log_path="/l")
        finally:
            with self._lock:
                self.active -= 1


def _env(tmp_path, builders):
    lanes = [Lane(b.engine, b, None) for b in builders]
    st = State(tmp_path / "s.json", "run", {})
    said: list = []
    env = PipelineEnv(None, builders[0], None, st, tmp_path, Variant("v"), say=said.append, lanes=lanes)
    return env, st, said


def test_a_round_is_built_at_once_one_engine_each(tmp_path):
    # 4 builds on 2 engines, 2 at a time: each build passes the barrier only with a build
    # of the other engine beside it (one after the other: BrokenBarrierError)
    meet = threading.Barrier(2)
    a, b = _Builder("a", meet=meet), _Builder("b", meet=meet)
    env, st, _ = _env(tmp_path, [a, b])
    env.prepare(["c1", "c2", "c3", "c4"])
    assert sorted(a.built + b.built) == ["c1", "c2", "c3", "c4"]
    assert len(a.built) == len(b.built) == 2
    assert not a.overlap and not b.overlap      # never two builds in one engine's tree
    engines = {k.split(":")[0]: v["engine"] for k, v in st.data["builds"].items()}
    assert engines == {"c1": "a", "c2": "b", "c3": "a", "c4": "b"}


def test_a_build_lost_on_infrastructure_moves_to_another_engine(tmp_path):
    a, b = _Builder("a", fail=1), _Builder("b")
    env, st, said = _env(tmp_path, [a, b])
    env.prepare(["c1", "c2"])
    assert b.built == ["c2"] and a.built == []
    assert any("c1: the build failed on infrastructure" in s for s in said)
    # the policy asks for it when it needs it: the engine that failed comes last
    assert env.build("c1") is None
    assert b.built == ["c2", "c1"]
    assert st.data["builds"]["c1:v"]["engine"] == "b"
    # a success clears the strike: the engine is first in line again
    a.fail = 0
    assert env.build("c9") is None and a.built == []   # a still has its strike...
    env.prepare(["c5", "c6"])
    assert a.built == ["c5"] or a.built == ["c6"]      # ...but still gets a share of a round


def test_one_engine_prepares_nothing(tmp_path):
    a = _Builder("a")
    env, _, _ = _env(tmp_path, [a])
    env.prepare(["c1", "c2"])
    assert a.built == []


def test_verify_builds_both_variants_at_once(tmp_path):
    meet = threading.Barrier(2)   # the two variants' builds pass it only together
    a, b = _Builder("a", meet=meet), _Builder("b", meet=meet)
    base, st, _ = _env(tmp_path, [a, b])
    fix = PipelineEnv(None, a, None, st, tmp_path, Variant("v+fix"), say=lambda m: None, lanes=base.lanes)
    prepare_builds([(base, "c1"), (fix, "c1")])
    assert sorted(a.built + b.built) == ["c1", "c1"] and set(st.data["builds"]) == {"c1:v", "c1:v+fix"}


def test_a_remote_engine_tells_two_machines_workdirs_of_one_path_apart(tmp_path):
    """Two hosts with the same workdir path on one engine must not sweep each other's
    containers nor share volumes: the remote tag covers an id made once in the workdir."""
    from afpbisect.machinery.engine import workdir_tag
    work = tmp_path / "w"
    work.mkdir()
    local, first = workdir_tag(work), workdir_tag(work, remote=True)
    assert workdir_tag(work, remote=True) == first != local     # stable for this workdir
    (work / "engine-id").write_text("another machine's workdir\n")
    assert workdir_tag(work, remote=True) != first
    assert workdir_tag(tmp_path / "gone", remote=True) == workdir_tag(tmp_path / "gone")


@pytest.mark.docker
@pytest.mark.skipif(not docker_ok(), reason="needs the Docker engine")
def test_clean_goes_on_with_the_other_engines_when_one_is_away(tmp_path, monkeypatch):
    """The `default` engine is the real daemon (DOCKER_CONFIG has no contexts): clean lists
    and removes this workdir's volumes on it."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.setenv("AFPBISECT_DOCKER_PING_SECONDS", "2")
    res = CliRunner().invoke(cli, ["clean", "--workdir", str(tmp_path / "w"), "--caches",
                                   "--engine", "unix:///nonexistent.sock", "--engine", "default"])
    assert res.exit_code == 2, res.output
    assert "unreachable at unix:///nonexistent.sock" in res.output
    assert "on default" in res.output and "Traceback" not in res.output


def test_a_broken_pipe_from_an_ssh_engine_is_a_lost_engine_not_a_silent_exit(monkeypatch):
    """docker-py's ssh transport raises BrokenPipeError when ssh has gone; click takes an
    EPIPE for a closed stdout and exits 1 without a word (seen: selftest over ssh://)."""
    from afpbisect import cli as cli_mod
    from afpbisect.machinery.engine import _transient

    def broken(**kw):
        raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr("afpbisect.commands.doctor.run_checks", lambda *a, **k: broken())
    res = CliRunner().invoke(cli_mod.cli, ["doctor"])
    assert res.exit_code == 3 and "lost the Docker engine" in res.output, res.output
    assert _transient(BrokenPipeError()) and _transient(ConnectionResetError())


def test_a_rounds_probes_go_to_the_engines_that_built_near_them(tmp_path, small_repo):
    """As bench/engines.py simulates: each engine keeps its own tree, so a probe is cheap
    on the engine whose last build is near it; the round's slowest build is made short."""
    import git as gitpy
    repo = gitpy.Repo(small_repo)
    c = repo.git.rev_list("--reverse", "main").split()
    a, b = _Builder("a"), _Builder("b")
    env, st, _ = _env(tmp_path, [a, b])
    env.repo = repo
    env.lanes[0].last_built, env.lanes[1].last_built = c[8], c[1]
    env.prepare([c[2], c[9]])
    assert a.built == [c[9]] and b.built == [c[2]]
    assert env.lanes[0].last_built == c[9] and env.lanes[1].last_built == c[2]
