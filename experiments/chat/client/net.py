"""The connection to a chat server, run by background threads so that the UI never waits.

A reader thread connects, sends the key, decides whether it was accepted and then reads lines;
a writer thread sends the lines the UI queues (right after the key: a server that rejects the
key closes the connection without reading them). Both report to
the UI through a queue of events; ``notify`` is called after each event is queued so the UI
can wake up.

Deciding acceptance: the server says nothing when it accepts the key, and closes the connection
without a word when it rejects it. So after the key we wait up to ``auth_wait`` seconds: data
(the history) means accepted; the connection closed (EOF or reset) before any data means
rejected; still open and silent at the end of the wait means accepted (an empty log).
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import ClientConfig
from .protocol import KEY_LENGTH, MAX_LINE

# A server never sends a line longer than MAX_LINE; far beyond it something is wrong.
MAX_PENDING = 16 * MAX_LINE


@dataclass(frozen=True)
class Progress:
    text: str


@dataclass(frozen=True)
class Accepted:
    pass


@dataclass(frozen=True)
class Line:
    data: bytes  # one line as the server sent it, without the newline


@dataclass(frozen=True)
class Failed:
    kind: str  # "unreachable", "rejected" or "lost"
    message: str


Event = Progress | Accepted | Line | Failed

EXIT_CODES = {"unreachable": 3, "rejected": 4, "lost": 5}


def describe_os_error(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (is the server running, and on this port?)"
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(error, BrokenPipeError):
        return "the server closed the connection"
    if error.errno is not None:
        return os.strerror(error.errno)
    return str(error)


def open_connection(config: ClientConfig) -> socket.socket:
    """A connected TCP socket, or Failed-worthy OSError wrapped as ConnectError."""
    try:
        sock = socket.create_connection((config.host, config.port),
                                        timeout=config.connect_timeout)
    except socket.gaierror as error:
        raise ConnectError(f"cannot find host {config.host!r}: {error.strerror}") from None
    except TimeoutError:
        raise ConnectError(
            f"cannot connect to {config.address}: no answer within "
            f"{config.connect_timeout:g} s (timed out; wrong host, or a firewall?)") from None
    except OSError as error:
        raise ConnectError(f"cannot connect to {config.address}: "
                           f"{describe_os_error(error)}") from None
    sock.settimeout(None)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class ConnectError(Exception):
    pass


def rejected_message(config: ClientConfig) -> str:
    return (f"{config.address} closed the connection right after the key without sending "
            f"anything: the key in {config.key_file} was rejected (or the server is at its "
            f"client limit)")


class LineSplitter:
    """Bytes in, complete lines (without the newline) out."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        if len(self.pending) > MAX_PENDING:
            raise ValueError(f"the server sent more than {MAX_PENDING} bytes without a newline")
        return lines


class Connection:
    """One session with the server; start() returns at once, events arrive on ``events``."""

    def __init__(self, config: ClientConfig, key: bytes, notify: Callable[[], None]) -> None:
        if len(key) != KEY_LENGTH:
            raise ValueError(f"the key must be {KEY_LENGTH} bytes")
        self.config = config
        self.key = key
        self.notify = notify
        self.events: queue.Queue[Event] = queue.Queue()
        self.outgoing: queue.Queue[bytes | None] = queue.Queue()
        self.key_sent = threading.Event()
        self.accepted = threading.Event()
        self.closing = threading.Event()
        self.sock: socket.socket | None = None
        self.sock_lock = threading.Lock()
        self.failed = False
        self.reader = threading.Thread(target=self._read_side, name="chat-reader", daemon=True)
        self.writer = threading.Thread(target=self._write_side, name="chat-writer", daemon=True)

    # ------------------------------------------------------------------ UI side

    def start(self) -> None:
        self.reader.start()
        self.writer.start()

    def send(self, line: bytes) -> None:
        """Queue one complete line (ending in a newline); sent once the key has been."""
        if not line.endswith(b"\n") or b"\n" in line[:-1] or len(line) > MAX_LINE:
            raise ValueError("not one protocol line")
        self.outgoing.put(line)

    def close(self, flush_timeout: float = 2.0) -> None:
        """Send what is queued (waiting at most ``flush_timeout``), then disconnect."""
        self.outgoing.put(None)
        if self.key_sent.is_set() and self.writer.is_alive():
            self.writer.join(flush_timeout)
        self.closing.set()
        with self.sock_lock:
            sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.reader.join(1.0)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # ------------------------------------------------------------------ threads

    def _post(self, event: Event) -> None:
        if isinstance(event, Failed):
            if self.failed or self.closing.is_set():
                return
            self.failed = True
        self.events.put(event)
        self.notify()

    def _read_side(self) -> None:
        config = self.config
        self._post(Progress(f"connecting to {config.address}…"))
        try:
            sock = open_connection(config)
        except ConnectError as error:
            self._post(Failed("unreachable", str(error)))
            self.outgoing.put(None)
            return
        with self.sock_lock:
            self.sock = sock
        if self.closing.is_set():
            return
        try:
            sock.sendall(self.key)
        except OSError:
            # Closed before it even took the key: treat as a refusal.
            self._post(Failed("rejected", rejected_message(config)))
            return
        self.key_sent.set()
        self._post(Progress(f"connected to {config.address}; checking the key…"))
        splitter = LineSplitter()
        first = self._await_verdict(sock)
        if first is None:
            return
        self.accepted.set()
        self._post(Accepted())
        data = first
        while True:
            if data:
                try:
                    lines = splitter.feed(data)
                except ValueError as error:
                    self._post(Failed("lost", f"{config.address}: {error}; disconnected"))
                    return
                for line in lines:
                    self._post(Line(line))
            try:
                data = sock.recv(65536)
            except OSError as error:
                if not self.closing.is_set():
                    self._post(Failed("lost", f"lost the connection to {config.address}: "
                                              f"{describe_os_error(error)}"))
                return
            if not data:
                self._post(Failed("lost", f"connection lost: {config.address} closed the "
                                          f"connection"))
                return

    def _await_verdict(self, sock: socket.socket) -> bytes | None:
        """b"" or the first bytes received when the key is taken as accepted; None (after
        posting why) when it was rejected or the connection failed meanwhile."""
        deadline = time.monotonic() + self.config.auth_wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return b""  # still open and silent: accepted, and the log is empty
            try:
                ready, _, _ = select.select([sock], [], [], remaining)
            except OSError as error:
                if error.errno == errno.EINTR:
                    continue
                if not self.closing.is_set():
                    self._post(Failed("lost", f"{self.config.address}: "
                                              f"{describe_os_error(error)}"))
                return None
            if not ready:
                continue
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            except OSError as error:
                if not self.closing.is_set():
                    self._post(Failed("lost", f"lost the connection to {self.config.address}: "
                                              f"{describe_os_error(error)}"))
                return None
            if not data:
                if not self.closing.is_set():
                    self._post(Failed("rejected", rejected_message(self.config)))
                return None
            return data

    def _write_side(self) -> None:
        while not self.key_sent.wait(0.2):
            if self.closing.is_set() or self.failed:
                return
        while True:
            line = self.outgoing.get()
            if line is None:
                return
            with self.sock_lock:
                sock = self.sock
            if sock is None:
                return
            try:
                sock.sendall(line)
            except OSError as error:
                if not self.closing.is_set():
                    self._post(Failed("lost", f"lost the connection to {self.config.address}: "
                                              f"{describe_os_error(error)}"))
                return
