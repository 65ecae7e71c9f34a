"""How busy the machine was around a cycle: the hit rate moves with the load (issue 16)."""
from __future__ import annotations


def cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores (/proc/stat), or None where there is none.

    The hit rate moves with the machine's load (NOTES: 8 of 8 beside a build, 1 in 4 on a
    quiet machine), so each cycle records how busy the machine was (issue 16)."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)   # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_busy(before, after) -> float | None:
    """Share of all cores busy between two cpu_times() readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round((after[0] - before[0]) / (after[1] - before[1]), 3)
