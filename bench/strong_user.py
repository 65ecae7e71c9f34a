#!/usr/bin/env python3
"""Issue 27's strong users, measured beside afpbisect on the same machine: no extrapolation.

    python bench/strong_user.py --repo SURICATA.git --workdir /scratch/strong \
        --methods afpbisect,path,full [--suspect src/source-af-packet.c] [--json out.json]

Each method starts from its own new, empty workdir (no clone, no ccache, no cargo cache, no
build tree, no product: a cold start like afpbisect's cold run), with the base and era
images already present for all of them.  The methods:

- `afpbisect`: `afpbisect run GOOD..BAD --json` in a subprocess, its defaults.
- `path`: the strong user of issue 27.  Real `git bisect start BAD GOOD -- SUSPECT`
  (git itself picks every probe, on a clone of --repo), one persistent build tree for the
  whole walk (afpbisect's builder: the same tree, ccache and cargo cache a developer who
  never runs `make clean` has, and afpbisect's lean recipe, which only makes this user
  faster), the widener patch, cycles until the first hit (BAD) or --good-cycles clean ones
  (GOOD); a commit that does not build is `git bisect skip`.  No endpoint is checked: the
  user takes both on trust.
- `full`: the same user with `git bisect run` over the whole range (no pathspec).

Prints one table and writes --json with every step, so the figures in docs/results can be
recomputed from it.  The strong users claim no confidence: a GOOD after 10 clean cycles is
wrong with probability (1 - p)^10, which this bench reports beside their times.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from afpbisect import PATCHES_DIR
from afpbisect.commands.context import Options, open_context
from afpbisect.core.scenario import load as load_scenario
from afpbisect.core.verdict import CycleOutcome
from afpbisect.machinery.repro_session import ReproEnv
from afpbisect.machinery.repro_settings import ReproSettings
from afpbisect.core.patch import load_patch

MAX_ATTEMPTS = 30   # cycles that prove nothing (unhealthy / infra) before the user gives up: skip


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def judge(ctx, settings: ReproSettings, sha: str, good_cycles: int, logs: Path) -> dict:
    """Build `sha` in the persistent tree, then cycle until a hit or `good_cycles` clean."""
    t0 = time.time()
    b = ctx.builder.build(ctx.repo, sha, [load_patch(PATCHES_DIR / "widener.patch")], label="strong-user")
    step = {"commit": sha, "build_seconds": round(time.time() - t0, 1), "built": b.ok,
            "cycles": 0, "clean": 0, "hits": 0, "repro_seconds": 0.0}
    if not b.ok:
        return {**step, "verdict": "skip", "why": b.skip_reason}
    t0 = time.time()
    logs.mkdir(parents=True, exist_ok=True)
    with ReproEnv(ctx.engine, settings).session(b.image, Path(b.product_dir), logs) as s:
        while step["clean"] < good_cycles and step["hits"] == 0 and step["cycles"] < MAX_ATTEMPTS:
            step["cycles"] += 1
            out = s.cycle(step["cycles"]).outcome(settings.health)
            step["hits"] += out is CycleOutcome.HIT
            step["clean"] += out is CycleOutcome.CLEAN
    step["repro_seconds"] = round(time.time() - t0, 1)
    verdict = "bad" if step["hits"] else "good" if step["clean"] >= good_cycles else "skip"
    return {**step, "verdict": verdict}


def git_bisect_user(a, name: str, pathspec: list[str], progress=lambda row: None) -> dict:
    """One strong user's walk: git chooses, afpbisect's builder and repro answer."""
    wd = a.workdir / name
    if not a.reuse:
        shutil.rmtree(wd, ignore_errors=True)
    wd.mkdir(parents=True, exist_ok=True)
    clone = wd / "bisect-clone"
    if not clone.exists():
        subprocess.run(["git", "clone", "-q", "--bare", a.repo, str(clone)], check=True)
    subprocess.run(["git", "bisect", "reset"], cwd=clone, capture_output=True)
    sc = load_scenario()
    settings = ReproSettings.from_scenario(sc, env=env_of(a))
    say = lambda m: print(f"[{name}] {m}", file=sys.stderr, flush=True)
    order = git(clone, "rev-list", "--reverse", f"{a.good}..{a.bad}").split()
    t_start = time.time()
    steps = []
    with open_context(Options(str(clone), wd / "work", "debian:bookworm", a.jobs, settings, scenario=sc),
                      say=say) as ctx:
        ctx.docker()
        git(clone, "bisect", "start", "--no-checkout", a.bad, a.good, "--", *pathspec)
        while True:
            sha = git(clone, "rev-parse", "BISECT_HEAD")
            say(f"git asks {sha[:10]} (idx {order.index(sha) + 1})")
            st = judge(ctx, settings, sha, a.good_cycles, wd / "logs" / sha[:12])
            st["idx"] = order.index(sha) + 1
            steps.append(st)
            progress({"method": name, "partial": True, "steps": steps})
            say(f"{sha[:10]}: {st['verdict']} (build {st['build_seconds']} s, {st['cycles']} cycles "
                f"in {st['repro_seconds']} s)")
            out = git(clone, "bisect", st["verdict"], sha)
            if "is the first bad commit" in out or "could be any of" in out:
                break
        answer = git(clone, "rev-parse", "refs/bisect/bad")
    return {"method": name, "pathspec": pathspec, "wall_seconds": round(time.time() - t_start, 1),
            "answer": answer, "steps": steps, "good_cycles": a.good_cycles,
            "builds": sum(1 for s in steps if s["build_seconds"] > 0),
            "build_seconds": round(sum(s["build_seconds"] for s in steps), 1),
            "repro_seconds": round(sum(s["repro_seconds"] for s in steps), 1),
            "cycles": sum(s["cycles"] for s in steps)}


def env_of(a) -> dict | None:
    """--env NAME=VALUE over the scenario's environment, for every method alike."""
    return dict(e.split("=", 1) for e in a.env) or None   # from_scenario puts them over its own


