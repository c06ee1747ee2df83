"""Servers under test are data: a ``server.toml`` descriptor next to each server's source.

A new paradigm is a new folder under ``experiments/servers/`` with a descriptor; the runner
has no per-server code paths.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVERS_DIR = Path(__file__).resolve().parent / "servers"
CHAT_DIR = Path(__file__).resolve().parent / "chat"
WORKLOADS = ("sink", "chat")
LANGUAGES = ("c", "go")
# The paper-faithful value of every experiment factor a server may take (the ablations).
FACTOR_DEFAULTS: dict[str, Any] = {
    "output": "paper", "read_buffer": None, "gogc": "default", "gomaxprocs": "cpus",
}
NOT_APPLICABLE = "n/a"  # a factor the server does not take (e.g. gogc for C)


class DescriptorError(ValueError):
    """A server.toml that does not say how to build or start its server."""


@dataclass(frozen=True)
class ServerDescriptor:
    name: str
    language: str
    summary: str
    source_dir: Path
    build_command: tuple[str, ...]
    binary_template: str
    run_args: tuple[str, ...]
    workload: str = "sink"
    factor_args: dict[str, tuple[str, ...]] = field(default_factory=dict)
    factor_env: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def factors(self) -> set[str]:
        """The experiment factors this server takes; any other is "n/a" for it."""
        return set(self.factor_args) | set(self.factor_env)

    def build_argv(self, build_dir: Path) -> list[str]:
        return [part.format(build_dir=build_dir) for part in self.build_command]

    def binary(self, build_dir: Path) -> Path:
        return Path(self.binary_template.format(build_dir=build_dir))

    def start_argv(self, build_dir: Path, port: int, factors: dict[str, Any] | None = None,
                   **values: Any) -> list[str]:
        """The command line; ``values`` fill the workload's placeholders (chat: key_file, ...)."""
        argv = [str(self.binary(build_dir))]
        argv += [a.format(port=port, **values) for a in self.run_args]
        for name, template in self.factor_args.items():
            value = (factors or {}).get(name, FACTOR_DEFAULTS.get(name))
            if value not in (FACTOR_DEFAULTS.get(name), NOT_APPLICABLE):
                argv += [part.format(value=value) for part in template]
        return argv

    def start_env(self, factors: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = dict(self.env)
        for name, by_value in self.factor_env.items():
            value = str(factors.get(name, FACTOR_DEFAULTS.get(name)))
            for key, template in by_value.get(value, {}).items():
                env[key] = template.format(cpus=factors.get("cpus", 1))
        return env


def load_descriptor(path: Path) -> ServerDescriptor:
    try:
        data = tomllib.loads(path.read_text())
        build, run = data["build"], data["run"]
        descriptor = ServerDescriptor(
            name=data["name"],
            language=data["language"],
            summary=data.get("summary", ""),
            source_dir=path.parent,
            build_command=tuple(build["command"]),
            binary_template=build["binary"],
            run_args=tuple(run["args"]),
            workload=data.get("workload", "sink"),
            factor_args={k: tuple(v) for k, v in run.get("factor_args", {}).items()},
            factor_env=run.get("factor_env", {}),
            env=run.get("env", {}),
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as error:
        raise DescriptorError(f"{path}: invalid server descriptor: {error!r}") from error
    if descriptor.language not in LANGUAGES:
        raise DescriptorError(
            f"{path}: language = {descriptor.language!r}: expected one of {', '.join(LANGUAGES)}"
        )
    if descriptor.workload not in WORKLOADS:
        raise DescriptorError(
            f"{path}: workload = {descriptor.workload!r}: expected one of {', '.join(WORKLOADS)}"
        )
    if not any("{port}" in a for a in descriptor.run_args):
        raise DescriptorError(f"{path}: run.args must pass the port ({{port}})")
    unknown = descriptor.factors - set(FACTOR_DEFAULTS)
    if unknown:
        raise DescriptorError(f"{path}: unknown factor(s) {', '.join(sorted(unknown))}: "
                              f"expected some of {', '.join(FACTOR_DEFAULTS)}")
    return descriptor


def discover_servers(servers_dir: Path | None = None, chat_dir: Path | None = None
                     ) -> dict[str, ServerDescriptor]:
    """Every server under test: the sink servers and the chat servers, by name."""
    servers = {}
    paths = sorted((servers_dir or SERVERS_DIR).glob("*/server.toml"))
    paths += sorted((chat_dir or CHAT_DIR).glob("*/server.toml"))
    for path in paths:
        descriptor = load_descriptor(path)
        servers[descriptor.name] = descriptor
    return servers
