"""Starting, configuring and stopping the chat servers: SIGTERM, restart, the shared log
format, daemon mode, IPv6, privileges, the key file, the config file and the command line.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import pwd
import re
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.chat.chat_util import (
    BINARY_NAMES,
    IMPLS,
    LISTENING,
    ChatClient,
    ChatServer,
    Launcher,
    new_key,
    run_to_exit,
    running_as_root,
    server_dir,
    server_user_ids,
    start_server,
    user_args,
    wait_for,
    write_key_file,
)

pytestmark = pytest.mark.integration


def gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def group_members(pgid: int) -> list[int]:
    pids = []
    for pid in psutil.pids():
        with contextlib.suppress(OSError):
            if os.getpgid(pid) == pgid and not gone(psutil.Process(pid)):
                pids.append(pid)
    return pids


# --------------------------------------------------------------------------- SIGTERM


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_leaves_no_process_behind(launch: Launcher, impl: str, sig: int) -> None:
    srv = launch()
    clients = [srv.join(f"t{i}") for i in range(5)]
    half = ChatClient.connect(srv.port)  # still authenticating
    srv.clients.append(half)
    half.send(srv.key[:10])
    procs = srv.tree()
    if impl == "c":
        # The server, a RECV and a SEND per client, and the authenticating child.
        assert wait_for(lambda: len(srv.tree()) == 1 + 2 * 5 + 1, 2), srv.tree()
        procs = srv.tree()
        assert {os.getpgid(p.pid) for p in procs} == {srv.proc.pid}

    # One client floods lines while the signal arrives: no line may be left half-written.
    stop = threading.Event()

    def flood() -> None:
        k = 0
        deadline = time.monotonic() + 3
        with contextlib.suppress(OSError):
            while not stop.is_set() and time.monotonic() < deadline:
                clients[0].sock.sendall(b"t0: flood %06d %s\n" % (k, b"f" * 200))
                k += 1

    flooder = threading.Thread(target=flood)
    flooder.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    srv.proc.send_signal(sig)
    try:
        assert srv.proc.wait(timeout=3) == 0
        assert wait_for(lambda: all(gone(p) for p in procs), 2), [
            (p.pid, p.status()) for p in procs if not gone(p)
        ]
        assert time.monotonic() - t0 < 3
        assert group_members(srv.proc.pid) == []
    finally:
        stop.set()
        flooder.join(5)
    for client in clients[1:]:
        assert client.closed_by_peer(3)
    log = srv.log_bytes()
    assert log.endswith(b"\n")
    for line in log.splitlines():
        assert re.fullmatch(rb"t\d: (hello [0-9a-f]{8}|flood \d{6} f{200})", line), line


def test_restart_keeps_the_log(launch: Launcher) -> None:
    first = launch()
    alice = first.join("alice")
    lines = [b"alice: before restart %d\n" % i for i in range(10)]
    for line in lines:
        alice.send(line)
        assert alice.read_line() == line
    before = first.log_bytes()
    first.close_clients()
    assert first.terminate() == 0

    second = launch()
    assert second.log_bytes() == before
    bob = second.connect()
    assert bob.read_lines(7) == before.splitlines(keepends=True)[-7:]
    bob.send(b"bob: after restart\n")
    assert bob.read_line() == b"bob: after restart\n"
    assert second.log_bytes() == before + b"bob: after restart\n"


# --------------------------------------------------------------------------- one log format


def normalise(messages: list[str]) -> list[str]:
    out = []
    for m in messages:
        m = re.sub(r"client (127\.0\.0\.1|\[::1\]):\d+", "client PEER", m)
        m = re.sub(r"listening on (\S+):\d+", r"listening on \1:PORT", m)
        out.append(m)
    return sorted(out)


def scripted_session(srv: ChatServer) -> list[bytes]:
    """A fixed sequence of clients and lines (every step waits for its effect)."""
    alice = srv.connect()
    alice.send(b"alice: hello\n")
    assert alice.read_line() == b"alice: hello\n"
    bob = srv.connect()
    assert bob.read_line() == b"alice: hello\n"  # history
    bob.send(b"bob: hi alice\n")
    for c in (alice, bob):
        assert c.read_line() == b"bob: hi alice\n"

    wrong = srv.connect(key=b"x" * 128)
    assert wrong.closed_by_peer()
    assert srv.wait_message("wrong key")

    alice.send(b"alice: one\nalice: tw")
    time.sleep(0.05)
    alice.send(b"o\n\nalice: three \xc3\xa9\r\n")  # an empty line, UTF-8, a CR
    for c in (alice, bob):
        assert c.read_lines(4) == [
            b"alice: one\n", b"alice: two\n", b"\n", b"alice: three \xc3\xa9\r\n",
        ]  # fmt: skip

    carol = srv.connect()
    assert len(carol.read_lines(6)) == 6
    carol.send(b"carol: unfinished")
    time.sleep(0.05)
    carol.close()
    assert srv.wait_message("dropped an unfinished line of 17 bytes")

    dave = srv.connect()
    dave.read_lines(6)
    dave.send(b"dave: ok\n" + b"d" * 5000 + b"\n")
    assert dave.closed_by_peer()
    assert srv.wait_message("line longer than 4096 bytes")
    for c in (alice, bob):
        assert c.read_line() == b"dave: ok\n"

    eve = srv.connect()
    eve.read_lines(7)
    eve.send(b"eve: \x00\n")
    assert eve.closed_by_peer()
    assert srv.wait_message("NUL byte")

    for k in range(10):
        bob.send(b"bob: %d\n" % k)
    for c in (alice, bob):
        assert c.read_lines(10) == [b"bob: %d\n" % k for k in range(10)]
    streams = [alice.received, bob.received]
    alice.close()
    bob.close()
    assert wait_for(lambda: srv.stderr_text().count("disconnected") == 3, 3)
    return streams


def test_both_servers_write_the_same_log(
    chat_binaries: dict[str, Path], tmp_path: Path, chat_dir: Path
) -> None:
    key = new_key()
    key_file = write_key_file(tmp_path / "chat.key", key)
    logs = {impl: chat_dir / f"{impl}.log" for impl in IMPLS}
    streams, messages = {}, {}
    for impl in IMPLS:
        srv = start_server(
            impl,
            chat_binaries[impl],
            key=key,
            key_file=key_file,
            log_path=logs[impl],
            workdir=tmp_path,
        )
        try:
            streams[impl] = scripted_session(srv)
            assert srv.terminate() == 0
            messages[impl] = normalise(srv.messages())
        finally:
            srv.close_clients()
            if srv.proc.poll() is None:
                srv.proc.kill()
    assert logs["c"].read_bytes() == logs["go"].read_bytes()
    assert streams["c"] == streams["go"]
    assert messages["c"] == messages["go"]  # the same messages for the same events

    # Each server carries on the other's log.
    for impl, other in (("go", "c"), ("c", "go")):
        srv = start_server(
            impl,
            chat_binaries[impl],
            key=key,
            key_file=key_file,
            log_path=logs[other],
            workdir=tmp_path,
        )
        try:
            c = srv.connect()
            assert c.read_lines(7) == logs[other].read_bytes().splitlines(keepends=True)[-7:]
            c.send(b"frank: continued\n")
            assert c.read_line() == b"frank: continued\n"
        finally:
            srv.close_clients()
            srv.terminate()
    assert logs["c"].read_bytes() == logs["go"].read_bytes()


# --------------------------------------------------------------------------- C process model


def _kcmp_same_file(pid1: int, pid2: int, fd1: int, fd2: int) -> bool | None:
    """kcmp(KCMP_FILE): do two descriptors share one open file description? None if the
    system cannot tell us."""
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.syscall(312, pid1, pid2, 0, fd1, fd2)  # SYS_kcmp, KCMP_FILE
    if rc == -1:
        return None
    return rc == 0


def test_c_every_process_opens_the_log_itself(launch: Launcher, impl: str) -> None:
    """flock locks an open file description: each RECV and SEND must have its own (the
    original shared one through fork, so its locks excluded nothing). RECV's is O_APPEND."""
    if impl != "c":
        pytest.skip("the process model of the C server")
    srv = launch()
    for i in range(3):
        srv.join(f"k{i}")
    log = os.path.realpath(srv.log_path)
    holders: list[tuple[int, int, int]] = []  # pid, fd, flags
    for proc in srv.tree():
        for fd_name in os.listdir(f"/proc/{proc.pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{proc.pid}/fd/{fd_name}") == log:
                    info = Path(f"/proc/{proc.pid}/fdinfo/{fd_name}").read_text()
                    flags = int(re.search(r"flags:\s+(\d+)", info).group(1), 8)
                    holders.append((proc.pid, int(fd_name), flags))
    assert len(holders) == 6, holders  # a RECV and a SEND per client, not the server
    assert len({pid for pid, _, _ in holders}) == 6
    appenders = [h for h in holders if h[2] & os.O_APPEND]
    assert len(appenders) == 3 and all(h[2] & os.O_ACCMODE == os.O_WRONLY for h in appenders)
    for i, (p1, f1, _) in enumerate(holders):
        for p2, f2, _ in holders[i + 1 :]:
            same = _kcmp_same_file(p1, p2, f1, f2)
            if same is None:
                pytest.skip("kcmp(2) not available here")
            assert not same, f"processes {p1} and {p2} share one open file description"


