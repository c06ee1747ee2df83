"""The builds of the matrix: native (on a host, with its own compilers and makes), cross with
Zig (every C server, here) and cross with Go (every Go server and the load generator, here).

Native builds take the server's build command from its server.toml (``make BUILD_DIR=...``)
and set the compiler and mode on the make command line: ``make CC=gcc CFLAGS="<mode>"``. The
Makefiles keep what every mode needs in CPPFLAGS, so the mode cannot drop it.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from experiments.build import GO_ENV, LOADGEN_DIR, LOADGEN_PACKAGE
from experiments.portability.elf import ElfError, read_elf
from experiments.portability.matrix import NOT_APPLICABLE, Row
from experiments.portability.toolchains import MODES, REFERENCE_MODE, Tool
from experiments.server_registry import ServerDescriptor
from infra.hosts import CommandResult, Host, HostError, LocalHost

ZIG_TARGETS = ("x86_64-freebsd", "x86-linux-gnu", "x86_64-linux-musl", "aarch64-linux-gnu")
GO_TARGETS = (("freebsd", "amd64"), ("linux", "386"), ("linux", "arm64"))
# What a correct binary for each target looks like (ELF machine, FreeBSD or not).
EXPECTED_ELF = {
    "x86_64-freebsd": ("x86-64", True), "x86-linux-gnu": ("x86", False),
    "x86_64-linux-musl": ("x86-64", False), "aarch64-linux-gnu": ("aarch64", False),
    "freebsd/amd64": ("x86-64", True), "linux/386": ("x86", False),
    "linux/arm64": ("aarch64", False), "linux/amd64": ("x86-64", False),
}
LOADGEN_NAME = "papaya-loadgen"
_DIAGNOSTIC = re.compile(r"\b(warning|error):")
BUILD_TIMEOUT_S = 900

Say = Callable[[str], None]


def diagnostics(text: str, kind: str) -> list[str]:
    """The compiler's ``warning:`` (or ``error:``) lines, each once, in order."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        match = _DIAGNOSTIC.search(line)
        if match and match.group(1) == kind:
            seen.setdefault(line.strip(), None)
    return list(seen)


def write_log(path: Path, sections: Sequence[tuple[str, Sequence[str], CommandResult | str]]
              ) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as log:
        for title, cmd, result in sections:
            log.write(f"### {title}\n$ {' '.join(map(str, cmd))}\n")
            if isinstance(result, str):
                log.write(result + "\n")
            else:
                log.write(f"{result.stdout}{result.stderr}\n(exit status {result.returncode})\n")


def make_argv(server: ServerDescriptor, make: str, cc: str, cflags: str,
              build_dir: PurePosixPath | Path, jobs: int) -> list[str]:
    """The descriptor's build command with the make, compiler and mode of this build."""
    command = [part.format(build_dir=build_dir) for part in server.build_command]
    return [make, f"-j{jobs}", f"CC={cc}", f"CFLAGS={cflags}", *command[1:]]


def is_make_built(server: ServerDescriptor) -> bool:
    return server.language == "c" and bool(server.build_command) \
        and server.build_command[0] == "make"


def _run_build(host: Host, argv: list[str], cwd: PurePosixPath | Path,
               env: dict[str, str] | None = None) -> CommandResult:
    try:
        return host.run(argv, cwd=cwd, env=env, check=False, timeout=BUILD_TIMEOUT_S)
    except HostError as error:  # a timeout, or the host went away: a failed build, said why
        return CommandResult(-1, "", str(error))


def _exists(host: Host, path: PurePosixPath | Path) -> bool:
    try:
        return host.run(["test", "-x", str(path)], check=False, timeout=60).returncode == 0
    except HostError:
        return False


