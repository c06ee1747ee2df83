"""papaya-chat, the terminal client (experiments/chat/client/).

The client runs in a real pseudo-terminal of a fixed size, talks to the real C and Go chat
servers on 127.0.0.1, and what it puts on the screen is read back through a small VT100/xterm
screen model (`Screen`), so the tests look at the screen a person would see, not at raw escape
sequences. Every wait is bounded.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from experiments.chat.client.__main__ import main
from experiments.chat.client.config import ConfigError, build_config, read_key
from experiments.chat.client.text import fit_input, sanitize, text_width, wrap
from tests.chat.chat_util import (
    IMPLS,
    ChatServer,
    build,
    force_stop,
    new_key,
    server_dir,
    start_server,
    toolchain_env,
    write_key_file,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- a screen model


class Screen:
    """Just enough of a VT100/xterm to know what a curses program has put on the screen:
    cursor addressing, erasing, scrolling regions, insert/delete, repeat; attributes ignored."""

    def __init__(self, rows: int, cols: int) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.state = "text"
        self.params = ""
        self.last = " "
        self.resize(rows, cols)

    def resize(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.y = self.x = 0
        self.top, self.bottom = 0, rows - 1
        self.saved = (0, 0)
        self.wrap_next = False

    def text(self) -> str:
        return "\n".join(self.row(y) for y in range(self.rows))

    def row(self, y: int) -> str:
        return "".join(self.grid[y]).rstrip()

    def feed(self, data: bytes) -> None:
        for ch in self.decoder.decode(data):
            getattr(self, f"_{self.state}")(ch)

    def _text(self, ch: str) -> None:
        if ch == "\x1b":
            self.state = "esc"
        elif ch == "\r":
            self.x, self.wrap_next = 0, False
        elif ch in "\n\x0b\x0c":
            self._index()
        elif ch == "\b":
            self.x, self.wrap_next = max(0, self.x - 1), False
        elif ch == "\t":
            self.x = min(self.cols - 1, (self.x // 8 + 1) * 8)
        elif ord(ch) >= 0x20 and ch != "\x7f":
            self._put(ch)

    def _esc(self, ch: str) -> None:
        self.state = "text"
        if ch == "[":
            self.state, self.params = "csi", ""
        elif ch == "]":
            self.state = "osc"
        elif ch in "()*+":
            self.state = "charset"
        elif ch == "7":
            self.saved = (self.y, self.x)
        elif ch == "8":
            self.y, self.x = self.saved
        elif ch == "D":
            self._index()
        elif ch == "E":
            self.x = 0
            self._index()
        elif ch == "M":
            if self.y == self.top:
                self._scroll_down(1)
            else:
                self.y = max(0, self.y - 1)
        elif ch == "c":
            self.resize(self.rows, self.cols)

    def _charset(self, ch: str) -> None:
        self.state = "text"

    def _osc(self, ch: str) -> None:
        if ch == "\x07":
            self.state = "text"
        elif ch == "\x1b":
            self.state = "osc_esc"

    def _osc_esc(self, ch: str) -> None:
        self.state = "text"

    def _csi(self, ch: str) -> None:
        if not 0x40 <= ord(ch) <= 0x7E:
            self.params += ch
            return
        self.state = "text"
        private = self.params[:1] in ("?", ">", "=")
        raw = self.params.lstrip("?>=")
        args = [int(p) if p.isdigit() else 0 for p in raw.split(";")] if raw else []

        def arg(i: int, default: int = 1) -> int:
            return args[i] if len(args) > i and args[i] else default

        if private:
            if ch in "hl" and arg(0, 0) in (47, 1047, 1049):  # alternate screen
                self._erase(0, 0, self.rows - 1, self.cols - 1)
            return
        self.wrap_next = False
        if ch in "Hf":
            self.y, self.x = min(self.rows - 1, arg(0) - 1), min(self.cols - 1, arg(1) - 1)
        elif ch == "A":
            self.y = max(0, self.y - arg(0))
        elif ch == "B":
            self.y = min(self.rows - 1, self.y + arg(0))
        elif ch == "C":
            self.x = min(self.cols - 1, self.x + arg(0))
        elif ch == "D":
            self.x = max(0, self.x - arg(0))
        elif ch == "G":
            self.x = min(self.cols - 1, arg(0) - 1)
        elif ch == "d":
            self.y = min(self.rows - 1, arg(0) - 1)
        elif ch == "J":
            mode = arg(0, 0)
            if mode == 0:
                self._erase(self.y, self.x, self.rows - 1, self.cols - 1)
            elif mode == 1:
                self._erase(0, 0, self.y, self.x)
            else:
                self._erase(0, 0, self.rows - 1, self.cols - 1)
        elif ch == "K":
            start, end = {0: (self.x, self.cols - 1), 1: (0, self.x)}.get(
                arg(0, 0), (0, self.cols - 1))
            self._erase(self.y, start, self.y, end)
        elif ch == "X":
            self._erase(self.y, self.x, self.y, min(self.cols, self.x + arg(0)) - 1)
        elif ch == "P":
            row = self.grid[self.y]
            del row[self.x:self.x + arg(0)]
            row.extend([" "] * (self.cols - len(row)))
        elif ch == "@":
            row = self.grid[self.y]
            row[self.x:self.x] = [" "] * arg(0)
            del row[self.cols:]
        elif ch == "L" and self.top <= self.y <= self.bottom:
            for _ in range(arg(0)):
                del self.grid[self.bottom]
                self.grid.insert(self.y, [" "] * self.cols)
        elif ch == "M" and self.top <= self.y <= self.bottom:
            for _ in range(arg(0)):
                del self.grid[self.y]
                self.grid.insert(self.bottom, [" "] * self.cols)
        elif ch == "S":
            self._scroll_up(arg(0))
        elif ch == "T":
            self._scroll_down(arg(0))
        elif ch == "r":
            self.top, self.bottom = arg(0) - 1, min(self.rows - 1, arg(1, self.rows) - 1)
            self.y = self.x = 0
        elif ch == "b":
            for _ in range(arg(0)):
                self._put(self.last)

    def _put(self, ch: str) -> None:
        if unicodedata.combining(ch):
            return
        width = 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        if self.wrap_next or self.x + width > self.cols:
            self.x = 0
            self._index()
        self.grid[self.y][self.x] = ch
        if width == 2 and self.x + 1 < self.cols:
            self.grid[self.y][self.x + 1] = ""
        self.last = ch
        self.x += width
        if self.x >= self.cols:
            self.x, self.wrap_next = self.cols - 1, True

    def _index(self) -> None:
        self.wrap_next = False
        if self.y == self.bottom:
            self._scroll_up(1)
        else:
            self.y = min(self.rows - 1, self.y + 1)

    def _scroll_up(self, n: int) -> None:
        for _ in range(n):
            del self.grid[self.top]
            self.grid.insert(self.bottom, [" "] * self.cols)

    def _scroll_down(self, n: int) -> None:
        for _ in range(n):
            del self.grid[self.bottom]
            self.grid.insert(self.top, [" "] * self.cols)

    def _erase(self, y0: int, x0: int, y1: int, x1: int) -> None:
        for y in range(y0, y1 + 1):
            for x in range(x0 if y == y0 else 0, (x1 if y == y1 else self.cols - 1) + 1):
                self.grid[y][x] = " "


# --------------------------------------------------------------------------- a terminal


class Term:
    """A program in a real pseudo-terminal of a fixed size (set before it starts)."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24, cols: int = 80,
                 cwd: Path = REPO_ROOT):
        self.screen = Screen(rows, cols)
        self.raw = bytearray()
        self.status: int | None = None
        pid, fd = pty.fork()
        if pid == 0:  # the child: size its terminal, then become the program
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        os.set_blocking(fd, False)

    def _pump(self, timeout: float) -> bool:
        """Read what the program wrote within ``timeout``; False once the terminal closed."""
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return True
        except OSError:  # EIO: the program exited and the terminal is gone
            data = b""
        if not data:
            return False
        self.raw += data
        self.screen.feed(data)
        return True

    def wait_for(self, predicate: Callable[[Term], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._pump(min(remaining, 0.05)):
                return predicate(self)
        return True

    def wait_text(self, text: str, timeout: float = 5.0) -> None:
        if not self.wait_for(lambda t: text in t.screen.text(), timeout):
            raise AssertionError(f"{text!r} not on the screen within {timeout} s; the screen:\n"
                                 f"{self.screen.text()}\nlast output: {bytes(self.raw[-400:])!r}")

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def resize(self, rows: int, cols: int) -> None:
        """Resize the terminal as a window manager does (the kernel sends SIGWINCH)."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.screen.resize(rows, cols)

    def wait_exit(self, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s; the screen:\n"
                                     f"{self.screen.text()}")
            else:
                self._pump(0.02)
        while self._pump(0.05) and select.select([self.fd], [], [], 0)[0]:
            pass
        return self.status

    def output(self) -> str:
        """Everything the program wrote (for the messages it prints after leaving the screen)."""
        return bytes(self.raw).decode("utf-8", "replace")

    def close(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        with contextlib.suppress(OSError):
            os.close(self.fd)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def home(tmp_path) -> Path:
    """An empty home, so that no real ~/.config/papaya/client.toml is read."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def client_env(home) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LC_")}
    env.update(HOME=str(home), TERM="xterm-256color", LANG="C.UTF-8",
               PYTHONPATH=str(REPO_ROOT), PYTHONDONTWRITEBYTECODE="1")
    env.pop("XDG_CONFIG_HOME", None)
    return env