# --------------------------------------------------------------------------- daemon mode


def test_daemon_mode(
    impl: str, chat_binaries: dict[str, Path], tmp_path: Path, chat_dir: Path
) -> None:
    key = new_key()
    key_file = write_key_file(tmp_path / "chat.key", key)
    pid_file = chat_dir / "chatd.pid"
    stderr_path = tmp_path / "daemon.stderr"
    args = [
        "--daemon",
        "--pid-file",
        str(pid_file),
        "--port",
        "0",
        "--key-file",
        str(key_file),
        "--log",
        str(chat_dir / "chat.log"),
        *user_args(),
    ]
    pid = None
    try:
        with open(stderr_path, "wb") as err:
            t0 = time.monotonic()
            done = subprocess.run(
                [str(chat_binaries[impl]), *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                timeout=10,
            )
        assert done.returncode == 0, stderr_path.read_text()
        assert time.monotonic() - t0 < 5
        # It returned once the daemon listened: the line is there already.
        m = LISTENING.search(stderr_path.read_text())
        assert m, stderr_path.read_text()
        pid = int(pid_file.read_text())
        assert pid_file.read_text() == f"{pid}\n"
        daemon = psutil.Process(pid)
        assert not gone(daemon)
        assert os.getsid(pid) != os.getsid(0), "still in the caller's session"
        assert daemon.cwd() == "/"
        client = ChatClient.connect(int(m.group(2)))
        client.send(key + b"daemon: works\n")
        assert client.read_line() == b"daemon: works\n"
        tree = [daemon, *daemon.children(recursive=True)]
        os.kill(pid, signal.SIGTERM)
        assert wait_for(lambda: all(gone(p) for p in tree), 3)
        assert client.closed_by_peer(2)
        client.close()
        assert wait_for(lambda: not pid_file.exists(), 2), "the pid file was left behind"
        pid = None
    finally:
        if pid is not None:
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)


