"""Running 32-bit x86 glibc binaries (zig's x86-linux-gnu builds) on this 64-bit Linux machine.

The kernel runs them; what is missing on a plain amd64 system is the i386 C library. When the
system has none (/lib/ld-linux.so.2), Debian's ``libc6:i386`` package is fetched once with
apt-get into a private state directory (the system's apt configuration is untouched),
unpacked into the user's cache and used through its loader: ``ld-linux.so.2 --library-path
LIBDIR BINARY ARGS``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SYSTEM_LOADER = Path("/lib/ld-linux.so.2")
_APT_OPTIONS = ("-o", "APT::Architecture=i386", "-o", "APT::Architectures::=i386",
                "-o", "Dir::State::status=/dev/null", "-q")


@dataclass(frozen=True)
class I386Runtime:
    prefix: list[str]  # what goes before the binary's path
    source: str  # where the C library comes from


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "papaya-bench" / "i386-libc"


def find_runtime(fetch: bool = True) -> tuple[I386Runtime | None, str]:
    """The way to run an i386 glibc binary here, or (None, why not)."""
    if not Path("/proc/self").is_dir() or os.uname().machine not in ("x86_64", "i686"):
        return None, f"not an x86 Linux machine ({os.uname().sysname} {os.uname().machine})"
    if SYSTEM_LOADER.exists():
        return I386Runtime([], f"system ({SYSTEM_LOADER})"), ""
    root = cache_dir() / "root"
    loader = root / "lib" / "i386-linux-gnu" / "ld-linux.so.2"
    if not loader.exists() and fetch:
        error = _fetch(root)
        if error:
            return None, error
    if not loader.exists():
        return None, "no i386 C library (install libc6:i386)"
    version = (cache_dir() / "VERSION").read_text().strip() \
        if (cache_dir() / "VERSION").exists() else "libc6:i386"
    return I386Runtime([str(loader), "--library-path", str(loader.parent)],
                       f"Debian {version}, unpacked in {cache_dir()}"), ""


def _fetch(root: Path) -> str:
    """Download and unpack libc6:i386; an error message, or "" on success."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            return f"no i386 C library and no {tool} to fetch one (install libc6:i386)"
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        state = Path(tmp)
        for sub in ("lists/partial", "cache/archives/partial", "deb"):
            (state / sub).mkdir(parents=True)
        options = [*_APT_OPTIONS, "-o", f"Dir::State::Lists={state / 'lists'}",
                   "-o", f"Dir::Cache={state / 'cache'}"]
        # A mirror in sync may fail one index (security): the main one is all we need.
        subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True,
                       timeout=300, check=False)
        got = subprocess.run(["apt-get", *options, "download", "libc6:i386"],
                             cwd=state / "deb", capture_output=True, text=True, timeout=300,
                             check=False)
        debs = sorted((state / "deb").glob("libc6_*_i386.deb"))
        if got.returncode != 0 or not debs:
            return f"could not fetch libc6:i386 with apt-get: {got.stderr.strip()[-300:]}"
        unpack = state / "root"
        result = subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpack)],
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            return f"dpkg-deb -x {debs[0].name}: {result.stderr.strip()}"
        shutil.rmtree(root, ignore_errors=True)
        unpack.rename(root)  # complete or absent, never half there
        (cache_dir() / "VERSION").write_text(debs[0].name.removesuffix(".deb") + "\n")
    return ""
