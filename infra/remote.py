"""A host reached over SSH (Fabric), behind the same ``Host`` interface as the local machine.

Lab hosts, inventory hosts and cloud VMs are all ``RemoteHost``: providers only decide the
address, user, key and pinned host keys. Host keys are never accepted blindly: a host whose key
is not in ``known_hosts`` is refused.

Background processes run under a small POSIX sh wrapper in a session of their own, so one
``kill -- -PGID`` reaches the whole tree; the wrapper records the command's pid and exit code
in a per-process directory under the host's scratch directory.
"""

from __future__ import annotations

import io
import shlex
import tarfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import paramiko
from fabric import Config, Connection
from invoke.exceptions import CommandTimedOut

from infra.hosts import CommandResult, HostError

# The wrapper: start the command in the background, record its pid, wait, record its code.
# $1 is the per-process directory; the rest is the command. Runs inside setsid (below).
_WRAPPER = (
    'd=$1; shift; echo $$ > "$d/pgid"; '
    '"$@" > "$d/stdout" 2> "$d/stderr" < /dev/null & '
    'echo $! > "$d/pid.tmp" && mv "$d/pid.tmp" "$d/pid"; '
    'wait $!; echo $? > "$d/rc.tmp" && mv "$d/rc.tmp" "$d/rc"'
)
# setsid(1) is not on FreeBSD; python3 is on every host the pipeline uses (the tracer needs it).
_SETSID = "import os, sys; os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])"
# Exit code if recorded, else whether the wrapper or the command still lives. A zombie counts
# as gone: an orphan's reaper may take its time (ps is in procps and in FreeBSD's base).
_ALIVE = (
    'alive() { kill -0 "$1" 2>/dev/null || return 1; '
    's=$(ps -o stat= -p "$1" 2>/dev/null) || return 0; '
    'case "$s" in *Z*) return 1;; esac; return 0; }; '
)
_POLL = _ALIVE + (
    'if [ -f "$1/rc" ]; then cat "$1/rc"; exit 0; fi; '
    'if alive "$2" || alive "$3"; then echo running; else echo gone; fi'
)
# Sleeps on the host until the exit code is recorded, both processes are gone, or $4 ticks.
_WAIT = _ALIVE + (
    'i=0; while [ ! -f "$1/rc" ] && [ "$i" -lt "$4" ] && { alive "$2" || alive "$3"; }; '
    'do sleep 0.2; i=$((i+1)); done'
)
_WAIT_SLICE_S = 60.0  # one wait command at most this long, so a lost session shows up
_START_TIMEOUT_S = 10.0
_POLL_INTERVAL_S = 0.2


def _quote(cmd: Sequence[str | PurePosixPath | Path]) -> str:
    return " ".join(shlex.quote(str(part)) for part in cmd)


class RemoteProcess:
    """A process started by ``RemoteHost.start``; its output comes back when it ends."""

    def __init__(self, host: RemoteHost, pid: int, pgid: int, proc_dir: PurePosixPath,
                 stdout: Path | None, stderr: Path | None) -> None:
        self.host = host
        self.pid = pid
        self.pgid = pgid
        self.proc_dir = proc_dir
        self._stdout = stdout
        self._stderr = stderr
        self._code: int | None = None
        self._fetched = False

    @property
    def returncode(self) -> int | None:
        """The exit code as last seen, without asking the host."""
        return self._code

    def poll(self) -> int | None:
        if self._code is not None:
            return self._code
        state = self.host.run(["sh", "-c", _POLL, "papaya-poll", str(self.proc_dir),
                               str(self.pgid), str(self.pid)], timeout=30).stdout.strip()
        if state == "running":
            return None
        # "gone" without an exit code: the wrapper itself was killed.
        self._code = int(state) if state.lstrip("-").isdigit() else -9
        self._fetch_output()
        return self._code

    def wait(self, timeout: float | None = None) -> int:
        """Block until the process ends: one SSH command that sleeps on the host, not a poll
        every few hundred milliseconds (each poll would cost the host a shell)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self.poll()
            if code is not None:
                return code
            left = _WAIT_SLICE_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.host.name}: pid {self.pid} still running after "
                                   f"{timeout:g} s")
            ticks = max(1, int(min(left, _WAIT_SLICE_S) / _POLL_INTERVAL_S))
            self.host.run(["sh", "-c", _WAIT, "papaya-wait", str(self.proc_dir),
                           str(self.pgid), str(self.pid), str(ticks)],
                          timeout=ticks * _POLL_INTERVAL_S + 30)

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace_s``; returns the exit code."""
        try:
            if self.poll() is None:
                self.signal("TERM")
                try:
                    self.wait(grace_s)
                except TimeoutError:
                    self.signal("KILL")
                    self.wait(grace_s)
            # The wrapper may be gone while children linger in the group.
            self.signal("KILL")
        except HostError:
            # The connection is gone: nothing more can be done from here; the host's own
            # teardown (provider destroy, or the next cell's sweep) kills what is left.
            return self._code
        self._fetch_output()
        return self._code

    def signal(self, signal_name: str) -> None:
        """Signal the wrapper's group, the command, and the command's own group: servers
        such as c-fork move into a process group of their own."""
        self.host.signal_group(self.pgid, signal_name, also=(self.pid,))

    def _fetch_output(self) -> None:
        if self._fetched:
            return
        self._fetched = True
        for name, local in (("stdout", self._stdout), ("stderr", self._stderr)):
            if local is not None:
                try:
                    self.host.get(self.proc_dir / name, local)
                except HostError:
                    local.write_text(f"(could not fetch {name} from {self.host.name})\n")


