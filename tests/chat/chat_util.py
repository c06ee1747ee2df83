"""Helpers for the chat conformance suite: building and starting the chat servers, clients,
and the 64-writer load run (also used by benchmarks/bench_chat.py).

Everything here talks only to loopback and bounds every wait in time.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import os
import pwd
import random
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests import servers_util

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAT_DIR = REPO_ROOT / "experiments" / "chat"
C_DIR = CHAT_DIR / "c"
GO_DIR = CHAT_DIR / "go"

IMPLS = ("c", "go")
BINARY_NAMES = {"c": "papaya-chatd", "go": "papaya-chatd-go"}
DESCRIPTOR_NAMES = {"c": "chat-c", "go": "chat-go"}
KEY_LENGTH = 128
MAX_LINE = 4096
# The user the servers switch to when the tests run as root (see README: --user).
TEST_USER = "nobody"

LISTENING = re.compile(r": listening on (0\.0\.0\.0|\[::\]):(\d+)$", re.M)


# --------------------------------------------------------------------------- building


def toolchain_env(**overrides: str) -> dict[str, str]:
    """The runner's build environment, without an inherited CFLAGS: the Makefile's own flags
    are the ones under test."""
    env = servers_util.toolchain_env()
    env.pop("CFLAGS", None)
    env.update(overrides)
    return env


venv_go = servers_util.venv_go


def load_descriptor(impl: str) -> dict:
    return servers_util.load_descriptor(impl, CHAT_DIR)


def build(
    impl: str,
    build_dir: Path,
    *,
    make: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Build ``impl`` as its server.toml says (cwd = its folder); return (binary, result)."""
    return servers_util.build_from_descriptor(impl, build_dir, make=make, env=env,
                                              timeout=timeout, servers_dir=CHAT_DIR)


# --------------------------------------------------------------------------- files


def new_key() -> bytes:
    """A fresh 128-character key: a SHA-512 hex digest of random bytes."""
    return hashlib.sha512(os.urandom(64)).hexdigest().encode()


def write_key_file(path: Path, key: bytes, mode: int = 0o600, newline: bool = True) -> Path:
    path.write_bytes(key + (b"\n" if newline else b""))
    os.chmod(path, mode)
    return path


def running_as_root() -> bool:
    return os.geteuid() == 0


def user_args() -> list[str]:
    """Started as root, a server must be told whom to run as (no 'papaya' user in tests)."""
    return ["--user", TEST_USER] if running_as_root() else []