def afpbisect_run(a) -> dict:
    wd = a.workdir / "afpbisect"
    shutil.rmtree(wd, ignore_errors=True)
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "afpbisect", "run", f"{a.good}..{a.bad}", "--repo", a.repo,
                        "--workdir", str(wd), "--json",
                        *[x for e in a.env for x in ("--env", e)], *a.afpbisect_args], capture_output=True, text=True)
    wall = round(time.time() - t0, 1)
    (a.workdir / "afpbisect.stderr.log").write_text(p.stderr)
    res = json.loads(p.stdout) if p.stdout.strip() else {}
    steps = res.get("steps", [])
    return {"method": "afpbisect", "exit": p.returncode, "wall_seconds": wall,
            "answer": (res.get("result") or {}).get("candidates", [None])[0],
            "confidence": (res.get("result") or {}).get("confidence"),
            "builds": sum(1 for s in steps if (s.get("build_seconds") or 0) > 0),
            "build_seconds": round(sum(s.get("build_seconds") or 0 for s in steps), 1),
            "repro_seconds": round(sum(s.get("repro_seconds") or 0 for s in steps), 1),
            # new_cycles: a step's `cycles` re-counts the commit's earlier ones (audit, issue 27)
            "cycles": sum(s.get("new_cycles") or 0 for s in steps), "report": res}


def recount(row: dict) -> dict:
    """A row's totals from its steps (afpbisect: from its report), so a saved file made by
    an older version of this bench is shown by today's rules."""
    if row["method"] != "afpbisect":
        return row
    steps = row["report"].get("steps", [])
    return {**row, "cycles": sum(s.get("new_cycles") or 0 for s in steps)}


def table(rows: list[dict]) -> str:
    base = next((r["wall_seconds"] for r in rows if r["method"] == "afpbisect"), None)
    out = ["| method | answer | wall | builds | build s | cycles | repro s | afpbisect faster by |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['wall_seconds'] / base:.2f}x" if base and r["method"] != "afpbisect" else "-"
        out.append(f"| {r['method']} | `{(r['answer'] or '?')[:10]}` | {r['wall_seconds'] / 60:.1f} min | "
                   f"{r['builds']} | {r['build_seconds']:.0f} | {r['cycles']} | {r['repro_seconds']:.0f} | {ratio} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--good", default="suricata-7.0.0")
    ap.add_argument("--bad", default="suricata-8.0.3")
    ap.add_argument("--methods", default="afpbisect,path,full")
    ap.add_argument("--suspect", action="append", default=None)
    ap.add_argument("--good-cycles", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="over the scenario's environment, for every method (e.g. the widener's delay)")
    ap.add_argument("--afpbisect-arg", dest="afpbisect_args", action="append", default=[])
    ap.add_argument("--reuse", action="store_true",
                    help="keep each git-bisect user's workdir (products, caches): with builds cached "
                         "this measures its cycles alone, e.g. under another --env")
    ap.add_argument("--table", type=Path, metavar="JSON",
                    help="print the table of a saved --json file (its rows, recounted) and exit")
    a = ap.parse_args(argv)
    if a.table:
        print(table([recount(r) for r in json.loads(a.table.read_text())["rows"] if not r.get("partial")]))
        return 0
    if not (a.repo and a.workdir):
        ap.error("--repo and --workdir are needed to measure (only --table reads a saved file)")
    a.suspect = a.suspect or ["src/source-af-packet.c"]
    a.workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def save(extra: list[dict]) -> None:   # after every step: a killed bench keeps what it measured
        if a.json:
            a.json.write_text(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                          "good": a.good, "bad": a.bad, "env": a.env, "rows": rows + extra}, indent=1))

    for m in a.methods.split(","):
        row = (afpbisect_run(a) if m == "afpbisect"
               else git_bisect_user(a, m, a.suspect if m == "path" else [], lambda r: save([r])))
        rows.append(row)
        save([])
        print(table(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
