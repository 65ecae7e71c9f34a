#!/usr/bin/env python3
"""Issue 4's matrix on real Suricata builds: N cold starts per row, two signals apart.

    python bench/repro_matrix.py --repo /path/to/suricata.git --workdir ~/.cache/afpbisect [--cycles 10]

Builds go through afpbisect's own build stage (cached: a workdir shared with `afpbisect run`
reuses its products), cycles through its repro stage.  Prints one row per build: signature
cycles, lines per hit, seconds to start, packets forwarded after the start marker, and
whether the row matches the issue's expectation.  --record FILE also writes the table as
Markdown with the date."""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

from afpbisect import PATCHES_DIR
from afpbisect.commands.context import Options, open_context
from afpbisect.core.refs import resolve
from afpbisect.core.scenario import load as load_scenario
from afpbisect.machinery.repro_session import ReproEnv
from afpbisect.machinery.repro_settings import ReproSettings
from afpbisect.core.patch import load_patch

ROWS = [  # (label, ref, extra patches, widen_us, expectation: min hit fraction or exact 0)
    ("suricata-8.0.3", "suricata-8.0.3", [], 500_000, ">=0.8"),
    ("923ad6af77", "923ad6af77", [], 500_000, ">=0.8"),
    ("parent of 923ad6af77", "923ad6af77^", [], 500_000, "0"),
    ("suricata-8.0.3 + fixA.patch", "suricata-8.0.3", ["fixA.patch"], 500_000, "0"),
    ("suricata-8.0.3 + fixB.patch", "suricata-8.0.3", ["fixB.patch"], 500_000, "0"),
    ("tip of main", "main", [], 500_000, "0"),
    ("suricata-8.0.3, no widener", "suricata-8.0.3", [], 0, "report"),
]


def run_row(ctx, label, ref, extra, widen_us, cycles, say):
    sha = resolve(ctx.repo, ref).sha
    patches = [load_patch(PATCHES_DIR / "widener.patch")] + [load_patch(PATCHES_DIR / p) for p in extra]
    b = ctx.builder.build(ctx.repo, sha, patches, label=label)
    if not b.ok:
        return {"label": label, "sha": sha, "error": f"build failed in {b.step}"}
    settings = ReproSettings.from_scenario(ctx.opts.scenario, pairs=ctx.opts.settings.pairs,
                                           threads=ctx.opts.settings.threads,
                                           env={"SURICATA_RING_SETUP_DELAY_US": str(widen_us)})
    logs = ctx.workdir / "logs" / "matrix" / f"{Path(b.product_dir).name}-w{widen_us}"
    logs.mkdir(parents=True, exist_ok=True)
    recs = []
    with ReproEnv(ctx.engine, settings).session(b.image, Path(b.product_dir), logs) as s:
        for i in range(1, cycles + 1):
            r = s.cycle(i)
            recs.append(r)
            say(f"  {label} cycle {i}: {r.outcome().value} start {r.start_seconds}s "
                f"sig {len(r.signature_lines)} fwd {sum(v or 0 for v in r.forwarded_after_start.values())}")
    return {"label": label, "sha": sha, "recs": recs, "build_seconds": b.seconds, "cached": b.cached}


def summarize(row, expect) -> dict:
    if "error" in row:
        return {**row, "verdict": "ERROR"}
    recs = row["recs"]
    valid = [r for r in recs if r.outcome().value != "infra"]
    hits = [r for r in valid if r.outcome().value == "hit"]
    frac = len(hits) / len(valid) if valid else 0.0
    ok = (frac >= 0.8 if expect == ">=0.8" else len(hits) == 0 if expect == "0" else True)
    starts = [r.start_seconds for r in valid if r.start_seconds is not None]
    fwd = [sum(v or 0 for v in r.forwarded_after_start.values()) for r in valid]
    rx_zero = [sum(1 for k, v in (r.forwarded_after_start or {}).items() if not v) for r in valid]
    return {**row, "valid": len(valid), "infra": len(recs) - len(valid), "hits": len(hits), "frac": frac,
            "lines_per_hit": statistics.mean(len(r.signature_lines) for r in hits) if hits else 0,
            "before_start": all(r.signature_before_start for r in hits) if hits else None,
            "start": (min(starts), statistics.median(starts), max(starts)) if starts else None,
            "fwd_mean": statistics.mean(fwd) if fwd else 0, "pairs_dead": max(rx_zero) if rx_zero else 0,
            "verdict": ("as expected" if ok else "NOT as expected") if expect != "report" else "reported"}


def table(rows, cycles, traffic_seconds) -> str:
    out = [f"| build | signature cycles | lines/hit | before start marker | start s (min/med/max) | "
           f"forwarded after start, per cycle ({traffic_seconds:g} s) | pairs with 0 forwarded | expected | result |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r, (_, _, _, _, expect) in rows:
        if r["verdict"] == "ERROR":
            out.append(f"| {r['label']} | - | - | - | - | - | - | {expect} | ERROR: {r['error']} |")
            continue
        st = "/".join(f"{x:.1f}" for x in r["start"]) if r["start"] else "-"
        infra = f" (+{r['infra']} infra)" if r["infra"] else ""
        out.append(f"| {r['label']} (`{r['sha'][:10]}`) | {r['hits']} of {r['valid']}{infra} | "
                   f"{r['lines_per_hit']:.1f} | "
                   f"{r['before_start'] if r['before_start'] is not None else '-'} | {st} | {r['fwd_mean']:.0f} | "
                   f"{r['pairs_dead']} | {expect} | {r['verdict']} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", action="append", help="row label substring (repeatable)")
    ap.add_argument("--record", type=Path, help="append the Markdown table to this file")
    a = ap.parse_args(argv)
    say = lambda m: print(m, file=sys.stderr, flush=True)
    sc = load_scenario()
    opts = Options(repo=a.repo, workdir=a.workdir, base_image="debian:bookworm", jobs=2,
                   settings=ReproSettings.from_scenario(sc, pairs=a.pairs, threads=a.threads), scenario=sc)
    rows = [r for r in ROWS if not a.only or any(o in r[0] for o in a.only)]
    t0 = time.time()
    done = []
    with open_context(opts, say=say) as ctx:
        ctx.docker()
        for label, ref, extra, widen, expect in rows:
            say(f"== {label}")
            done.append((summarize(run_row(ctx, label, ref, extra, widen, a.cycles, say), expect),
                         (label, ref, extra, widen, expect)))
    md = table(done, a.cycles, ReproSettings().traffic_seconds)
    print(md)
    print(f"\n{a.cycles} cold starts per row, {a.pairs} pairs x {a.threads} threads, "
          f"widener 500 ms unless stated; {time.time() - t0:.0f} s")
    if a.record:
        with open(a.record, "a") as f:
            f.write(f"\n## {dt.date.today().isoformat()}: {a.cycles} cold starts per row, {a.pairs} pairs x "
                    f"{a.threads} threads\n\n{md}\n")
    return 0 if all(r["verdict"] in ("as expected", "reported") for r, _ in done) else 1


if __name__ == "__main__":
    sys.exit(main())
