"""The ``[cloud]`` section of an experiment config, validated before any API is called.

Every error names the file, the key and the value, as experiments.config does: a typo in a
config that creates paid VMs must fail in the first second, not after the first VM exists.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.units import UnitError, parse_duration

DRIVERS = ("vultr", "digitalocean", "linode", "ec2", "dummy")
ROLES = ("server", "loadgen")
DEFAULT_MAX_HOSTS = 4
DEFAULT_MAX_HOURLY_USD = 0.50
DEFAULT_TTL_HOURS = 4.0
DEFAULT_SSH_TIMEOUT_S = 600.0
_KEYS = {"driver", "region", "max_hosts", "max_hourly_usd", "ttl_hours", "ssh_port",
         "ssh_timeout", "credentials_file", "inventory", "driver_options", "hosts", "server",
         "loadgen"}
_HOST_KEYS = {"role", "roles", "image", "size", "count", "user", "python", "sudo"}


class CloudConfigError(ValueError):
    """A [cloud] section that cannot be used; names the file, key and value."""


@dataclass(frozen=True)
class CloudHostSpec:
    """One ``[cloud.hosts.<name>]`` table: ``count`` VMs alike."""

    name: str
    roles: tuple[str, ...]
    image: str
    size: str | None = None  # None: the cheapest size with >= 1 vCPU and >= 2 GB
    count: int = 1
    user: str = "root"
    python: str = "python3"
    sudo: bool | None = None

    def node_names(self, lab_id: str) -> list[str]:
        return [f"{lab_id}-{self.name}-{n}" for n in range(1, self.count + 1)]


@dataclass(frozen=True)
class CloudConfig:
    path: Path
    driver: str
    region: str
    hosts: tuple[CloudHostSpec, ...]
    max_hosts: int = DEFAULT_MAX_HOSTS
    max_hourly_usd: float = DEFAULT_MAX_HOURLY_USD
    ttl_hours: float = DEFAULT_TTL_HOURS
    ssh_port: int = 22
    ssh_timeout_s: float = DEFAULT_SSH_TIMEOUT_S
    credentials_file: Path | None = None
    inventory: Path | None = None
    # Extra driver constructor kwargs (host, port, secure=false): tests point drivers at
    # 127.0.0.1 fakes with them. Never credentials: those come from credentials.py only.
    driver_options: dict[str, Any] = field(default_factory=dict)
    # Which host runs the server / the load generator in run-experiment (a cloud host or an
    # inventory host); None: the first host with that role, cloud hosts first.
    server: str | None = None
    loadgen: str | None = None

    @property
    def host_count(self) -> int:
        return sum(spec.count for spec in self.hosts)


def load_cloud_config(path: Path) -> CloudConfig:
    path = Path(path).expanduser()
    if not path.is_file():
        raise CloudConfigError(f"{path}: config file not found")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CloudConfigError(f"{path}: not valid TOML: {error}") from error
    table = data.get("cloud")
    if not isinstance(table, dict):
        raise CloudConfigError(f"{path}: no [cloud] section: the cloud provider needs one "
                               "(see experiments/configs/cloud-example.toml)")
    return parse_cloud_section(path, table)


def parse_cloud_section(path: Path, table: dict[str, Any]) -> CloudConfig:
    def bad(key: str, value: Any, why: str) -> CloudConfigError:
        return CloudConfigError(f"{path}: [cloud] key {key!r} = {value!r}: {why}")

    unknown = set(table) - _KEYS
    if unknown:
        raise CloudConfigError(f"{path}: [cloud] unknown key(s) {sorted(unknown)} "
                               f"(known: {', '.join(sorted(_KEYS))})")
    driver = table.get("driver")
    if driver not in DRIVERS:
        raise bad("driver", driver, f"must be one of {', '.join(DRIVERS)}")
    region = table.get("region")
    if not isinstance(region, str) or not region.strip():
        raise bad("region", region, "must name the region (location id or name) for all hosts")
    max_hosts = table.get("max_hosts", DEFAULT_MAX_HOSTS)
    if isinstance(max_hosts, bool) or not isinstance(max_hosts, int) or max_hosts < 1:
        raise bad("max_hosts", max_hosts, "must be an integer >= 1")
    max_hourly = table.get("max_hourly_usd", DEFAULT_MAX_HOURLY_USD)
    if isinstance(max_hourly, bool) or not isinstance(max_hourly, int | float) or max_hourly < 0:
        raise bad("max_hourly_usd", max_hourly, "must be a number of US dollars per hour >= 0")
    ttl = table.get("ttl_hours", DEFAULT_TTL_HOURS)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0:
        raise bad("ttl_hours", ttl, "must be a number of hours > 0")
    ssh_port = table.get("ssh_port", 22)
    if isinstance(ssh_port, bool) or not isinstance(ssh_port, int) or not 1 <= ssh_port <= 65535:
        raise bad("ssh_port", ssh_port, "must be an integer from 1 to 65535")
    timeout_value = table.get("ssh_timeout", "10m")
    try:
        ssh_timeout = parse_duration(timeout_value)
    except UnitError as error:
        raise bad("ssh_timeout", timeout_value, str(error)) from None
    if ssh_timeout <= 0:
        raise bad("ssh_timeout", timeout_value, "must be > 0")
    credentials_file = _optional_path(path, table, "credentials_file", bad)
    inventory = _optional_path(path, table, "inventory", bad)
    options = table.get("driver_options", {})
    if not isinstance(options, dict):
        raise bad("driver_options", options, "must be a table of driver constructor options")
    for secretish in ("key", "secret", "token", "api_key"):
        if secretish in options:
            raise bad("driver_options", f"{{{secretish} = ...}}",
                      "credentials never go in the config: use environment variables or "
                      "credentials_file")
    hosts_table = table.get("hosts")
    if not isinstance(hosts_table, dict) or not hosts_table:
        raise CloudConfigError(f"{path}: [cloud] has no hosts: add [cloud.hosts.<name>] tables")
    hosts = tuple(_parse_host(path, name, spec) for name, spec in hosts_table.items())
    picks = {}
    for key in ("server", "loadgen"):
        value = table.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise bad(key, value, "must name a host of [cloud.hosts] or of the inventory")
        picks[key] = value
    return CloudConfig(path, driver, region.strip(), hosts, max_hosts, float(max_hourly),
                       float(ttl), ssh_port, ssh_timeout, credentials_file, inventory,
                       dict(options), picks["server"], picks["loadgen"])


def _optional_path(path: Path, table: dict[str, Any], key: str, bad: Any) -> Path | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise bad(key, value, "must be a file path")
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (path.parent / candidate).resolve()


def _parse_host(path: Path, name: str, table: Any) -> CloudHostSpec:
    where = f"{path}: [cloud.hosts.{name}]"

    def bad(key: str, value: Any, why: str) -> CloudConfigError:
        return CloudConfigError(f"{where} key {key!r} = {value!r}: {why}")

    if not isinstance(table, dict):
        raise CloudConfigError(f"{where} must be a table, not {table!r}")
    if not name.replace("-", "").replace("_", "").isalnum() or not name.isascii():
        raise CloudConfigError(f"{where}: host names may use letters, digits, - and _ only "
                               "(they become VM names)")
    unknown = set(table) - _HOST_KEYS
    if unknown:
        raise CloudConfigError(f"{where}: unknown key(s) {sorted(unknown)} "
                               f"(known: {', '.join(sorted(_HOST_KEYS))})")
    if "role" in table and "roles" in table:
        raise CloudConfigError(f"{where}: give either 'role' or 'roles', not both")
    key = "roles" if "roles" in table else "role"
    value = table.get(key)
    roles = [value] if isinstance(value, str) else value
    if (not isinstance(roles, list) or not roles
            or not all(isinstance(r, str) and r in ROLES for r in roles)):
        raise bad(key, value, f"must name role(s) from {', '.join(ROLES)}")
    image = table.get("image")
    if not isinstance(image, str) or not image.strip():
        raise bad("image", image, "must name an OS image, e.g. \"Ubuntu 24.04\"")
    size = table.get("size")
    if size is not None and (not isinstance(size, str) or not size.strip()):
        raise bad("size", size, "must be a size id or name from the driver's list")
    count = table.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise bad("count", count, "must be an integer >= 1")
    user = table.get("user", "root")
    if not isinstance(user, str) or not user or any(c.isspace() for c in user):
        raise bad("user", user, "must be the login user the image gives")
    python = table.get("python", "python3")
    if not isinstance(python, str) or not python.strip():
        raise bad("python", python, "must be the host's python3 command or path")
    sudo = table.get("sudo")
    if sudo is not None and not isinstance(sudo, bool):
        raise bad("sudo", sudo, "must be true or false")
    return CloudHostSpec(name, tuple(dict.fromkeys(roles)), image.strip(),
                         size.strip() if size else None, count, user, python.strip(), sudo)