def test_daemon_start_error_is_reported(
    impl: str, chat_binaries: dict[str, Path], tmp_path: Path
) -> None:
    key_file = write_key_file(tmp_path / "chat.key", new_key(), mode=0o644)
    result = run_to_exit(
        chat_binaries[impl], ["--daemon", "--key-file", str(key_file), "--port", "0", *user_args()]
    )
    assert result.returncode == 1
    assert "which lets others read it" in result.stderr
    assert "listening" not in result.stderr


# --------------------------------------------------------------------------- IPv6


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_ipv6_when_asked_only(launch: Launcher) -> None:
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    srv = launch(["--ipv6"])
    assert f"listening on [::]:{srv.port}" in srv.stderr_text()
    client = ChatClient.connect(srv.port, "::1")
    srv.clients.append(client)
    client.send(srv.key + b"v6: hello\n")
    assert client.read_line() == b"v6: hello\n"
    assert srv.wait_message("client [::1]:")
    # IPV6_V6ONLY: the IPv4 side of the port is not served.
    with pytest.raises(ConnectionRefusedError):
        ChatClient.connect(srv.port, "127.0.0.1").close()


def test_ipv4_by_default(server: ChatServer) -> None:
    assert f"listening on 0.0.0.0:{server.port}" in server.stderr_text()
    if _ipv6_loopback():
        with pytest.raises(ConnectionRefusedError):
            ChatClient.connect(server.port, "::1").close()


# --------------------------------------------------------------------------- privileges


def test_clients_are_served_by_the_unprivileged_user(launch: Launcher) -> None:
    if not running_as_root():
        pytest.skip("only root changes user")
    srv = launch()
    srv.join("alice")
    uid, gid = server_user_ids()
    for proc in srv.tree():
        assert set(proc.uids()) == {uid}, (proc.pid, proc.uids())
        assert set(proc.gids()) == {gid}, (proc.pid, proc.gids())
    assert os.stat(srv.log_path).st_uid == uid
    assert stat.S_IMODE(os.stat(srv.log_path).st_mode) == 0o600