class RemoteHost:
    """A host reached over SSH with a key and pinned host keys."""

    def __init__(self, name: str, address: str, *, port: int = 22, user: str = "root",
                 key_file: Path, known_hosts: Path | None = None,
                 connect_timeout: float = 10.0, python: str = "python3") -> None:
        self.name = name
        self.address = address
        self.port = port
        self.user = user
        self.key_file = Path(key_file).expanduser()
        self.known_hosts = Path(known_hosts or Path("~/.ssh/known_hosts")).expanduser()
        self.connect_timeout = connect_timeout
        self.python = python  # the interpreter with psutil that runs the tracer
        self._connection: Connection | None = None
        self._home: str | None = None
        self._system: str | None = None
        self._clock_offset: float | None = None
        self._started: list[RemoteProcess] = []
        self._counter = 0
        self._lost = False  # a connection dropped: orphans to kill on reconnect

    # ------------------------------------------------------------------ connection

    def describe(self) -> str:
        return f"{self.name} ({self.user}@{self.address}:{self.port})"

    def connect(self) -> Connection:
        if self._connection is not None:
            if self._connection.is_connected:
                return self._connection
            # The session dropped between commands: say so once (the caller's cell fails
            # with the reason); the next call reconnects and kills what the session started.
            self._connection, self._lost = None, True
            raise HostError(f"{self.describe()}: connection lost (the SSH session closed)")
        if not self.key_file.is_file():
            raise HostError(f"{self.describe()}: connect: key file {self.key_file} not found")
        if not self.known_hosts.is_file():
            raise HostError(
                f"{self.describe()}: connect: known_hosts file {self.known_hosts} not found; "
                f"record the host key first (ssh-keyscan -p {self.port} {self.address}, "
                "checked against the host's own fingerprint)")
        connection = Connection(
            self.address, user=self.user, port=self.port,
            config=Config(lazy=True),  # ~/.ssh/config must not change where we connect
            connect_timeout=max(1, int(self.connect_timeout)),
            connect_kwargs={"key_filename": str(self.key_file), "look_for_keys": False,
                            "allow_agent": False, "banner_timeout": self.connect_timeout,
                            "auth_timeout": self.connect_timeout},
        )
        client = connection.client
        client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            connection.open()
        except paramiko.BadHostKeyException as error:
            raise HostError(
                f"{self.describe()}: connect: host key mismatch ({error}); the host is not the "
                f"one recorded in {self.known_hosts}: refusing to connect") from error
        except paramiko.AuthenticationException as error:
            raise HostError(f"{self.describe()}: connect: key {self.key_file} refused "
                            f"({error})") from error
        except paramiko.SSHException as error:
            if "known_hosts" in str(error) or "not found in" in str(error):
                raise HostError(
                    f"{self.describe()}: connect: host key not in {self.known_hosts}; refusing "
                    f"an unknown host (record it: ssh-keyscan -p {self.port} {self.address}, "
                    "and check the fingerprint on the host)") from error
            raise HostError(f"{self.describe()}: connect: {error}") from error
        except (OSError, EOFError) as error:
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            raise HostError(f"{self.describe()}: connect: cannot reach the host "
                            f"({reason})") from error
        self._connection = connection
        if self._lost:
            self._lost = False
            self._kill_orphans()
        return connection

    def _kill_orphans(self) -> None:
        """After a lost connection, kill what was started before it and never stopped."""
        orphans = [p for p in self._started if p.returncode is None]
        self._started = [p for p in self._started if p.returncode is not None]
        for process in orphans:
            process.signal("KILL")

    def is_reachable(self) -> bool:
        try:
            return self.run(["true"], timeout=self.connect_timeout).returncode == 0
        except HostError:
            return False

    def close(self) -> None:
        """Kill every process group this object started, then drop the connection."""
        if self._connection is None:
            return
        for process in self._started:
            if process.returncode is None:
                try:
                    process.signal("KILL")
                except HostError:
                    break
        self._started.clear()
        self._connection.close()
        self._connection = None

    # ------------------------------------------------------------------ commands

    def run(self, cmd: Sequence[str | PurePosixPath], *, cwd: Path | PurePosixPath | None = None,
            env: Mapping[str, str] | None = None, check: bool = True,
            timeout: float | None = None) -> CommandResult:
        line = self._command_line(cmd, cwd, env)
        connection = self.connect()
        try:
            result = connection.run(line, hide=True, warn=True, in_stream=False,
                                    timeout=int(timeout) + 1 if timeout else None)
        except CommandTimedOut as error:
            raise HostError(f"{self.name}: {_quote(cmd)}: timed out after {timeout}s") from error
        except (paramiko.SSHException, OSError, EOFError) as error:
            self._connection, self._lost = None, True
            raise HostError(f"{self.describe()}: connection lost while running "
                            f"{_quote(cmd)[:120]}: {error or type(error).__name__}") from error
        if result.exited == -1:  # the channel closed without an exit status
            self._connection, self._lost = None, True
            raise HostError(f"{self.describe()}: connection lost while running "
                            f"{_quote(cmd)[:120]} (no exit status came back)")
        outcome = CommandResult(result.exited, result.stdout, result.stderr)
        if check and result.exited != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-12:]
            raise HostError(f"{self.name}: {_quote(cmd)} exited with {result.exited}:\n"
                            + "\n".join(detail))
        return outcome

    def _command_line(self, cmd: Sequence[str | PurePosixPath], cwd: Any,
                      env: Mapping[str, str] | None) -> str:
        line = _quote(cmd)
        if env:
            line = "env " + " ".join(shlex.quote(f"{k}={v}") for k, v in env.items()) + " " + line
        if cwd is not None:
            line = f"cd {shlex.quote(str(cwd))} && {line}"
        return line

    def which(self, program: str) -> str | None:
        result = self.run(["sh", "-c", f"command -v {shlex.quote(program)}"], check=False)
        path = result.stdout.strip()
        return path if result.returncode == 0 and path else None

    @property
    def system(self) -> str:
        """``uname -s`` of the host: Linux, FreeBSD, ..."""
        if self._system is None:
            self._system = self.run(["uname", "-s"]).stdout.strip()
        return self._system

    @property
    def scratch(self) -> PurePosixPath:
        """The pipeline's directory on the host (sources, binaries, cells in progress).

        As root it is /var/lib/papaya-bench, not under /root (mode 0700): the chat server
        drops to an unprivileged user that must still reach its log in the cell directory.
        """
        if self._home is None:
            self._home = self.run(["sh", "-c", 'echo "$HOME"']).stdout.strip() or "/tmp"
        if self.user == "root":
            return PurePosixPath("/var/lib/papaya-bench")
        return PurePosixPath(self._home) / ".papaya-bench"

    @property
    def clock_offset_s(self) -> float:
        """Host clock minus this machine's clock, to schedule a remote start at a local time."""
        if self._clock_offset is None:
            before = time.time()
            remote = float(self.run([self.python, "-c", "import time; print(time.time())"]
                                    ).stdout)
            after = time.time()
            self._clock_offset = remote - (before + after) / 2
        return self._clock_offset

    def mkdir(self, path: PurePosixPath) -> PurePosixPath:
        self.run(["mkdir", "-p", str(path)])
        return path

    def workdir(self, relative: str, local: Path) -> PurePosixPath:
        return self.mkdir(self.scratch / relative)

    def create_cgroup(self, name: str, cpus: Sequence[int]) -> None:
        """The host confines itself (lab hosts: a cpuset; others: taskset); nothing here."""
        return None

    # ------------------------------------------------------------------ processes

    def _pinning_prefix(self, cpus: Sequence[int] | None) -> list[str]:
        if not cpus:
            return []
        cpu_list = ",".join(str(c) for c in cpus)
        if self.system == "Linux" and self.which("taskset"):
            return ["taskset", "-c", cpu_list]
        if self.system == "FreeBSD":
            return ["cpuset", "-l", cpu_list]
        return []

    def start(self, cmd: Sequence[str | PurePosixPath], *, cpus: Sequence[int] | None = None,
              cgroup: Any = None, env: Mapping[str, str] | None = None,
              stdout: Path | None = None, stderr: Path | None = None,
              cwd: Path | PurePosixPath | None = None) -> RemoteProcess:
        if cgroup is not None:
            raise HostError(f"{self.name}: a local cgroup cannot confine a remote process")
        self._counter += 1
        proc_dir = self.scratch / "procs" / f"{int(time.time() * 1000)}-{self._counter}"
        argv = [str(part) for part in self._pinning_prefix(cpus)]
        if env:
            argv = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
        argv += [str(part) for part in cmd]
        d = shlex.quote(str(proc_dir))
        launch = (
            f"mkdir -p {d} && "
            + (f"cd {shlex.quote(str(cwd))} && " if cwd is not None else "")
            + f"{self.python} -c {shlex.quote(_SETSID)} sh -c {shlex.quote(_WRAPPER)} "
            f"papaya-start {d} {_quote(argv)} > /dev/null 2>&1 < /dev/null & "
            f"i=0; while [ ! -s {d}/pid ] && [ $i -lt {int(_START_TIMEOUT_S * 100)} ]; "
            "do sleep 0.01; i=$((i+1)); done; "
            f"cat {d}/pgid {d}/pid"
        )
        out = self.run(["sh", "-c", launch], timeout=_START_TIMEOUT_S + 5).stdout.split()
        if len(out) != 2:
            raise HostError(f"{self.name}: starting {_quote(cmd)[:120]} failed: the wrapper "
                            f"recorded no pid in {proc_dir}")
        process = RemoteProcess(self, int(out[1]), int(out[0]), proc_dir, stdout, stderr)
        self._started.append(process)
        return process

    def signal_group(self, pgid: int, signal_name: str, also: Sequence[int] = ()) -> None:
        """Signal process group ``pgid``, and each of ``also`` with its own group."""
        targets = [f"-{int(pgid)}"] + [t for pid in also for t in (str(int(pid)), f"-{int(pid)}")]
        self.run(["sh", "-c", "; ".join(f"kill -{signal_name} {t} 2>/dev/null" for t in targets)
                  + "; true"], timeout=30)

    # ------------------------------------------------------------------ files

    def put(self, local: Path, remote: Path | PurePosixPath) -> None:
        connection = self.connect()
        self.run(["mkdir", "-p", str(PurePosixPath(remote).parent)])
        try:
            connection.put(str(local), str(remote), preserve_mode=True)
        except (OSError, paramiko.SSHException, EOFError) as error:
            raise HostError(f"{self.describe()}: uploading {local} to {remote}: {error}") from error

    def get(self, remote: Path | PurePosixPath, local: Path) -> None:
        connection = self.connect()
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        try:
            connection.get(str(remote), str(local))
        except (OSError, paramiko.SSHException, EOFError) as error:
            raise HostError(f"{self.describe()}: fetching {remote}: {error}") from error

    def put_tree(self, local_dir: Path, remote_dir: PurePosixPath,
                 exclude: Sequence[str] = ("build", "__pycache__", ".pytest_cache")) -> None:
        """Copy a directory tree to the host (replacing what was there) as one tar stream."""
        buffer = io.BytesIO()

        def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            return None if PurePosixPath(info.name).name in exclude else info

        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(str(local_dir), arcname=".", filter=keep)
        buffer.seek(0)
        archive_path = PurePosixPath(str(remote_dir) + ".tar")
        self.run(["sh", "-c", f"rm -rf {shlex.quote(str(remote_dir))} && "
                              f"mkdir -p {shlex.quote(str(remote_dir))}"])
        connection = self.connect()
        try:
            connection.put(buffer, str(archive_path))
        except (OSError, paramiko.SSHException, EOFError) as error:
            raise HostError(f"{self.describe()}: uploading {local_dir}: {error}") from error
        self.run(["sh", "-c", f"tar -xf {shlex.quote(str(archive_path))} -C "
                              f"{shlex.quote(str(remote_dir))} && rm -f "
                              f"{shlex.quote(str(archive_path))}"])
