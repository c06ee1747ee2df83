"""Facts about any host (local, lab, inventory, FreeBSD) learnt only by running commands on it.

``infra.facts.local_facts`` asks this Python process; ``gather_facts`` asks the host through
``Host.run``, so the same code describes a Debian lab host over SSH, a FreeBSD machine from an
inventory, and (in the tests) recorded output of the real commands on FreeBSD. Every command is
an argv list that both a POSIX sh and FreeBSD's csh run unchanged.

The parsers are pure functions of command output; the ones ``infra.facts`` already has are
reused from there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from infra.facts import cpu_model_from_cpuinfo, first_line, parse_os_release
from infra.hosts import Host, HostError

# One line each: csh (root's shell on FreeBSD 13) rejects newlines inside quotes.
PYTHON_VERSION = "import platform; print(platform.python_version())"
PSUTIL_VERSION = "import psutil; print(psutil.__version__)"

_TIMEOUT_S = 30


def output(host: Host, cmd: Sequence[str]) -> str | None:
    """stdout of ``cmd`` on ``host``, or None when it is missing or fails."""
    try:
        result = host.run(list(cmd), check=False, timeout=_TIMEOUT_S)
    except HostError as error:
        # A missing program is a fact (None); a dropped connection is not.
        if "not found" in str(error):
            return None
        raise
    if result.returncode != 0:
        return None
    return result.stdout


def version_line(host: Host, cmd: Sequence[str]) -> str | None:
    """First line of a ``--version`` style command, or None when the tool is missing."""
    text = output(host, cmd)
    if text is None:
        return None
    return first_line(text) or None


# ---------------------------------------------------------------------- parsers


def parse_uname_a(text: str) -> dict[str, str]:
    """sysname, nodename and release: POSIX fixes the order of the first three fields."""
    fields = text.split()
    if len(fields) < 3:
        raise ValueError(f"unexpected `uname -a` output: {text.strip()!r}")
    return {"sysname": fields[0], "nodename": fields[1], "release": fields[2]}


def parse_cpu_list(text: str) -> list[int]:
    """A Linux CPU list (``0-3,6``) or FreeBSD's comma list (``0, 1, 2``) as sorted ints."""
    cpus: set[int] = set()
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        low, sep, high = part.partition("-")
        if sep:
            cpus.update(range(int(low), int(high) + 1))
        else:
            cpus.add(int(part))
    return sorted(cpus)


def cpus_allowed_from_status(text: str) -> list[int]:
    """``Cpus_allowed_list`` of /proc/<pid>/status: the CPUs this process may run on."""
    match = re.search(r"^Cpus_allowed_list:\s*(\S+)\s*$", text, re.MULTILINE)
    if match is None:
        raise ValueError("no Cpus_allowed_list in /proc/self/status")
    return parse_cpu_list(match.group(1))


def cpus_from_cpuset_g(text: str) -> list[int]:
    """FreeBSD ``cpuset -g``: ``pid -1 mask: 0, 1, 2, 3`` (newer releases add a domain line)."""
    match = re.search(r"^pid\s+-?\d+\s+mask:[ \t]*([\d, \t-]+)$", text, re.MULTILINE)
    if match is None:
        raise ValueError(f"unexpected `cpuset -g` output: {text.strip()!r}")
    return parse_cpu_list(match.group(1))


def cpu_count_from_cpuinfo(text: str) -> int:
    return len(re.findall(r"^processor\s*:", text, re.MULTILINE))


