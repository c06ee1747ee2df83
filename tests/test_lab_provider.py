"""The lab provider for real: namespaces, debootstrap roots, sshd, cpusets, teardown.

As root on Linux this provisions a lab of ``server-amd64`` + ``loadgen`` (the rootfs cache makes
it ~15 s; the first build takes ~2 min), checks it over real SSH with pinned host keys, and
destroys it, also after a simulated crash. The 32-bit host (``server-i386``) gets a test of its
own. The config parsing tests need no root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from rich.console import Console

from infra.hosts import HostError
from infra.lab import hosts as labhosts
from infra.lab import net
from infra.lab.config import (
    LOADGEN_PACKAGES,
    SERVER_PACKAGES,
    LabConfigError,
    default_config,
    load_lab_config,
    parse_lab_table,
    select_hosts,
)
from infra.lab.teardown import cgroup_parents, leftovers
from infra.providers import ProviderError
from infra.providers.lab import LAB_DIR, LabProvider
from infra.remote import RemoteHost

ROOT = Path(__file__).resolve().parent.parent
PAIR = ["server-amd64", "loadgen"]


def _lab_unavailable_reason() -> str | None:
    if not sys.platform.startswith("linux"):
        return "the lab needs Linux (network namespaces)"
    if os.geteuid() != 0:
        return "the lab needs root (namespaces, mounts, cgroups): run the tests as root"
    missing = [t for t in ("debootstrap", "ip", "unshare", "setarch", "ssh-keygen", "chroot")
               if shutil.which(t) is None]
    if missing:
        return f"the lab needs {', '.join(missing)} (apt-get install debootstrap iproute2 ...)"
    # Never tear down a lab someone provisioned by hand: these tests destroy what they make.
    existing = net.lab_netns() + net.lab_links()
    if existing or LAB_DIR.exists():
        what = ", ".join(existing) or str(LAB_DIR)
        return (f"a lab already exists on this machine ({what}): the tests will not destroy it; "
                "run `invoke destroy --provider lab` first")
    return None


needs_lab = pytest.mark.skipif(_lab_unavailable_reason() is not None,
                               reason=str(_lab_unavailable_reason()))


def _provider(state_dir: Path, hosts: list[str]) -> LabProvider:
    return LabProvider(None, hosts=hosts, state_dir=state_dir, console=Console(stderr=True))


def _ssh(entry_host: RemoteHost, script: str) -> str:
    return entry_host.run(["sh", "-c", script], timeout=30).stdout


def _assert_nothing_left() -> None:
    assert leftovers(LAB_DIR) == []
    assert net.lab_netns() == [] and net.lab_links() == []
    assert str(LAB_DIR) not in Path("/proc/mounts").read_text()
    assert not any(p.exists() for p in cgroup_parents())
    assert not LAB_DIR.exists()
    sshd_roots = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                sshd_roots.append(os.readlink(proc / "root"))
            except OSError:
                continue
    assert not [r for r in sshd_roots if r.startswith(str(LAB_DIR))]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    state_dir = tmp_path_factory.mktemp("lab-state")
    provider = _provider(state_dir, PAIR)
    started = time.monotonic()
    state = provider.provision()
    print(f"lab provisioned in {time.monotonic() - started:.1f}s")
    try:
        yield provider, state
    finally:
        provider.destroy()


# ---------------------------------------------------------------------- real lab


@needs_lab
def test_hosts_answer_over_ssh_with_pinned_host_keys(lab, tmp_path: Path) -> None:
    provider, state = lab
    entries = {e.name: e for e in provider.hosts()}
    assert sorted(entries) == sorted(PAIR)
    for name, entry in entries.items():
        host = entry.host
        assert isinstance(host, RemoteHost)
        assert host.known_hosts == provider.known_hosts
        assert _ssh(host, "hostname").strip() == name
        assert _ssh(host, "uname -m").strip() == "x86_64"
        assert entry.address == state["hosts"][name]["address"]
        assert entry.facts["usable_cpus"] == state["hosts"][name]["cpus"]
        host.close()
    # The recorded key is the one in the host's own root, not one learnt over the network.
    server = state["hosts"]["server-amd64"]
    pub = Path(server["root"], "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
    assert f"{server['address']} {pub[0]} {pub[1]}" in provider.known_hosts.read_text()

    # A different key recorded for the address: the connection is refused.
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)],
                   check=True)
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"{server['address']} {impostor.with_suffix('.pub').read_text()}")
    with pytest.raises(HostError, match="host key mismatch"):
        RemoteHost("server-amd64", server["address"], key_file=provider.key_file,
                   known_hosts=wrong).run(["true"])
    # No entry at all: refused too (no blind accept).
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(HostError, match="not in"):
        RemoteHost("server-amd64", server["address"], key_file=provider.key_file,
                   known_hosts=empty).run(["true"])
    # Key-only: OpenSSH's own client without the key gets no way in.
    refused = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
         "-o", f"UserKnownHostsFile={provider.known_hosts}", "-o", "StrictHostKeyChecking=yes",
         f"root@{server['address']}", "true"], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr


@needs_lab
def test_hosts_reach_each_other_only_over_the_lab_network(lab, tmp_path: Path) -> None:
    provider, state = lab
    server_addr = state["hosts"]["server-amd64"]["address"]
    entries = {e.name: e for e in provider.hosts()}
    loadgen = entries["loadgen"].host
    banner = _ssh(loadgen, f"python3 -c \"import socket; s = socket.create_connection(("
                           f"'{server_addr}', 22), timeout=5); print(s.recv(64).decode())\"")
    assert banner.startswith("SSH-2.0-OpenSSH")
    # A real exchange between the hosts: the server's listener sees the loadgen's address.
    listener = entries["server-amd64"].host.start(
        ["python3", "-c", "import socket; s = socket.socket(); "
         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 7000)); "
         "s.listen(); s.settimeout(20); c, a = s.accept(); c.sendall(b'hello'); print(a[0])"],
        stdout=tmp_path / "peer.txt")
    reply = ""
    for _ in range(50):  # the listener needs a moment to bind
        result = loadgen.run(["python3", "-c", "import socket; s = socket.create_connection(("
                              f"'{server_addr}', 7000), timeout=5); print(s.recv(5).decode())"],
                             check=False, timeout=30)
        if result.returncode == 0:
            reply = result.stdout.strip()
            break
        time.sleep(0.1)
    assert reply == "hello"
    assert listener.wait(timeout=20) == 0
    assert (tmp_path / "peer.txt").read_text().strip() == entries["loadgen"].address
    for entry in entries.values():
        routes = _ssh(entry.host, "ip -4 route show").strip().splitlines()
        assert routes == [f"198.18.0.0/24 dev eth0 proto kernel scope link src {entry.address} "
                          .strip()]
        # Anywhere else is unreachable at once: there is no route for a packet to leave by.
        out = entry.host.run(["python3", "-c", "import socket; socket.create_connection("
                              "('192.0.2.1', 80), timeout=5)"], check=False, timeout=30)
        assert out.returncode != 0 and "Network is unreachable" in out.stderr
        entry.host.close()


@needs_lab
def test_host_processes_are_confined_to_the_host_cpu_set(lab) -> None:
    provider, state = lab
    usable = sorted(os.sched_getaffinity(0))
    for entry in provider.hosts():
        cpus = state["hosts"][entry.name]["cpus"]
        # A grandchild of sshd (sh -> grep) still carries the cpuset.
        allowed = _ssh(entry.host, "grep Cpus_allowed_list /proc/self/status").split()[-1]
        assert labhosts_cpu_list(allowed) == cpus
        outside = [c for c in usable if c not in cpus]
        if outside:
            # The cpuset is enforced, not just an initial affinity: leaving it is refused.
            escape = entry.host.run(["taskset", "-c", str(outside[0]), "true"], check=False)
            assert escape.returncode != 0
        # PID 1 of the host is its sshd; the test machine's processes are not visible.
        assert _ssh(entry.host, "cat /proc/1/comm").strip() == "sshd"
        assert int(_ssh(entry.host, "ls /proc | grep -c '^[0-9]'")) < 20
        entry.host.close()
    # The host's mounts live in its own mount namespace, invisible here.
    assert str(LAB_DIR) not in Path("/proc/mounts").read_text()


def labhosts_cpu_list(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus += list(range(int(low), int(high or low) + 1))
    return cpus


@needs_lab
def test_provisioning_twice_gives_the_same_lab(lab) -> None:
    provider, state = lab
    again = provider.provision()
    for name in PAIR:
        before, after = state["hosts"][name], again["hosts"][name]
        assert after["pids"] == before["pids"]
        assert after["address"] == before["address"]
        assert after["cpus"] == before["cpus"]
    assert net.lab_netns() == sorted(f"papaya-{n}" for n in PAIR)
    links = net.lab_links()
    assert links.count(net.BRIDGE) == 1 and len(links) == 1 + len(PAIR)
    inits = [p for ns in net.lab_netns() for p in net.netns_pids(ns)
             if labhosts.is_namespace_init(p)]
    assert len(inits) == len(PAIR)


@needs_lab
def test_provisioning_repairs_a_broken_lab(lab) -> None:
    provider, state = lab
    server, loadgen = state["hosts"]["server-amd64"], state["hosts"]["loadgen"]
    # The server loses its link to the bridge; the load generator host dies.
    net.delete_link(server["links"]["root_side"])
    os.kill(loadgen["pids"]["init"], signal.SIGKILL)
    repaired = provider.provision()
    # The running server is kept (same sshd), only its link is remade; the dead host restarts.
    assert repaired["hosts"]["server-amd64"]["pids"] == server["pids"]
    assert repaired["hosts"]["loadgen"]["pids"]["init"] != loadgen["pids"]["init"]
    assert repaired["hosts"]["loadgen"]["address"] == loadgen["address"]
    for entry in provider.hosts():
        assert entry.host.is_reachable(), entry.name
        entry.host.close()
    state["hosts"] = repaired["hosts"]


@needs_lab
def test_status_and_lab_describe_the_running_hosts(lab) -> None:
    provider, state = lab
    rows = {row["host"]: row for row in provider.status()}
    assert sorted(rows) == sorted(PAIR)
    for name, row in rows.items():
        assert row["reachable"] is True and row["provisioned"] is True
        assert row["address"] == state["hosts"][name]["address"]
        assert row["cpus"] == ",".join(map(str, state["hosts"][name]["cpus"]))
    chosen = provider.lab()
    assert chosen.server.name == "server-amd64" and chosen.loadgen.name == "loadgen"
    assert chosen.target_address == state["hosts"]["server-amd64"]["address"]
    server_cpus = state["hosts"]["server-amd64"]["cpus"]
    placement = chosen.placement(len(server_cpus))
    assert placement.isolation == "isolated"
    assert placement.server_cpus == server_cpus
    assert placement.aux_cpus == state["hosts"]["loadgen"]["cpus"]
    too_many = chosen.placement(len(server_cpus) + 1)
    assert too_many.isolation == "shared"
    assert too_many.warning and "CPU" in too_many.warning


@needs_lab
def test_destroy_leaves_nothing_and_a_second_destroy_is_a_no_op(lab) -> None:
    provider, _state = lab
    removed = provider.destroy()
    assert any(item.startswith("netns papaya-server-amd64") for item in removed)
    assert any(item.startswith(f"bridge {net.BRIDGE}") for item in removed)
    _assert_nothing_left()
    assert not provider.key_file.exists()
    assert provider.destroy() == []
    with pytest.raises(ProviderError, match="not provisioned"):
        provider.lab()


@needs_lab
def test_i386_host_runs_32_bit(tmp_path: Path) -> None:
    provider = _provider(tmp_path, ["server-i386"])
    try:
        provider.provision()
        (entry,) = provider.hosts()
        assert _ssh(entry.host, "uname -m").strip() == "i686"
        assert _ssh(entry.host, "getconf LONG_BIT").strip() == "32"
        assert entry.facts["long_bit"] == 32
        assert _ssh(entry.host, "dpkg --print-architecture").strip() == "i386"
        entry.host.close()
    finally:
        provider.destroy()
    _assert_nothing_left()


@needs_lab
def test_destroy_cleans_up_after_a_crashed_run(tmp_path: Path) -> None:
    provider = _provider(tmp_path, ["loadgen"])
    state = provider.provision()
    record = state["hosts"]["loadgen"]
    # The crash: the state file is lost, the host's outer process is SIGKILLed (its sshd dies
    # with it), and a half-made second host is left: a namespace, a veth, a mount in the
    # root namespace under the lab dir; and a process chrooted into the first host's root.
    Path(tmp_path, "lab.json").unlink()
    os.kill(record["pids"]["unshare"], signal.SIGKILL)
    net.ip("netns", "add", "papaya-ghost")
    net.ip("link", "add", "pl-99", "type", "veth", "peer", "name", "pl-99p")
    ghost_root = LAB_DIR / "ghost" / "root"
    (ghost_root / "mnt").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(ghost_root / "mnt")], check=True)
    # Started after the host died: a process chrooted into its root, outside any namespace.
    stray = subprocess.Popen(["chroot", record["root"], "/bin/sleep", "300"],
                             start_new_session=True)
    assert leftovers(LAB_DIR)

    fresh = _provider(tmp_path, ["loadgen"])  # a new process would know nothing either
    assert fresh.status()[0]["provisioned"] is False
    removed = fresh.destroy()
    assert "netns papaya-ghost" in removed
    stray.wait(timeout=10)
    _assert_nothing_left()
    assert fresh.destroy() == []


# ---------------------------------------------------------------------- no root needed


def test_lab_refuses_clearly_without_root(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to drop to an unprivileged user (setpriv)")
    tmp_path.chmod(0o777)
    script = textwrap.dedent(f"""
        from pathlib import Path
        from infra.providers import ProviderError
        from infra.providers.lab import LabProvider
        try:
            LabProvider(None, state_dir=Path({str(tmp_path)!r})).provision()
        except ProviderError as error:
            print(error)
    """)
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c",
         script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
             "PYTHONPATH": str(ROOT)})
    assert "needs root" in result.stdout, result.stderr


def test_default_hosts_split_the_cpus() -> None:
    config = default_config([0, 1])
    hosts = {h.name: h for h in config.hosts}
    assert list(hosts) == ["server-amd64", "server-i386", "loadgen"]
    assert hosts["server-amd64"].cpus == (1,) and hosts["server-i386"].cpus == (1,)
    assert hosts["loadgen"].cpus == (0,)
    assert hosts["server-i386"].arch == "i386"
    assert hosts["server-amd64"].packages == SERVER_PACKAGES
    assert hosts["loadgen"].packages == LOADGEN_PACKAGES
    assert default_config([0]).host("loadgen").cpus == (0,)


def test_lab_section_is_read_from_the_experiment_config(tmp_path: Path) -> None:
    path = tmp_path / "exp.toml"
    path.write_text(textwrap.dedent("""
        [experiment]
        name = "x"
        [lab]
        run_on = "b"
        [lab.hosts.a]
        arch = "amd64"
        roles = ["server"]
        cpus = [1]
        [lab.hosts.b]
        arch = "i386"
        roles = ["server"]
        cpus = [0, 1]
        [lab.hosts.gen]
        roles = ["loadgen"]
    """))
    config = load_lab_config(path, cpus=[0, 1])
    assert [h.name for h in config.hosts] == ["a", "b", "gen"]
    assert config.host("b").cpus == (0, 1) and config.host("b").arch == "i386"
    assert config.host("gen").cpus == (0,) and config.run_on == "b"
    assert [h.name for h in select_hosts(config, ["a", "gen"]).hosts] == ["a", "gen"]
    assert select_hosts(config, ["a", "gen"]).run_on is None
    no_lab = tmp_path / "plain.toml"
    no_lab.write_text("[experiment]\nname = 'y'\n")
    assert [h.name for h in load_lab_config(no_lab, cpus=[0, 1]).hosts] == [
        "server-amd64", "server-i386", "loadgen"]


@pytest.mark.parametrize(("table", "message"), [
    ({"hosts": {"a": {"arch": "arm64"}}}, "lab.hosts.a.arch = 'arm64': expected one of amd64"),
    ({"hosts": {"a": {"cpus": [7]}}}, "lab.hosts.a.cpus = [7]: expected CPUs this machine has"),
    ({"hosts": {"a": {"roles": ["db"]}}}, "lab.hosts.a.roles = ['db']"),
    ({"hosts": {"A_b": {}}}, "lab.hosts.A_b = 'A_b'"),
    ({"hosts": {"a": {"cpu": [1]}}}, "lab.hosts.a.cpu = [1]"),
    ({"run_on": "loadgen"}, "lab.run_on = 'loadgen': expected a lab host with the server"),
    ({"mirror": "ftp.example"}, "lab.mirror = 'ftp.example'"),
    ({"colour": 1}, "lab.colour = 1"),
])
def test_bad_lab_sections_name_file_key_and_value(table: dict, message: str) -> None:
    with pytest.raises(LabConfigError) as caught:
        parse_lab_table("exp.toml", table, cpus=[0, 1])
    assert str(caught.value).startswith("exp.toml: ")
    assert message in str(caught.value)


def test_unknown_host_in_subset_is_named() -> None:
    with pytest.raises(LabConfigError, match="no lab host 'nope'"):
        select_hosts(default_config([0, 1]), ["server-amd64", "nope"])


def test_init_process_helpers_read_proc() -> None:
    assert labhosts.parent(os.getpid()) == os.getppid()
    assert labhosts.start_time(os.getpid()) is not None
    assert labhosts.is_namespace_init(os.getpid()) is False