def _setup_args(tmp_path: Path, chat_dir: Path) -> list[str]:
    key_file = write_key_file(tmp_path / "chat.key", new_key())
    return ["--port", "0", "--key-file", str(key_file), "--log", str(chat_dir / "chat.log")]


def test_root_needs_an_unprivileged_user(
    impl: str, chat_binaries: dict[str, Path], tmp_path: Path, chat_dir: Path
) -> None:
    if not running_as_root():
        pytest.skip("only as root")
    binary = chat_binaries[impl]
    base = _setup_args(tmp_path, chat_dir)
    result = run_to_exit(binary, [*base, "--user", "root"])
    assert result.returncode == 1
    assert "refusing to serve clients as root: user 'root' has user ID 0" in result.stderr
    result = run_to_exit(binary, [*base, "--user", "no-such-user-papaya"])
    assert result.returncode == 1
    assert "unknown user 'no-such-user-papaya'" in result.stderr
    try:
        pwd.getpwnam("papaya")
    except KeyError:
        result = run_to_exit(binary, base)
        assert result.returncode == 1
        assert "the default user 'papaya' does not exist" in result.stderr
        assert "--user NAME" in result.stderr
    assert not (chat_dir / "chat.log").exists()


def test_only_root_changes_user(
    impl: str, chat_binaries: dict[str, Path], tmp_path: Path, chat_dir: Path
) -> None:
    if running_as_root():
        pytest.skip("not as root")
    result = run_to_exit(chat_binaries[impl], [*_setup_args(tmp_path, chat_dir), "--user", "root"])
    assert result.returncode == 1
    assert "cannot run as user 'root': only root can change user" in result.stderr


# --------------------------------------------------------------------------- key file


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o610, 0o601, 0o620])
def test_key_file_open_to_others_is_refused(
    impl: str, chat_binaries: dict[str, Path], tmp_path: Path, mode: int
) -> None:
    key_file = write_key_file(tmp_path / "chat.key", new_key(), mode=mode)
    result = run_to_exit(
        chat_binaries[impl],
        ["--key-file", str(key_file), "--port", "0", "--log", str(tmp_path / "chat.log")],
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"{BINARY_NAMES[impl]}: key file {key_file} has mode {mode:04o}, which lets others "
        f"read it; run: chmod 600 {key_file}\n"
    )
    assert not (tmp_path / "chat.log").exists()


@pytest.mark.parametrize(
    ("content", "length"),
    [
        (b"a" * 64, 64),
        (b"a" * 127, 127),
        (b"a" * 129, 129),
        (b"a" * 128 + b"\n\n", 129),
        (b"a" * 128 + b"\r\n", 129),
        (b"", 0),
        (b"a" * 5000, 5000),
    ],
)
def test_key_of_wrong_length_is_refused(
    impl: str, chat_binaries: dict[str, Path], tmp_path: Path, content: bytes, length: int
) -> None:
    key_file = tmp_path / "chat.key"
    key_file.write_bytes(content)
    key_file.chmod(0o600)
    result = run_to_exit(
        chat_binaries[impl],
        ["--key-file", str(key_file), "--port", "0", "--log", str(tmp_path / "chat.log")],
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"{BINARY_NAMES[impl]}: key file {key_file} holds {length} bytes; the key is exactly "
        f"128 printable ASCII characters (e.g. a SHA-512 hex digest)\n"
    )


def test_key_with_a_control_character_is_refused(
    impl: str, chat_binaries: dict[str, Path], tmp_path: Path
) -> None:
    key_file = write_key_file(tmp_path / "chat.key", b"a" * 60 + b"\t" + b"a" * 67)
    result = run_to_exit(chat_binaries[impl], ["--key-file", str(key_file), "--port", "0"])
    assert result.returncode == 1
    assert "contains a non-printable byte 0x09" in result.stderr


@pytest.mark.parametrize("newline", [True, False])
def test_key_with_or_without_newline_and_mode_0400(
    launch: Launcher, tmp_path: Path, newline: bool
) -> None:
    srv = launch()
    key_file = write_key_file(srv.key_file, srv.key, mode=0o400, newline=newline)
    assert key_file == srv.key_file
    srv.terminate()
    srv2 = launch()
    assert srv2.join("alice")


# --------------------------------------------------------------------------- config file


