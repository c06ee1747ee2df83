"""Parse the human units used in configs and on tcpkali's command line.

Bandwidth follows tcpkali: lower-case ``b`` is bits, upper-case ``B`` is bytes, and the
prefixes are decimal (k = 1000, M = 10**6, G = 10**9), so ``1Mbps`` is 10**6 bits/s and
``1kBps`` is 8000 bits/s.
"""

from __future__ import annotations

import re

_DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$")

_PREFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
_BANDWIDTH_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKMG]?)(bps|Bps)\s*$")


class UnitError(ValueError):
    """A value that is not a valid duration or bandwidth."""


def parse_duration(text: str | int | float) -> float:
    """Seconds from ``"500ms"``, ``"8s"``, ``"1m"``, ``"2h"`` or a bare number of seconds."""
    if isinstance(text, bool):
        raise UnitError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _DURATION_RE.match(text)
        if not match:
            raise UnitError(f"not a duration: {text!r} (expected e.g. 500ms, 8s, 1m, 2h)")
        value = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    if value < 0:
        raise UnitError(f"negative duration: {text!r}")
    return value


def parse_bandwidth(text: str | int | float) -> float:
    """Bits per second from ``"1Mbps"``, ``"100kbps"``, ``"125kBps"`` or a bare number of bits/s."""
    if isinstance(text, bool):
        raise UnitError(f"not a bandwidth: {text!r}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _BANDWIDTH_RE.match(text)
        if not match:
            raise UnitError(
                f"not a bandwidth: {text!r} (expected e.g. 1Mbps, 100kbps, 125kBps)"
            )
        number, prefix, unit = match.groups()
        value = float(number) * _PREFIXES[prefix] * (8.0 if unit == "Bps" else 1.0)
    if value < 0:
        raise UnitError(f"negative bandwidth: {text!r}")
    return value


def format_bandwidth(bits_per_second: float) -> str:
    """The shortest tcpkali-style spelling, e.g. 1000000 -> ``"1Mbps"``."""
    for prefix, factor in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if bits_per_second >= factor and bits_per_second % factor == 0:
            return f"{int(bits_per_second // factor)}{prefix}bps"
    # Plain decimals: exponent notation ("1.2e+06") is not a unit either parser accepts.
    return f"{bits_per_second:.3f}".rstrip("0").rstrip(".") + "bps"