def build_c(host: Host, server: ServerDescriptor, src: PurePosixPath | Path,
            build_dir: PurePosixPath | Path, make: Tool, cc: str, cflags: str, log: Path,
            jobs: int, env: dict[str, str] | None = None) -> tuple[bool, list[str], list[str],
                                                                    float]:
    """Build one C server; (built, warnings, errors, seconds). If it fails, build once more
    without -Werror (in a fresh folder) to list every warning that broke it."""
    started = time.monotonic()
    host.run(["rm", "-rf", str(build_dir)], check=False, timeout=60)
    host.run(["mkdir", "-p", str(build_dir)], timeout=60)
    argv = make_argv(server, make.command, cc, cflags, build_dir, jobs)
    result = _run_build(host, argv, src, env)
    duration = time.monotonic() - started
    binary = server.binary(build_dir)  # type: ignore[arg-type]
    built = result.returncode == 0 and _exists(host, binary)
    output = result.stdout + result.stderr
    sections: list[tuple[str, Sequence[str], CommandResult | str]] = [("build", argv, result)]
    warnings, errors = diagnostics(output, "warning"), diagnostics(output, "error")
    if not built:
        relaxed_dir = type(build_dir)(f"{build_dir}-no-werror")
        relaxed = make_argv(server, make.command, cc, cflags.replace("-Werror", "").strip(),
                            relaxed_dir, jobs)
        host.run(["rm", "-rf", str(relaxed_dir)], check=False, timeout=60)
        host.run(["mkdir", "-p", str(relaxed_dir)], timeout=60)
        again = _run_build(host, relaxed, src, env)
        sections.append(("the same without -Werror, to list the warnings", relaxed, again))
        warnings = diagnostics(again.stdout + again.stderr, "warning") or warnings
        host.run(["rm", "-rf", str(relaxed_dir)], check=False, timeout=60)
    write_log(log, sections)
    return built, warnings, errors, duration


def native_rows(entry_name: str, host: Host, facts: dict, servers: list[ServerDescriptor],
                sources: dict[str, PurePosixPath | Path], work: PurePosixPath | Path,
                compilers: list[Tool], makes: list[Tool], logs: Path, jobs: int,
                say: Say) -> list[Row]:
    """Every C server × compiler × mode × make on ``host``."""
    os_name, arch = str(facts.get("os", "?")), str(facts.get("arch", "?"))
    target = f"{arch}-{os_name.lower()}"
    rows = []
    for server in servers:
        for cc in compilers:
            for mode, flags in MODES.items():
                for make in makes:
                    row = Row("native", target, entry_name, os_name, arch, server.name, "c",
                              cc.kind, cc.version, mode, make.label, make.version)
                    say(f"{entry_name}: {server.name} {cc.kind} {mode} {make.label}")
                    build_dir = work / "build" / f"{server.name}-{cc.kind}-{mode}-{make.kind}"
                    log = logs / entry_name / f"{server.name}-{cc.kind}-{mode}-{make.kind}.log"
                    row.builds, row.warnings, row.errors, row.duration_s = build_c(
                        host, server, sources[server.name], build_dir, make, cc.command,
                        flags, log, jobs)
                    row.duration_s = round(row.duration_s, 2)
                    row.log = str(log)
                    row.binary = {"path": str(server.binary(build_dir))}  # type: ignore[arg-type]
                    rows.append(row)
    return rows


def reference_row(rows: list[Row], server: str) -> Row | None:
    """The binary the tests run on: strict mode (the Makefile's default), the first compiler
    (gcc where present) and the first make (GNU make) that built it."""
    for row in rows:
        if row.server == server and row.mode == REFERENCE_MODE and row.builds:
            return row
    return None


def _elf_row(row: Row, binary: Path, expected: tuple[str, bool]) -> None:
    try:
        info = read_elf(binary)
    except (OSError, ElfError) as error:
        row.builds = False
        row.notes.append(f"no usable binary: {error}")
        return
    row.binary = {"path": str(binary), **info.as_dict()}
    machine, freebsd = expected
    if info.machine != machine or info.is_freebsd != freebsd:
        row.builds = False
        row.notes.append(f"wrong binary format: {info.describe()} (expected {machine}, "
                         f"{'FreeBSD' if freebsd else 'not FreeBSD'})")