def test_config_file_and_command_line(
    impl: str, chat_binaries: dict[str, Path], tmp_path: Path, chat_dir: Path
) -> None:
    key = new_key()
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    write_key_file(conf_dir / "chat.key", key)
    conf = conf_dir / "chatd.conf"
    user_line = "USER = nobody\n" if running_as_root() else ""
    conf.write_text(
        "# papaya-chatd settings\n"
        "\n"
        "PORT=0\n"
        "  KEY_FILE = chat.key  \n"  # relative to the config file's folder
        f"LOG={chat_dir / 'conf.log'}\n"
        "HISTORY=2\n"
        "MAX_CLIENTS=50\n"
        "AUTH_TIMEOUT=0.5\n"
        f"{user_line}"
    )
    srv = start_server(
        impl,
        chat_binaries[impl],
        key=key,
        key_file=conf_dir / "chat.key",
        log_path=chat_dir / "conf.log",
        workdir=tmp_path,
        plain=True,
        extra=["--config", str(conf), "--history", "1"],
    )
    try:
        writer = srv.connect()
        for k in range(3):
            writer.send(b"w: %d\n" % k)
        assert writer.read_lines(3) == [b"w: 0\n", b"w: 1\n", b"w: 2\n"]
        reader = srv.connect()
        assert reader.read_lines(1) == [b"w: 2\n"]  # --history 1 beats HISTORY=2
        reader.expect_silence(0.2)
        assert (chat_dir / "conf.log").read_bytes() == b"w: 0\nw: 1\nw: 2\n"
        idle = ChatClient.connect(srv.port)
        t0 = time.monotonic()
        assert idle.closed_by_peer(3)
        assert time.monotonic() - t0 < 0.9  # AUTH_TIMEOUT=0.5
    finally:
        srv.close_clients()
        srv.terminate()


# --------------------------------------------------------------------------- command line


def _cases(tmp_path: Path) -> dict[str, list[str]]:
    """Command lines that must stop the server with the same status and message in C and Go."""
    good_key = write_key_file(tmp_path / "good.key", new_key())
    open_key = write_key_file(tmp_path / "open.key", new_key(), mode=0o644)
    short_key = write_key_file(tmp_path / "short.key", b"k" * 100)
    conf = {}
    for name, text in {
        "unknown": "PORT=0\nCOLOUR=blue\n",
        "bad-value": "\n\nHISTORY=many\n",
        "no-equals": "# ok\nPORT 7000\n",
        "empty-user": "USER=\n",
        "bad-timeout": "AUTH_TIMEOUT=0.0001\n",
    }.items():
        conf[name] = tmp_path / f"{name}.conf"
        conf[name].write_text(text)
    base = ["--port", "0", "--key-file", str(good_key)]
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("0.0.0.0", 0))
    holder.listen(1)
    busy = holder.getsockname()[1]
    _cases.holder = holder  # type: ignore[attr-defined]  # kept open for the test
    return {
        "help": ["--help"],
        "help-short": ["-h"],
        "unknown-option": ["--bogus"],
        "unknown-option-with-value": ["--bogus=1"],
        "missing-value": ["--port"],
        "port-not-a-number": ["--port", "x"],
        "port-out-of-range": ["--port", "70000"],
        "port-negative": ["--port=-1"],
        "port-plus": ["--port", "+5"],
        "history-too-big": ["--history", "1000001"],
        "max-clients-zero": ["--max-clients", "0"],
        "auth-timeout-zero": ["--auth-timeout", "0"],
        "auth-timeout-4-decimals": ["--auth-timeout", "1.2345"],
        "auth-timeout-too-long": ["--auth-timeout", "3600.001"],
        "auth-timeout-dot": ["--auth-timeout", ".5"],
        "flag-with-value": ["--daemon=yes"],
        "extra-argument": ["extra"],
        "after-double-dash": ["--", "x"],
        "empty-log": ["--log", ""],
        "empty-user": ["--user="],
        "empty-config": ["--config", ""],
        "no-config": ["--config", str(tmp_path / "missing.conf")],
        "config-is-dir": ["--config", str(tmp_path)],
        **{f"config-{name}": [*base, "--config", str(path)] for name, path in conf.items()},
        "no-key-file": ["--key-file", str(tmp_path / "missing.key")],
        "key-file-dir": ["--key-file", str(tmp_path)],
        "key-open": ["--key-file", str(open_key)],
        "key-short": ["--key-file", str(short_key)],
        "port-in-use": ["--port", str(busy), "--key-file", str(good_key), *user_args()],
        "log-is-dir": [*base, "--log", str(tmp_path), *user_args()],
    }