@pytest.fixture
def terms() -> Iterator[list[Term]]:
    started: list[Term] = []
    yield started
    for term in started:
        term.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- unit tests


def test_wrap_fits_every_row_and_keeps_the_text():
    text = "alice: " + "the quick brown fox jumps over the lazy dog " * 5 + "x" * 150
    for width in (12, 40, 80):
        rows = wrap(text, width)
        assert all(text_width(row) <= width for row in rows)
        assert "".join(rows).replace(" ", "") == text.replace(" ", "")
    assert wrap("hello world", 8) == ["hello", "world"]
    # Wide characters take two columns: ten of them are five rows of four columns.
    assert wrap("你" * 10, 5) == ["你你"] * 5
    assert wrap("", 10) == [""]


def test_received_text_cannot_steer_the_terminal():
    assert sanitize("hi\x1b[2J\x1b]0;pwned\x07 there") == "hi^[[2J^[]0;pwned^G there"
    assert sanitize("a\tb\u202ec\x85d") == "a bc\ufffdd"
    assert sanitize("ünïcödé 你好 🙂") == "ünïcödé 你好 🙂"


def test_input_line_scrolls_to_keep_the_cursor_visible():
    text = "0123456789abcdefghij"
    shown, column, start = fit_input(text, len(text), 10, 0)
    assert shown == "bcdefghij" and column == 9 and start == 11
    shown, column, start = fit_input(text, 3, 10, start)  # back to the left: window follows
    assert shown == "3456789abc" and column == 0 and start == 3


