"""A cgroup per server: exact CPU accounting of a process tree, and a CPU set it cannot leave.

Supports cgroup v2 (unified, with the cpu and cpuset controllers) and v1 (cpuacct + cpuset
hierarchies). Only used as root on Linux; everywhere else the tracer walks the tree with psutil.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
GROUP_PREFIX = "papaya"


@dataclass
class Cgroup:
    kind: str  # "cgroup-v1" or "cgroup-v2"
    cpu_dir: Path  # where CPU usage is read (v1: cpuacct; v2: the group)
    dirs: list[Path] = field(default_factory=list)  # every directory to join and remove

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs]

    def pids(self) -> list[int]:
        pids: set[int] = set()
        for procs in self.procs_files:
            try:
                pids.update(int(line) for line in procs.read_text().split())
            except OSError:
                continue
        return sorted(pids)

    def kill_all(self, timeout_s: float = 5.0) -> None:
        """SIGKILL whatever is left in the group, until it is empty or the timeout passes."""
        deadline = time.monotonic() + timeout_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def remove(self) -> None:
        self.kill_all()
        for directory in reversed(self.dirs):
            try:
                directory.rmdir()
            except FileNotFoundError:
                pass


def _v2_root() -> Path | None:
    for root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        controllers = root / "cgroup.controllers"
        if controllers.is_file():
            available = controllers.read_text().split()
            if "cpu" in available and "cpuset" in available:
                return root
    return None


def _v1_dirs() -> tuple[Path, Path] | None:
    cpuacct, cpuset = CGROUP_ROOT / "cpuacct", CGROUP_ROOT / "cpuset"
    if (cpuacct / "cpuacct.usage").is_file() and (cpuset / "cpuset.cpus").is_file():
        return cpuacct, cpuset
    return None


def cgroups_available() -> str | None:
    """The cgroup kind we can use here, or None (not root, not Linux, no controllers)."""
    if os.name != "posix" or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    if _v2_root() is not None:
        return "cgroup-v2"
    if _v1_dirs() is not None:
        return "cgroup-v1"
    return None


def _cpu_list(cpus: list[int]) -> str:
    return ",".join(str(c) for c in cpus)


def _clear_leftover(*directories: Path) -> None:
    """A group of this name can only be left by a killed attempt at the same cell: empty it."""
    leftovers = [d for d in directories if d.is_dir()]
    if leftovers:
        Cgroup("leftover", leftovers[0], leftovers).remove()


def create_cgroup(name: str, cpus: list[int], *, prefix: str = GROUP_PREFIX) -> Cgroup | None:
    """A fresh group ``<prefix>/<name>`` confined to ``cpus``; None when cgroups are unusable.

    The lab keeps its hosts under a prefix of its own, so removing stale ``papaya`` groups
    never kills a lab host.
    """
    kind = cgroups_available()
    if kind == "cgroup-v2":
        root = _v2_root()
        assert root is not None
        parent = root / prefix
        parent.mkdir(exist_ok=True)
        # Controllers must be enabled on every level above the leaf that uses them.
        for level in (root, parent):
            (level / "cgroup.subtree_control").write_text("+cpu +cpuset")
        group = parent / name
        _clear_leftover(group)
        group.mkdir()
        (group / "cpuset.cpus").write_text(_cpu_list(cpus))
        return Cgroup(kind, group, [group])
    if kind == "cgroup-v1":
        dirs = _v1_dirs()
        assert dirs is not None
        cpuacct_root, cpuset_root = dirs
        cpuset_parent = cpuset_root / prefix
        _clear_leftover(cpuacct_root / prefix / name, cpuset_parent / name)
        if not cpuset_parent.exists():
            cpuset_parent.mkdir()
        # A v1 cpuset group starts empty and refuses tasks until cpus and mems are set.
        for directory in (cpuset_parent, cpuset_parent / name):
            directory.mkdir(exist_ok=True)
            (directory / "cpuset.mems").write_text((cpuset_root / "cpuset.mems").read_text())
        (cpuset_parent / "cpuset.cpus").write_text((cpuset_root / "cpuset.cpus").read_text())
        (cpuset_parent / name / "cpuset.cpus").write_text(_cpu_list(cpus))
        (cpuacct_root / prefix).mkdir(exist_ok=True)
        cpuacct = cpuacct_root / prefix / name
        cpuacct.mkdir()
        return Cgroup(kind, cpuacct, [cpuacct, cpuset_parent / name])
    return None


def remove_stale_cgroups() -> list[str]:
    """Empty and remove groups a killed runner left behind; returns their names."""
    removed: list[str] = []
    parents = [CGROUP_ROOT / GROUP_PREFIX, CGROUP_ROOT / "unified" / GROUP_PREFIX]
    parents += [CGROUP_ROOT / c / GROUP_PREFIX for c in ("cpuacct", "cpuset")]
    for parent in parents:
        if not parent.is_dir():
            continue
        for child in parent.iterdir():
            if child.is_dir():
                Cgroup("stale", child, [child]).remove()
                removed.append(child.name)
    return sorted(set(removed))
