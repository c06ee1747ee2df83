"""Providers decide which hosts exist and how to reach them; nothing else.

The experiment runner asks a provider for a ``Lab`` (a server host, a load-generator host and
how CPUs are split) and never learns which provider made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from infra.hosts import Host


@dataclass(frozen=True)
class Placement:
    """Where a cell runs: the server on ``server_cpus``, load and tracer on ``aux_cpus``."""

    server_cpus: list[int]
    aux_cpus: list[int]
    isolation: str  # "isolated" or "shared"
    warning: str | None = None


@dataclass
class Lab:
    provider: str
    server: Host
    loadgen: Host
    facts: dict[str, dict[str, Any]]
    target_address: str  # the address the load generator connects to

    def placement(self, server_cpu_count: int) -> Placement:
        raise NotImplementedError


@dataclass
class HostEntry:
    """One provisioned host, connected: what the portability matrix iterates over."""

    name: str
    roles: list[str]
    host: Host
    address: str
    cpus: list[int] | None
    facts: dict[str, Any]


class Provider(Protocol):
    name: str

    def provision(self, *, bootstrap: bool = False) -> dict[str, Any]: ...
    def lab(self) -> Lab: ...
    def hosts(self) -> list[HostEntry]: ...
    def status(self) -> list[dict[str, Any]]: ...
    def destroy(self) -> list[str]: ...


class ProviderError(RuntimeError):
    """A provider that cannot be used here, with what to do about it."""


PROVIDERS = ("local", "lab", "ssh", "cloud")
DEFAULT_INVENTORY = Path("inventory.toml")


def get_provider(name: str, *, config: Path | None = None,
                 inventory: Path | None = None) -> Provider:
    """The provider called ``name``; ``config`` feeds the lab's hosts, ``inventory`` ssh's."""
    if name == "local":
        from infra.providers.local import LocalProvider

        return LocalProvider()
    if name == "lab":
        from infra.providers.lab import LabProvider

        return LabProvider(config)
    if name == "ssh":
        from infra.providers.ssh import SshProvider

        return SshProvider(inventory or DEFAULT_INVENTORY)
    if name == "cloud":
        from infra.providers.cloud import CloudProvider

        return CloudProvider(config)
    raise ProviderError(f"unknown provider {name!r}: choose one of {', '.join(PROVIDERS)}")


def portability_hosts(which: str, *, config: Path | None = None,
                      inventory: Path | None = None) -> list[HostEntry]:
    """This machine plus the hosts of ``which`` provider ("all": every provider that has
    provisioned hosts, i.e. a state file)."""
    from infra.state import state_path

    if which not in ("all", *PROVIDERS):
        raise ProviderError(f"unknown provider {which!r}: choose all or one of "
                            f"{', '.join(PROVIDERS)}")
    names = [n for n in PROVIDERS if n != "local" and (which == n or (
        which == "all" and state_path(n).is_file()))]
    entries = get_provider("local").hosts()
    for name in names:
        entries += get_provider(name, config=config, inventory=inventory).hosts()
    return entries
