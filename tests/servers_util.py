"""Helpers for tests/test_servers.py: building and running the servers under test.

Everything here talks only to 127.0.0.1 and bounds every wait in time.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVERS_DIR = REPO_ROOT / "experiments" / "servers"
VENV_BIN = Path(sys.prefix) / "bin"

C_READ_SIZE = 4096
GO_READ_SIZE = 1024


# --------------------------------------------------------------------------- descriptors


def load_descriptor(name: str, servers_dir: Path = SERVERS_DIR) -> dict:
    """Load <servers_dir>/<name>/server.toml (the sink servers by default)."""
    with open(servers_dir / name / "server.toml", "rb") as f:
        return tomllib.load(f)


def toolchain_env(**overrides: str) -> dict[str, str]:
    """The environment the runner builds with: venv's go first on PATH, local toolchain only."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["GOTOOLCHAIN"] = "local"
    env["CGO_ENABLED"] = "0"
    env.update(overrides)
    return env


def venv_go() -> str | None:
    """Path of the venv's go (never a system go), or None."""
    return shutil.which("go", path=str(VENV_BIN))


def build_from_descriptor(
    name: str,
    build_dir: Path,
    *,
    make: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    servers_dir: Path = SERVERS_DIR,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Run the descriptor's build command (cwd = its folder) and return (binary, result).

    ``make`` replaces the command's first word when it is "make" (to try bmake).
    """
    desc = load_descriptor(name, servers_dir)
    subst = {"build_dir": str(build_dir)}
    command = [part.format(**subst) for part in desc["build"]["command"]]
    if make is not None and command[0] == "make":
        command[0] = make
    build_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        command,
        cwd=servers_dir / name,
        env=env if env is not None else toolchain_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Path(desc["build"]["binary"].format(**subst)), result


def compile_for_freebsd(source_dir: Path, build_dir: Path, env: dict[str, str],
                        zig_cache: Path, timeout: float = 300
                        ) -> tuple[subprocess.CompletedProcess[str], list[Path]]:
    """Compile (not link) every C file of ``source_dir`` against FreeBSD's headers with zig's
    clang, through the folder's own Makefile; returns the result and the expected objects."""
    zig_cc = f"{sys.executable} -m ziglang cc -target x86_64-freebsd"
    objects = [build_dir / (c.stem + ".o") for c in sorted(source_dir.glob("*.c"))]
    result = subprocess.run(
        ["make", f"CC={zig_cc}", f"BUILD_DIR={build_dir}", *map(str, objects)],
        cwd=source_dir,
        env=env | {"ZIG_GLOBAL_CACHE_DIR": str(zig_cache)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result, objects


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    """A TCP port that was free on 0.0.0.0 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


LISTENING = re.compile(r"listening on 0\.0\.0\.0:(\d+)")


@dataclass
class RunningServer:
    proc: subprocess.Popen[bytes]
    port: int
    stdout_path: Path
    stderr_path: Path

    def stdout_bytes(self) -> bytes:
        return self.stdout_path.read_bytes()

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def terminate(self, timeout: float = 2.0) -> int:
        """SIGTERM the server and return its exit status (fails if it takes > timeout)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def _force_stop(proc: subprocess.Popen[bytes]) -> None:
    """Last-resort cleanup: SIGKILL the server, and its group if it leads its own group."""
    if proc.poll() is not None:
        return
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def running_server(
    binary: Path,
    args: list[str],
    workdir: Path,
    *,
    own_group: bool,
    new_session: bool = False,
    ready_timeout: float = 5.0,
) -> Iterator[RunningServer]:
    """Start ``binary args`` with stdout/stderr in files and wait for its listening line.

    ``own_group``: the server must have made itself a process-group leader (the C
    server signals its whole group on SIGTERM; it must never be our group).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stdout_path = workdir / "stdout"
    stderr_path = workdir / "stderr"
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [str(binary), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=new_session,
        )
    try:
        port_box: list[int] = []

        def ready() -> bool:
            m = LISTENING.search(stderr_path.read_text(errors="replace"))
            if m:
                port_box.append(int(m.group(1)))
                return True
            return proc.poll() is not None

        if not wait_for(ready, ready_timeout) or not port_box:
            raise AssertionError(
                f"{binary.name} did not report listening (rc={proc.poll()}): "
                f"{stderr_path.read_text(errors='replace')!r}"
            )
        if own_group and os.getpgid(proc.pid) != proc.pid:
            raise AssertionError(f"{binary.name} is not the leader of its own process group")
        yield RunningServer(proc, port_box[0], stdout_path, stderr_path)
    finally:
        _force_stop(proc)


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def wait_closed_by_peer(sock: socket.socket, timeout: float = 5.0) -> bool:
    """True once the peer has closed its end (recv gives EOF or a reset) within timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# --------------------------------------------------------------------------- output formats

_C_HEADER = re.compile(rb"(\d+) Bytes received from client\.")


def parse_c_records(data: bytes, max_read: int = C_READ_SIZE) -> list[bytes]:
    """Split c-fork's stdout into the payloads of its records.

    Each record is ``<n> Bytes received from client.`` followed by exactly n bytes.
    """
    records: list[bytes] = []
    pos = 0
    while pos < len(data):
        m = _C_HEADER.match(data, pos)
        if m is None:
            raise ValueError(f"no record header at offset {pos}: {data[pos : pos + 60]!r}")
        n = int(m.group(1))
        if not 1 <= n <= max_read:
            raise ValueError(f"record length {n} at offset {pos} outside 1..{max_read}")
        start, end = m.end(), m.end() + n
        if end > len(data):
            raise ValueError(f"record at offset {pos} truncated: {len(data) - start} of {n} bytes")
        records.append(data[start:end])
        pos = end
    return records


_GO_SIMPLE_ESCAPES = {
    "a": 0x07,
    "b": 0x08,
    "f": 0x0C,
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "v": 0x0B,
    "\\": 0x5C,
    '"': 0x22,
    "'": 0x27,
}


def _hex(text: str, start: int, width: int) -> int:
    digits = text[start : start + width]
    if len(digits) != width or not re.fullmatch(r"[0-9a-fA-F]+", digits):
        raise ValueError(f"bad hex escape {text[start - 2 : start + width]!r}")
    return int(digits, 16)


def decode_go_quoted(literal: str) -> bytes:
    """Decode a double-quoted Go string literal (as printed by fmt's %q) to bytes."""
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise ValueError(f"not a quoted Go string: {literal!r}")
    body = literal[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == '"' or ch == "\n":
            raise ValueError(f"unescaped {ch!r} in {literal!r}")
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError(f"dangling backslash in {literal!r}")
        esc = body[i + 1]
        if esc in _GO_SIMPLE_ESCAPES:
            out.append(_GO_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc == "x":
            out.append(_hex(body, i + 2, 2))
            i += 4
        elif esc == "u":
            out += chr(_hex(body, i + 2, 4)).encode("utf-8")
            i += 6
        elif esc == "U":
            out += chr(_hex(body, i + 2, 8)).encode("utf-8")
            i += 10
        elif esc in "01234567":
            digits = body[i + 1 : i + 4]
            if not re.fullmatch(r"[0-7]{3}", digits):
                raise ValueError(f"bad octal escape in {literal!r}")
            out.append(int(digits, 8))
            i += 4
        else:
            raise ValueError(f"unknown escape \\{esc} in {literal!r}")
    return bytes(out)


def parse_go_records(data: bytes, max_read: int = GO_READ_SIZE) -> list[bytes]:
    """Split go-goroutine's stdout (one %q literal per line) into record payloads."""
    text = data.decode("utf-8")
    if text and not text.endswith("\n"):
        raise ValueError(f"output does not end with a newline: {text[-60:]!r}")
    # Split on "\n" only: %q escapes every newline-like character in the data.
    records = [decode_go_quoted(line) for line in text.split("\n")[:-1]]
    for rec in records:
        if not 1 <= len(rec) <= max_read:
            raise ValueError(f"record length {len(rec)} outside 1..{max_read}")
    return records
