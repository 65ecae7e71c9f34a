"""What every report states about how it was made (issue 19): date and time, the tool's
version, the host, the options.  A report read weeks later, or beside another machine's,
must say which code on how many cores with which options gave its figures: the wall times
in docs/results/ differ 1.7x between machines, and a run with `--cycles 10` is the naive
method, not the policy.

Pure and small: callers (bisection, verify, nightly) add what only they know."""
from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
from pathlib import Path

from afpbisect import PROJECT_DIR, __version__


def tool_version(project_dir: Path = PROJECT_DIR) -> str:
    """`git describe --always --dirty --tags` of the afpbisect checkout this code runs from,
    else the package version (an installed wheel has no .git).  The package version alone
    would call every commit of a week's work "0.1.0"."""
    if (Path(project_dir) / ".git").exists():
        try:
            out = subprocess.run(["git", "-C", str(project_dir), "describe", "--always", "--dirty", "--tags"],
                                 capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            out = None
        if out is not None and out.returncode == 0 and out.stdout.strip():
            return f"{__version__} ({out.stdout.strip()})"
    return __version__


def host() -> dict:
    """Cores are what the wall times scale with (docs/results/real-suricata.md); usable ones
    (the affinity mask, as in a container limited by --cpuset-cpus) when Linux says."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 0
    return {"hostname": socket.gethostname(), "cores": cores}


def options_of(opts, **command: object) -> dict:
    """The options that shape a run's answer and its cost: the common ones (context.Options)
    and the command's own (confidence, find_fix, patches, ...)."""
    s = opts.settings
    common = {"repo": opts.repo, "scenario": opts.scenario.name, "base_image": opts.base_image,
              "jobs": opts.jobs, "pairs": s.pairs, "threads": s.threads, "env": dict(s.env),
              "cycles": opts.fixed_cycles, "restart": opts.restart,
              "eras": str(opts.eras_file) if opts.eras_file else None}
    return {**common, **command}


def stamp(opts, **command: object) -> dict:
    """The block every result carries under "made": when, by which code, where, how."""
    return {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "tool_version": tool_version(), "host": host(), "options": options_of(opts, **command)}
