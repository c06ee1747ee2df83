"""One lab host's processes: its root filesystem's SSH setup, and sshd as PID 1 of its own world.

Layout of a running host ``h``::

    [cgroup papaya-lab/h] ip netns exec papaya-h            (network namespace)
      unshare --mount --pid --uts --ipc --fork --kill-child (stays outside, parent of init)
        [setarch i686] sh: mount proc, sys, dev, run in the root; exec chroot root sshd
          sshd -D   <- PID 1 of the host's PID namespace

Killing sshd kills every process of the host (the kernel ends a PID namespace with its init),
and the mounts live in a private mount namespace that disappears with it, so nothing the host
did can outlive it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from infra.cgroups import Cgroup

SSHD_CONFIG = """\
# Written by papaya-bench's lab provider: key-only root login, nothing else.
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
X11Forwarding no
MaxStartups 64:30:256
MaxSessions 64
Subsystem sftp internal-sftp
"""

# Runs as PID 1 of the new PID namespace, inside a private mount namespace: $1 is the root,
# $2 the host name. /dev is a small tmpfs with only the nodes a host needs.
INIT_SCRIPT = r"""
set -e
R=$1
hostname "$2"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t tmpfs -o mode=755,size=1m,nosuid tmpfs "$R/dev"
for d in null zero full random urandom tty; do
    touch "$R/dev/$d"
    mount --bind "/dev/$d" "$R/dev/$d"
done
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$R/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
ln -s pts/ptmx "$R/dev/ptmx"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$R/run"
mkdir -m 755 "$R/run/sshd"
exec chroot "$R" /usr/sbin/sshd -D -e
"""

# Joins the host's cgroups before anything else runs, so every process of the host is in it.
_JOIN = 'for f in $PAPAYA_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@"'


class LabHostError(RuntimeError):
    """A lab host could not be set up or started; the message names the host and step."""


def run_checked(cmd: Sequence[str], step: str, timeout: float = 60) -> str:
    result = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                            check=False)
    if result.returncode != 0:
        raise LabHostError(f"{step}: {' '.join(cmd)}: {result.stderr.strip()}")
    return result.stdout


def ensure_client_key(key: Path) -> None:
    """The lab's client key pair (ed25519), private half mode 0600."""
    key.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(key.parent, 0o700)
    if not (key.is_file() and key.with_suffix(".pub").is_file()):
        key.unlink(missing_ok=True)
        key.with_suffix(".pub").unlink(missing_ok=True)
        run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "papaya-lab",
                     "-f", str(key)], "lab client key")
    os.chmod(key, 0o600)


def prepare_root(root: Path, name: str, address: str, client_public_key: str,
                 lab_hosts: dict[str, str]) -> str:
    """SSH setup inside a host's root; returns the host's public key line for known_hosts."""
    ssh_dir = root / "etc" / "ssh"
    host_key = ssh_dir / "ssh_host_ed25519_key"
    if not (host_key.is_file() and host_key.with_suffix(".pub").is_file()):
        for stale in ssh_dir.glob("ssh_host_*"):
            stale.unlink()
        run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{name}",
                     "-f", str(host_key)], f"{name}: host key")
    (ssh_dir / "sshd_config").write_text(SSHD_CONFIG)
    dot_ssh = root / "root" / ".ssh"
    dot_ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(dot_ssh, 0o700)
    authorized = dot_ssh / "authorized_keys"
    authorized.write_text(client_public_key.strip() + "\n")
    os.chmod(authorized, 0o600)
    _unlock_root(root / "etc" / "shadow")
    (root / "etc" / "hostname").write_text(name + "\n")
    hosts = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    hosts += [f"{addr} {host}" for host, addr in sorted(lab_hosts.items())]
    (root / "etc" / "hosts").write_text("\n".join(hosts) + "\n")
    # No DNS in the lab: names resolve from /etc/hosts only.
    resolv = root / "etc" / "resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text("# papaya lab: no DNS\n")
    fields = host_key.with_suffix(".pub").read_text().split()
    return f"{address} {fields[0]} {fields[1]}"


def _unlock_root(shadow: Path) -> None:
    """sshd without PAM refuses keys for a locked account ('!'); '*' means no password at all."""
    lines = shadow.read_text().splitlines()
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == "root" and fields[1] != "*":
            fields[1] = "*"
            lines[i] = ":".join(fields)
    shadow.write_text("\n".join(lines) + "\n")


def start_host(name: str, arch: str, root: Path, netns: str, cgroup: Cgroup | None,
               log: Path) -> int:
    """Start the host detached; returns the pid of its outer ``unshare`` process."""
    # The script lives beside the log (outside the root): the host cannot change it.
    script = log.parent / "init.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(INIT_SCRIPT.lstrip())
    personality = ["setarch", "i686"] if arch == "i386" else []
    argv = ["ip", "netns", "exec", netns,
            "unshare", "--mount", "--propagation", "private", "--pid", "--uts", "--ipc",
            "--fork", "--kill-child", *personality,
            "sh", str(script), str(root), name]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    if cgroup is not None:
        env["PAPAYA_CGROUP_PROCS"] = " ".join(str(p) for p in cgroup.procs_files)
        argv = ["sh", "-c", _JOIN, "papaya-lab-join", *argv]
    with open(log, "ab") as out:
        # A session of its own: the host must outlive this process and its terminal.
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 env=env, start_new_session=True, close_fds=True)
    return popen.pid


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def is_namespace_init(pid: int) -> bool:
    """True for PID 1 of a PID namespace below ours (NSpid ends with 1)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            ids = line.split()[1:]
            return len(ids) >= 2 and ids[-1] == "1"
    return False


def start_time(pid: int) -> int | None:
    """Clock ticks since boot at which ``pid`` started: tells a pid from its reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def wait_for_init(outer: int, timeout_s: float) -> int | None:
    """The pid of the host's sshd once the init script has exec'd it; None if it died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in children(outer):
            if comm(child) == "sshd" and is_namespace_init(child):
                return child
        if start_time(outer) is None:
            return None
        time.sleep(0.02)
    return None


def kill_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def processes_inside(directory: Path) -> list[int]:
    """Processes whose root or working directory lies in ``directory`` (a lab root)."""
    base = str(Path(directory).resolve(strict=False))
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for link in ("root", "cwd"):
            try:
                target = os.readlink(entry / link)
            except OSError:
                continue
            if target == base or target.startswith(base + "/"):
                found.append(int(entry.name))
                break
    return found
