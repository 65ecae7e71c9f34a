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


def pct_up(x) -> str:
    """Percent rounded UP, for a probability stated as a bound from above ("at most"): a
    miss of 0.0655% truncated read "at most 0.065%", a claim the data do not make. A
    positive value never reads 0."""
    if x is None:
        return "-"
    x = float(x)
    if not math.isfinite(x) or x <= 0.0 or x >= 1.0:
        return pct(x)
    digits = 3 if x < 0.01 or x >= 0.999 else 2 if x >= 0.99 else 1
    scale = 10 ** digits
    return f"{math.ceil(100 * x * scale - 1e-9) / scale:.{digits}f}%"


def up(x: float, sig: int = 2) -> str:
    """`x` rounded UP to `sig` significant digits ("miss <= ..."): `f"{x:.2g}"` printed a
    budget of 0.000304 as 0.0003."""
    if not math.isfinite(x) or x <= 0.0:
        return f"{x:.{sig}g}"
    scale = 10.0 ** (sig - 1 - math.floor(math.log10(x)))
    return f"{math.ceil(x * scale - 1e-9) / scale:.{sig}g}"


def down(x: float, digits: int = 3) -> str:
    """`x` rounded DOWN to `digits` decimals, for a lower bound ("p >= ...")."""
    scale = 10 ** digits
    return f"{math.floor(x * scale + 1e-12) / scale:.{digits}f}"
