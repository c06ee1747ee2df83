"""Number formatting shared by the LaTeX and HTML outputs, so both print the same digits."""

from __future__ import annotations

import math
from typing import Any

NOT_AVAILABLE = "n/a"

# Decimals per kind of quantity; one place to change if the paper needs more precision.
DIGITS = {"cpu": 2, "cv": 3, "ratio": 2, "pct": 1, "seconds": 2, "gib": 1, "p": 3, "g": 2,
          "slope": 3, "exponent": 2, "ctx": 1, "acf": 2, "stat": 2, "period": 1, "share": 2,
          "ms": 2}
P_FLOOR = 0.001  # p-values below this print as "<0.001": more digits claim false precision


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: Any, kind: str) -> str:
    """``value`` with the decimals for ``kind``; "n/a" for a missing value (e.g. one rep)."""
    if is_missing(value):
        return NOT_AVAILABLE
    text = f"{float(value):.{DIGITS[kind]}f}"
    return text.lstrip("-") if float(text) == 0 else text  # never "-0.00"


def fmt_plain(value: float) -> str:
    """A measured setting (2.0 s, 500 ms) without trailing zeros: 2, 0.5, 500."""
    if is_missing(value):
        return NOT_AVAILABLE
    return f"{float(value):g}"


def fmt_levels(values: tuple[Any, ...] | list[Any], formatter: Any = fmt_plain) -> str:
    """Distinct values joined for prose; normally a single value."""
    if not values:
        return NOT_AVAILABLE
    return ", ".join(formatter(v) for v in values)


def fmt_bandwidth(bits_per_second: float) -> str:
    """Bits per second in the largest decimal unit that keeps the number readable."""
    if is_missing(bits_per_second):
        return NOT_AVAILABLE
    for unit, factor in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if abs(bits_per_second) >= factor:
            return f"{bits_per_second / factor:g} {unit}"
    return f"{bits_per_second:g} bit/s"


def fmt_p(value: Any) -> str:
    """A p-value with three decimals, "<0.001" below that, "n/a" when not computed."""
    if is_missing(value):
        return NOT_AVAILABLE
    return f"<{P_FLOOR:g}" if float(value) < P_FLOOR else f"{float(value):.{DIGITS['p']}f}"


def fmt_interval(low: Any, high: Any, kind: str) -> str:
    """"[low, high]" or "n/a" when either bound is missing."""
    if is_missing(low) or is_missing(high):
        return NOT_AVAILABLE
    return f"[{fmt(low, kind)}, {fmt(high, kind)}]"


def fmt_int(value: Any) -> str:
    return NOT_AVAILABLE if is_missing(value) else str(int(value))


def fmt_percent(value: Any, kind: str = "pct") -> str:
    """A fraction as a percentage: 0.253 -> "25.3"."""
    return NOT_AVAILABLE if is_missing(value) else fmt(100 * float(value), kind)
