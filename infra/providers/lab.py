"""The lab provider: several hosts on this machine, reached over real SSH.

Each host is a network namespace on the ``papaya-br0`` bridge (198.18.0.0/24, nothing routed
out) with its own Debian root filesystem (debootstrap, cached), its own sshd as PID 1 of its
own PID namespace, and a cpuset cgroup holding it to its CPUs. See ``infra.lab``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from infra.cgroups import create_cgroup
from infra.hosts import HostError, wait_for_port
from infra.lab import hosts as labhosts
from infra.lab import net
from infra.lab.config import LabConfig, LabConfigError, LabHostSpec, load_lab_config, select_hosts
from infra.lab.rootfs import RootfsError, build_rootfs, tarball_name, unpack_rootfs
from infra.lab.teardown import (
    CGROUP_PREFIX,
    host_cgroup_dirs,
    leftovers,
    stop_host,
    teardown_all,
    teardown_host,
)
from infra.providers import HostEntry, Lab, Placement, ProviderError
from infra.remote import RemoteHost
from infra.state import STATE_DIR, read_state, remove_state, state_path, write_state

LAB_DIR = Path("/var/tmp/papaya-lab")
_START_TIMEOUT_S = 20.0
_SSH_TIMEOUT_S = 20.0


def _gather_facts(host: RemoteHost) -> dict[str, Any]:
    from infra.remote_facts import gather_facts

    return gather_facts(host)


@dataclass
class LabLab(Lab):
    """The server host's CPUs for the server, the load generator host's for load and tracer."""

    server_cpus: list[int] = field(default_factory=list)
    aux_cpus: list[int] = field(default_factory=list)

    def placement(self, server_cpu_count: int) -> Placement:
        if server_cpu_count <= len(self.server_cpus):
            return Placement(self.server_cpus[:server_cpu_count], self.aux_cpus, "isolated")
        return Placement(
            self.server_cpus, self.aux_cpus, "shared",
            warning=(f"lab server host has {len(self.server_cpus)} CPU(s) "
                     f"({','.join(map(str, self.server_cpus))}), the cell asks for "
                     f"{server_cpu_count}: the server gets the host's CPUs "
                     "(recorded as cpu_isolation: shared); give the host more CPUs in "
                     "[lab.hosts.<name>] cpus"),
        )


class LabProvider:
    name = "lab"

    def __init__(self, config: Path | None = None, *, hosts: list[str] | None = None,
                 state_dir: Path = STATE_DIR, lab_dir: Path = LAB_DIR,
                 cache_dir: Path | None = None, console: Console | None = None) -> None:
        self.config_path = config
        self.only = hosts
        self.state_dir = Path(state_dir)
        self.lab_dir = Path(lab_dir)
        self.cache_dir = cache_dir
        self.console = console or Console(stderr=True)
        self.keys_dir = self.state_dir / "lab"
        self.key_file = self.keys_dir / "id_ed25519"
        self.known_hosts = self.keys_dir / "known_hosts"

    # ------------------------------------------------------------------ checks

    def _config(self) -> LabConfig:
        try:
            return select_hosts(load_lab_config(self.config_path), self.only)
        except LabConfigError as error:
            raise ProviderError(str(error)) from error

    @staticmethod
    def _require_root(action: str) -> None:
        if not sys.platform.startswith("linux"):
            raise ProviderError(f"lab provider: {action} needs Linux (network namespaces, "
                                f"debootstrap); this is {sys.platform}")
        if os.geteuid() != 0:
            raise ProviderError(f"lab provider: {action} needs root (network namespaces, "
                                "mounts, cgroups): run it with sudo, or use --provider local")
        missing = [tool for tool in ("ip", "unshare", "setarch", "ssh-keygen", "tar", "chroot")
                   if shutil.which(tool) is None]
        if missing:
            raise ProviderError(f"lab provider: {action} needs {', '.join(missing)} "
                                "(Debian: apt-get install iproute2 util-linux openssh-client)")

    def _say(self, message: str) -> None:
        self.console.print(f"[cyan]lab:[/cyan] {message}", soft_wrap=True)

    # ------------------------------------------------------------------ provision

    def provision(self, *, bootstrap: bool = False) -> dict[str, Any]:
        """Make (or repair) the configured lab; running it again reuses what already works."""
        self._require_root("provision")
        config = self._config()
        old = self._read_state() or {}
        old_hosts: dict[str, Any] = old.get("hosts", {})
        wanted = {spec.name for spec in config.hosts}
        for name in sorted(set(self._present_hosts()) - wanted):
            self._say(f"removing host {name}: not in {config.source}")
            teardown_host(name, self.lab_dir, old_hosts.get(name, {}).get("index"))
        indexes = self._assign_indexes(config, old_hosts)
        addresses = {spec.name: net.host_address(indexes[spec.name]) for spec in config.hosts}
        tarballs = self._build_rootfs(config)
        try:
            net.ensure_bridge()
        except net.LabNetError as error:
            raise ProviderError(f"lab: bridge {net.BRIDGE}: {error}") from error
        labhosts.ensure_client_key(self.key_file)
        public_key = self.key_file.with_suffix(".pub").read_text()
        known: dict[str, str] = {}
        records: dict[str, dict[str, Any]] = {}
        for spec in config.hosts:
            index = indexes[spec.name]
            try:
                known[spec.name], records[spec.name] = self._provision_host(
                    spec, index, tarballs[spec.name], public_key, addresses,
                    old_hosts.get(spec.name, {}))
            except (net.LabNetError, labhosts.LabHostError, RootfsError, OSError) as error:
                raise ProviderError(f"lab host {spec.name}: {error}") from error
        self.known_hosts.write_text("".join(line + "\n" for line in known.values()))
        os.chmod(self.known_hosts, 0o600)
        for spec in config.hosts:
            host = self._remote(spec.name, addresses[spec.name])
            try:
                self._wait_for_ssh(host)
                records[spec.name]["facts"] = _gather_facts(host)
            finally:
                host.close()
        state = {
            "provider": self.name,
            "provisioned_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": config.source,
            "suite": config.suite,
            "run_on": config.run_on,
            "lab_dir": str(self.lab_dir),
            "key_file": str(self.key_file),
            "known_hosts": str(self.known_hosts),
            "bridge": {"name": net.BRIDGE, "address": net.BRIDGE_ADDRESS,
                       "subnet": str(net.SUBNET)},
            "hosts": records,
        }
        write_state(self.name, state, self.state_dir)
        return state

    def _present_hosts(self) -> list[str]:
        names = {ns[len(net.NETNS_PREFIX):] for ns in net.lab_netns()}
        if self.lab_dir.is_dir():
            names |= {entry.name for entry in self.lab_dir.iterdir() if entry.is_dir()}
        return sorted(names)

    @staticmethod
    def _assign_indexes(config: LabConfig, old_hosts: dict[str, Any]) -> dict[str, int]:
        """Keep each host's address across provisions; new hosts take the lowest free one."""
        indexes: dict[str, int] = {}
        for spec in config.hosts:
            index = old_hosts.get(spec.name, {}).get("index")
            if isinstance(index, int) and index not in indexes.values():
                indexes[spec.name] = index
        for spec in config.hosts:
            if spec.name not in indexes:
                free = net.FIRST_HOST
                while free in indexes.values():
                    free += 1
                indexes[spec.name] = free
        if max(indexes.values()) >= net.SUBNET.num_addresses - 1:
            raise ProviderError(f"lab: too many hosts for {net.SUBNET}")
        return indexes

    def _build_rootfs(self, config: LabConfig) -> dict[str, Path]:
        tarballs: dict[str, Path] = {}
        for spec in config.hosts:
            try:
                tarballs[spec.name] = build_rootfs(config.suite, spec.arch, spec.packages,
                                                   config.mirror, self._say, self.cache_dir)
            except RootfsError as error:
                raise ProviderError(f"lab host {spec.name}: rootfs: {error}") from error
        return tarballs

    def _provision_host(self, spec: LabHostSpec, index: int, tarball: Path, public_key: str,
                        addresses: dict[str, str], old: dict[str, Any]
                        ) -> tuple[str, dict[str, Any]]:
        name, address = spec.name, addresses[spec.name]
        netns = net.netns_name(name)
        host_dir = self.lab_dir / name
        root = host_dir / "root"
        marker = host_dir / "rootfs"
        if old.get("index") not in (None, index):
            teardown_host(name, self.lab_dir, old["index"])
        for change in net.ensure_host_net(name, index):
            self._say(f"{name}: {change}")
        init = self._running_init(name, old)
        if not (root.is_dir() and marker.is_file() and marker.read_text() == tarball.name):
            if init is not None:
                stop_host(name, self.lab_dir)
                init = None
            self._say(f"{name}: unpacking {tarball.name} into {root}")
            unpack_rootfs(tarball, root)
            marker.write_text(tarball.name)
        known_line = labhosts.prepare_root(root, name, address, public_key, addresses)
        if init is not None and not self._answers(name, address, known_line):
            self._say(f"{name}: running but not answering over SSH: restarting it")
            stop_host(name, self.lab_dir)
            init = None
        if init is not None:
            outer = labhosts.parent(init)
            self._set_cpus(name, spec.cpus)
            self._say(f"{name}: already running (sshd pid {init}), reused")
        else:
            stop_host(name, self.lab_dir)  # strays of a crashed run in the namespace
            cgroup = create_cgroup(name, list(spec.cpus), prefix=CGROUP_PREFIX)
            if cgroup is None:
                self._say(f"[yellow]{name}: no cgroups here: CPUs are not confined[/yellow]")
            log = host_dir / "sshd.log"
            outer = labhosts.start_host(name, spec.arch, root, netns, cgroup, log)
            init = labhosts.wait_for_init(outer, _START_TIMEOUT_S)
            if init is None or not wait_for_port(address, 22, _START_TIMEOUT_S):
                tail = log.read_text(errors="replace").strip().splitlines()[-8:]
                raise labhosts.LabHostError(
                    f"start: sshd did not come up on {address}:22 within "
                    f"{_START_TIMEOUT_S:.0f}s; {log}:\n" + "\n".join(tail))
            self._say(f"{name}: started ({spec.arch}, {address}, CPUs "
                      f"{','.join(map(str, spec.cpus))}, sshd pid {init})")
        link, peer = net.link_names(index)
        record = {
            "name": name, "roles": list(spec.roles), "arch": spec.arch, "address": address,
            "index": index, "cpus": list(spec.cpus), "netns": netns,
            "links": {"bridge": net.BRIDGE, "root_side": link, "host_side": "eth0 (was "
                      f"{peer})"},
            "root": str(root), "log": str(host_dir / "sshd.log"), "rootfs": tarball.name,
            "pids": {"unshare": outer, "init": init, "init_start": labhosts.start_time(init)},
            "cgroups": [str(d) for d in host_cgroup_dirs(name)],
        }
        return known_line, record

    def _running_init(self, name: str, old: dict[str, Any]) -> int | None:
        """The host's sshd (PID 1 of its namespace) if it is running."""
        netns = net.netns_name(name)
        if netns not in net.lab_netns():
            return None
        for pid in net.netns_pids(netns):
            if labhosts.comm(pid) == "sshd" and labhosts.is_namespace_init(pid):
                return pid
        return None

    def _answers(self, name: str, address: str, known_line: str) -> bool:
        """A real SSH login with the key and the host key from the root (written to a temp
        known_hosts, since the lab's file is only rewritten once every host is checked)."""
        probe = self.keys_dir / f"known_hosts.{name}.probe"
        probe.write_text(known_line + "\n")
        host = RemoteHost(name, address, key_file=self.key_file, known_hosts=probe,
                          connect_timeout=5.0)
        try:
            for attempt in range(3):  # a just-remade link may need a moment
                if host.is_reachable():
                    return True
                host.close()
                time.sleep(0.5 * (attempt + 1))
            return False
        finally:
            host.close()
            probe.unlink(missing_ok=True)

    @staticmethod
    def _set_cpus(name: str, cpus: tuple[int, ...]) -> None:
        """A running host follows a changed CPU set without a restart (cpuset is live)."""
        for directory in host_cgroup_dirs(name):
            cpus_file = directory / "cpuset.cpus"
            if cpus_file.is_file():
                cpus_file.write_text(",".join(map(str, cpus)))

    def _wait_for_ssh(self, host: RemoteHost) -> None:
        deadline = time.monotonic() + _SSH_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                host.run(["true"], timeout=10)
                return
            except HostError as error:
                last = error
                host.close()
                time.sleep(0.3)
        raise ProviderError(f"lab host {host.name}: ssh {host.address}: no login within "
                            f"{_SSH_TIMEOUT_S:.0f}s: {last}")

    # ------------------------------------------------------------------ use

    def _read_state(self) -> dict[str, Any] | None:
        try:
            return read_state(self.name, self.state_dir)
        except ValueError as error:
            raise ProviderError(str(error)) from error

    def _state(self) -> dict[str, Any]:
        state = self._read_state()
        if state is None:
            raise ProviderError("lab: not provisioned (no "
                                f"{state_path(self.name, self.state_dir)}): run "
                                "`invoke provision --provider lab`")
        return state

    def _remote(self, name: str, address: str) -> RemoteHost:
        return RemoteHost(name, address, key_file=self.key_file, known_hosts=self.known_hosts)

    def hosts(self) -> list[HostEntry]:
        state = self._state()
        # A lab host is alone in its network namespace: checks may change its network
        # settings (the portability matrix sets net.ipv6.bindv6only there).
        return [HostEntry(name, list(h["roles"]), self._remote(name, h["address"]), h["address"],
                          list(h["cpus"]), h.get("facts", {}) | {"network_namespace": h["netns"]})
                for name, h in state["hosts"].items()]

    def lab(self) -> Lab:
        state = self._state()
        records: dict[str, Any] = state["hosts"]
        servers = [n for n, h in records.items() if "server" in h["roles"]]
        loadgens = [n for n, h in records.items() if "loadgen" in h["roles"]]
        run_on = state.get("run_on") or (servers[0] if servers else None)
        if run_on is None or run_on not in records:
            raise ProviderError("lab: no host with the server role is provisioned "
                                f"(hosts: {', '.join(records) or 'none'})")
        if not loadgens:
            raise ProviderError("lab: no host with the loadgen role is provisioned "
                                f"(hosts: {', '.join(records)})")
        server, loadgen = records[run_on], records[loadgens[0]]
        return LabLab(self.name, self._remote(run_on, server["address"]),
                      self._remote(loadgens[0], loadgen["address"]),
                      {n: h.get("facts", {}) for n, h in records.items()}, server["address"],
                      server_cpus=list(server["cpus"]), aux_cpus=list(loadgen["cpus"]))

    def status(self) -> list[dict[str, Any]]:
        state = self._read_state()
        if state is None:
            found = leftovers(self.lab_dir) if os.geteuid() == 0 else []
            return [{"host": "lab", "provisioned": False, "reachable": False,
                     "leftovers": "; ".join(found) + " (run `invoke destroy --provider lab`)"
                     if found else "none"}]
        rows: list[dict[str, Any]] = []
        for name, record in state["hosts"].items():
            host = self._remote(name, record["address"])
            host.connect_timeout = 5.0
            try:
                reachable = host.is_reachable()
            finally:
                host.close()
            rows.append({"host": name, "provisioned": True, "reachable": reachable,
                         "address": record["address"], "arch": record["arch"],
                         "roles": ",".join(record["roles"]),
                         "cpus": ",".join(map(str, record["cpus"]))})
        return rows

    def destroy(self) -> list[str]:
        """Remove every lab thing on this machine, state file or not; [] when nothing was."""
        self._require_root("destroy")
        state = None
        try:
            state = self._read_state()
        except ProviderError:
            pass  # a corrupt state file is removed below; teardown needs no state
        lab_dirs = {self.lab_dir}
        if state and state.get("lab_dir"):
            lab_dirs.add(Path(state["lab_dir"]))
        removed: list[str] = []
        for lab_dir in sorted(lab_dirs):
            removed += teardown_all(lab_dir)
        if remove_state(self.name, self.state_dir):
            removed.append(str(state_path(self.name, self.state_dir)))
        if self.keys_dir.exists():
            shutil.rmtree(self.keys_dir)
            removed.append(f"{self.keys_dir} (lab keys, known_hosts)")
        return removed


__all__ = ["LAB_DIR", "LabLab", "LabProvider", "tarball_name"]
