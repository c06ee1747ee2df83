"""Which lab hosts to make: names, architectures, roles and CPU sets, from a ``[lab]`` table.

The experiment config may carry a ``[lab]`` section; without one the defaults below describe
the study's three machines (an amd64 server, a 32-bit server, a load generator).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
ARCHES = ("amd64", "i386")
ROLES = ("server", "loadgen")
# Host names become parts of namespace and directory names: keep them short and plain.
_HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")

# What a host needs to do its role. Servers build the C servers natively (gcc and clang, GNU
# make and bmake) and run their tests; the load generator only runs uploaded Go binaries.
BASE_PACKAGES = ("openssh-server", "python3", "python3-psutil", "iproute2", "procps")
SERVER_PACKAGES = BASE_PACKAGES + (
    "python3-pytest", "gcc", "libc6-dev", "make", "bmake", "clang",
)
LOADGEN_PACKAGES = BASE_PACKAGES

DEFAULT_HOSTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("server-amd64", "amd64", ("server",)),
    ("server-i386", "i386", ("server",)),
    ("loadgen", "amd64", ("loadgen",)),
)


class LabConfigError(ValueError):
    """A ``[lab]`` section that cannot be used; the message names file, key and value."""


@dataclass(frozen=True)
class LabHostSpec:
    name: str
    arch: str
    roles: tuple[str, ...]
    cpus: tuple[int, ...]
    packages: tuple[str, ...]


@dataclass(frozen=True)
class LabConfig:
    hosts: tuple[LabHostSpec, ...]
    suite: str = SUITE
    mirror: str = MIRROR
    run_on: str | None = None
    source: str = "defaults"
    extra: dict[str, Any] = field(default_factory=dict)

    def host(self, name: str) -> LabHostSpec:
        for spec in self.hosts:
            if spec.name == name:
                return spec
        raise LabConfigError(f"{self.source}: no lab host {name!r}")


def packages_for(roles: tuple[str, ...]) -> tuple[str, ...]:
    return SERVER_PACKAGES if "server" in roles else LOADGEN_PACKAGES


def usable_cpus() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def default_cpus(roles: tuple[str, ...], cpus: list[int]) -> tuple[int, ...]:
    """Servers get the last CPU, the load generator the rest (all of them on one CPU)."""
    if "server" in roles or len(cpus) == 1:
        return (cpus[-1],)
    return tuple(cpus[:-1])


def _fail(source: str, key: str, value: Any, expected: str) -> LabConfigError:
    return LabConfigError(f"{source}: {key} = {value!r}: expected {expected}")


def _host_spec(source: str, name: str, table: Any, cpus: list[int]) -> LabHostSpec:
    prefix = f"lab.hosts.{name}"
    if not _HOST_NAME.match(name):
        raise _fail(source, prefix, name, "a host name of 1-24 characters a-z, 0-9, '-'")
    if not isinstance(table, dict):
        raise _fail(source, prefix, table, "a table with arch, roles, cpus")
    unknown = set(table) - {"arch", "roles", "cpus"}
    if unknown:
        key = sorted(unknown)[0]
        raise _fail(source, f"{prefix}.{key}", table[key], "one of arch, roles, cpus")
    arch = table.get("arch", "amd64")
    if arch not in ARCHES:
        raise _fail(source, f"{prefix}.arch", arch, f"one of {', '.join(ARCHES)}")
    roles = table.get("roles", ["server"])
    if (not isinstance(roles, list) or not roles
            or any(role not in ROLES for role in roles) or len(set(roles)) != len(roles)):
        raise _fail(source, f"{prefix}.roles", roles, f"a non-empty list of {', '.join(ROLES)}")
    role_tuple = tuple(roles)
    if "cpus" in table:
        chosen = table["cpus"]
        if (not isinstance(chosen, list) or not chosen
                or any(not isinstance(c, int) or isinstance(c, bool) for c in chosen)
                or len(set(chosen)) != len(chosen)):
            raise _fail(source, f"{prefix}.cpus", chosen,
                        "a non-empty list of distinct CPU numbers")
        missing = sorted(set(chosen) - set(cpus))
        if missing:
            raise _fail(source, f"{prefix}.cpus", chosen,
                        f"CPUs this machine has ({','.join(map(str, cpus))}); "
                        f"{','.join(map(str, missing))} is not one")
        cpu_tuple = tuple(sorted(chosen))
    else:
        cpu_tuple = default_cpus(role_tuple, cpus)
    return LabHostSpec(name, arch, role_tuple, cpu_tuple, packages_for(role_tuple))


def default_config(cpus: list[int] | None = None) -> LabConfig:
    cpus = cpus or usable_cpus()
    hosts = tuple(
        LabHostSpec(name, arch, roles, default_cpus(roles, cpus), packages_for(roles))
        for name, arch, roles in DEFAULT_HOSTS
    )
    return LabConfig(hosts)


def parse_lab_table(source: str, lab: Any, cpus: list[int] | None = None) -> LabConfig:
    """Validate a ``[lab]`` table; ``source`` (the file) goes into every error."""
    cpus = cpus or usable_cpus()
    if not isinstance(lab, dict):
        raise _fail(source, "lab", lab, "a [lab] table")
    unknown = set(lab) - {"hosts", "run_on", "suite", "mirror"}
    if unknown:
        key = sorted(unknown)[0]
        raise _fail(source, f"lab.{key}", lab[key], "one of hosts, run_on, suite, mirror")
    suite = lab.get("suite", SUITE)
    if not isinstance(suite, str) or not re.match(r"^[a-z]+$", suite):
        raise _fail(source, "lab.suite", suite, "a Debian suite name such as 'bookworm'")
    mirror = lab.get("mirror", MIRROR)
    if not isinstance(mirror, str) or not re.match(r"^(https?|file)://\S+$", mirror):
        raise _fail(source, "lab.mirror", mirror, "a Debian mirror URL (http://, https://, file://)")
    if "hosts" in lab:
        tables = lab["hosts"]
        if not isinstance(tables, dict) or not tables:
            raise _fail(source, "lab.hosts", tables, "a non-empty table of [lab.hosts.<name>]")
        hosts = tuple(_host_spec(source, name, table, cpus) for name, table in tables.items())
    else:
        hosts = default_config(cpus).hosts
    run_on = lab.get("run_on")
    servers = [h.name for h in hosts if "server" in h.roles]
    if run_on is not None and run_on not in servers:
        raise _fail(source, "lab.run_on", run_on,
                    f"a lab host with the server role ({', '.join(servers) or 'none defined'})")
    return LabConfig(hosts, suite, mirror, run_on, source)


def load_lab_config(path: Path | None, cpus: list[int] | None = None) -> LabConfig:
    """The ``[lab]`` section of an experiment config, or the defaults without one."""
    if path is None:
        return default_config(cpus)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise LabConfigError(f"{path}: cannot read: {error.strerror}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise LabConfigError(f"{path}: not valid TOML: {error}") from error
    if "lab" not in data:
        config = default_config(cpus)
        return LabConfig(config.hosts, source=str(path))
    return parse_lab_table(str(path), data["lab"], cpus)


def select_hosts(config: LabConfig, names: list[str] | None) -> LabConfig:
    """Only the named hosts (``LabProvider(hosts=[...])``), in the config's order."""
    if names is None:
        return config
    known = {h.name for h in config.hosts}
    missing = [n for n in names if n not in known]
    if missing:
        raise LabConfigError(
            f"{config.source}: no lab host {missing[0]!r} (hosts: {', '.join(sorted(known))})"
        )
    hosts = tuple(h for h in config.hosts if h.name in names)
    run_on = config.run_on if config.run_on in names else None
    return LabConfig(hosts, config.suite, config.mirror, run_on, config.source)
