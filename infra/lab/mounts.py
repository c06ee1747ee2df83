"""Finding and removing mounts under a directory (lab roots, debootstrap build trees)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def _decode(field: str) -> str:
    # /proc/self/mounts escapes space, tab, newline and backslash as octal.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below ``directory`` in this mount namespace, deepest first."""
    base = Path(directory).resolve(strict=False)
    found: list[Path] = []
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        point = Path(_decode(fields[1]))
        if point == base or base in point.parents:
            found.append(point)
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def unmount_under(directory: Path) -> list[Path]:
    """Unmount everything below ``directory``, deepest first; lazily if a mount stays busy."""
    removed: list[Path] = []
    for _ in range(5):  # stacked mounts on one point need one umount each
        points = mounts_under(directory)
        if not points:
            break
        for point in points:
            result = subprocess.run(["umount", str(point)], capture_output=True, check=False)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
            removed.append(point)
    return removed