def test_config_file_and_command_line_overrides(tmp_path, home, monkeypatch):
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    config_dir = home / ".config" / "papaya"
    config_dir.mkdir(parents=True)
    (config_dir / "client.toml").write_text(
        'host = "chat.example"\nport = 7100\nusername = "alice"\nkey_file = "chat.key"\n')
    config = build_config()
    assert (config.host, config.port, config.username) == ("chat.example", 7100, "alice")
    assert config.key_file == config_dir / "chat.key"  # relative to the config file
    config = build_config(host="127.0.0.1", port=9, username="bob", key_file="/k")
    assert (config.host, config.port, config.username, str(config.key_file)) == (
        "127.0.0.1", 9, "bob", "/k")
    (tmp_path / "bad.toml").write_text('port = "7000"\n')
    with pytest.raises(ConfigError, match=r"bad.toml: port = '7000' must be an integer"):
        build_config(config_path=str(tmp_path / "bad.toml"))
    (tmp_path / "typo.toml").write_text('hots = "x"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'hots'"):
        build_config(config_path=str(tmp_path / "typo.toml"))
    with pytest.raises(ConfigError, match=r"does not exist"):
        build_config(config_path=str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"contains ':'"):
        build_config(username="a:b")


def test_key_file_checks(tmp_path):
    key = new_key()
    assert read_key(write_key_file(tmp_path / "good.key", key)) == key
    assert read_key(write_key_file(tmp_path / "bare.key", key, newline=False)) == key
    with pytest.raises(ConfigError, match=r"missing.key does not exist"):
        read_key(tmp_path / "missing.key")
    loose = write_key_file(tmp_path / "loose.key", key, mode=0o644)
    with pytest.raises(ConfigError, match=r"mode 0644, which lets others read it; run: chmod 600"):
        read_key(loose)
    short = tmp_path / "short.key"
    short.write_text("abc\n")
    short.chmod(0o600)
    with pytest.raises(ConfigError, match=r"holds 3 bytes; the key is exactly 128"):
        read_key(short)
    binary = tmp_path / "binary.key"
    binary.write_bytes(b"\x00" * 128)
    binary.chmod(0o600)
    with pytest.raises(ConfigError, match=r"non-printable byte 0x00"):
        read_key(binary)


def test_key_file_problems_exit_2_with_one_line(tmp_path, home, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(home))
    loose = write_key_file(tmp_path / "loose.key", new_key(), mode=0o640)
    assert main(["--port", "9", "--user", "a", "--key-file", str(loose), "--send", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("papaya-chat: key file ") and "chmod 600" in err
    assert err.count("\n") == 1


# --------------------------------------------------------------------------- in a terminal


def client_argv(port: int, user: str, key: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "experiments.chat.client", "--host", "127.0.0.1",
            "--port", str(port), "--user", user, "--key-file", str(key), *extra]


@pytest.mark.integration
def test_unreachable_server_is_named_and_exits_3(tmp_path, client_env, terms):
    port = free_port()  # nothing listens there
    key = write_key_file(tmp_path / "chat.key", new_key())
    term = Term(client_argv(port, "alice", key), client_env)
    terms.append(term)
    assert term.wait_exit() == 3
    assert f"cannot connect to 127.0.0.1:{port}: connection refused" in term.output()


# --------------------------------------------------------------------------- real servers


@pytest.fixture(scope="module")
def chat_binaries(tmp_path_factory) -> dict[str, Path]:
    """Both chat servers, built as their server.toml descriptors say (tests/chat does the
    same), once for this module."""
    out = {}
    for impl in IMPLS:
        build_dir = tmp_path_factory.mktemp(f"client-test-build-{impl}")
        binary, result = build(impl, build_dir, env=toolchain_env())
        assert result.returncode == 0, f"{impl} build failed:\n{result.stdout}\n{result.stderr}"
        out[impl] = binary
    return out


@pytest.fixture(params=IMPLS)
def server(request, chat_binaries, tmp_path) -> Iterator[ChatServer]:
    """A real server of each implementation on a free loopback port, with an empty log."""
    impl = request.param
    key = new_key()
    key_file = write_key_file(tmp_path / "server.key", key)
    with server_dir(tmp_path) as log_dir:
        srv = start_server(impl, chat_binaries[impl], key=key, key_file=key_file,
                           log_path=log_dir / "chat.log", workdir=tmp_path)
        try:
            yield srv
        finally:
            srv.close_clients()
            force_stop(srv.proc)


@pytest.fixture
def client_key(server, tmp_path) -> Path:
    """The server's key in a file of the client's own (mode 600)."""
    return write_key_file(tmp_path / "client.key", server.key)


def start_client(terms: list[Term], env: dict[str, str], server: ChatServer, user: str,
                 key: Path, rows: int = 24, cols: int = 80, *extra: str) -> Term:
    term = Term(client_argv(server.port, user, key, *extra), env, rows, cols)
    terms.append(term)
    return term


@pytest.mark.integration
def test_two_people_talk(server, client_key, client_env, terms):
    alice = start_client(terms, client_env, server, "alice", client_key)
    # Bob comes in through `invoke chat`, from his own folder, naming his key file there.
    bob = Term([sys.executable, "-m", "invoke", "--search-root", str(REPO_ROOT), "chat",
                "--port", str(server.port), "--user", "bob", "--key-file", client_key.name],
               client_env, 24, 60, cwd=client_key.parent)
    terms.append(bob)
    # The log is empty, so "accepted" is the connection staying open past the key check.
    alice.wait_text(f"127.0.0.1:{server.port} as alice")
    bob.wait_text(f"127.0.0.1:{server.port} as bob")

    hello = "alice: hello bob, ünïcödé 你好 tok-a1"
    alice.type(hello.removeprefix("alice: ") + "\r")
    bob.wait_text(hello)
    alice.wait_text(hello)  # the sender sees its own line once the server has it
    reply = "bob: hi alice tok-b2"
    bob.type(reply.removeprefix("bob: ") + "\r")
    alice.wait_text(reply)
    bob.wait_text(reply)
    assert server.log_bytes() == f"{hello}\n{reply}\n".encode()
    # Someone who comes later finds the conversation in the history.
    carol = start_client(terms, client_env, server, "carol", client_key)
    carol.wait_text(reply)
    assert hello in carol.screen.text()

    alice.type("/quit\r")
    bob.type("\x04")  # Ctrl-D
    carol.type("\x04")
    assert (alice.wait_exit(), bob.wait_exit(), carol.wait_exit()) == (0, 0, 0)
    for term in (alice, bob, carol):
        assert "Traceback" not in term.output()
    # Leaving did not write anything to the log.
    assert server.log_bytes() == f"{hello}\n{reply}\n".encode()


@pytest.mark.integration
def test_rejected_key_is_said_and_exits_4(server, client_env, tmp_path, terms):
    wrong = write_key_file(tmp_path / "wrong.key", new_key())
    term = start_client(terms, client_env, server, "eve", wrong)
    assert term.wait_exit() == 4
    assert (f"papaya-chat: 127.0.0.1:{server.port} closed the connection right after the key "
            f"without sending anything: the key in {wrong} was rejected") in term.output()
    assert server.wait_message("wrong key")


@pytest.mark.integration
def test_dropped_connection_is_shown_then_exits_5(server, client_key, client_env, terms):
    term = start_client(terms, client_env, server, "alice", client_key)
    term.type("still here tok-d4\r")
    term.wait_text("alice: still here tok-d4")
    assert server.terminate() == 0
    lost = f"connection lost: 127.0.0.1:{server.port} closed the connection"
    term.wait_text(f"*** {lost}")
    term.wait_text("press any key to leave")
    assert "alice: still here tok-d4" in term.screen.text()  # the history stays in view
    term.type("q")
    assert term.wait_exit() == 5
    assert f"papaya-chat: {lost}" in term.output()


@pytest.mark.integration
def test_long_lines_wrap_and_follow_a_resize(server, client_key, client_env, terms):
    term = start_client(terms, client_env, server, "alice", client_key, 20, 40)
    words = " ".join(f"w{i:02d}" for i in range(40))  # 159 characters
    sent = subprocess.run(client_argv(server.port, "bob", client_key, "--send", words),
                          env=client_env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=15)
    assert sent.returncode == 0, sent.stderr
    term.wait_text("w39")

    def message_rows(t: Term) -> list[str]:
        rows = [t.screen.row(y) for y in range(t.screen.rows - 2)]
        return [row for row in rows if row]

    rows = message_rows(term)
    assert " ".join(rows) == f"bob: {words}"
    assert len(rows) == 5 and all(len(row) <= 40 for row in rows)
    term.resize(30, 100)
    assert term.wait_for(lambda t: "as alice" in t.screen.row(28)), term.screen.text()
    assert term.wait_for(lambda t: len(message_rows(t)) == 2), term.screen.text()
    rows = message_rows(term)
    assert " ".join(rows) == f"bob: {words}" and all(len(row) <= 100 for row in rows)
    term.type("\x04")
    assert term.wait_exit() == 0


@pytest.mark.integration
def test_received_escape_sequences_are_shown_not_obeyed(server, client_key, client_env, terms):
    term = start_client(terms, client_env, server, "alice", client_key)
    term.type("before tok-e5\r")
    term.wait_text("alice: before tok-e5")
    mallory = server.connect()
    mallory.send(b"mallory: \x1b[2J\x1b[1;1Hgotcha \xff tok-e6\n")
    term.wait_text("mallory: ^[[2J^[[1;1Hgotcha \ufffd tok-e6")
    assert "alice: before tok-e5" in term.screen.text()  # the screen was not cleared
    term.type("\x04")
    assert term.wait_exit() == 0


@pytest.mark.integration
def test_send_and_listen_for_scripts(server, client_key, client_env, tmp_path):
    def run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        return subprocess.run(client_argv(server.port, "bot", client_key, *args),
                              env=client_env, cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=15, **kwargs)

    done = run("--send", "build 1 passed", "--send", "build 2 passed")
    assert done.returncode == 0, done.stderr
    done = run("--send", "-", input="from stdin\n")
    assert done.returncode == 0, done.stderr
    expected = b"bot: build 1 passed\nbot: build 2 passed\nbot: from stdin\n"
    assert server.log_bytes() == expected
    listener = subprocess.Popen(client_argv(server.port, "bot", client_key, "--listen"),
                                env=client_env, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    try:
        out = b""
        deadline = time.monotonic() + 10
        while out != expected and time.monotonic() < deadline:
            if select.select([listener.stdout], [], [], 0.1)[0]:
                out += os.read(listener.stdout.fileno(), 65536)
        assert out == expected  # the history, as raw lines
        server.terminate()
        rest, err = listener.communicate(timeout=10)
    finally:
        force_stop(listener)
    # The server going away ends --listen with status 5 and says so.
    assert rest == b"" and listener.returncode == 5 and b"connection lost" in err
