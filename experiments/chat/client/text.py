"""Text on the screen: making received bytes safe to show, display widths, wrapping."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import unicodedata

_libc_wcwidth = None
try:  # the terminal and curses measure characters with libc's wcwidth; use the same when we can
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
    _libc_wcwidth = _libc.wcwidth
    _libc_wcwidth.argtypes = [ctypes.c_wchar]
    _libc_wcwidth.restype = ctypes.c_int
except (OSError, AttributeError):  # pragma: no cover - no libc wcwidth on this system
    _libc_wcwidth = None


def decode(data: bytes) -> str:
    """A line from the server as text: UTF-8, undecodable bytes shown as U+FFFD."""
    return sanitize(data.decode("utf-8", errors="replace"))


def sanitize(text: str) -> str:
    """``text`` with nothing that could steer the terminal: control characters become
    caret notation (^[ for ESC), tabs a space, format characters (bidi overrides, zero-width
    characters) are dropped."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == "\t":
            out.append(" ")
        elif code < 0x20 or code == 0x7F:
            out.append("^" + chr(code ^ 0x40))
        elif 0x80 <= code < 0xA0:
            out.append("\ufffd")
        else:
            category = unicodedata.category(ch)
            if category == "Cf":
                continue
            if category in ("Cs", "Co", "Cn"):
                out.append("\ufffd")
            else:
                out.append(ch)
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def char_width(ch: str) -> int:
    """Columns ``ch`` takes on the terminal (0 for combining marks, 2 for wide characters)."""
    if _libc_wcwidth is not None:
        width = _libc_wcwidth(ch)
        if width >= 0:
            return width
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def text_width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def wrap(text: str, width: int) -> list[str]:
    """``text`` cut into rows of at most ``width`` columns, preferably at spaces."""
    width = max(width, 2)
    rows: list[str] = []
    row: list[str] = []
    row_width = 0
    last_space = -1
    for ch in text:
        w = char_width(ch)
        if row_width + w > width:
            if ch == " ":
                rows.append("".join(row))
                row, row_width, last_space = [], 0, -1
                continue
            # Break at the last space unless that would leave the row less than half full
            # (a long word or URL is cut instead).
            if last_space > 0 and text_width("".join(row[:last_space])) >= width // 2:
                rows.append("".join(row[:last_space]))
                row = row[last_space + 1:]
            else:
                rows.append("".join(row))
                row = []
            row_width = text_width("".join(row))
            last_space = -1
        row.append(ch)
        row_width += w
        if ch == " ":
            last_space = len(row) - 1
    rows.append("".join(row))
    return rows


def fit_input(text: str, cursor: int, width: int, start: int = 0) -> tuple[str, int, int]:
    """What to show of the input line in ``width`` columns so that the cursor (an index into
    ``text``) is visible: (shown text, the cursor's column in it, the new window start).
    ``start`` is the previous window start, kept while the cursor stays inside the window."""
    width = max(width, 2)
    start = min(max(start, 0), cursor)
    used = text_width(text[start:cursor])
    while used > width - 1:  # keep one column for the cursor itself
        used -= char_width(text[start])
        start += 1
    shown = []
    total = 0
    for ch in text[start:]:
        w = char_width(ch)
        if total + w > width:
            break
        shown.append(ch)
        total += w
    return "".join(shown), used, start
