"""Number formatting shared by the LaTeX and HTML outputs, so both print the same digits."""

from __future__ import annotations

import math
from typing import Any

NOT_AVAILABLE = "n/a"

# Decimals per kind of quantity; one place to change if the paper needs more precision.
DIGITS = {"cpu": 2, "cv": 3, "ratio": 2, "pct": 1, "seconds": 2, "gib": 1}


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value: Any, kind: str) -> str:
    """``value`` with the decimals for ``kind``; "n/a" for a missing value (e.g. one rep)."""
    if is_missing(value):
        return NOT_AVAILABLE
    return f"{float(value):.{DIGITS[kind]}f}"


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
