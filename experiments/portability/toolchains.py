"""Which C compilers and makes a host has, and the two compiler modes of the matrix.

Probed by running commands through ``Host`` so the same code describes this machine, a Debian
lab host and a FreeBSD machine (whose ``make`` is BSD make and GNU make is ``gmake``).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.facts import first_line
from infra.hosts import Host, HostError

WARNING_FLAGS = "-Wall -Wextra -Werror -O2"
# strict: glibc's signal() has System V semantics here (the original study's Debian failure).
MODES = {
    "strict": f"-std=c99 -D_POSIX_C_SOURCE=200809L -pedantic {WARNING_FLAGS}",
    "gnu": f"-std=gnu11 {WARNING_FLAGS}",
}
REFERENCE_MODE = "strict"  # the Makefiles' default, and the build the tests run on


@dataclass(frozen=True)
class Tool:
    kind: str  # gcc | clang (compilers); gnu | bsd (makes)
    command: str
    version: str

    @property
    def label(self) -> str:
        return {"gnu": "GNU make", "bsd": "bmake"}.get(self.kind, self.kind)


def _first_output_line(host: Host, cmd: list[str]) -> str | None:
    try:
        if host.which(cmd[0]) is None:
            return None
        result = host.run(cmd, check=False, timeout=30)
    except HostError:
        return None
    if result.returncode != 0:
        return None
    return first_line(result.stdout or result.stderr) or None


def compilers(host: Host) -> list[Tool]:
    """gcc and clang where present (by name, else whichever ``cc`` is), gcc first."""
    found: dict[str, Tool] = {}
    for command in ("gcc", "clang", "cc"):
        version = _first_output_line(host, [command, "--version"])
        if version is None:
            continue
        kind = "clang" if "clang" in version.lower() else "gcc"
        if kind not in found and (command != "cc" or kind not in found):
            found[kind] = Tool(kind, command, version)
    return [found[k] for k in ("gcc", "clang") if k in found]


def makes(host: Host) -> list[Tool]:
    """GNU make (``make`` or ``gmake``) and BSD make (``bmake``, or FreeBSD's ``make``)."""
    found: dict[str, Tool] = {}
    for command in ("make", "gmake"):
        version = _first_output_line(host, [command, "--version"])
        if version and "GNU Make" in version and "gnu" not in found:
            found["gnu"] = Tool("gnu", command, version)
    for command in ("bmake", "make"):
        if command == found.get("gnu", Tool("", "", "")).command:
            continue
        version = _first_output_line(host, [command, "-V", "MAKE_VERSION"])
        if version and version.strip().isdigit() and "bsd" not in found:
            found["bsd"] = Tool("bsd", command, f"{command} {version.strip()}")
    return [found[k] for k in ("gnu", "bsd") if k in found]


def go_target(os_name: str, arch: str) -> tuple[str, str] | None:
    """(GOOS, GOARCH) of a host from its ``uname -s`` and ``uname -m``, or None."""
    goos = {"linux": "linux", "freebsd": "freebsd"}.get(os_name.lower())
    goarch = {"x86_64": "amd64", "amd64": "amd64", "i386": "386", "i486": "386",
              "i586": "386", "i686": "386", "aarch64": "arm64", "arm64": "arm64"}.get(arch)
    return (goos, goarch) if goos and goarch else None
