"""The chat protocol (experiments/chat/PROTOCOL.md), against both servers.

Every check is by content: which lines arrive, in which order, how many times, and what
the log holds. A server that drops, duplicates, reorders or cuts lines fails.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.chat.chat_util import KEY_LENGTH, MAX_LINE, ChatClient, ChatServer, Launcher, wait_for

pytestmark = pytest.mark.integration


def read_data_lines(client: ChatClient, n: int, timeout: float = 5.0) -> list[bytes]:
    """The next ``n`` lines that are not hellos of clients joining (see ChatServer.join)."""
    deadline = time.monotonic() + timeout
    got: list[bytes] = []
    while len(got) < n:
        line = client.read_line(max(0.01, deadline - time.monotonic()))
        if not re.fullmatch(rb"[^:]+: hello [0-9a-f]{8}\n", line):
            got.append(line)
    return got


# --------------------------------------------------------------------------- authentication


def test_right_key_then_lines(server: ChatServer) -> None:
    # The key and the first line in one segment: the server must read exactly 128 bytes.
    client = ChatClient.connect(server.port)
    server.clients.append(client)
    client.send(server.key + b"alice: hi\n")
    assert client.read_line() == b"alice: hi\n"
    assert server.log_bytes() == b"alice: hi\n"
    assert any(
        m.startswith("client 127.0.0.1:") and m.endswith(": authenticated")
        for m in server.messages()
    )


def test_wrong_key_is_closed_without_a_word(server: ChatServer) -> None:
    wrong = server.key[:-1] + (b"0" if server.key[-1:] != b"0" else b"1")
    client = server.connect(key=wrong)
    client.send(b"mallory: let me in\n")
    assert client.closed_by_peer(3)
    assert client.received == b""  # nothing at all was sent back
    assert server.wait_message("wrong key; connection closed")
    assert server.log_bytes() == b""
    # A right key still works afterwards.
    ok = server.join("alice")
    ok.send(b"alice: still here\n")
    assert ok.read_line() == b"alice: still here\n"
    assert b"mallory" not in server.log_bytes()


def test_key_in_one_byte_pieces(server: ChatServer) -> None:
    """A server that authenticates with a single read() fails here."""
    client = ChatClient.connect(server.port)
    server.clients.append(client)
    for i in range(KEY_LENGTH):
        client.send(server.key[i : i + 1])
        time.sleep(0.003)  # 128 separate segments, well within the 1 s timeout
    client.send(b"bob: pieces\n")
    assert client.read_line() == b"bob: pieces\n"


def test_auth_timeout_closes_silently(server: ChatServer) -> None:
    client = ChatClient.connect(server.port)
    server.clients.append(client)
    client.send(server.key[:100])  # never finishes the key
    t0 = time.monotonic()
    assert client.closed_by_peer(4), "the server kept an unauthenticated client"
    elapsed = time.monotonic() - t0
    assert 0.7 <= elapsed <= 2.5, elapsed
    assert client.received == b""
    assert server.wait_message("authentication timed out; connection closed")


def test_auth_timeout_is_for_the_whole_key(server: ChatServer) -> None:
    """Trickling bytes does not extend the time allowed (it is not a per-read timeout)."""
    client = ChatClient.connect(server.port)
    server.clients.append(client)
    t0 = time.monotonic()
    sent = 0
    while time.monotonic() - t0 < 3 and sent < KEY_LENGTH - 1:
        try:
            client.send(server.key[sent : sent + 1])
        except OSError:
            break
        sent += 1
        if client.closed_by_peer(0.2):
            break
    assert client.closed_by_peer(1)
    assert time.monotonic() - t0 < 2.0
    assert server.wait_message("authentication timed out")


def test_auth_timeout_option(launch: Launcher) -> None:
    srv = launch(["--auth-timeout", "0.3"])
    client = ChatClient.connect(srv.port)
    srv.clients.append(client)
    t0 = time.monotonic()
    assert client.closed_by_peer(3)
    assert 0.2 <= time.monotonic() - t0 <= 1.5


def test_client_gone_during_authentication(server: ChatServer) -> None:
    client = ChatClient.connect(server.port)
    client.send(server.key[:10])
    client.close()
    assert server.wait_message("connection closed during authentication")
    assert server.join("alice")


# --------------------------------------------------------------------------- history


@pytest.mark.parametrize("history", [None, 0, 3, 50])
def test_history_on_connect(launch: Launcher, history: int | None) -> None:
    srv = launch([] if history is None else ["--history", str(history)])
    writer = srv.join("writer")
    before = srv.log_bytes().splitlines(keepends=True)
    lines = [f"writer: {i}\n".encode() for i in range(12)]
    for line in lines:
        writer.send(line)
        assert writer.read_line() == line
    log_lines = before + lines
    assert srv.log_bytes() == b"".join(log_lines)

    h = 7 if history is None else history
    reader = srv.connect()
    expected = log_lines[-h:] if h else []
    if expected:
        assert reader.read_lines(len(expected)) == expected
    reader.expect_silence(0.3)  # exactly the last H lines, no more
    writer.send(b"writer: after\n")
    assert reader.read_line() == b"writer: after\n"
    assert writer.read_line() == b"writer: after\n"


# --------------------------------------------------------------------------- delivery


def test_echo_to_the_sender(server: ChatServer) -> None:
    client = server.join("alice")
    for i in range(20):
        line = f"alice: message {i}\n".encode()
        client.send(line)
        assert client.read_line(2) == line


def test_fan_out_to_every_client(launch: Launcher) -> None:
    srv = launch(["--history", "0"])
    clients = [srv.join(f"u{i}") for i in range(6)]
    # Each client's stream since its own hello is the log since that hello.
    for i, client in enumerate(clients):
        client.send(f"u{i}: from {i}\n".encode())
    wanted = {f"u{i}: from {i}\n".encode() for i in range(6)}
    for client in clients:
        got: set[bytes] = set()
        while not wanted <= got:
            got.add(client.read_line())
    log = srv.log_bytes()
    for client in clients:
        assert log.endswith(client.received), "a client's stream is not the end of the log"


def test_no_wake_up_is_lost(launch: Launcher) -> None:
    """Ping-pong: every single line must reach every client promptly, with no later line to
    push it out. A lost wake-up (pause() without blocking SIGUSR1) shows as a timeout."""
    srv = launch(["--history", "0"])
    clients = [srv.join(f"p{i}") for i in range(4)]
    for r in range(100):
        line = f"p{r % 4}: round {r}\n".encode()
        clients[r % 4].send(line)
        for client in clients:
            got = client.read_line(timeout=2.0)
            while got != line:  # only hellos of clients that joined later may precede
                assert b"hello" in got, (r, got)
                got = client.read_line(timeout=2.0)


def test_no_wake_up_is_lost_in_bursts(launch: Launcher) -> None:
    """Bursts: in each round every client sends one line at (nearly) the same moment, so
    wake-ups arrive while the senders are still busy with earlier lines; then all wait.
    Each round's lines must reach everyone promptly: a wake-up that arrives between a
    sender's last read of the log and its going to sleep must not be lost. (The race is
    narrow: with SIGUSR1 left unblocked while draining, this catches about 5 lost
    wake-ups per run, so it fails with near certainty.)"""
    srv = launch(["--history", "0"])
    n = 16
    clients = [srv.join(f"b{i:02d}") for i in range(n)]
    for r in range(1000):
        lines = [b"b%02d: %04d\n" % (i, r) for i in range(n)]
        for client, line in zip(clients, lines, strict=True):
            client.sock.sendall(line)
        for client in clients:
            got = read_data_lines(client, n, timeout=1.0)
            assert sorted(got) == lines, (r, got)


def test_same_total_order_on_every_client(launch: Launcher) -> None:
    srv = launch(["--history", "0"])
    n_clients, n_lines = 8, 300
    clients = [srv.join(f"o{i}") for i in range(n_clients)]
    hello_end = len(srv.log_bytes())

    def writer(i: int) -> None:
        payload = b"".join(b"o%d: %04d\n" % (i, k) for k in range(n_lines))
        pos = 0
        while pos < len(payload):  # pieces that cut lines anywhere
            step = 1 + (pos * 7 + i * 13) % 97
            clients[i].sock.sendall(payload[pos : pos + step])
            pos += step

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    total = n_clients * n_lines
    streams = []
    for client in clients:
        streams.append(read_data_lines(client, total, timeout=10))
    log_lines = srv.log_bytes()[hello_end:].splitlines(keepends=True)
    assert len(log_lines) == total
    assert len(set(log_lines)) == total
    for got in streams:
        assert got == log_lines  # the log's order, on every client
    for i in range(n_clients):  # and each writer's lines in the order it sent them
        mine = [line for line in log_lines if line.startswith(b"o%d: " % i)]
        assert mine == [b"o%d: %04d\n" % (i, k) for k in range(n_lines)]


def test_slow_reader_gets_everything_and_slows_nobody(launch: Launcher) -> None:
    """A reader that stops reading for 2 s: the others receive everything meanwhile, and
    it receives everything afterwards (its SEND blocks in write, and must neither fail
    nor be dropped when wake-ups arrive)."""
    srv = launch(["--history", "0"])
    slow = ChatClient(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sock.settimeout(5)
    slow.sock.connect(("127.0.0.1", srv.port))
    srv.clients.append(slow)
    slow.send(srv.key + b"slow: hello\n")
    assert slow.read_line() == b"slow: hello\n"
    fast = srv.join("fast")
    writer = srv.join("writer")
    start = len(srv.log_bytes())

    # More than the slow reader's socket buffers can hold (the server's send buffer
    # grows up to tcp_wmem's maximum, 4 MiB by default).
    try:
        wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        wmem_max = 4 << 20
    volume = min(max(2 * wmem_max, 4 << 20), 24 << 20)
    body = b"x" * 4000
    n = volume // 4020 + 1
    lines = [b"writer: %06d %s\n" % (k, body) for k in range(n)]
    payload = b"".join(lines)

    t0 = time.monotonic()
    sender = threading.Thread(target=writer.sock.sendall, args=(payload,))
    sender.start()
    got = read_data_lines(fast, n, timeout=15)
    fast_done = time.monotonic() - t0
    sender.join(10)
    assert got == lines
    # The fast reader had everything while the slow one still slept: not held back.
    assert fast_done < 2.0, f"the fast reader took {fast_done:.2f} s"
    writer_echo = read_data_lines(writer, n, timeout=15)
    assert writer_echo == lines
    assert srv.log_bytes()[start:] == payload

    time.sleep(max(0.0, 2.0 - (time.monotonic() - t0)))
    assert read_data_lines(slow, n, timeout=20) == lines
    slow.expect_silence(0.2)
    # And the slow client is still served.
    writer.send(b"writer: one more\n")
    assert slow.read_line() == b"writer: one more\n"


# --------------------------------------------------------------------------- bad lines


def test_longest_line_passes_longer_line_closes(launch: Launcher) -> None:
    srv = launch(["--history", "0"])
    watcher = srv.join("watcher")
    ok = srv.join("ok")
    longest = b"ok: " + b"a" * (MAX_LINE - 5) + b"\n"
    assert len(longest) == MAX_LINE
    ok.send(longest)
    assert ok.read_line() == longest
    assert watcher.read_lines(2)[1] == longest  # after ok's hello

    bad = srv.join("bad")
    assert watcher.read_line().startswith(b"bad: hello")
    too_long = b"bad: " + b"b" * (MAX_LINE - 5) + b"\n"
    assert len(too_long) == MAX_LINE + 1
    bad.send(b"bad: before\n" + too_long + b"bad: after\n")
    assert bad.closed_by_peer(3)
    assert srv.wait_message("line longer than 4096 bytes; connection closed")
    assert watcher.read_line() == b"bad: before\n"  # lines before it are kept
    watcher.expect_silence(0.3)
    log = srv.log_bytes()
    assert log.endswith(b"bad: before\n")
    assert b"bad: after" not in log and b"b" * 100 not in log


def test_unfinished_long_line_closes_before_its_newline(launch: Launcher) -> None:
    srv = launch(["--history", "0"])
    bad = srv.join("bad")
    bad.send(b"bad: " + b"c" * MAX_LINE)  # no newline yet: already too long
    assert bad.closed_by_peer(3)
    assert srv.wait_message("line longer than 4096 bytes")
    assert b"c" * 100 not in srv.log_bytes()


def test_nul_byte_closes(launch: Launcher) -> None:
    srv = launch(["--history", "0"])
    bad = srv.join("bad")
    bad.send(b"bad: a\x00b\n")
    assert bad.closed_by_peer(3)
    assert srv.wait_message("line contains a NUL byte; connection closed")
    assert b"\x00" not in srv.log_bytes()


def test_disconnect_mid_line_drops_the_partial_line(launch: Launcher) -> None:
    srv = launch(["--history", "0"])
    watcher = srv.join("watcher")
    leaver = srv.join("leaver")
    assert watcher.read_line().startswith(b"leaver: hello")
    leaver.send(b"leaver: complete\nleaver: parti")
    assert watcher.read_line() == b"leaver: complete\n"
    leaver.close()
    assert srv.wait_message("disconnected; dropped an unfinished line of 13 bytes")
    watcher.send(b"watcher: next\n")
    assert watcher.read_line() == b"watcher: next\n"
    log = srv.log_bytes()
    assert log.endswith(b"leaver: complete\nwatcher: next\n")
    assert b"parti" not in log


def test_client_reset_while_being_sent_history(launch: Launcher) -> None:
    """Clients that vanish (TCP reset) while the server writes to them: with SIGPIPE
    ignored, the server carries on, and nothing is lost for the others."""
    srv = launch(["--history", "1000"])
    writer = srv.join("writer")
    big = [b"writer: %04d %s\n" % (k, b"z" * 3000) for k in range(400)]
    writer.sock.sendall(b"".join(big))
    writer.read_lines(400, timeout=10)
    for _ in range(10):
        c = srv.connect()
        c.reset()
    watcher = srv.connect()
    assert len(watcher.read_lines(401, timeout=10)) == 401
    writer.send(b"writer: after resets\n")
    assert watcher.read_line() == b"writer: after resets\n"
    assert srv.proc.poll() is None
    # Nothing but the expected kinds of message on stderr.
    for message in srv.messages():
        assert re.search(r"(listening on|authenticated|disconnected)", message), message


# --------------------------------------------------------------------------- limits


def test_max_clients(launch: Launcher) -> None:
    srv = launch(["--max-clients", "3", "--history", "0"])
    members = [srv.join(f"m{i}") for i in range(3)]
    extra = ChatClient.connect(srv.port)
    srv.clients.append(extra)
    t0 = time.monotonic()
    assert extra.closed_by_peer(2), "a fourth client was kept"
    assert time.monotonic() - t0 < 1.0, "the client over the limit was not closed at once"
    assert extra.received == b""
    assert srv.wait_message("too many clients (limit 3); connection closed")

    # The three members are still served.
    members[0].send(b"m0: still fine\n")
    for m in members:
        assert read_data_lines(m, 1) == [b"m0: still fine\n"]
    # One leaves; then there is room again.
    members[2].close()
    assert srv.wait_message("disconnected")

    def room() -> bool:
        c = ChatClient.connect(srv.port)
        c.send(srv.key + b"m3: in\n")
        try:
            while True:
                line = c.read_line(1)
                if line == b"m3: in\n":
                    srv.clients.append(c)
                    return True
        except AssertionError:
            c.close()
            return False

    assert wait_for(room, 5, interval=0.1)


def test_unauthenticated_connections_count(launch: Launcher) -> None:
    srv = launch(["--max-clients", "2", "--auth-timeout", "3"])
    idle = [ChatClient.connect(srv.port) for _ in range(2)]
    srv.clients.extend(idle)
    time.sleep(0.2)
    third = srv.connect()
    srv.clients.append(third)
    assert third.closed_by_peer(2)


# --------------------------------------------------------------------------- the log


def test_log_writes_respect_flock(server: ChatServer) -> None:
    """Appends happen under an exclusive flock: while another open file description of the
    log holds LOCK_EX, nothing is appended; once it is released, the line is."""
    client = server.join("alice")
    size = len(server.log_bytes())
    fd = os.open(server.log_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        client.send(b"alice: while locked\n")
        time.sleep(0.5)
        assert len(server.log_bytes()) == size
        client.expect_silence(0.1)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert client.read_line() == b"alice: while locked\n"
    assert server.log_bytes().endswith(b"alice: while locked\n")


def test_log_with_unfinished_last_line_is_repaired(launch: Launcher, chat_dir: Path) -> None:
    log = chat_dir / "chat.log"
    log.write_bytes(b"old: one\nold: cut sh")
    if os.geteuid() == 0:
        from tests.chat.chat_util import server_user_ids

        os.chown(log, *server_user_ids())
    srv = launch()
    assert srv.log_bytes() == b"old: one\nold: cut sh\n"
    assert any("did not end with a newline; appended one" in m for m in srv.messages())
    client = srv.connect()
    assert client.read_lines(2) == [b"old: one\n", b"old: cut sh\n"]
    client.send(b"new: line\n")
    assert client.read_line() == b"new: line\n"
    assert srv.log_bytes() == b"old: one\nold: cut sh\nnew: line\n"
