"""Facts of a commit's builds and cycles, read from the run state, for the reports: build
times and steps, start times, forwarding health per pair (issue 16), machine load."""
from __future__ import annotations

import statistics
from pathlib import Path

from afpbisect.machinery.repro_record import peer_iface


def mean_busy(recs: list[dict]) -> float | None:
    vals = [r["cpu_busy"] for r in recs if r.get("cpu_busy") is not None]
    return round(sum(vals) / len(vals), 3) if vals else None


def forwarding_facts(recs: list[dict]) -> dict:
    """Forwarding health of a commit's cycles, for the reports (issue 16): per pair the
    frames offered and forwarded after start (minimum over the healthy-or-not cycles that
    started), the shutdown counters of the last cycle that has them, the unhealthy ones."""
    started = [r for r in recs if r.get("started")]
    per_pair: dict[str, dict] = {}
    for r in started:
        for rx, fwd in sorted((r.get("forwarded_after_start") or {}).items()):
            row = per_pair.setdefault(rx, {"offered_min": None, "forwarded_min": None})
            offered = (r.get("offered") or {}).get(peer_iface(rx))
            for key, v in (("offered_min", offered), ("forwarded_min", fwd)):
                if v is not None:
                    row[key] = v if row[key] is None else min(row[key], v)
    last = next((r.get("shutdown_counters") for r in reversed(recs) if r.get("shutdown_counters")), {})
    unhealthy = [{"cycle": r.get("index"), "reason": r["unhealthy"]} for r in recs if r.get("unhealthy")]
    return {"pairs": per_pair, "shutdown_counters": last, "unhealthy": unhealthy}


def step_facts(state, key: str) -> dict:
    """What the reports show of one commit's build and cycles (`key`: PipelineEnv.key_of)."""
    b = state.data["builds"].get(key, {})
    recs = state.data["cycles"].get(key, [])
    starts = [r["start_seconds"] for r in recs if r.get("start_seconds") is not None]
    return {
        "build_engine": b.get("engine"),
        "cycle_engines": sorted({r["engine"] for r in recs if r.get("engine")}),
        "build_seconds": b.get("seconds"), "build_cached": b.get("cached", False),
        "build_log": b.get("log_path"), "build_ok": b.get("ok"), "build_steps": b.get("steps", {}),
        "build_ccache": b.get("ccache", {}),
        "repro_seconds": round(sum(r.get("wall", r.get("duration", 0)) for r in recs), 1),
        "start_seconds": [r.get("start_seconds") for r in recs],
        "start_median": statistics.median(starts) if starts else None,
        "forwarded_after_start": [sum(v or 0 for v in (r.get("forwarded_after_start") or {}).values()) for r in recs],
        "repro_logs": sorted({str(Path(r["log_path"]).parent.parent) for r in recs if r.get("log_path")}),
        # Per cycle, for the reports' pictures (hits per cycle with and without a patch).
        "cycle_outcomes": [r.get("outcome") for r in recs],
        "signature_counts": [len(r.get("signature_lines") or []) for r in recs],
        **forwarding_facts(recs),
    }
