"""The local provider: this machine is both the server host and the load-generator host."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.cgroups import remove_stale_cgroups
from infra.facts import local_facts
from infra.hosts import LocalHost
from infra.providers import HostEntry, Lab, Placement
from infra.state import read_state, remove_state, write_state


def split_cpus(usable: list[int], server_cpu_count: int) -> Placement:
    """Server on the last ``server_cpu_count`` CPUs, load generator and tracer on the rest.

    With too few CPUs everything shares them; the run still goes on but says so.
    """
    usable = sorted(usable)
    if server_cpu_count < len(usable):
        return Placement(usable[-server_cpu_count:], usable[:-server_cpu_count], "isolated")
    server = usable[-server_cpu_count:] if server_cpu_count <= len(usable) else usable
    return Placement(
        server, usable, "shared",
        warning=(
            f"{len(usable)} usable CPU(s) cannot give the server {server_cpu_count} CPU(s) "
            "of its own plus one for the load generator: they share CPUs "
            "(recorded as cpu_isolation: shared)"
        ),
    )


class LocalLab(Lab):
    def placement(self, server_cpu_count: int) -> Placement:
        return split_cpus(self.facts["local"]["usable_cpus"], server_cpu_count)


class LocalProvider:
    name = "local"

    def __init__(self) -> None:
        self.host = LocalHost()

    def provision(self, *, bootstrap: bool = False) -> dict[str, Any]:
        """Check and record what this machine has; builds nothing (``bootstrap`` is for
        remote hosts: this machine is set up by `make run`)."""
        facts = local_facts(self.host)
        state = {
            "provider": self.name,
            "provisioned_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "hosts": {"local": {"roles": ["server", "loadgen"], "facts": facts}},
        }
        write_state(self.name, state)
        return state

    def lab(self) -> Lab:
        # Facts are read fresh: a run must describe the machine as it is now.
        facts = local_facts(self.host)
        return LocalLab(self.name, self.host, self.host, {"local": facts}, "127.0.0.1")

    def hosts(self) -> list[HostEntry]:
        from infra.remote_facts import gather_facts

        # The same facts as every remote host has (os_id, long_bit, compilers, ...).
        facts = gather_facts(self.host)
        return [HostEntry("local", ["server", "loadgen"], self.host, "127.0.0.1",
                          facts["usable_cpus"], facts)]

    def status(self) -> list[dict[str, Any]]:
        state = read_state(self.name)
        if state is None:
            return [{"host": "local", "provisioned": False, "reachable": True}]
        facts = state["hosts"]["local"]["facts"]
        return [{
            "host": "local", "provisioned": True, "reachable": True,
            "provisioned_at": state["provisioned_at"],
            "os": facts["os_release"], "arch": facts["arch"], "cores": facts["cores"],
        }]

    def destroy(self) -> list[str]:
        """Forget the recorded facts and remove any cgroup a killed run left behind."""
        removed = [f"cgroup papaya/{name}" for name in remove_stale_cgroups()]
        if remove_state(self.name):
            removed.append("data/state/local.json")
        return removed