def cpu_model_linux(text: str) -> str:
    """``model name`` on x86; ARM kernels name the CPU in other fields."""
    model = cpu_model_from_cpuinfo(text)
    if model != "unknown":
        return model
    for field in ("Model", "Hardware", "Processor", "cpu model", "cpu"):
        match = re.search(rf"^{field}\s*:\s*(.+)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return "unknown"


def memory_from_meminfo(text: str) -> int:
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB", text, re.MULTILINE)
    if match is None:
        raise ValueError("no MemTotal in /proc/meminfo")
    return int(match.group(1)) * 1024


def parse_freebsd_hw(text: str) -> dict[str, Any]:
    """``sysctl -n hw.model hw.ncpu hw.physmem``: one value a line, in that order."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) != 3 or not lines[1].isdigit() or not lines[2].isdigit():
        raise ValueError(f"unexpected `sysctl -n hw.model hw.ncpu hw.physmem` output: {text!r}")
    return {"cpu_model": lines[0], "cores": int(lines[1]), "memory_bytes": int(lines[2])}


def make_flavour(gnu_make: str | None, bsd_make_version: str | None) -> str | None:
    """What ``make`` is: GNU make's version line, or bmake (FreeBSD's base make) by date."""
    if gnu_make:
        return gnu_make
    if bsd_make_version and bsd_make_version.strip():
        return f"bmake {bsd_make_version.strip()} (BSD make)"
    return None


# ---------------------------------------------------------------------- gathering


def _bsd_make_version(host: Host, program: str) -> str | None:
    # bmake has no --version; .MAKE.VERSION is its release date (older Debian bmake only
    # sets MAKE_VERSION). Run from / so no Makefile in the login directory is read.
    for variable in (".MAKE.VERSION", "MAKE_VERSION"):
        text = output(host, [program, "-f", "/dev/null", "-V", variable])
        if text and text.strip():
            return text.strip()
    return None


def gather_facts(host: Host) -> dict[str, Any]:
    """What ``host`` is, by running commands on it; missing tools are None, never errors.

    Keys: those of ``infra.facts.local_facts`` (hostname, os, os_release, kernel, arch,
    cpu_model, cores, usable_cpus, memory_bytes, cc, go, make, python) plus os_id, os_like,
    os_version_id, freebsd_version, uname, long_bit, gcc, clang, bmake, gmake, psutil
    (its version, None when it does not import), user, is_root.
    """
    uname_a = output(host, ["uname", "-a"])
    if uname_a is None:
        raise HostError(f"{host.name}: facts: `uname -a` failed: not a Unix host?")
    uname = parse_uname_a(uname_a)
    system = uname["sysname"]
    arch = (output(host, ["uname", "-m"]) or "").strip() or "unknown"
    facts: dict[str, Any] = {
        "hostname": uname["nodename"],
        "os": system,
        "kernel": uname["release"],
        "uname": uname_a.strip(),
        "arch": arch,
    }
    # FreeBSD 13+ has /etc/os-release too; Linux always does (systemd or not, Debian ships it).
    release = parse_os_release(output(host, ["cat", "/etc/os-release"]) or "")
    facts["os_id"] = release.get("ID", system.lower())
    facts["os_like"] = release.get("ID_LIKE", "").split()
    facts["os_version_id"] = release.get("VERSION_ID")
    facts["freebsd_version"] = None
    if system == "FreeBSD":
        freebsd_version = first_line(output(host, ["freebsd-version"]) or "") or None
        facts["freebsd_version"] = freebsd_version
        facts["os_release"] = f"FreeBSD {freebsd_version}" if freebsd_version else \
            release.get("PRETTY_NAME", "FreeBSD")
    else:
        facts["os_release"] = release.get("PRETTY_NAME", "unknown")
    long_bit = (output(host, ["getconf", "LONG_BIT"]) or "").strip()
    facts["long_bit"] = int(long_bit) if long_bit.isdigit() else None
    facts.update(_cpu_and_memory(host, system))
    facts["cc"] = version_line(host, ["cc", "--version"])
    facts["gcc"] = version_line(host, ["gcc", "--version"])
    facts["clang"] = version_line(host, ["clang", "--version"])
    facts["go"] = version_line(host, ["go", "version"])
    gnu_make = version_line(host, ["make", "--version"])
    facts["make"] = make_flavour(gnu_make, None if gnu_make else _bsd_make_version(host, "make"))
    facts["gmake"] = gnu_make if gnu_make else version_line(host, ["gmake", "--version"])
    bmake = _bsd_make_version(host, "bmake")
    if bmake is None and gnu_make is None:
        bmake = _bsd_make_version(host, "make")  # FreeBSD: base make is bmake
    facts["bmake"] = make_flavour(None, bmake)
    facts["python"] = version_line(host, ["python3", "-c", PYTHON_VERSION])
    # The tracer imports psutil on the host: None here means bootstrap is needed.
    facts["psutil"] = version_line(host, ["python3", "-c", PSUTIL_VERSION])
    facts["user"] = (output(host, ["id", "-un"]) or "").strip() or None
    uid = (output(host, ["id", "-u"]) or "").strip()
    facts["is_root"] = uid == "0"
    return facts


def _cpu_and_memory(host: Host, system: str) -> dict[str, Any]:
    if system == "FreeBSD":
        hw_text = output(host, ["sysctl", "-n", "hw.model", "hw.ncpu", "hw.physmem"])
        if hw_text is None:
            raise HostError(f"{host.name}: facts: sysctl -n hw.model hw.ncpu hw.physmem failed")
        hw = parse_freebsd_hw(hw_text)
        cpuset = output(host, ["cpuset", "-g"])
        hw["usable_cpus"] = cpus_from_cpuset_g(cpuset) if cpuset else list(range(hw["cores"]))
        return hw
    cpuinfo = output(host, ["cat", "/proc/cpuinfo"]) or ""
    online = (output(host, ["getconf", "_NPROCESSORS_ONLN"]) or "").strip()
    cores = int(online) if online.isdigit() else cpu_count_from_cpuinfo(cpuinfo)
    status = output(host, ["cat", "/proc/self/status"])
    usable = cpus_allowed_from_status(status) if status else list(range(cores))
    meminfo = output(host, ["cat", "/proc/meminfo"])
    return {
        "cpu_model": cpu_model_linux(cpuinfo),
        "cores": cores,
        "usable_cpus": usable,
        "memory_bytes": memory_from_meminfo(meminfo) if meminfo else None,
    }
