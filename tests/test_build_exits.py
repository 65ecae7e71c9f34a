"""How a build phase's exit is read: the commit's own failure (SKIP) or a stop from outside
(infrastructure error, never a verdict)."""
import dataclasses
import os
import signal
import subprocess

import pytest

from afpbisect.core import eras
from afpbisect.core.eras import DictView, resolve
from afpbisect.machinery.build_log import ccache_counts, rust_incremental_state, step_seconds, stopped_by
from test_eras import render


@pytest.mark.parametrize("code,name", [(130, "SIGINT"), (143, "SIGTERM"), (129, "SIGHUP"), (137, "SIGKILL")])
def test_an_exit_by_signal_is_a_stop_from_outside(code, name):
    assert name in stopped_by(code, "")


@pytest.mark.parametrize("code", [1, 2, 127, 128, 139])   # 139: the build's own tool crashed
def test_an_ordinary_failure_is_the_commits(code):
    assert stopped_by(code, "make: *** [Makefile:1234: all] Error 2\n") is None


@pytest.mark.parametrize("line", [
    "gcc: fatal error: Killed signal terminated program cc1",
    "cc1: internal compiler error: Killed (program cc1)",
    "error: could not compile `suricata` (lib); 1 warning emitted\n\nCaused by:\n  process didn't exit "
    "successfully: `rustc ...` (signal: 9, SIGKILL: kill)",
])
def test_a_killed_compiler_is_not_the_commits_failure(line):
    assert "killed" in stopped_by(2, f"...\n{line}\nmake: *** Error 1\n")


def test_a_syntax_error_mentioning_kill_is_still_the_commits():
    assert stopped_by(2, "src/x.c:3: error: 'kill_all' undeclared\n") is None


def test_the_build_script_reports_a_step_killed_by_sigint_as_exit_130(tmp_path):
    """What the container's exit code is when a process of a step dies of SIGINT: the
    rendered script (set -e) passes 130 on, which stopped_by reads as a stop."""
    recipe = resolve(DictView(files={"configure": ""}))
    recipe = dataclasses.replace(recipe, fetch_fixups=("sh -c 'kill -INT $$'",))
    sh = render(eras.BUILD_SCRIPT_TEMPLATE, recipe=recipe, jobs=1)
    src = tmp_path / "src"
    src.mkdir()
    (src / "configure").write_text("#!/bin/sh\ntouch Makefile\n")
    (src / "configure").chmod(0o755)
    (tmp_path / "build.sh").write_text(sh.replace("cd /src", f"cd {src}"))
    env = {**os.environ, "RECONFIGURE": "1", "CCACHE_DIR": str(tmp_path / "cc"), "CARGO_HOME": str(tmp_path / "c")}
    # Default SIGINT in the script: a job started in the background (`cmd &`, as CI may be)
    # inherits SIGINT ignored, and bash cannot reset a signal ignored on entry.
    p = subprocess.run(["bash", str(tmp_path / "build.sh"), "fetch"], env=env, capture_output=True, text=True,
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.returncode == 130, (p.stdout, p.stderr)
    assert "AFPBISECT-STEP: fixup" in p.stdout
    assert "SIGINT" in stopped_by(p.returncode, p.stdout + p.stderr)


def test_step_seconds_reads_the_timed_markers_and_cargos_summary():
    log = ("# ---- phase fetch (network host)\nAFPBISECT-STEP: autogen @100.0\nAFPBISECT-STEP: configure @112.5\n"
           "AFPBISECT-STEP: fetch @140.0\nAFPBISECT-DONE: fetch @150.25\n# ---- phase compile (network none)\n"
           "AFPBISECT-STEP: make @151.0\n    Finished `release` profile [optimized] target(s) in 1m 57s\n"
           "AFPBISECT-STEP: install @400.0\n    Finished `release` profile [optimized] target(s) in 0.08s\n"
           "AFPBISECT-DONE: compile @410.0\n")
    assert step_seconds(log) == {"autogen": 12.5, "configure": 27.5, "fetch": 10.2, "make": 249.0,
                                 "install": 10.0, "cargo": 117.1}


def test_step_seconds_of_an_old_log_without_times_is_empty():
    assert step_seconds("AFPBISECT-STEP: make\nAFPBISECT-DONE: compile\n") == {}


def test_ccache_counts_reads_the_compile_phases_statistics():
    log = "...\n  Hits:               1 /   10 (10.00%)\n  Misses:             9 /   10 (90.00%)\n"
    assert ccache_counts(log) == {"hits": 1, "misses": 9}
    assert ccache_counts("no statistics printed\n") == {}


def test_rusts_incremental_state_is_found_under_any_profile_and_triple_and_nothing_else(tmp_path):
    target = tmp_path / "rust" / "target"
    for f in [target / "release" / "libsuricata.a", target / "release" / "deps" / "libnom-1.rlib",
              tmp_path / "src" / "incremental" / "x.c",                  # not cargo's
              target / "release" / "incremental" / "suricata-1" / "s-1" / "query-cache.bin",
              target / "x86_64-unknown-linux-gnu" / "release" / "incremental" / "suricata-2" / "a.o"]:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("x")
    found = rust_incremental_state(tmp_path)
    assert sorted(str(p.relative_to(target)) for p in found) == [
        "release/incremental", "x86_64-unknown-linux-gnu/release/incremental"]
    assert rust_incremental_state(tmp_path / "nothing-here") == []
