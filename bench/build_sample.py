#!/usr/bin/env python3
"""Issue 3's build sample on the real history: does every era build, and what does the
cache buy?

    python bench/build_sample.py --repo /path/to/suricata.git --workdir /scratch/bench-builds [--n 12]

Sample: N commits evenly spread over suricata-7.0.0..suricata-8.0.3, plus 923ad6af77, its
parent, suricata-8.0.3 and the tip of main.  For each: a CLEAN build (its own fresh workdir:
empty ccache, cargo target and build tree; the crate download cache is shared so the
registry is not hammered, and the image is built once per era) and then a CACHED build of
its neighbour (the next commit) in the same workdir.  Prints OK/SKIP (reason), the rules
that fired, both times and their ratio.  --record FILE appends the table with the date."""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import time
from pathlib import Path

from afpbisect import PATCHES_DIR
from afpbisect.commands.context import Options, open_context
from afpbisect.core.scenario import DEFAULT, load as load_scenario
from afpbisect.machinery.repro_settings import ReproSettings
from afpbisect.core.patch import load_patch


RANGE = "suricata-7.0.0..suricata-8.0.3"


def sample(repo, n: int) -> list[tuple[str, str]]:
    commits = repo.git.rev_list("--reverse", "--first-parent", RANGE).split()
    # n interior points (k/(n+1) of the way): suricata-8.0.3 has its own row below.
    picks = [(f"idx {i}", commits[i - 1]) for i in
             sorted({max(1, round(k * len(commits) / (n + 1))) for k in range(1, n + 1)})]
    culprit = repo.git.rev_parse("923ad6af77")
    picks += [("923ad6af77^", repo.git.rev_parse(f"{culprit}^")), ("923ad6af77", culprit),
              ("suricata-8.0.3", repo.git.rev_parse("suricata-8.0.3^{commit}")),
              ("main", repo.git.rev_parse("main"))]
    return picks


HEADER = ("| commit | build | rules fired | clean build | cached build of neighbour | speed-up "
          "| neighbour's change | C units the neighbour compiled, of the clean build's |\n|---|---|---|---|---|---|---|---|")


def row_md(r: dict) -> str:
    sp = f"{r['clean'] / r['cached']:.1f}x" if r["cached"] else "-"
    cached_s = f"{r['cached']:.0f} s" if r["cached"] else "-"
    cc, total = r.get("nb_ccache") or {}, r.get("clean_units")
    units = f"{cc['misses']} of {total}" if cc and total else "-"
    return (f"| {r['label']} `{r['sha'][:10]}` | {'OK' if r['ok'] else 'SKIP ' + r['why']} | "
            f"{', '.join(r['rules'])} | {r['clean']:.0f} s | {cached_s} | {sp} | {r.get('nb_change', '-')} | {units} |")


def summary(rows: list[dict]) -> str:
    """The issue's two targets over the sample: no SKIP, and neighbour rebuilds >= 3x faster."""
    built = sum(r["ok"] for r in rows)
    pairs = [(r["clean"], r["cached"]) for r in rows if r["ok"] and r["cached"]]
    if not pairs:
        return f"{built} of {len(rows)} built; no neighbour rebuild measured."
    ratios = sorted(c / n for c, n in pairs)
    clean, cached = sum(c for c, _ in pairs), sum(n for _, n in pairs)
    return (f"{built} of {len(rows)} built (SKIP: {len(rows) - built}); "
            f"neighbour rebuild >= 3x faster in {sum(x >= 3 for x in ratios)} of {len(ratios)} rows; "
            f"median speed-up {statistics.median(ratios):.1f}x, lowest {ratios[0]:.1f}x; all clean builds "
            f"{clean:.0f} s against all neighbour rebuilds {cached:.0f} s ({clean / cached:.1f}x).")