def zig_version(host: LocalHost) -> str:
    result = host.run([sys.executable, "-m", "ziglang", "version"], check=False, timeout=60)
    clang = host.run([sys.executable, "-m", "ziglang", "cc", "--version"], check=False,
                     timeout=60)
    clang_line = (clang.stdout.splitlines() or ["clang ?"])[0]
    return f"zig {result.stdout.strip()} ({clang_line.strip()})"


def zig_rows(host: LocalHost, servers: list[ServerDescriptor], work: Path, logs: Path,
             make: Tool, jobs: int, say: Say, targets: Sequence[str] = ZIG_TARGETS) -> list[Row]:
    """Every C server cross-compiled here with ``zig cc`` for every target (strict mode)."""
    version = zig_version(host)
    rows = []
    for target in targets:
        for server in servers:
            say(f"zig cc -target {target}: {server.name}")
            arch, _, os_rest = target.partition("-")
            row = Row("cross-zig", target, "local", os_rest.split("-")[0], arch, server.name,
                      "c", "zig cc", version, REFERENCE_MODE, make.label, make.version)
            cc = f"{sys.executable} -m ziglang cc -target {target}"
            build_dir = work / "zig" / target / server.name
            log = logs / "cross" / f"{server.name}-zig-{target}.log"
            row.builds, row.warnings, row.errors, duration = build_c(
                host, server, server.source_dir, build_dir, make, cc, MODES[REFERENCE_MODE],
                log, jobs)
            row.duration_s, row.log = round(duration, 2), str(log)
            if row.builds:
                _elf_row(row, server.binary(build_dir), EXPECTED_ELF[target])
            rows.append(row)
    return rows


def go_version(host: LocalHost) -> str:
    result = host.run(["go", "version"], check=False, timeout=60)
    return result.stdout.strip() or "go (unknown version)"


def go_build(host: LocalHost, name: str, source: Path, argv: list[str], binary: Path,
             goos: str, goarch: str, logs: Path) -> Row:
    version = go_version(host)
    target = f"{goos}/{goarch}"
    row = Row("cross-go", target, "local", goos, goarch, name, "go", "go", version,
              NOT_APPLICABLE, NOT_APPLICABLE, NOT_APPLICABLE)
    env = {**GO_ENV, "GOOS": goos, "GOARCH": goarch}
    binary.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = _run_build(host, argv, source, env)
    row.duration_s = round(time.monotonic() - started, 2)
    log = logs / "cross" / f"{name}-go-{goos}-{goarch}.log"
    write_log(log, [(f"GOOS={goos} GOARCH={goarch} CGO_ENABLED=0 GOTOOLCHAIN=local", argv,
                     result)])
    row.log = str(log)
    row.builds = result.returncode == 0 and binary.is_file()
    if not row.builds:
        row.errors = [line for line in result.stderr.splitlines() if line.strip()][:20]
    if row.builds:
        _elf_row(row, binary, EXPECTED_ELF.get(target, ("?", goos == "freebsd")))
    return row


def go_programs(servers: list[ServerDescriptor], out_dir: Path
                ) -> list[tuple[str, Path, list[str], Path]]:
    """(name, source folder, build argv, binary) of every Go server and the load generator,
    built into ``out_dir``: the servers as their server.toml says."""
    programs = []
    for server in servers:
        if server.language == "go":
            programs.append((server.name, server.source_dir, server.build_argv(out_dir),
                             server.binary(out_dir)))
    loadgen = out_dir / LOADGEN_NAME
    programs.append((LOADGEN_NAME, LOADGEN_DIR,
                     ["go", "build", "-trimpath", "-o", str(loadgen), LOADGEN_PACKAGE], loadgen))
    return programs
