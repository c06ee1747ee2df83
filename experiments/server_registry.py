"""Servers under test are data: a ``server.toml`` descriptor next to each server's source.

A new paradigm is a new folder under ``experiments/servers/`` with a descriptor; the runner
has no per-server code paths.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

SERVERS_DIR = Path(__file__).resolve().parent / "servers"
LANGUAGES = ("c", "go")


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

    def build_argv(self, build_dir: Path) -> list[str]:
        return [part.format(build_dir=build_dir) for part in self.build_command]

    def binary(self, build_dir: Path) -> Path:
        return Path(self.binary_template.format(build_dir=build_dir))

    def start_argv(self, build_dir: Path, port: int) -> list[str]:
        return [str(self.binary(build_dir))] + [a.format(port=port) for a in self.run_args]


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
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as error:
        raise DescriptorError(f"{path}: invalid server descriptor: {error!r}") from error
    if descriptor.language not in LANGUAGES:
        raise DescriptorError(
            f"{path}: language = {descriptor.language!r}: expected one of {', '.join(LANGUAGES)}"
        )
    if not any("{port}" in a for a in descriptor.run_args):
        raise DescriptorError(f"{path}: run.args must pass the port ({{port}})")
    return descriptor


def discover_servers(servers_dir: Path | None = None) -> dict[str, ServerDescriptor]:
    servers = {}
    for path in sorted((servers_dir or SERVERS_DIR).glob("*/server.toml")):
        descriptor = load_descriptor(path)
        servers[descriptor.name] = descriptor
    return servers
