"""Checks of the servers' behaviour, run on the host under test with its own python3.

Standalone on purpose: uploaded next to the host's own binaries and run there with nothing
but the standard library (Debian's, FreeBSD's, 32-bit or not). Usage:

    python3 hostcheck.py SPEC.json

SPEC names one check ("smoke", "v6only", "sigchld", "sigusr1", "biglog") and the servers to
run it on; the result is one JSON object on stdout: {"check", "results": [{"server",
"passed", "subchecks": [[name, ok, detail], ...], "duration_s"}]}.

Every wait is bounded in time, every loop in count; servers are started in a session of their
own and their whole process group is killed when a check ends, however it ends.
"""

from __future__ import annotations

import json
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

LISTENING = re.compile(r"listening on (0\.0\.0\.0|\[::\]):(\d+)")
BIG = 2**31  # past a signed 32-bit off_t
SERVER_USER = "nobody"  # the chat servers' user when started as root


class CheckFailed(Exception):
    pass


# ------------------------------------------------------------------------------ processes


def processes():
    """(pid, ppid, pgid, state) of every process: /proc on Linux, ps(1) elsewhere."""
    found = []
    if os.path.isdir("/proc/self"):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            found.append((int(name), int(fields[1]), int(fields[2]), fields[0]))
        return found
    out = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,pgid=,stat="], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            found.append((int(parts[0]), int(parts[1]), int(parts[2]), parts[3][0]))
    return found


def group_members(pgid):
    return [p for p in processes() if p[2] == pgid and p[3] != "Z"]


def zombie_children(pid):
    return [p for p in processes() if p[1] == pid and p[3] == "Z"]


def wait_for(predicate, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


class Server:
    """A server under test, in a session (and process group) of its own."""

    def __init__(self, argv, workdir, name="server"):
        self.argv = argv
        self.stdout_path = os.path.join(workdir, name + ".stdout")
        self.stderr_path = os.path.join(workdir, name + ".stderr")
        # O_APPEND: the forked children of a C server write whole records at the end.
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, start_new_session=True)
        self.pgid = self.proc.pid
        self.port = None
        self.family = None

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read()

    def wait_listening(self, timeout=10.0):
        def ready():
            match = LISTENING.search(self.stderr())
            if match:
                self.family = "ipv6" if match.group(1).startswith("[") else "ipv4"
                self.port = int(match.group(2))
                return True
            return self.proc.poll() is not None

        if not wait_for(ready, timeout) or self.port is None:
            raise CheckFailed(f"did not report listening (exit {self.proc.poll()}): "
                              f"{self.stderr()[-400:]}")

    def terminate(self, timeout=10.0):
        """SIGTERM; (exit status, processes of its group still there a moment later)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            code = None
        left = []
        wait_for(lambda: not group_members(self.pgid), 5.0)
        left = group_members(self.pgid)
        return code, left

    def kill(self):
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass


# ------------------------------------------------------------------------------ clients


def connect(port, host="127.0.0.1", timeout=5.0):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def read_until(sock, needle, timeout=10.0, limit=1 << 20):
    """Bytes received until ``needle`` has arrived (CheckFailed otherwise)."""
    deadline = time.monotonic() + timeout
    data = b""
    while needle not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or len(data) > limit:
            raise CheckFailed(f"timed out waiting for {needle!r}; got {data[-200:]!r}")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):  # noqa: UP041 - one class only from 3.10
            continue
        if not chunk:
            raise CheckFailed(f"connection closed waiting for {needle!r}; got {data[-200:]!r}")
        data += chunk
    return data


def token(prefix):
    return (f"{prefix}-{random.getrandbits(32):08x}").encode()


# ------------------------------------------------------------------------------ chat set-up


class ChatFiles:
    """Key file and a log folder the server's user can write (outside root's 0700 home)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="papaya-portability-")
        self.key = (f"{random.getrandbits(512):0128x}").encode()
        self.key_file = os.path.join(self.dir, "chat.key")
        with open(self.key_file, "wb") as f:
            f.write(self.key + b"\n")
        os.chmod(self.key_file, 0o600)
        self.log_dir = os.path.join(self.dir, "log")
        os.mkdir(self.log_dir, 0o700)
        if os.geteuid() == 0:
            self.user = SERVER_USER
            pw = pwd.getpwnam(SERVER_USER)
            os.chmod(self.dir, 0o755)
            os.chown(self.log_dir, pw.pw_uid, pw.pw_gid)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
            self.uid, self.gid = os.geteuid(), os.getegid()

    def log(self, name="chat.log"):
        return os.path.join(self.log_dir, name)

    def argv(self, template, log, history=7):
        values = {"port": 0, "key_file": self.key_file, "log_file": log,
                  "history": history, "user": self.user}
        return [part.format(**values) for part in template]

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def chat_join(port, key, host="127.0.0.1", history_lines=0, timeout=10.0):
    """A client that is surely being served: sends the key and hello, gets hello back."""
    sock = connect(port, host, timeout)
    sock.sendall(key)
    received = b""
    hello = b"check: hello " + token("h") + b"\n"
    sock.sendall(hello)
    received = read_until(sock, hello, timeout)
    return sock, received


