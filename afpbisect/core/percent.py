"""One way to print a probability as a percentage (issue 25: `--confidence 0.9999` printed
"100.00%", a claim of certainty no finite number of cycles gives)."""
from __future__ import annotations

import math


def pct(x) -> str:
    """Percent, truncated (never rounded up), with digits enough that a value below 1
    never reads 100%: 0.99997 -> "99.997%", 0.99999999 -> "99.999%" (truncated)."""
    if x is None:
        return "-"
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    digits = 3 if 0 < x < 0.01 or 0.999 <= x < 1 else 2 if 0.99 <= x < 0.999 else 1
    if x >= 1.0 or x <= 0.0:
        return f"{100 * x:.{digits}f}%"
    while digits < 15:
        scale = 10 ** digits
        shown = math.floor(100 * x * scale + 1e-9) / scale
        if shown < 100.0:
            return f"{shown:.{digits}f}%"
        digits += 1
    return f"{100 * x:.15f}%"
