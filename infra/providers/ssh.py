"""The ssh provider: hosts that already exist, listed in an inventory (see infra.inventory).

``provision`` connects to every host over SSH (Fabric, host keys pinned), gathers its facts
and, with ``bootstrap=True``, installs what the pipeline needs with the host's own package
manager (infra.bootstrap). The state file (data/state/ssh.json) keeps each host's address,
roles, CPUs, facts and bootstrap log, and the *paths* of keys, never key material.

This provider owns nothing on the hosts but its scratch directory (``~/.papaya-bench``):
``destroy`` removes that and forgets the state; packages and the service user stay.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko

from infra.bootstrap import bootstrap as bootstrap_host
from infra.hosts import HostError
from infra.inventory import Inventory, InventoryError, InventoryHost, load_inventory
from infra.providers import HostEntry, Lab, Placement, ProviderError
from infra.providers.local import split_cpus
from infra.remote import RemoteHost
from infra.remote_facts import gather_facts
from infra.state import STATE_DIR, read_state, remove_state, state_path, write_state

_CONNECT_TIMEOUT_S = 10.0


def known_hosts_name(address: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: ``[addr]:port`` unless the port is 22."""
    return address if port == 22 else f"[{address}]:{port}"


def check_host_key_known(entry: InventoryHost) -> None:
    """Refuse early, with the fix, when the host's key was never recorded.

    RemoteHost refuses too (RejectPolicy); checking here first gives one clear message
    whatever paramiko's wording, before any packet is sent.
    """
    where = f"host {entry.describe()}: connect"
    path = entry.known_hosts
    keyscan = f"ssh-keyscan -p {entry.port} {entry.address} >> {path}"
    if not path.is_file():
        raise ProviderError(
            f"{where}: known_hosts file {path} not found; record the host's key first "
            f"({keyscan}) and compare its fingerprint with the host's own "
            "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host)")
    try:
        keys = paramiko.HostKeys(str(path))
    except (OSError, paramiko.SSHException) as error:
        raise ProviderError(f"{where}: cannot read known_hosts {path}: {error}") from error
    if keys.lookup(known_hosts_name(entry.address, entry.port)) is None:
        raise ProviderError(
            f"{where}: host key unknown: {known_hosts_name(entry.address, entry.port)} is not "
            f"in {path}; refusing to connect to an unverified host. Record it ({keyscan}) "
            "after checking the fingerprint on the host")


class SshLab(Lab):
    """The server on the server host's CPUs; load generator on the load-generator host's."""

    server_cpus: list[int]
    aux_cpus: list[int]
    same_host: bool = False
    cpus_note: str | None = None

    def placement(self, server_cpu_count: int) -> Placement:
        if self.same_host:
            placed = split_cpus(self.server_cpus, server_cpu_count)
            if self.cpus_note and placed.warning is None:
                return Placement(placed.server_cpus, placed.aux_cpus, placed.isolation,
                                 self.cpus_note)
            return placed
        if server_cpu_count <= len(self.server_cpus):
            return Placement(self.server_cpus[:server_cpu_count], self.aux_cpus, "isolated",
                             self.cpus_note)
        return Placement(
            self.server_cpus, self.aux_cpus, "shared",
            warning=(f"server host has {len(self.server_cpus)} CPU(s) "
                     f"({','.join(map(str, self.server_cpus))}), the cell asks for "
                     f"{server_cpu_count}: the server gets them all (recorded as "
                     "cpu_isolation: shared)"
                     + (f"; {self.cpus_note}" if self.cpus_note else "")),
        )


