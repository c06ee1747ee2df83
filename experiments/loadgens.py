"""Command lines for the two load generators, and their output in one shape.

The native generator (``experiments/loadgen``, binary ``papaya-loadgen``) prints the
``loadgen.json`` summary of ``data/README.md`` on stdout. tcpkali prints a human summary
instead; :func:`parse_tcpkali_output` turns it into the same dict, with ``None`` where
tcpkali does not report a field.

Both take tcpkali's options, with two differences worth knowing when comparing them:

* tcpkali's ``-T`` is the steady-state time *after* all connections are up, and its
  totals leave the ramp-up out; papaya-loadgen's ``-T`` counts from the first connect
  attempt and its totals include everything sent.
* tcpkali's "Bandwidth per channel" is the mean of sent plus received; it has no
  per-connection minimum, median or maximum.

The chat workload (:func:`chat_command`) needs papaya-loadgen's chat mode: it sends the
key first, then timestamped lines, and measures each line's delivery latency on every
connection; tcpkali has no equivalent, and its summaries carry null chat fields.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

from experiments.units import UnitError, format_bandwidth, parse_bandwidth

NATIVE_TOOL = "papaya-loadgen"
TCPKALI_TOOL = "tcpkali"

#: The keys of a loadgen.json summary, in schema order.
SUMMARY_KEYS = (
    "tool",
    "version",
    "target",
    "connections",
    "duration_s",
    "bytes_sent",
    "bytes_received",
    "messages_sent",
    "target_bandwidth_bps",
    "aggregate_bandwidth_bps",
    "per_connection_bandwidth_bps",
    "errors",
)

#: Keys papaya-loadgen (0.2.0 and later) adds after SUMMARY_KEYS; the lines_* and
#: ``chat`` are null outside chat mode, ``latency_s`` then has count 0.
CHAT_KEYS = (
    "lines_sent",
    "lines_received",
    "lines_expected",
    "lines_out_of_order",
    "lines_other_received",
    "latency_s",
    "chat",
)

#: The keys of ``latency_s`` (seconds; null when there are no samples, and ``count`` 0).
LATENCY_KEYS = ("count", "min", "p50", "p90", "p99", "p999", "max", "mean")

#: The protocol's longest line, newline included (experiments/chat/PROTOCOL.md).
MAX_LINE_BYTES = 4096
DEFAULT_MESSAGE_SIZE = 64


class LoadgenOutputError(ValueError):
    """Load generator output that cannot be read as a summary."""


# --- command lines -------------------------------------------------------------------


def escape_message(text: str) -> str:
    r"""Spell ``text`` for ``-e``: backslash, newline, CR, tab and other control bytes
    become ``\\``, ``\n``, ``\r``, ``\t`` and ``\xHH``, so any message survives argv."""
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def duration_arg(seconds: float) -> str:
    """``-T`` spelling of a duration, exact for whole milliseconds: 10 -> ``"10s"``,
    2.5 -> ``"2500ms"``."""
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"duration must be a positive number of seconds, got {seconds!r}")
    ms = seconds * 1000
    if ms == round(ms):
        ms = int(round(ms))
        return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def bandwidth_arg(bits_per_second: float) -> str:
    """``--channel-bandwidth-upstream`` spelling of a bandwidth, e.g. 1e6 -> ``"1Mbps"``."""
    bps = bits_per_second
    if not (isinstance(bps, int | float) and math.isfinite(bps) and bps > 0):
        raise ValueError(f"bandwidth must be a positive number of bits/s, got {bps!r}")
    text = format_bandwidth(bps)
    try:
        if parse_bandwidth(text) == bps:
            return text
    except UnitError:
        pass
    return f"{bps:.6f}".rstrip("0").rstrip(".") + "bps"


def _command(
    binary: Path,
    target: str,
    connections: int,
    duration_s: float,
    message: str,
    bandwidth_bps: float | None,
    first_message: str | None,
    connect_rate: int | None,
) -> list[str]:
    if isinstance(connections, bool) or not isinstance(connections, int) or connections < 1:
        raise ValueError(f"connections must be a positive integer, got {connections!r}")
    if ":" not in target:
        raise ValueError(f"target must be host:port, got {target!r}")
    args = [str(binary), "-c", str(connections), "-T", duration_arg(duration_s)]
    if message or first_message:
        args.append("-e")  # tcpkali applies -e only to the message options after it
    if message:
        args += ["-m", escape_message(message)]
    if first_message:
        args += ["-1", escape_message(first_message)]
    if bandwidth_bps is not None:
        if not message:
            raise ValueError("a bandwidth needs a message to send")
        args += ["--channel-bandwidth-upstream", bandwidth_arg(bandwidth_bps)]
    if connect_rate is not None:
        if isinstance(connect_rate, bool) or not isinstance(connect_rate, int) or connect_rate < 1:
            raise ValueError(f"connect_rate must be a positive integer, got {connect_rate!r}")
        args += ["--connect-rate", str(connect_rate)]
    args.append(target)
    return args


def native_command(
    binary: Path,
    target: str,
    connections: int,
    duration_s: float,
    message: str,
    bandwidth_bps: float | None,
    first_message: str | None = None,
    connect_rate: int | None = None,
) -> list[str]:
    """Argv for papaya-loadgen; its stdout is the JSON summary (:func:`parse_native_summary`).

    ``bandwidth_bps`` is per connection (None: unpaced). Messages are passed escaped,
    with ``-e``, so they may hold any character.
    """
    return _command(
        binary, target, connections, duration_s, message, bandwidth_bps, first_message, connect_rate
    )


def tcpkali_command(
    binary: Path,
    target: str,
    connections: int,
    duration_s: float,
    message: str,
    bandwidth_bps: float | None,
    first_message: str | None = None,
    connect_rate: int | None = None,
) -> list[str]:
    """Argv for a real tcpkali; read its stdout and stderr together with
    :func:`parse_tcpkali_output`. Same parameters as :func:`native_command`."""
    return _command(
        binary, target, connections, duration_s, message, bandwidth_bps, first_message, connect_rate
    )


def rate_arg(rate: float) -> str:
    """``-r`` spelling of a positive rate: 10 -> ``"10"``, 2.5 -> ``"2.5"``."""
    if not (_is_number(rate) and math.isfinite(rate) and rate > 0):
        raise ValueError(f"message_rate must be a positive number of lines/s, got {rate!r}")
    return str(int(rate)) if float(rate).is_integer() else repr(float(rate))


def chat_command(
    binary: Path,
    target: str,
    connections: int,
    duration_s: float,
    message_rate: float,
    key_file: Path | str,
    message_size: int = DEFAULT_MESSAGE_SIZE,
    connect_rate: int | None = None,
    *,
    username_prefix: str | None = None,
    drain_s: float | None = None,
) -> list[str]:
    """Argv for papaya-loadgen in chat mode; its stdout is the JSON summary.

    Each connection sends the key in ``key_file`` (128 printable ASCII characters,
    optionally followed by a newline) first, then ``message_rate`` lines per second of
    ``message_size`` bytes as ``user<i>: t=... seq=... run=...``, and reads every line
    the server delivers. ``drain_s`` is how long to wait after the run for lines in flight
    (default 1 s); ``username_prefix`` replaces ``user``.
    """
    if isinstance(connections, bool) or not isinstance(connections, int) or connections < 1:
        raise ValueError(f"connections must be a positive integer, got {connections!r}")
    if ":" not in target:
        raise ValueError(f"target must be host:port, got {target!r}")
    if not str(key_file):
        raise ValueError("key_file must be a path")
    if (
        isinstance(message_size, bool)
        or not isinstance(message_size, int)
        or not 1 <= message_size <= MAX_LINE_BYTES
    ):
        raise ValueError(
            f"message_size must be an integer from 1 to {MAX_LINE_BYTES} bytes, "
            f"got {message_size!r}"
        )
    args = [
        str(binary), "--chat", "--key-file", str(key_file), "-c", str(connections),
        "-T", duration_arg(duration_s), "-r", rate_arg(message_rate),
        "--message-size", str(message_size),
    ]  # fmt: skip
    if connect_rate is not None:
        if isinstance(connect_rate, bool) or not isinstance(connect_rate, int) or connect_rate < 1:
            raise ValueError(f"connect_rate must be a positive integer, got {connect_rate!r}")
        args += ["--connect-rate", str(connect_rate)]
    if username_prefix is not None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", username_prefix):
            raise ValueError(
                "username_prefix must be 1 to 64 letters, digits, _ . or -, "
                f"got {username_prefix!r}"
            )
        args += ["--username-prefix", username_prefix]
    if drain_s is not None:
        if not (_is_number(drain_s) and math.isfinite(drain_s) and 0 <= drain_s <= 60):
            raise ValueError(f"drain_s must be from 0 to 60 seconds, got {drain_s!r}")
        args += ["--drain", "0" if drain_s == 0 else duration_arg(drain_s)]
    args.append(target)
    return args


def find_tcpkali() -> Path | None:
    """The tcpkali binary on PATH, or None."""
    found = shutil.which(TCPKALI_TOOL)
    return Path(found) if found else None


# --- the native summary --------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise LoadgenOutputError(f"loadgen summary: {what}")


def validate_summary(summary: Any, *, native: bool = True) -> dict:
    """Check a loadgen.json dict's keys and types; returns it. With ``native`` False
    (tcpkali), ``version``, ``messages_sent`` and the connection counts may be null, and
    the chat keys may be missing."""
    _check(isinstance(summary, dict), f"expected a JSON object, got {type(summary).__name__}")
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    _check(not missing, f"missing key(s) {', '.join(missing)}")

    def opt(pred: Any, v: Any) -> bool:
        return pred(v) or (v is None and not native)

    s = summary
    _check(isinstance(s["tool"], str), "tool must be a string")
    _check(opt(lambda v: isinstance(v, str), s["version"]), "version must be a string")
    _check(isinstance(s["target"], str), "target must be a string")
    conns = s["connections"]
    _check(isinstance(conns, dict), "connections must be an object")
    for k in ("requested", "opened", "failed"):
        _check(k in conns, f"connections.{k} is missing")
        ok = _is_int(conns[k]) and conns[k] >= 0
        _check(
            ok or (conns[k] is None and not native and k != "requested"),
            f"connections.{k} must be a non-negative integer, got {conns[k]!r}",
        )
    _check(_is_number(s["duration_s"]) and s["duration_s"] >= 0, "duration_s must be a number >= 0")
    for k in ("bytes_sent", "bytes_received"):
        _check(_is_int(s[k]) and s[k] >= 0, f"{k} must be a non-negative integer")
    _check(opt(_is_int, s["messages_sent"]), "messages_sent must be an integer")
    for k in ("target_bandwidth_bps", "aggregate_bandwidth_bps"):
        _check(s[k] is None or _is_number(s[k]), f"{k} must be a number or null")
    per = s["per_connection_bandwidth_bps"]
    _check(isinstance(per, dict), "per_connection_bandwidth_bps must be an object")
    for k in ("min", "median", "max"):
        _check(k in per, f"per_connection_bandwidth_bps.{k} is missing")
        _check(
            per[k] is None or _is_number(per[k]),
            f"per_connection_bandwidth_bps.{k} must be a number or null",
        )
    _check(
        isinstance(s["errors"], list) and all(isinstance(e, str) for e in s["errors"]),
        "errors must be a list of strings",
    )
    if native or any(k in s for k in CHAT_KEYS):
        _validate_chat(s)
    return summary


def _validate_chat(s: dict) -> None:
    missing = [k for k in CHAT_KEYS if k not in s]
    _check(not missing, f"missing key(s) {', '.join(missing)}")
    chat = s["chat"]
    _check(chat is None or isinstance(chat, dict), "chat must be an object or null")
    for k in CHAT_KEYS[:5]:  # the lines_* counts: null only outside chat mode
        v = s[k]
        _check(
            (_is_int(v) and v >= 0) or (v is None and chat is None),
            f"{k} must be a non-negative integer{' or null' if chat is None else ''}, got {v!r}",
        )
    lat = s["latency_s"]
    _check(isinstance(lat, dict), "latency_s must be an object")
    missing = [k for k in LATENCY_KEYS if k not in lat]
    _check(not missing, f"latency_s is missing {', '.join(missing)}")
    count = lat["count"]
    _check(
        (_is_int(count) and count >= 0) or (count is None and chat is None),
        f"latency_s.count must be a non-negative integer, got {count!r}",
    )
    for k in LATENCY_KEYS[1:]:
        v = lat[k]
        _check(v is None or (_is_number(v) and v >= 0), f"latency_s.{k} must be a number >= 0")
        _check((v is None) == (not count), f"latency_s.{k} must be null exactly when count is 0")
    if chat is None:
        return
    kinds: dict[str, Any] = {
        "message_rate": _is_number, "message_size": _is_int, "username_prefix": str,
        "key_sent": bool, "run_id": str, "drain_s": _is_number,
    }  # fmt: skip
    for k, kind in kinds.items():
        _check(k in chat, f"chat.{k} is missing")
        ok = isinstance(chat[k], kind) if isinstance(kind, type) else kind(chat[k])
        _check(ok, f"chat.{k} has the wrong type: {chat[k]!r}")


def parse_native_summary(text: str) -> dict:
    """The loadgen.json dict from papaya-loadgen's stdout; raises LoadgenOutputError
    naming what is wrong when it is not valid JSON or not the expected shape."""
    if not text.strip():
        raise LoadgenOutputError("loadgen summary: empty output (did the load generator run?)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        head = text.strip()[:120]
        raise LoadgenOutputError(
            f"loadgen summary: not JSON ({exc}); output began {head!r}"
        ) from exc
    return validate_summary(data)


# --- tcpkali's human summary ---------------------------------------------------------

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_NUM = r"([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
_SENT_RE = re.compile(r"^Total data sent:\s+.*\((\d+) bytes\)\s*$")
_RCVD_RE = re.compile(r"^Total data received:\s+.*\((\d+) bytes\)\s*$")
# tcpkali >= 0.9: "1.000⇅ Mbps (125.0 kBps)"; older: "1.000 Mbps, 125.0 kBps"
_PER_CHANNEL_RE = re.compile(rf"^Bandwidth per channel:\s*{_NUM}\s*⇅?\s*Mbps")
_AGGREGATE_RE = re.compile(rf"^Aggregate bandwidth:\s*{_NUM}\s*↓,\s*{_NUM}\s*↑\s*Mbps")
_PACKETS_RE = re.compile(
    rf"^Packet rate estimate:\s*{_NUM}\s*↓,\s*{_NUM}\s*↑\s*\((\d+)\s*↓,\s*(\d+)\s*↑\s*TCP MSS/op\)"
)
_DURATION_RE = re.compile(rf"^Test duration:\s*{_NUM}\s*s\.?\s*$")
_RAMPED_RE = re.compile(r"^Ramped up to (\d+) connections")
_COULD_NOT_RE = re.compile(r"^Could not create (\d+) connections?")
_ERROR_RE = re.compile(
    r"(?i)\b(error|errors|fail|failed|failure|could not|cannot|can not|refused|reset|"
    r"timed out|timeout|too many open files|unreachable)\b"
)
_SUMMARY_PREFIXES = (
    "Total data",
    "Bandwidth per channel",
    "Aggregate bandwidth",
    "Packet rate estimate",
    "Test duration",
)


def _lines(text: str) -> list[str]:
    # Progress lines are redrawn with \r and cleared with ANSI codes; keep the last state.
    text = _ANSI_RE.sub("", text)
    return [part.strip() for line in text.splitlines() for part in line.split("\r") if part.strip()]


def _dedupe(messages: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for m in messages:
        counts[m] = counts.get(m, 0) + 1
    return [m if n == 1 else f"{m} (x{n})" for m, n in counts.items()]


def parse_tcpkali_output(
    text: str, *, target: str, connections: int, bandwidth_bps: float | None
) -> dict:
    """The loadgen.json dict from tcpkali's output (stdout and stderr together).

    tcpkali reports totals over its steady state (after ramp-up); ``duration_s`` is its
    "Test duration" and the aggregate is bytes sent × 8 / that duration. Fields tcpkali
    does not report are None: ``version``, ``messages_sent`` and the per-connection
    spread (and the connection counts, unless it printed "Ramped up to N connections").
    tcpkali's other figures go under the extra key ``"tcpkali"``.
    """
    found: dict[str, re.Match[str]] = {}
    errors: list[str] = []
    patterns = {
        "sent": _SENT_RE,
        "received": _RCVD_RE,
        "per_channel": _PER_CHANNEL_RE,
        "aggregate": _AGGREGATE_RE,
        "packets": _PACKETS_RE,
        "duration": _DURATION_RE,
        "ramped": _RAMPED_RE,
        "could_not": _COULD_NOT_RE,
    }
    for line in _lines(text):
        for name, pattern in patterns.items():
            match = pattern.match(line)
            if match:
                found[name] = match
                if name == "could_not":
                    errors.append(line)
                break
        else:
            if _ERROR_RE.search(line) and not line.startswith(_SUMMARY_PREFIXES):
                errors.append(line)

    required = {
        "sent": "Total data sent:",
        "received": "Total data received:",
        "aggregate": "Aggregate bandwidth:",
        "duration": "Test duration:",
    }
    missing = [label for name, label in required.items() if name not in found]
    if missing:
        hint = f"; it said: {errors[0]!r}" if errors else ""
        raise LoadgenOutputError(
            f"tcpkali output has no {', '.join(repr(m) for m in missing)} line "
            f"(did the run finish?){hint}"
        )

    bytes_sent = int(found["sent"].group(1))
    bytes_received = int(found["received"].group(1))
    duration_s = float(found["duration"].group(1))
    down_mbps, up_mbps = (float(g) for g in found["aggregate"].groups())
    aggregate = bytes_sent * 8 / duration_s if duration_s > 0 else up_mbps * 1e6

    opened: int | None = None
    if "ramped" in found:
        opened = int(found["ramped"].group(1))
    elif "could_not" in found:
        opened = 0
    failed = None if opened is None else max(connections - opened, 0)

    extra: dict[str, Any] = {
        "bandwidth_per_channel_bps": (
            float(found["per_channel"].group(1)) * 1e6 if "per_channel" in found else None
        ),
        "aggregate_upstream_bps_reported": up_mbps * 1e6,
        "aggregate_downstream_bps_reported": down_mbps * 1e6,
        "packet_rate_received": None,
        "packet_rate_sent": None,
        "mss_per_op_received": None,
        "mss_per_op_sent": None,
    }
    if "packets" in found:
        pr_down, pr_up, mss_down, mss_up = found["packets"].groups()
        extra.update(
            packet_rate_received=float(pr_down),
            packet_rate_sent=float(pr_up),
            mss_per_op_received=int(mss_down),
            mss_per_op_sent=int(mss_up),
        )

    return {
        "tool": TCPKALI_TOOL,
        "version": None,
        "target": target,
        "connections": {"requested": connections, "opened": opened, "failed": failed},
        "duration_s": duration_s,
        "bytes_sent": bytes_sent,
        "bytes_received": bytes_received,
        "messages_sent": None,
        "target_bandwidth_bps": None if bandwidth_bps is None else float(bandwidth_bps),
        "aggregate_bandwidth_bps": aggregate,
        "per_connection_bandwidth_bps": {"min": None, "median": None, "max": None},
        "errors": _dedupe(errors),
        **{k: None for k in CHAT_KEYS[:5]},
        "latency_s": {k: None for k in LATENCY_KEYS},
        "chat": None,
        "tcpkali": extra,
    }
