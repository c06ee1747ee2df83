"""The lab network: one bridge in this namespace, one network namespace per host, veth pairs.

Everything is named by prefix (``papaya-`` namespaces, ``pl-`` links, ``papaya-br0``), so
teardown finds it all without any state file. Nothing routes out: the namespaces have only the
lab subnet, and the bridge refuses to forward even if this machine has forwarding on.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from pathlib import Path

BRIDGE = "papaya-br0"
NETNS_PREFIX = "papaya-"
LINK_PREFIX = "pl-"
SUBNET = ipaddress.IPv4Network("198.18.0.0/24")
BRIDGE_ADDRESS = "198.18.0.1"
FIRST_HOST = 2
_LAB_LINK = re.compile(r"^pl-\d+p?$")


class LabNetError(RuntimeError):
    """An ``ip`` step failed; the message names the step and what ``ip`` said."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False,
                            timeout=30)
    if check and result.returncode != 0:
        raise LabNetError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def netns_name(host: str) -> str:
    return f"{NETNS_PREFIX}{host}"


def link_names(index: int) -> tuple[str, str]:
    """Root-side and namespace-side veth names: short enough for IFNAMSIZ (15)."""
    return f"{LINK_PREFIX}{index}", f"{LINK_PREFIX}{index}p"


def host_address(index: int) -> str:
    return str(SUBNET.network_address + index)


def lab_netns() -> list[str]:
    result = ip("netns", "list", check=False)
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    return sorted(n for n in names if n.startswith(NETNS_PREFIX))


def lab_links() -> list[str]:
    """Lab links in this namespace: the bridge and the root-side veths."""
    result = ip("-j", "link", "show", check=False)
    try:
        links = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return []
    names = [link.get("ifname", "") for link in links]
    return sorted(n for n in names if n == BRIDGE or _LAB_LINK.match(n))


def _write_sysctl(path: Path, value: str) -> None:
    if path.exists():
        path.write_text(value)


def ensure_bridge() -> bool:
    """The bridge with the lab's first address; True when it had to be made."""
    made = False
    if ip("link", "show", BRIDGE, check=False).returncode != 0:
        ip("link", "add", BRIDGE, "type", "bridge")
        made = True
    # No forwarding from the lab to anywhere, and no IPv6 on the root side of the bridge.
    _write_sysctl(Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/forwarding"), "0")
    _write_sysctl(Path(f"/proc/sys/net/ipv6/conf/{BRIDGE}/disable_ipv6"), "1")
    addresses = ip("-j", "addr", "show", "dev", BRIDGE).stdout
    if f'"{BRIDGE_ADDRESS}"' not in addresses:
        ip("addr", "add", f"{BRIDGE_ADDRESS}/{SUBNET.prefixlen}", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")
    return made


def _netns_ok(netns: str, address: str) -> bool:
    result = ip("-n", netns, "-j", "addr", "show", "dev", "eth0", check=False)
    if result.returncode != 0:
        return False
    try:
        info = json.loads(result.stdout)[0]
    except (json.JSONDecodeError, IndexError):
        return False
    addrs = [a.get("local") for a in info.get("addr_info", [])]
    return address in addrs and "UP" in info.get("flags", [])


def _root_side_ok(link: str) -> bool:
    result = ip("-j", "link", "show", link, check=False)
    if result.returncode != 0:
        return False
    info = json.loads(result.stdout)[0]
    return info.get("master") == BRIDGE and "UP" in info.get("flags", [])


def ensure_host_net(host: str, index: int) -> list[str]:
    """Namespace, veth pair and address for one host; returns what had to be (re)made."""
    netns = netns_name(host)
    outer, inner = link_names(index)
    address = host_address(index)
    made: list[str] = []
    if netns not in lab_netns():
        ip("netns", "add", netns)
        made.append(f"netns {netns}")
    if not (_netns_ok(netns, address) and _root_side_ok(outer)):
        # Rebuild the pair rather than patch it: deleting one end removes the other.
        ip("link", "del", outer, check=False)
        ip("-n", netns, "link", "del", "eth0", check=False)
        # Fixed MACs: a remade pair keeps the address's MAC, so no neighbour cache (here or
        # in another host) points at a MAC that no longer exists.
        ip("link", "add", outer, "address", _mac(1, index), "type", "veth",
           "peer", "name", inner, "address", _mac(0, index))
        ip("link", "set", inner, "netns", netns)
        ip("-n", netns, "link", "set", inner, "name", "eth0")
        ip("-n", netns, "addr", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        ip("link", "set", outer, "master", BRIDGE)
        ip("link", "set", outer, "up")
        ip("neigh", "flush", "to", address, check=False)
        made.append(f"link {outer} ({address})")
    ip("-n", netns, "link", "set", "lo", "up")
    # A route out would be the only way traffic could leave; there must be none.
    routes = json.loads(ip("-n", netns, "-j", "route", "show").stdout or "[]")
    for route in routes:
        if route.get("dst") != str(SUBNET):
            ip("-n", netns, "route", "del", route.get("dst", "default"), check=False)
    return made


def _mac(side: int, index: int) -> str:
    """A locally administered unicast MAC for one end of host ``index``'s veth pair."""
    return f"02:70:6c:{side:02x}:{index // 256:02x}:{index % 256:02x}"


def netns_pids(netns: str) -> list[int]:
    result = ip("netns", "pids", netns, check=False)
    return [int(p) for p in result.stdout.split() if p.isdigit()]


def delete_netns(netns: str) -> None:
    ip("netns", "del", netns, check=False)


def delete_link(link: str) -> None:
    ip("link", "del", link, check=False)
