"""Building the chat servers, and what their sources must (not) contain.

C: warning-free with gcc and clang under GNU make and bmake with the strict flags, and
against FreeBSD's headers with zig cc. Go: gofmt and vet clean, standard library only,
building for freebsd/amd64 and linux/386 too.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.server_registry import load_descriptor as registry_load
from tests import servers_util
from tests.chat.chat_util import (
    BINARY_NAMES,
    C_DIR,
    CHAT_DIR,
    DESCRIPTOR_NAMES,
    GO_DIR,
    IMPLS,
    build,
    load_descriptor,
    toolchain_env,
    venv_go,
)

STRICT = ("-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-pedantic", "-Werror")


def _cc_env(cc: str | None) -> dict[str, str]:
    env = toolchain_env()
    if cc is None:
        env.pop("CC", None)
    else:
        env["CC"] = cc
    return env


# --------------------------------------------------------------------------- descriptors


@pytest.mark.parametrize("impl", IMPLS)
def test_descriptor(impl: str) -> None:
    desc = load_descriptor(impl)
    assert desc["name"] == DESCRIPTOR_NAMES[impl]
    assert desc["language"] == impl
    assert desc["workload"] == "chat"
    assert isinstance(desc["summary"], str) and desc["summary"]
    assert "{build_dir}" in " ".join(desc["build"]["command"])
    assert desc["build"]["binary"] == f"{{build_dir}}/{BINARY_NAMES[impl]}"
    base = [
        "--port", "{port}", "--key-file", "{key_file}", "--log", "{log_file}",
        "--history", "{history}",
    ]  # fmt: skip
    # The runner may also pass the user to run as (needed when it runs as root).
    assert desc["run"]["args"] in (base, [*base, "--user", "{user}"]), desc["run"]["args"]
    # The sink registry's loader accepts the schema (it ignores `workload`).
    loaded = registry_load(CHAT_DIR / impl / "server.toml")
    assert loaded.name == DESCRIPTOR_NAMES[impl]
    # And they are not where the sink registry looks.
    assert not (CHAT_DIR.parent / "servers" / DESCRIPTOR_NAMES[impl]).exists()


# --------------------------------------------------------------------------- C


def _c_sources() -> set[str]:
    return {str(p.relative_to(C_DIR)) for p in C_DIR.rglob("*")}


@pytest.mark.integration
@pytest.mark.parametrize("make", ["make", "bmake"])
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_c_builds_warning_free(make: str, cc: str, tmp_path: Path) -> None:
    for tool in (make, cc):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (CI installs it: apt-get install -y {tool})")
    before = _c_sources()
    binary, result = build("c", tmp_path / "out", make=make, env=_cc_env(cc))
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert result.stderr == "", log  # no diagnostics at all
    compile_lines = [line for line in log.splitlines() if " -c " in line]
    assert len(compile_lines) == len(list(C_DIR.glob("*.c")))
    for line in compile_lines:
        assert line.startswith(f"{cc} "), line
        for flag in STRICT:
            assert flag in line.split(), (flag, line)
    assert binary == tmp_path / "out" / "papaya-chatd" and os.access(binary, os.X_OK)
    assert _c_sources() == before, "the build wrote into the source folder"


@pytest.mark.integration
def test_c_compiles_for_freebsd(tmp_path: Path) -> None:
    """Compile (not link) every C file against FreeBSD's headers with zig's clang."""
    if importlib.util.find_spec("ziglang") is None:
        pytest.skip("ziglang (a project dependency) is not installed")
    result, objects = servers_util.compile_for_freebsd(C_DIR, tmp_path / "freebsd",
                                                       _cc_env(None), tmp_path / "zig-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr
    for obj in objects:
        assert Path(obj).is_file(), obj


def _c_text() -> dict[str, str]:
    return {p.name: p.read_text() for p in [*C_DIR.glob("*.c"), *C_DIR.glob("*.h")]}


def test_c_sources_never_call_signal() -> None:
    sources = _c_text()
    assert len(sources) > 10
    for name, text in sources.items():
        assert not re.search(r"\bsignal\s*\(", text), f"{name} calls signal()"
        assert not re.search(r"\bpause\s*\(\s*\)", text), f"{name} calls pause()"


def test_c_sources_avoid_the_original_defects() -> None:
    """What the black-box tests cannot see, read from the source."""
    src = _c_text()
    everything = "\n".join(src.values())
    # sigaction with explicit flags, SA_RESTART on every handler that returns.
    assert "sigaction(" in everything and "SA_RESTART" in everything
    handlers = re.findall(r"setDisposition\((SIG\w+), (\w+), ([^)]*)\)", src["signals.c"])
    assert handlers
    for sig, handler, flags in handlers:
        if handler not in ("SIG_IGN", "SIG_DFL"):
            assert "SA_RESTART" in flags, (sig, handler, flags)
    assert re.search(r"setDisposition\(SIGPIPE, SIG_IGN", src["signals.c"])
    # SIGUSR1 blocked, waited for with sigsuspend only.
    assert "sigsuspend(" in src["sender.c"]
    # Each process opens the log itself, appends with O_APPEND, reads with pread.
    assert "O_APPEND" in src["chat_log.c"] and "pread(" in src["chat_log.c"]
    assert "LOCK_EX" in src["file_lock.c"] and "LOCK_SH" in src["file_lock.c"]
    assert not re.search(r"\blseek\s*\(", everything)
    # The key: read in a loop with a deadline; compared in constant time.
    assert not re.search(r"\b(memcmp|strcmp|strncmp)\s*\(", src["auth.c"])
    assert "poll(" in src["auth.c"] and "CLOCK_MONOTONIC" in src["auth.c"]
    # The whole process group is signalled on termination.
    assert "kill(0, SIGTERM)" in src["signals.c"]


# --------------------------------------------------------------------------- Go


def _go(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    go = venv_go()
    if go is None:
        pytest.fail(f"no go in {sys.prefix}/bin")
    return subprocess.run(
        [go, *args],
        cwd=GO_DIR,
        env=env or toolchain_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.integration
def test_go_vet_and_gofmt_clean() -> None:
    vet = _go("vet", "./...")
    assert vet.returncode == 0, vet.stdout + vet.stderr
    goroot = _go("env", "GOROOT").stdout.strip()
    gofmt = subprocess.run(
        [str(Path(goroot) / "bin" / "gofmt"), "-l", "."],
        cwd=GO_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gofmt.returncode == 0, gofmt.stderr
    assert gofmt.stdout == "", f"not gofmt-formatted: {gofmt.stdout}"


@pytest.mark.integration
@pytest.mark.parametrize(("goos", "goarch"), [("freebsd", "amd64"), ("linux", "386")])
def test_go_builds_for_other_platforms(goos: str, goarch: str, tmp_path: Path) -> None:
    result = _go(
        "build", "-trimpath", "-o", str(tmp_path / "papaya-chatd-go"), ".",
        env=toolchain_env(GOOS=goos, GOARCH=goarch),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_go_standard_library_only() -> None:
    gomod = (GO_DIR / "go.mod").read_text()
    assert re.search(r"^module papaya/chat/go$", gomod, re.M), gomod
    assert re.search(r"^go 1\.22$", gomod, re.M), gomod
    assert "require" not in gomod
    assert not (GO_DIR / "go.sum").exists()
    for path in GO_DIR.glob("*.go"):
        for imp in re.findall(r'^\s*(?:import\s+)?"([^"]+)"$', path.read_text(), re.M):
            assert "." not in imp.split("/")[0], f"{path.name} imports {imp}"


def test_go_sources_use_flock_append_and_constant_time() -> None:
    text = "\n".join(p.read_text() for p in GO_DIR.glob("*.go"))
    assert "syscall.Flock(" in text and "LOCK_EX" in text
    assert "O_APPEND" in text
    assert "subtle.ConstantTimeCompare(" in text
    assert "bytes.Equal(got" not in text
