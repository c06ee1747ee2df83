"""The ssh provider's inventory: existing hosts, how to reach them and what each is for.

An inventory is a TOML file with one table per host::

    [hosts.bsd1]
    address = "192.0.2.10"
    port = 22                      # optional, 22
    user = "bench"                 # optional, "root"
    key_file = "~/.ssh/id_ed25519" # private key; relative paths are relative to this file
    role = "server"                # "server" or "loadgen"; or roles = ["server", "loadgen"]
    cpus = [1]                     # optional: the CPUs the pipeline may use on that host
    known_hosts = "known_hosts"    # optional, ~/.ssh/known_hosts
    sudo = true                    # optional: use `sudo -n` for --bootstrap when not root

Validation is strict: a typo must not silently become a default. Every error names the
file, the host, the key and the offending value.
"""

from __future__ import annotations

import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("server", "loadgen")
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
_KEYS = {"address", "port", "user", "key_file", "role", "roles", "cpus", "known_hosts", "sudo",
         "python"}


class InventoryError(ValueError):
    """An inventory that cannot be used, with the file, host and key at fault."""


@dataclass(frozen=True)
class InventoryHost:
    name: str
    address: str
    port: int
    user: str
    key_file: Path
    roles: tuple[str, ...]
    cpus: tuple[int, ...] | None
    known_hosts: Path
    sudo: bool | None  # None: use sudo when the login user is not root
    python: str = "python3"  # the host's interpreter with psutil (runs the tracer)

    def describe(self) -> str:
        return f"{self.name} ({self.user}@{self.address}:{self.port})"

    def to_state(self) -> dict[str, Any]:
        """What the state file keeps: paths to keys, never key material."""
        return {
            "address": self.address, "port": self.port, "user": self.user,
            "key_file": str(self.key_file), "known_hosts": str(self.known_hosts),
            "roles": list(self.roles), "cpus": list(self.cpus) if self.cpus else None,
            "sudo": self.sudo, "python": self.python,
        }


@dataclass(frozen=True)
class Inventory:
    path: Path
    hosts: tuple[InventoryHost, ...]

    def with_role(self, role: str) -> list[InventoryHost]:
        return [host for host in self.hosts if role in host.roles]

    def host(self, name: str) -> InventoryHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise InventoryError(f"{self.path}: no host {name!r} (hosts: "
                             f"{', '.join(h.name for h in self.hosts)})")


def load_inventory(path: Path) -> Inventory:
    path = Path(path).expanduser()
    if not path.is_file():
        raise InventoryError(f"{path}: inventory file not found")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise InventoryError(f"{path}: not valid TOML: {error}") from error
    unknown = set(data) - {"hosts"}
    if unknown:
        raise InventoryError(f"{path}: unknown top-level key(s) {sorted(unknown)}; "
                             "hosts go in [hosts.<name>] tables")
    tables = data.get("hosts")
    if not isinstance(tables, dict) or not tables:
        raise InventoryError(f"{path}: no hosts: add at least one [hosts.<name>] table")
    hosts = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise InventoryError(f"{path}: hosts.{name} must be a table, not {table!r}")
        hosts.append(_parse_host(path, name, table))
    return Inventory(path, tuple(hosts))


def _parse_host(path: Path, name: str, table: dict[str, Any]) -> InventoryHost:
    where = f"{path}: host {name!r}"

    def bad(key: str, value: Any, why: str) -> InventoryError:
        return InventoryError(f"{where}: key {key!r} = {value!r}: {why}")

    unknown = set(table) - _KEYS
    if unknown:
        raise InventoryError(f"{where}: unknown key(s) {sorted(unknown)} "
                             f"(known: {', '.join(sorted(_KEYS))})")
    address = table.get("address")
    if address is None:
        raise InventoryError(f"{where}: missing key 'address'")
    if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address):
        raise bad("address", address, "must be a host name or IP address")
    port = table.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise bad("port", port, "must be an integer from 1 to 65535")
    user = table.get("user", "root")
    if not isinstance(user, str) or not user or any(c.isspace() for c in user):
        raise bad("user", user, "must be a user name")
    key_file = _private_key(path, table, bad, where)
    roles = _roles(table, bad, where)
    cpus = table.get("cpus")
    if cpus is not None:
        if (not isinstance(cpus, list) or not cpus
                or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0
                           for c in cpus)):
            raise bad("cpus", cpus, "must be a non-empty list of CPU numbers (ints >= 0)")
        if len(set(cpus)) != len(cpus):
            raise bad("cpus", cpus, "lists a CPU twice")
        cpus = tuple(sorted(cpus))
    known_hosts = _known_hosts(path, table, bad)
    sudo = table.get("sudo")
    if sudo is not None and not isinstance(sudo, bool):
        raise bad("sudo", sudo, "must be true or false")
    python = table.get("python", "python3")
    if not isinstance(python, str) or not python.strip():
        raise bad("python", python, "must be the host's python3 command or path")
    return InventoryHost(name, address.strip(), port, user, key_file, roles, cpus,
                         known_hosts, sudo, python.strip())


def _resolve(inventory: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (inventory.parent / candidate).resolve()


def _private_key(path: Path, table: dict[str, Any], bad: Any, where: str) -> Path:
    value = table.get("key_file")
    if value is None:
        raise InventoryError(f"{where}: missing key 'key_file' (the private key to log in with)")
    if not isinstance(value, str) or not value:
        raise bad("key_file", value, "must be the path of a private key file")
    key_file = _resolve(path, value)
    if not key_file.is_file():
        raise bad("key_file", value, f"{key_file} not found")
    mode = key_file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # The same rule ssh(1) enforces: a key others can read is not a secret any more.
        raise bad("key_file", value, f"{key_file} is accessible by group/others (mode "
                                     f"{stat.S_IMODE(mode):04o}); chmod 600 {key_file}")
    return key_file


def _roles(table: dict[str, Any], bad: Any, where: str) -> tuple[str, ...]:
    if "role" in table and "roles" in table:
        raise InventoryError(f"{where}: give either 'role' or 'roles', not both")
    if "role" in table:
        value = table["role"]
        roles = [value] if isinstance(value, str) else None
        key = "role"
    elif "roles" in table:
        value = table["roles"]
        roles = value if isinstance(value, list) and value and all(
            isinstance(r, str) for r in value) else None
        key = "roles"
    else:
        raise InventoryError(f"{where}: missing key 'role' (one of {', '.join(ROLES)})")
    if roles is None:
        raise bad(key, value, f"must be {'a string' if key == 'role' else 'a list'} of "
                              f"{', '.join(ROLES)}")
    for role in roles:
        if role not in ROLES:
            raise bad(key, value, f"unknown role {role!r} (known: {', '.join(ROLES)})")
    return tuple(dict.fromkeys(roles))


def _known_hosts(path: Path, table: dict[str, Any], bad: Any) -> Path:
    value = table.get("known_hosts")
    if value is None:
        # Missing is reported at connect time, with the ssh-keyscan hint.
        return DEFAULT_KNOWN_HOSTS.expanduser()
    if not isinstance(value, str) or not value:
        raise bad("known_hosts", value, "must be the path of an OpenSSH known_hosts file")
    known_hosts = _resolve(path, value)
    if not known_hosts.is_file():
        raise bad("known_hosts", value, f"{known_hosts} not found")
    return known_hosts
