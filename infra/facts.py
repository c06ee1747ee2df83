"""What a host is: OS, kernel, architecture, CPU, memory, compilers.

The parsers take command output as text so the same code reads a local machine, a remote
Linux host or a FreeBSD host (whose output the tests replay from recordings).
"""

from __future__ import annotations

import platform
import re
import socket
from pathlib import Path
from typing import Any

import psutil

from infra.hosts import Host, HostError


def parse_os_release(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"')
    return values


def first_line(text: str) -> str:
    return text.strip().splitlines()[0].strip() if text.strip() else ""


def cpu_model_from_cpuinfo(text: str) -> str:
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def tool_version(host: Host, cmd: list[str]) -> str | None:
    """First line of a version command, or None when the tool is missing or fails."""
    if host.which(cmd[0]) is None:
        return None
    try:
        result = host.run(cmd, check=False, timeout=30)
    except HostError:
        return None
    if result.returncode != 0:
        return None
    return first_line(result.stdout or result.stderr)


def local_facts(host: Host) -> dict[str, Any]:
    os_release = "unknown"
    release_file = Path("/etc/os-release")
    if release_file.is_file():
        os_release = parse_os_release(release_file.read_text()).get("PRETTY_NAME", "unknown")
    elif platform.system() == "FreeBSD":
        os_release = tool_version(host, ["freebsd-version"]) or "FreeBSD"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu_model = cpu_model_from_cpuinfo(cpuinfo.read_text())
    else:
        cpu_model = tool_version(host, ["sysctl", "-n", "hw.model"]) or platform.processor()
    return {
        "hostname": socket.gethostname(),
        "os": platform.system(),
        "os_release": os_release,
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cpu_model": cpu_model,
        "cores": psutil.cpu_count(logical=True),
        "usable_cpus": sorted(psutil.Process().cpu_affinity() or [])
        if hasattr(psutil.Process, "cpu_affinity") else list(range(psutil.cpu_count() or 1)),
        "memory_bytes": psutil.virtual_memory().total,
        "cc": tool_version(host, ["cc", "--version"]),
        "go": tool_version(host, ["go", "version"]),
        "make": tool_version(host, ["make", "--version"]),
        "python": platform.python_version(),
    }