def change_summary(repo, a: str, b: str) -> str:
    """What the neighbour changes, in the terms that decide a rebuild's cost: files, C
    headers (each recompiles every unit that includes it) and Rust sources."""
    files = repo.git.diff("--name-only", a, b).split()
    headers = [f.rsplit("/", 1)[-1] for f in files if f.endswith(".h")]
    rust = [f for f in files if f.startswith("rust/")]
    out = f"{len(files)} file{'' if len(files) == 1 else 's'}"
    if headers:
        out += f", headers {' '.join(headers[:3])}{' ...' if len(headers) > 3 else ''}"
    if rust:
        out += f", {len(rust)} under rust/"
    return out


def neighbour(repo, sha: str) -> str:
    """The commit a bisection of the sampled range would build beside this one: the next on
    the range's first-parent line (suricata-8.0.3 is on its release branch, not on main); for
    the range's last commit and for the tip of main, which have no next, the parent."""
    line = repo.git.rev_list("--reverse", "--first-parent", RANGE).split()
    if sha in line[:-1]:
        return line[line.index(sha) + 1]
    return repo.git.rev_parse(f"{sha}^")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--only", action="append", help="label substring (repeatable)")
    ap.add_argument("--record", type=Path)
    a = ap.parse_args(argv)
    say = lambda m: print(m, file=sys.stderr, flush=True)
    widener = load_patch(PATCHES_DIR / "widener.patch")
    rows = []
    shared_cargo = a.workdir / "shared-cargo"
    with open_context(Options(a.repo, a.workdir / "probe", "debian:bookworm", 2, ReproSettings(), scenario=load_scenario(DEFAULT)), say=say) as ctx:
        picks = [p for p in sample(ctx.repo, a.n) if not a.only or any(o in p[0] for o in a.only)]
    for label, sha in picks:
        wd = a.workdir / f"clean-{sha[:10]}"
        shutil.rmtree(wd, ignore_errors=True)
        (wd / "cache").mkdir(parents=True)
        shared_cargo.mkdir(parents=True, exist_ok=True)
        (wd / "cache" / "cargo").symlink_to(shared_cargo)
        with open_context(Options(a.repo, wd, "debian:bookworm", 2, ReproSettings(), scenario=load_scenario(DEFAULT)), say=say) as ctx:
            ctx.docker()
            say(f"== {label} {sha[:10]}: clean build")
            recipe = ctx.builder.recipe_for(ctx.repo, sha)
            ctx.builder.image_for(recipe)          # image time is not build time
            t0 = time.time()
            b = ctx.builder.build(ctx.repo, sha, [widener], label=label)
            clean = time.time() - t0
            nb, cached, nb_facts = neighbour(ctx.repo, sha), None, {}
            if b.ok:
                say(f"== {label}: cached build of neighbour {nb[:10]}")
                t0 = time.time()
                b2 = ctx.builder.build(ctx.repo, nb, [widener], label=label + "+1")
                cached = time.time() - t0 if b2.ok else None
                nb_facts = {"nb_change": change_summary(ctx.repo, sha, nb), "nb_ccache": b2.ccache}
        r = {"label": label, "sha": sha, "ok": b.ok, "why": "" if b.ok else f"{b.step}: {(b.tail or '').strip().splitlines()[-1:]}",
             "rules": [rule[0] for rule in b.rules], "clean": clean, "cached": cached,
             "clean_units": b.ccache.get("misses"), **nb_facts}
        rows.append(r)
        # Each row as soon as it is measured: the sample takes hours and may be cut short.
        say(f"ROW {row_md(r)}")
        shutil.rmtree(wd / "trees", ignore_errors=True)   # keep the disk in check
    out = [HEADER, *[row_md(r) for r in rows], "", summary(rows)]
    md = "\n".join(out)
    print(md)
    if a.record:
        with open(a.record, "a") as f:
            f.write(f"\n## {dt.date.today().isoformat()}: build sample\n\n{md}\n")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