@contextlib.contextmanager
def server_dir(fallback: Path) -> Iterator[Path]:
    """A folder for the chat log that the server's user can write.

    As root, the servers drop to TEST_USER, who cannot reach pytest's tmp_path (under a
    0700 root folder); a private folder under the system's temporary directory, owned
    by that user, is used instead and removed afterwards. Otherwise ``fallback``.
    """
    if not running_as_root():
        yield fallback
        return
    path = Path(tempfile.mkdtemp(prefix="papaya-chat-test-"))
    try:
        pw = pwd.getpwnam(TEST_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def server_user_ids() -> tuple[int, int]:
    pw = pwd.getpwnam(TEST_USER)
    return pw.pw_uid, pw.pw_gid


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


# --------------------------------------------------------------------------- waiting


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    return servers_util.wait_for(predicate, timeout, interval)


# --------------------------------------------------------------------------- clients


class ChatClient:
    """One connection to a chat server, with line-oriented helpers (all bounded in time)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""  # received, not yet taken by read_lines
        self.received = b""  # everything received, ever

    @classmethod
    def connect(cls, port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> ChatClient:
        sock = socket.create_connection((host, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(sock)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self, timeout: float) -> bytes | None:
        """Up to 64 KiB; b"" at end-of-file (or a reset); None on timeout."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return None
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        self.buf += data
        self.received += data
        return data

    def read_lines(self, n: int, timeout: float = 5.0) -> list[bytes]:
        """Exactly ``n`` lines (with their newlines); AssertionError if they don't come."""
        deadline = time.monotonic() + timeout
        while self.buf.count(b"\n") < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {n} lines; have {self.buf!r:.300}")
            data = self._recv(remaining)
            if data == b"":
                raise AssertionError(f"connection closed; wanted {n} lines, have {self.buf!r:.300}")
        lines = self.buf.split(b"\n")
        taken, self.buf = lines[:n], b"\n".join(lines[n:])
        return [line + b"\n" for line in taken]

    def read_line(self, timeout: float = 5.0) -> bytes:
        return self.read_lines(1, timeout)[0]

    def expect_silence(self, duration: float) -> None:
        """Nothing arrives (and the connection stays open) for ``duration`` seconds."""
        deadline = time.monotonic() + duration
        while (remaining := deadline - time.monotonic()) > 0:
            data = self._recv(remaining)
            if data is None:
                break
            assert data != b"", "the server closed the connection"
            raise AssertionError(f"unexpected data: {data!r:.200}")
        assert self.buf == b"", f"unexpected data: {self.buf!r:.200}"

    def closed_by_peer(self, timeout: float = 3.0) -> bool:
        """True once the server has closed the connection (EOF or reset) within timeout;
        whatever arrives before is kept in ``buf``."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            data = self._recv(remaining)
            if data is None:
                return False
            if data == b"":
                return True
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), as a crashed client would."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- servers


@dataclass
class ChatServer:
    impl: str
    binary: Path
    proc: subprocess.Popen[bytes]
    port: int
    key: bytes
    key_file: Path
    log_path: Path
    stderr_path: Path
    args: list[str]
    clients: list[ChatClient] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return BINARY_NAMES[self.impl] + ": "

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def messages(self) -> list[str]:
        """stderr lines without the program name."""
        out = []
        for line in self.stderr_text().splitlines():
            assert line.startswith(self.prefix), f"stray stderr line: {line!r}"
            out.append(line[len(self.prefix) :])
        return out

    def wait_message(self, needle: str, timeout: float = 3.0) -> bool:
        return wait_for(lambda: needle in self.stderr_text(), timeout)

    def log_bytes(self) -> bytes:
        try:
            return self.log_path.read_bytes()
        except FileNotFoundError:
            return b""

    def connect(self, *, key: bytes | None = None, host: str = "127.0.0.1") -> ChatClient:
        """A client that has sent the key (its own unless ``key`` is given)."""
        client = ChatClient.connect(self.port, host)
        self.clients.append(client)
        client.send(self.key if key is None else key)
        return client

    def join(self, name: str, *, history: int = 0) -> ChatClient:
        """A client that is surely being served: it says hello and waits for its echo.

        ``history`` is how many history lines to expect (and skip) first.
        """
        client = self.connect()
        if history:
            client.read_lines(history)
        hello = f"{name}: hello {random.getrandbits(32):08x}\n".encode()
        client.send(hello)
        while True:
            line = client.read_line()
            if line == hello:
                return client

    def tree(self) -> list:
        """psutil processes of the server and all its descendants."""
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def terminate(self, timeout: float = 3.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()


# What the ``launch`` fixture gives: launch(extra_args, log=..., which=...) -> ChatServer.
Launcher = Callable[..., ChatServer]


def force_stop(proc: subprocess.Popen[bytes]) -> None:
    """Last-resort cleanup: SIGKILL the server, and its group if it leads its own."""
    if proc.poll() is None:
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except ProcessLookupError:
            pass
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    # A C server killed this way leaves its group's processes to init: end them too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def start_server(
    impl: str,
    binary: Path,
    *,
    key: bytes,
    key_file: Path,
    log_path: Path,
    workdir: Path,
    extra: list[str] | None = None,
    port: int = 0,
    plain: bool = False,
    ready_timeout: float = 5.0,
) -> ChatServer:
    """Start a server and wait for its listening line (AssertionError if it does not come).

    The arguments are --port, --key-file, --log, --user (as root) and ``extra``; with
    ``plain``, ``extra`` only.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    stderr_path = workdir / f"{impl}-{time.monotonic_ns()}.stderr"
    base = ["--port", str(port), "--key-file", str(key_file), "--log", str(log_path)]
    args = [*([] if plain else [*base, *user_args()]), *(extra or [])]
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [str(binary), *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
    found: list[int] = []

    def ready() -> bool:
        m = LISTENING.search(stderr_path.read_text(errors="replace"))
        if m:
            found.append(int(m.group(2)))
            return True
        return proc.poll() is not None

    if not wait_for(ready, ready_timeout) or not found:
        force_stop(proc)
        raise AssertionError(
            f"{binary.name} did not report listening (rc={proc.poll()}): "
            f"{stderr_path.read_text(errors='replace')!r}"
        )
    return ChatServer(impl, binary, proc, found[0], key, key_file, log_path, stderr_path, args)


def run_to_exit(binary: Path, args: list[str], timeout: float = 10) -> subprocess.CompletedProcess:
    """Run a server that is expected to stop by itself (a start-up error, --help)."""
    return subprocess.run(
        [str(binary), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --------------------------------------------------------------------------- load


LOAD_LINE = re.compile(rb"w(\d\d): (?:hello [0-9a-f]{8}|seq=(\d{4}) t=(\d+))\n")


@dataclass
class LoadResult:
    writers: int
    lines_per_writer: int
    sent: int
    logged: int
    logged_unique: int
    delivered: list[int]  # data lines delivered, per client
    duplicated: list[int]  # data lines delivered more than once, per client
    lost: list[int]  # data lines never delivered, per client
    malformed_log_lines: int
    out_of_order_writers: int  # writers whose lines are not in their order in the log
    suffix_ok: list[bool]  # each client's stream is exactly a suffix of the log
    latencies_ns: list[int]  # receive time - send time, per (line, client)
    duration_s: float
    log: bytes = b""
    streams: list[bytes] = field(default_factory=list)


def run_load(
    server: ChatServer,
    writers: int = 64,
    lines_per_writer: int = 1000,
    *,
    rate_per_writer: float | None = None,
    timeout: float = 60.0,
    seed: int = 3,
) -> LoadResult:
    """``writers`` clients each send ``lines_per_writer`` lines and read everything.

    Each client first joins (hello + its echo), so every client is registered before the
    first data line. Lines are ``wNN: seq=MMMM t=<send time ns>``. Unpaced
    (``rate_per_writer`` None), each writer sends its lines in random-sized pieces that cut
    lines anywhere; paced, one whole line per 1/rate seconds. Receive times give each line's
    delivery latency on every client. Bounded by ``timeout``.
    """
    rng = random.Random(seed)
    clients = [server.join(f"w{i:02d}") for i in range(writers)]
    sel = selectors.DefaultSelector()
    # Everything each client has received since it connected (history and hellos too).
    streams = [bytearray(client.received) for client in clients]
    tails = [client.buf for client in clients]  # not yet counted (no data lines yet)
    counts = [0] * writers
    latencies: list[int] = []
    expected = writers * lines_per_writer
    pending_out: list[bytearray] = [bytearray() for _ in clients]
    registered = [selectors.EVENT_READ] * writers
    next_seq = [0] * writers
    paced = rate_per_writer is not None
    interval_ns = int(1e9 / rate_per_writer) if rate_per_writer else 0
    try:
        for i, client in enumerate(clients):
            client.sock.setblocking(False)
            sel.register(client.sock, selectors.EVENT_READ, i)
        started = time.monotonic()
        start_ns = time.monotonic_ns()
        deadline = started + timeout
        while min(counts) < expected:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"load timed out after {timeout} s: received {sorted(counts)[:4]}... "
                    f"of {expected} lines"
                )
            now_ns = time.monotonic_ns()
            next_due = None
            for i in range(writers):  # queue what is due
                if next_seq[i] < lines_per_writer:
                    if paced:
                        due = start_ns + interval_ns * next_seq[i] + (i * interval_ns) // writers
                        if now_ns < due:
                            next_due = due if next_due is None else min(next_due, due)
                        else:
                            pending_out[i] += b"w%02d: seq=%04d t=%d\n" % (
                                i,
                                next_seq[i],
                                time.monotonic_ns(),
                            )
                            next_seq[i] += 1
                    elif len(pending_out[i]) < 4096:
                        for _ in range(min(rng.randint(1, 60), lines_per_writer - next_seq[i])):
                            pending_out[i] += b"w%02d: seq=%04d t=%d\n" % (
                                i,
                                next_seq[i],
                                time.monotonic_ns(),
                            )
                            next_seq[i] += 1
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending_out[i] else 0)
                if want != registered[i]:
                    sel.modify(clients[i].sock, want, i)
                    registered[i] = want
            wait = 0.05
            if next_due is not None:
                wait = min(wait, max(0.0, (next_due - time.monotonic_ns()) / 1e9))
            for key, events in sel.select(timeout=wait):
                i = key.data
                sock = clients[i].sock
                if events & selectors.EVENT_READ:
                    try:
                        data = sock.recv(262144)
                    except (BlockingIOError, InterruptedError):
                        data = None
                    if data == b"":
                        raise AssertionError(f"client w{i:02d}: the server closed the connection")
                    if data:
                        t_ns = time.monotonic_ns()
                        streams[i] += data
                        chunk = tails[i] + data
                        cut = chunk.rfind(b"\n") + 1
                        whole, tails[i] = chunk[:cut], chunk[cut:]
                        counts[i] += whole.count(b" seq=")
                        if paced:
                            for m in re.finditer(rb" t=(\d+)\n", whole):
                                latencies.append(t_ns - int(m.group(1)))
                if events & selectors.EVENT_WRITE and pending_out[i]:
                    piece = len(pending_out[i]) if paced else rng.randint(1, 2000)
                    try:
                        sent = sock.send(bytes(pending_out[i][:piece]))
                    except (BlockingIOError, InterruptedError):
                        sent = 0
                    del pending_out[i][:sent]
        duration = time.monotonic() - started
    finally:
        sel.close()
        for client in clients:
            client.close()

    log = server.log_bytes()
    return check_load(
        log, [bytes(s) for s in streams], writers, lines_per_writer, latencies, duration
    )


def check_load(
    log: bytes,
    streams: list[bytes],
    writers: int,
    lines_per_writer: int,
    latencies: list[int],
    duration: float,
) -> LoadResult:
    """Count sent / logged / delivered / lost / duplicated lines by their content."""
    expected = {
        b"w%02d: seq=%04d" % (w, s) for w in range(writers) for s in range(lines_per_writer)
    }

    def data_lines(blob: bytes) -> list[bytes]:
        return [line.split(b" t=")[0] for line in blob.split(b"\n") if b" seq=" in line]

    log_lines = log.split(b"\n")
    malformed = sum(1 for line in log_lines[:-1] if not LOAD_LINE.fullmatch(line + b"\n"))
    if log and not log.endswith(b"\n"):
        malformed += 1
    logged = data_lines(log)
    order_bad = 0
    last = [-1] * writers
    bad_writers: set[int] = set()
    for line in logged:
        m = re.fullmatch(rb"w(\d\d): seq=(\d{4})", line)
        if not m:
            continue
        w, s = int(m.group(1)), int(m.group(2))
        if w < writers:
            if s <= last[w]:
                bad_writers.add(w)
            last[w] = s
    order_bad = len(bad_writers)

    delivered, duplicated, lost, suffix_ok = [], [], [], []
    for stream in streams:
        lines = data_lines(stream)
        c = Counter(lines)
        delivered.append(len(lines))
        duplicated.append(sum(n - 1 for n in c.values() if n > 1))
        lost.append(len(expected - c.keys()))
        suffix_ok.append(
            len(stream) <= len(log)
            and log.endswith(stream)
            and (len(stream) == len(log) or log[len(log) - len(stream) - 1] == ord("\n"))
        )
    return LoadResult(
        writers=writers,
        lines_per_writer=lines_per_writer,
        sent=len(expected),
        logged=len(logged),
        logged_unique=len(set(logged) & expected),
        delivered=delivered,
        duplicated=duplicated,
        lost=lost,
        malformed_log_lines=malformed,
        out_of_order_writers=order_bad,
        suffix_ok=suffix_ok,
        latencies_ns=latencies,
        duration_s=duration,
        log=log,
        streams=streams,
    )


def percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]