# ------------------------------------------------------------------------------ checks


def sink_served(server, host="127.0.0.1", clients=5):
    """``clients`` clients each send a token concurrently; every token reaches the output."""
    tokens = [token(f"smoke{i}") for i in range(clients)]
    errors = []

    def send(tok):
        try:
            sock = connect(server.port, host)
            sock.sendall(tok + b"\n")
            sock.close()
        except OSError as error:
            errors.append(f"{tok.decode()}: {error}")

    threads = [threading.Thread(target=send, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if errors:
        raise CheckFailed("; ".join(errors))
    return tokens


def check_smoke(spec, server_spec, workdir, sub):
    server = Server(server_spec["argv"], workdir, server_spec["name"])
    try:
        server.wait_listening()
        sub("starts and listens", True, f"port {server.port}")
        tokens = sink_served(server, clients=spec.get("clients", 5))
        # The output may be buffered until the clients' processes exit (C) or the server
        # does (Go): look now, and again after SIGTERM.
        arrived = wait_for(lambda: all(t in server.stdout() for t in tokens), 5.0)
        code, left = server.terminate()
        missing = [t.decode() for t in tokens if t not in server.stdout()]
        sub("every client's bytes in the output", not missing,
            f"missing {missing}" if missing else
            f"{len(tokens)} clients ({'all' if arrived else 'not all'} before SIGTERM)")
        sub("SIGTERM stops it with status 0", code == 0, f"exit status {code}")
        sub("no process of its group left", not left, f"left: {left}" if left else "none")
    finally:
        server.kill()


def check_v6only(spec, server_spec, workdir, sub):
    default = v6only_default()
    sub("IPv6 sockets are v6-only by default here (as on FreeBSD)", default == 1,
        f"a new AF_INET6 socket has IPV6_V6ONLY={default}; {spec.get('how', '')}")
    files = ChatFiles() if server_spec["workload"] == "chat" else None
    try:
        variants = [("ipv4", "127.0.0.1", server_spec["argv"])]
        if server_spec.get("ipv6_argv") and socket.has_ipv6 and _has_ipv6_loopback():
            variants.append(("ipv6", "::1", server_spec["ipv6_argv"]))
        for label, address, template in variants:
            argv = files.argv(template, files.log()) if files else template
            server = Server(argv, workdir, "{}-{}".format(server_spec["name"], label))
            try:
                server.wait_listening()
                if files:
                    sock, _ = chat_join(server.port, files.key, address)
                    sock.close()
                    detail = f"an {label} client joined and got its line back"
                else:
                    tokens = sink_served(server, address, clients=2)
                    wait_for(lambda s=server, ts=tokens: all(t in s.stdout() for t in ts), 5.0)
                    code, _ = server.terminate()
                    missing = [t for t in tokens if t not in server.stdout()]
                    if missing:
                        raise CheckFailed(f"{label} clients' bytes missing from the output")
                    detail = f"{label} clients served (listening on {server.family})"
                sub(f"{label} client reaches the server ({server.family})", True, detail)
            except (CheckFailed, OSError) as error:
                sub(f"{label} client reaches the server", False, str(error))
            finally:
                server.kill()
    finally:
        if files:
            files.cleanup()


def v6only_default():
    """IPV6_V6ONLY of a fresh IPv6 socket: the system's default (None without IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            return s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    except OSError:
        return None


def _has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _storm_connections(port, count, payload_for, threads=8, budget_s=60.0):
    """``count`` connections, ``threads`` at a time: connect, send, close. Errors by index."""
    errors = {}
    deadline = time.monotonic() + budget_s
    lock = threading.Lock()
    next_index = [0]

    def worker():
        while time.monotonic() < deadline:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= count:
                return
            try:
                sock = connect(port)
                sock.sendall(payload_for(i))
                # Half-close, then read until the server closes: a close() with unread bytes
                # from the server (the chat server's replies) sends RST, which can discard the
                # line before the server has read it: the client's race, not an accept lost.
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(10.0)
                while sock.recv(4096):
                    pass
                sock.close()
            except OSError as error:
                errors[i] = str(error)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(budget_s + 5)
    return errors, min(next_index[0], count)


def check_sigchld(spec, server_spec, workdir, sub):
    """N rapid connect/send/close cycles: N children end, N SIGCHLDs in a burst."""
    count = spec.get("connections", 1000)
    chat = server_spec["workload"] == "chat"
    files = ChatFiles() if chat else None
    argv = files.argv(server_spec["argv"], files.log(), history=0) if chat else server_spec["argv"]
    server = Server(argv, workdir, server_spec["name"])
    try:
        server.wait_listening()
        run_id = f"{random.getrandbits(32):08x}"
        marks = [f"s{run_id}-{i:04d}".encode() for i in range(count)]
        if chat:
            def payload(i):
                return files.key + b"storm: " + marks[i] + b"\n"
        else:
            def payload(i):
                return marks[i] + b"\n"
        started = time.monotonic()
        errors, made = _storm_connections(server.port, count, payload)
        elapsed = time.monotonic() - started
        sub(f"{made} connections made in {elapsed:.1f} s", made == count and not errors,
            f"{len(errors)} failed, e.g. {list(errors.items())[:3]}" if errors else "")
        sub("the server is alive after the storm", server.proc.poll() is None,
            f"exit status {server.proc.poll()}")

        def served_text():
            if chat:
                with open(files.log(), "rb") as f:
                    return f.read()
            return server.stdout()

        wait_for(lambda: all(m in served_text() for m in marks), 30.0, 0.1)
        text = served_text()
        lost = [m.decode() for m in marks if m not in text]
        sub("every connection was served (no accept lost)", not lost,
            f"{len(lost)} of {count} not served, e.g. {lost[:3]}" if lost
            else f"{count} of {count}")
        reaped = wait_for(lambda: not zombie_children(server.proc.pid), 10.0, 0.1)
        sub("every child reaped (no zombies)", reaped,
            "" if reaped else f"{len(zombie_children(server.proc.pid))} zombies")
        _still_serves(server, files, sub)
        code, left = server.terminate()
        sub("SIGTERM stops it with status 0, nothing left", code == 0 and not left,
            f"exit status {code}, left {left}")
    finally:
        server.kill()
        if files:
            files.cleanup()


def _still_serves(server, files, sub):
    """Not wedged: a new client is accepted and served."""
    try:
        if files:
            sock, _ = chat_join(server.port, files.key)
            sock.close()
        else:
            tokens = sink_served(server, clients=1)
            if not wait_for(lambda: tokens[0] in server.stdout(), 10.0):
                raise CheckFailed("a new client's bytes did not reach the output")
        sub("still accepts and serves afterwards", True, "")
    except (CheckFailed, OSError) as error:
        sub("still accepts and serves afterwards", False, str(error))


def check_sigusr1(spec, server_spec, workdir, sub):
    """A SIGUSR1 storm to the server's process group.

    A server that uses SIGUSR1 (the chat server wakes its SEND processes with it) must
    survive it and lose nothing. One that does not (c-fork) must meet the default action,
    as POSIX specifies for a signal nobody handles: the whole group terminates by SIGUSR1.
    """
    count = spec.get("signals", 1000)
    if server_spec.get("uses_sigusr1"):
        _sigusr1_survive(count, server_spec, workdir, sub, spec.get("clients", 8))
    else:
        _sigusr1_default(count, server_spec, workdir, sub)


def _sigusr1_default(count, server_spec, workdir, sub):
    server = Server(server_spec["argv"], workdir, server_spec["name"])
    try:
        server.wait_listening()
        clients = [connect(server.port) for _ in range(2)]
        wait_for(lambda: len(group_members(server.pgid)) >= 3, 5.0)
        sent = 0
        for _ in range(count):
            try:
                os.killpg(server.pgid, signal.SIGUSR1)
            except ProcessLookupError:
                break
            sent += 1
        try:
            code = server.proc.wait(10)
        except subprocess.TimeoutExpired:
            code = None
        gone = wait_for(lambda: not group_members(server.pgid), 5.0)
        sub("no SIGUSR1 handler: the default action ends it (killed by SIGUSR1)",
            code == -signal.SIGUSR1, f"exit status {code} after {sent} signal(s)")
        sub("its children end with it (nothing left)", gone,
            "" if gone else f"left: {group_members(server.pgid)}")
        for c in clients:
            c.close()
    finally:
        server.kill()


def _sigusr1_survive(count, server_spec, workdir, sub, nclients):
    files = ChatFiles()
    server = Server(files.argv(server_spec["argv"], files.log(), history=0), workdir,
                    server_spec["name"])
    socks = []
    try:
        server.wait_listening()
        socks = [chat_join(server.port, files.key)[0] for _ in range(nclients)]
        wait_for(lambda: len(group_members(server.pgid)) >= 1 + 2 * nclients, 5.0)
        before = sorted(p[0] for p in group_members(server.pgid))
        lines_each = 20
        sent_lines = []
        stop = threading.Event()
        received = [b""] * nclients
        errors = []

        def storm():
            for i in range(count):
                if stop.is_set():
                    return
                try:
                    os.killpg(server.pgid, signal.SIGUSR1)
                except ProcessLookupError:
                    return
                if i % 50 == 49:
                    time.sleep(0.001)

        storm_thread = threading.Thread(target=storm)
        storm_thread.start()
        for n in range(lines_each):
            for i, sock in enumerate(socks):
                line = b"usr1: c%02d n%02d " % (i, n) + token("x") + b"\n"
                sent_lines.append(line)
                try:
                    sock.sendall(line)
                except OSError as error:
                    errors.append(f"client {i}: {error}")
        storm_thread.join(60)
        stop.set()
        sub(f"{count} SIGUSR1 sent to its process group while {nclients} clients chatted",
            not errors, "; ".join(errors[:3]))
        for i, sock in enumerate(socks):
            try:
                received[i] = read_until(sock, sent_lines[-1], 20.0)
            except (CheckFailed, OSError) as error:
                errors.append(f"client {i}: {error}")
        missing = sum(1 for data in received for line in sent_lines if line not in data)
        sub("every client got every line", not missing and not errors,
            f"{missing} (client, line) pairs missing; {'; '.join(errors[:2])}"
            if missing or errors else f"{len(sent_lines)} lines to {nclients} clients")
        after = sorted(p[0] for p in group_members(server.pgid))
        sub("no process died (server, every RECV and SEND)", before == after,
            f"{len(before)} processes before, {len(after)} after")
        _still_serves(server, files, sub)
    finally:
        for sock in socks:
            sock.close()
        code, left = server.terminate()
        sub("SIGTERM stops it with status 0, nothing left", code == 0 and not left,
            f"exit status {code}, left {left}")
        server.kill()
        files.cleanup()


def check_biglog(spec, server_spec, workdir, sub):
    """A chat log past 2 GiB (sparse) is appended to and its tail served."""
    files = ChatFiles()
    log = files.log("big.log")
    tail = [b"big: line one\n", b"big: line two\n", b"big: line three\n"]
    try:
        with open(log, "wb") as f:
            f.truncate(BIG - 1)
            f.seek(BIG - 1)
            f.write(b"\n" + b"".join(tail))
        os.chmod(log, 0o600)
        os.chown(log, files.uid, files.gid)
        size0 = os.path.getsize(log)
        server = Server(files.argv(server_spec["argv"], log, history=3), workdir,
                        server_spec["name"])
        try:
            server.wait_listening()
            sub("starts on a %.2f GiB log" % (size0 / 2**30), True, "")
            sock = connect(server.port)
            sock.sendall(files.key)
            history = read_until(sock, tail[-1], 10.0)
            sub("a joining client gets the log's last lines", history == b"".join(tail),
                repr(history[-120:]))
            new = b"big: appended " + token("a") + b"\n"
            sock.sendall(new)
            read_until(sock, new, 10.0)
            sock.close()
            size1 = os.path.getsize(log)
            with open(log, "rb") as f:
                f.seek(size0)
                appended = f.read()
            sub("the line is appended past 2 GiB", size1 == size0 + len(new) and appended == new,
                f"size {size0} -> {size1}, appended {appended[:80]!r}")
            sock = connect(server.port)
            sock.sendall(files.key)
            want = b"".join(tail[1:]) + new
            history = read_until(sock, new, 10.0)
            sub("the new tail is served to the next client", history == want,
                repr(history[-120:]))
            sock.close()
            code, left = server.terminate()
            sub("SIGTERM stops it with status 0, nothing left", code == 0 and not left,
                f"exit status {code}, left {left}")
        finally:
            server.kill()
    finally:
        files.cleanup()


CHECKS = {"smoke": check_smoke, "v6only": check_v6only, "sigchld": check_sigchld,
          "sigusr1": check_sigusr1, "biglog": check_biglog}


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    workdir = tempfile.mkdtemp(prefix="papaya-hostcheck-")
    results = []
    try:
        for server_spec in spec["servers"]:
            subchecks = []

            def sub(name, ok, detail, subchecks=subchecks):
                subchecks.append([name, bool(ok), str(detail)])

            started = time.monotonic()
            try:
                CHECKS[spec["check"]](spec, server_spec, workdir, sub)
            except (CheckFailed, OSError, subprocess.SubprocessError) as error:
                sub("check ran to the end", False, f"{type(error).__name__}: {error}")
            logs = {}
            for name in sorted(os.listdir(workdir)):
                if name.startswith(server_spec["name"]) and name.endswith(".stderr"):
                    with open(os.path.join(workdir, name), errors="replace") as f:
                        logs[name] = f.read()[-2000:]
            results.append({
                "server": server_spec["name"], "label": server_spec.get("label", ""),
                "passed": bool(subchecks) and all(ok for _, ok, _ in subchecks),
                "subchecks": subchecks, "duration_s": round(time.monotonic() - started, 2),
                "stderr_tail": logs,
            })
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    json.dump({"check": spec["check"], "results": results}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
