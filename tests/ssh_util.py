"""A real sshd on 127.0.0.1 for tests that need real SSH without the lab.

The daemon has its own host key, client key and config in a temporary directory; its host key
is written to a known_hosts file, so clients connect with the key pinned, never blindly.
"""

from __future__ import annotations

import contextlib
import getpass
import ipaddress
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
    address: str = "127.0.0.1"

    @property
    def host_public_key(self) -> str:
        """The daemon's host key as "<type> <base64>" (what a TOFU client should record)."""
        return " ".join((self.directory / "host_ed25519.pub").read_text().split()[:2])


def sshd_unavailable_reason() -> str | None:
    """Why a loopback sshd cannot run here, or None when it can."""
    if not Path(SSHD).is_file():
        return f"{SSHD} not installed (apt-get install openssh-server)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen not installed (apt-get install openssh-client)"
    return None


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "papaya-test",
                    "-f", str(path)], check=True, capture_output=True, timeout=30)
    return path


@contextlib.contextmanager
def loopback_sshd(directory: Path, *, extra_config: str = "", listen_address: str = "127.0.0.1",
                  port: int | None = None,
                  authorized_keys: Path | None = None) -> Iterator[SshdInfo]:
    """Start sshd on a loopback address accepting only a fresh key; stop it on exit.

    ``listen_address`` may be any 127.0.0.0/8 address (Linux answers on all of them without
    configuration), so several simulated VMs can share one ``port``. ``authorized_keys``, when
    given, replaces the fresh client key: the daemon accepts exactly the keys in that file (the
    cloud fakes pass the public key the provider registered). ``key_file`` is then still a fresh
    key, which the daemon refuses.
    """
    if not ipaddress.ip_address(listen_address).is_loopback:
        raise ValueError(f"loopback_sshd: {listen_address} is not a loopback address")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    host_key = keygen(directory / "host_ed25519")
    client_key = keygen(directory / "client_ed25519")
    authorized = directory / "authorized_keys"
    source = authorized_keys if authorized_keys is not None else directory / "client_ed25519.pub"
    authorized.write_text(source.read_text())
    authorized.chmod(0o600)
    port = free_port(listen_address) if port is None else port
    config = directory / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress {listen_address}\nHostKey {host_key}\n"
        f"AuthorizedKeysFile {authorized}\nPidFile {directory / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nLogLevel ERROR\n"
        "MaxSessions 64\nMaxStartups 64\nSubsystem sftp internal-sftp\n" + extra_config)
    known_hosts = directory / "known_hosts"
    public = (directory / "host_ed25519.pub").read_text().split()
    known_hosts.write_text(f"[{listen_address}]:{port} {public[0]} {public[1]}\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    log = open(directory / "sshd.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("sshd exited: " + (directory / "sshd.log").read_text())
            with contextlib.suppress(OSError), socket.create_connection((listen_address, port),
                                                                        timeout=0.2):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"sshd did not listen on {listen_address}:{port} within 10 s")
        yield SshdInfo(port, getpass.getuser(), client_key, known_hosts, directory, process,
                       listen_address)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        log.close()
