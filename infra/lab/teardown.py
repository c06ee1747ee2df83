"""Removing a lab, or what a crashed run left of one, found by name prefix alone.

Order matters: processes first (a live process pins mounts and namespaces), then mounts, then
namespaces and links, then cgroups and directories. Every step tolerates things already gone,
so it is also the repair path for a half-built host.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from infra.cgroups import CGROUP_ROOT, Cgroup
from infra.lab import hosts as labhosts
from infra.lab import net
from infra.lab.mounts import mounts_under, unmount_under

CGROUP_PREFIX = "papaya-lab"
_KILL_TIMEOUT_S = 10.0


def cgroup_parents() -> list[Path]:
    return [CGROUP_ROOT / CGROUP_PREFIX, CGROUP_ROOT / "unified" / CGROUP_PREFIX,
            *(CGROUP_ROOT / c / CGROUP_PREFIX for c in ("cpuacct", "cpuset"))]


def host_cgroup_dirs(name: str) -> list[Path]:
    return [parent / name for parent in cgroup_parents() if (parent / name).is_dir()]


def _kill_until_empty(netns: str | None, root: Path | None) -> list[int]:
    """SIGKILL the host's processes until none is left (bounded by a timeout)."""
    killed: set[int] = set()
    deadline = time.monotonic() + _KILL_TIMEOUT_S
    while time.monotonic() < deadline:
        pids = net.netns_pids(netns) if netns else []
        if root is not None and root.exists():
            pids += labhosts.processes_inside(root)
        # Inits first: the kernel then takes down the rest of their PID namespace.
        pids.sort(key=lambda p: not labhosts.is_namespace_init(p))
        if not pids:
            break
        labhosts.kill_pids(pids)
        killed.update(pids)
        time.sleep(0.05)
    return sorted(killed)


def stop_host(name: str, lab_dir: Path) -> list[str]:
    """Kill every process of one host and empty its cgroups; the host's files stay."""
    netns = net.netns_name(name)
    present = netns in net.lab_netns()
    root = lab_dir / name / "root"
    killed = _kill_until_empty(netns if present else None, root)
    for directory in host_cgroup_dirs(name):
        Cgroup("lab", directory, [directory]).kill_all()
    return [f"{len(killed)} process(es) of {name}"] if killed else []


def _remove_tree(path: Path) -> None:
    """rm -rf that never crosses into another file system, and only once nothing is mounted."""
    if mounts_under(path):
        unmount_under(path)
    left = mounts_under(path)
    if left:
        raise RuntimeError(f"{path}: still mounted after unmounting: {left[0]}; not removing")
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False,
                   capture_output=True, timeout=300)


def teardown_host(name: str, lab_dir: Path, index: int | None) -> list[str]:
    """Everything of one host: processes, mounts, namespace, link, cgroups, files."""
    removed = stop_host(name, lab_dir)
    host_dir = lab_dir / name
    if mounts_under(host_dir):
        removed.append(f"{len(unmount_under(host_dir))} mount(s) under {host_dir}")
    netns = net.netns_name(name)
    if netns in net.lab_netns():
        net.delete_netns(netns)
        removed.append(f"netns {netns}")
    if index is not None and net.link_names(index)[0] in net.lab_links():
        net.delete_link(net.link_names(index)[0])
        removed.append(f"link {net.link_names(index)[0]}")
    for directory in host_cgroup_dirs(name):
        Cgroup("lab", directory, [directory]).remove()
        removed.append(f"cgroup {directory}")
    if host_dir.exists():
        _remove_tree(host_dir)
        removed.append(f"dir {host_dir}")
    return removed


def teardown_all(lab_dir: Path) -> list[str]:
    """Every lab thing on this machine, found by prefix: no state file needed."""
    removed: list[str] = []
    names = {ns[len(net.NETNS_PREFIX):] for ns in net.lab_netns()}
    if lab_dir.is_dir():
        names |= {entry.name for entry in lab_dir.iterdir() if entry.is_dir()}
    for parent in cgroup_parents():
        if parent.is_dir():
            names |= {entry.name for entry in parent.iterdir() if entry.is_dir()}
    for name in sorted(names):
        removed += teardown_host(name, lab_dir, None)
    for link in net.lab_links():
        if link != net.BRIDGE:
            net.delete_link(link)
            removed.append(f"link {link}")
    if net.BRIDGE in net.lab_links():
        net.delete_link(net.BRIDGE)
        removed.append(f"bridge {net.BRIDGE}")
    for parent in cgroup_parents():
        if parent.is_dir():
            for child in parent.iterdir():
                if child.is_dir():
                    Cgroup("lab", child, [child]).remove()
            parent.rmdir()
            removed.append(f"cgroup {parent}")
    if lab_dir.exists():
        _remove_tree(lab_dir)
        removed.append(f"dir {lab_dir}")
    return removed


def leftovers(lab_dir: Path) -> list[str]:
    """What of a lab exists on this machine right now (empty: nothing is left)."""
    found = [f"netns {ns}" for ns in net.lab_netns()]
    found += [f"link {link}" for link in net.lab_links()]
    found += [f"mount {m}" for m in mounts_under(lab_dir)]
    found += [f"cgroup {p}" for p in cgroup_parents() if p.is_dir()]
    if lab_dir.exists():
        found.append(f"dir {lab_dir}")
        found += [f"process {pid}" for pid in labhosts.processes_inside(lab_dir)]
    return found
