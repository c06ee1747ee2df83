"""A real sshd on 127.0.0.1 for tests that need real SSH without the lab.

The daemon has its own host key, client key and config in a temporary directory; its host key
is written to a known_hosts file, so clients connect with the key pinned, never blindly.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SshdInfo:
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    directory: Path
    process: subprocess.Popen[bytes]


def sshd_unavailable_reason() -> str | None:
    """Why a loopback sshd cannot run here, or None when it can."""
    if not Path(SSHD).is_file():
        return f"{SSHD} not installed (apt-get install openssh-server)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen not installed (apt-get install openssh-client)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "papaya-test",
                    "-f", str(path)], check=True, capture_output=True, timeout=30)
    return path


@contextlib.contextmanager
def loopback_sshd(directory: Path, *, extra_config: str = "") -> Iterator[SshdInfo]:
    """Start sshd on a free 127.0.0.1 port accepting only a fresh key; stop it on exit."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    host_key = keygen(directory / "host_ed25519")
    client_key = keygen(directory / "client_ed25519")
    authorized = directory / "authorized_keys"
    authorized.write_text((directory / "client_ed25519.pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\nPidFile {directory / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nLogLevel ERROR\n"
        "MaxSessions 64\nMaxStartups 64\nSubsystem sftp internal-sftp\n" + extra_config)
    known_hosts = directory / "known_hosts"
    public = (directory / "host_ed25519.pub").read_text().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    log = open(directory / "sshd.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("sshd exited: " + (directory / "sshd.log").read_text())
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                        timeout=0.2):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within 10 s")
        yield SshdInfo(port, getpass.getuser(), client_key, known_hosts, directory, process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()