USAGE_ERRORS = {
    "unknown-option", "unknown-option-with-value", "missing-value", "port-not-a-number",
    "port-out-of-range", "port-negative", "port-plus", "history-too-big", "max-clients-zero",
    "auth-timeout-zero", "auth-timeout-4-decimals", "auth-timeout-too-long", "auth-timeout-dot",
    "flag-with-value", "extra-argument", "after-double-dash", "empty-log", "empty-user",
    "empty-config",
}  # fmt: skip
MESSAGES = {
    "unknown-option-with-value": "PROG: unknown option '--bogus'\n",
    "missing-value": "PROG: option '--port' requires a value\n",
    "port-not-a-number": "PROG: invalid value 'x' for --port: expected an integer from 0 to "
    "65535\n",
    "auth-timeout-dot": "PROG: invalid value '.5' for --auth-timeout: expected a number of "
    "seconds from 0.001 to 3600, with at most 3 decimals\n",
    "flag-with-value": "PROG: option '--daemon' takes no value\n",
    "after-double-dash": "PROG: unexpected argument 'x'\n",
    "config-unknown": "unknown.conf line 2: unknown key 'COLOUR' (known keys: PORT KEY_FILE "
    "LOG HISTORY MAX_CLIENTS AUTH_TIMEOUT USER)\n",
    "config-bad-value": "bad-value.conf line 3: invalid value 'many' for HISTORY: expected an "
    "integer from 0 to 1000000\n",
    "config-no-equals": "no-equals.conf line 2: expected KEY=value\n",
    "config-empty-user": "empty-user.conf line 1: invalid value '' for USER: expected a user "
    "name\n",
    "no-config": "missing.conf: No such file or directory\n",
    "config-is-dir": ": Is a directory\n",
    "no-key-file": "missing.key: No such file or directory\n",
    "key-file-dir": " is not a regular file\n",
    "port-in-use": ": Address already in use\n",
    "log-is-dir": "PROG: cannot open log ",
}


def test_same_status_and_messages_for_the_same_errors(
    chat_binaries: dict[str, Path], tmp_path: Path
) -> None:
    cases = _cases(tmp_path)
    outs: dict[str, tuple[int, str, str]] = {}
    try:
        for name, args in cases.items():
            by_impl = {}
            for impl in IMPLS:
                r = run_to_exit(chat_binaries[impl], args)
                prog = BINARY_NAMES[impl]
                by_impl[impl] = (
                    r.returncode,
                    r.stdout.replace(prog, "PROG"),
                    r.stderr.replace(prog, "PROG"),
                )
            assert by_impl["c"] == by_impl["go"], name
            outs[name] = by_impl["c"]
    finally:
        _cases.holder.close()  # type: ignore[attr-defined]

    for name, (rc, out, err) in outs.items():
        assert ": listening on " not in err, (name, err)
        if name.startswith("help"):
            assert rc == 0 and out.startswith("Usage: PROG [OPTION]...") and err == "", name
            for option in (
                "--port",
                "--key-file",
                "--log",
                "--history",
                "--max-clients",
                "--auth-timeout",
                "--user",
                "--ipv6",
                "--config",
                "--foreground",
                "--daemon",
                "--pid-file",
            ):
                assert option in out, option
        elif name in USAGE_ERRORS:
            first, usage = err.split("\n", 1)
            assert rc == 2 and out == "" and usage.startswith("Usage: PROG"), (name, err)
        else:
            assert rc == 1 and out == "" and err.count("\n") == 1, (name, err)
            assert err.startswith("PROG: "), (name, err)
    for name, expected in MESSAGES.items():
        err = outs[name][2]
        if name in USAGE_ERRORS:
            err = err.split("\n", 1)[0] + "\n"
        if expected.startswith("PROG:"):
            assert err.startswith(expected), (name, err)
        else:
            assert expected in err, (name, err)


def test_port_in_use_message(impl: str, chat_binaries: dict[str, Path], tmp_path: Path) -> None:
    key_file = write_key_file(tmp_path / "chat.key", new_key())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        result = run_to_exit(
            chat_binaries[impl], ["--port", str(port), "--key-file", str(key_file), *user_args()]
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"{BINARY_NAMES[impl]}: bind to 0.0.0.0:{port}: Address already in use\n"
    )


def test_server_dir_helper_is_private(tmp_path: Path) -> None:
    with server_dir(tmp_path) as d:
        assert d.is_dir()
        if running_as_root():
            assert stat.S_IMODE(d.stat().st_mode) == 0o700
            assert d.stat().st_uid == server_user_ids()[0]
