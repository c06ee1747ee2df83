"""Regression (3): no C source calls ``signal()``.

glibc's ``signal()`` has System V semantics (one-shot handler, no restart of interrupted
calls) under strict ISO C modes and BSD semantics otherwise; the original study's Debian build
broke on exactly that. Every handler must be installed with ``sigaction()``. Comments and
string literals are blanked out first, so a comment mentioning signal() is not a call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A call: the identifier itself (not part of another one) followed by "(".
_CALL = re.compile(r"(?<![A-Za-z0-9_])signal\s*\(")
# Comments, string and character literals, in one pass so that "/*" inside a string and a
# quote inside a comment are both handled.
_NOISE = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


@dataclass
class SignalCheck:
    files_checked: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)  # "path:line: text"

    @property
    def passed(self) -> bool:
        return bool(self.files_checked) and not self.calls

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "files_checked": self.files_checked,
                "calls": self.calls}


def _blank(match: re.Match[str]) -> str:
    """Keep line breaks so that line numbers stay right."""
    return "".join("\n" if ch == "\n" else " " for ch in match.group(0))


def signal_calls(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every signal() call in C source ``text``."""
    code = _NOISE.sub(_blank, text)
    lines, found = text.splitlines(), []
    for match in _CALL.finditer(code):
        number = code.count("\n", 0, match.start()) + 1
        found.append((number, lines[number - 1].strip()))
    return found


def check_sources(source_dirs: list[Path], root: Path | None = None) -> SignalCheck:
    """Every .c and .h file directly in ``source_dirs``; paths shown relative to ``root``."""
    result = SignalCheck()
    for directory in source_dirs:
        for path in sorted([*directory.glob("*.c"), *directory.glob("*.h")]):
            shown = str(path.relative_to(root)) if root else str(path)
            result.files_checked.append(shown)
            for number, line in signal_calls(path.read_text(errors="replace")):
                result.calls.append(f"{shown}:{number}: {line}")
    return result
