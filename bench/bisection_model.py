"""Shared by bench/plan.py and bench/simulate.py: the build-cost samples of the committed
real-run reports."""
from __future__ import annotations

import json

from afpbisect import cost


def report_samples(paths: list) -> list:
    """(distance, build seconds) of every fresh build in the run reports among `paths`."""
    out = []
    for p in paths:
        try:
            d = json.load(open(p))
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and d.get("command", "").startswith("run") or "steps" in d:
            out += cost.samples_from_steps(d.get("steps", []) if isinstance(d, dict) else [])
    return out