class SshProvider:
    name = "ssh"

    def __init__(self, inventory: Path, *, state_dir: Path = STATE_DIR,
                 connect_timeout: float = _CONNECT_TIMEOUT_S) -> None:
        self.inventory_path = Path(inventory)
        self.state_dir = Path(state_dir)
        self.connect_timeout = connect_timeout

    # ------------------------------------------------------------------ helpers

    def inventory(self) -> Inventory:
        try:
            return load_inventory(self.inventory_path)
        except InventoryError as error:
            raise ProviderError(f"ssh provider: {error}") from error

    def remote(self, entry: InventoryHost) -> RemoteHost:
        return RemoteHost(entry.name, entry.address, port=entry.port, user=entry.user,
                          key_file=entry.key_file, known_hosts=entry.known_hosts,
                          connect_timeout=self.connect_timeout, python=entry.python)

    def connect(self, entry: InventoryHost) -> RemoteHost:
        """A connected RemoteHost, or ProviderError naming the host and the step."""
        check_host_key_known(entry)
        host = self.remote(entry)
        try:
            host.connect()
        except HostError as error:
            message = str(error)
            # RemoteHost's messages start with "<name> (<user@addr:port>): connect: ...".
            prefix = "host " if message.startswith(entry.name) else \
                f"host {entry.describe()}: connect: "
            raise ProviderError(prefix + message) from error
        return host

    def _state(self) -> dict[str, Any]:
        state = read_state(self.name, self.state_dir)
        if state is None:
            raise ProviderError(
                f"ssh provider: not provisioned ({state_path(self.name, self.state_dir)} "
                f"missing): run `invoke provision --provider ssh --inventory "
                f"{self.inventory_path}` first")
        if not state.get("complete"):
            raise ProviderError(
                f"ssh provider: the last provision did not finish ({state.get('error')}); "
                "fix that and provision again")
        return state

    # ------------------------------------------------------------------ provider

    def provision(self, *, bootstrap: bool = False, dry_run: bool = False) -> dict[str, Any]:
        """Connect to every inventory host, record its facts, and bootstrap it if asked.

        ``dry_run`` (with ``bootstrap``) runs the read-only checks and logs the install
        commands without running them. The state is written even when a host fails, with
        what was learnt so far and the error, so nothing collected is lost.
        """
        inventory = self.inventory()
        state: dict[str, Any] = {
            "provider": self.name,
            "inventory": str(inventory.path.resolve()),
            "provisioned_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "bootstrap": "dry run" if bootstrap and dry_run else bootstrap,
            "complete": False,
            "hosts": {},
        }
        try:
            for entry in inventory.hosts:
                record: dict[str, Any] = entry.to_state()
                state["hosts"][entry.name] = record
                self._provision_host(entry, record, bootstrap=bootstrap, dry_run=dry_run)
        except (ProviderError, HostError) as error:
            state["error"] = str(error)
            write_state(self.name, state, self.state_dir)
            if isinstance(error, ProviderError):
                raise
            raise ProviderError(str(error)) from error
        state["complete"] = True
        write_state(self.name, state, self.state_dir)
        return state

    def _provision_host(self, entry: InventoryHost, record: dict[str, Any], *,
                        bootstrap: bool, dry_run: bool) -> None:
        host = self.connect(entry)
        try:
            record["facts"] = self._facts(entry, host)
            if bootstrap:
                log = bootstrap_host(host, entry.name, record["facts"], dry_run=dry_run,
                                     sudo=entry.sudo)
                record["bootstrap_log"] = log
                if any(step.get("kind") == "change" and "returncode" in step for step in log):
                    # Facts again: python3, psutil, gmake may exist only now.
                    record["facts"] = self._facts(entry, host)
            self._check_cpus(entry, record["facts"])
        finally:
            host.close()

    def _facts(self, entry: InventoryHost, host: RemoteHost) -> dict[str, Any]:
        try:
            return gather_facts(host)
        except HostError as error:
            raise ProviderError(f"host {entry.describe()}: facts: {error}") from error

    @staticmethod
    def _check_cpus(entry: InventoryHost, facts: dict[str, Any]) -> None:
        if entry.cpus is None:
            return
        usable = set(facts.get("usable_cpus") or [])
        outside = sorted(set(entry.cpus) - usable)
        if outside:
            raise ProviderError(
                f"host {entry.describe()}: facts: inventory cpus {list(entry.cpus)} include "
                f"{outside}, which the host does not offer (usable: {sorted(usable)})")

    def _entry_cpus(self, name: str, record: dict[str, Any]) -> tuple[list[int], str | None]:
        if record.get("cpus"):
            return list(record["cpus"]), None
        usable = list(record.get("facts", {}).get("usable_cpus") or [])
        note = (f"host {name} has no cpus in the inventory: using every CPU it reports "
                f"({','.join(map(str, usable))}); whatever else runs there shares them")
        return usable, note

    def lab(self) -> Lab:
        state = self._state()
        inventory = self.inventory()
        records: dict[str, Any] = state["hosts"]
        servers = [n for n, h in records.items() if "server" in h["roles"]]
        loadgens = [n for n, h in records.items() if "loadgen" in h["roles"]]
        if not servers or not loadgens:
            raise ProviderError(
                f"ssh provider: {inventory.path} needs a host with role \"server\" and one with "
                f"role \"loadgen\" (servers: {servers or 'none'}, loadgens: "
                f"{loadgens or 'none'}); one host may have both: roles = [\"server\", "
                "\"loadgen\"]")
        server_name = servers[0]
        loadgen_name = next((n for n in loadgens if n != server_name), loadgens[0])
        server_entry = inventory.host(server_name)
        loadgen_entry = inventory.host(loadgen_name)
        server_host = self.remote(server_entry)
        loadgen_host = server_host if loadgen_name == server_name else self.remote(loadgen_entry)
        lab = SshLab(self.name, server_host, loadgen_host,
                     {n: h.get("facts", {}) for n, h in records.items()},
                     server_entry.address)
        lab.server_cpus, server_note = self._entry_cpus(server_name, records[server_name])
        lab.aux_cpus, loadgen_note = self._entry_cpus(loadgen_name, records[loadgen_name])
        lab.same_host = loadgen_name == server_name
        notes = [n for n in (server_note, None if lab.same_host else loadgen_note) if n]
        lab.cpus_note = "; ".join(notes) or None
        return lab

    def hosts(self) -> list[HostEntry]:
        state = self._state()
        inventory = self.inventory()
        return [self.host_entry(inventory.host(name), record)
                for name, record in state["hosts"].items()]

    def host_entry(self, entry: InventoryHost, record: dict[str, Any]) -> HostEntry:
        """An inventory host as the pipeline sees it; ``record`` is its provisioned state."""
        return HostEntry(entry.name, list(record["roles"]), self.remote(entry), entry.address,
                         list(entry.cpus) if entry.cpus else None, record.get("facts", {}))

    def status(self) -> list[dict[str, Any]]:
        """Every inventory host: provisioned or not, and whether it answers over SSH now."""
        inventory = self.inventory()
        state = read_state(self.name, self.state_dir) or {"hosts": {}}
        rows = []
        for entry in inventory.hosts:
            record = state["hosts"].get(entry.name, {})
            facts = record.get("facts") or {}
            row: dict[str, Any] = {
                "host": entry.name, "address": f"{entry.address}:{entry.port}",
                "user": entry.user, "roles": ",".join(entry.roles),
                "cpus": ",".join(map(str, entry.cpus)) if entry.cpus else "(all)",
                "provisioned": bool(facts), "os": facts.get("os_release"),
                "arch": facts.get("arch"),
            }
            try:
                host = self.connect(entry)
                try:
                    row["reachable"] = host.is_reachable()
                finally:
                    host.close()
            except ProviderError as error:
                row["reachable"] = False
                row["error"] = str(error)
            rows.append(row)
        return rows

    def destroy(self) -> list[str]:
        """Remove the scratch directory on each provisioned host, then forget the state.

        Packages installed by --bootstrap and the service user stay: they belong to the
        host's owner now, and removing them could break other things on a shared machine.
        """
        removed: list[str] = []
        state = read_state(self.name, self.state_dir)
        if state is not None:
            try:
                inventory: Inventory | None = self.inventory()
            except ProviderError:
                inventory = None
            for name in state.get("hosts", {}):
                removed.append(self._remove_scratch(inventory, name))
        if remove_state(self.name, self.state_dir):
            removed.append(str(state_path(self.name, self.state_dir)))
        return removed

    def _remove_scratch(self, inventory: Inventory | None, name: str) -> str:
        try:
            if inventory is None:
                raise ProviderError(f"inventory {self.inventory_path} unreadable")
            host = self.connect(inventory.host(name))
        except (ProviderError, InventoryError) as error:
            return f"{name}: scratch directory left in place ({error})"
        try:
            scratch = host.scratch
            host.run(["rm", "-rf", str(scratch)], timeout=120)
            return f"{name}: {scratch}"
        except HostError as error:
            return f"{name}: scratch directory left in place ({error})"
        finally:
            host.close()
