"""The ssh provider: inventory validation, and provisioning over real SSH to a loopback sshd."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.inventory import InventoryError, load_inventory
from infra.providers import ProviderError
from infra.providers.ssh import SshProvider
from tests.ssh_util import (
    SshdInfo,
    free_port,
    keygen,
    loopback_sshd,
    sshd_unavailable_reason,
)

INVENTORIES = Path(__file__).parent / "fixtures" / "inventory"

needs_sshd = pytest.mark.skipif(sshd_unavailable_reason() is not None,
                                reason=str(sshd_unavailable_reason()))


# ---------------------------------------------------------------------- inventory


@pytest.fixture
def inventory_dir(tmp_path: Path) -> Path:
    """A folder like a user's: the example inventories, a 0600 key and a known_hosts."""
    for source in INVENTORIES.glob("*.toml"):
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / "keys").mkdir()
    keygen(tmp_path / "keys" / "bench_ed25519")
    (tmp_path / "known_hosts").write_text("")
    return tmp_path


def write_inventory(directory: Path, text: str) -> Path:
    path = directory / "inventory.toml"
    path.write_text(text)
    return path


HOST = """[hosts.h1]
address = "127.0.0.1"
key_file = "keys/bench_ed25519"
known_hosts = "known_hosts"
role = "server"
"""


def test_example_inventory_loads(inventory_dir):
    inventory = load_inventory(inventory_dir / "example.toml")
    bsd, loadgen = inventory.hosts
    assert (bsd.name, bsd.address, bsd.port, bsd.user) == ("bsd13", "192.0.2.10", 22, "bench")
    assert bsd.key_file == (inventory_dir / "keys" / "bench_ed25519").resolve()
    assert bsd.roles == ("server",) and bsd.cpus == (1,) and bsd.sudo is None
    assert (loadgen.port, loadgen.user, loadgen.roles, loadgen.cpus) == \
        (2222, "root", ("loadgen",), None)
    assert [h.name for h in inventory.with_role("server")] == ["bsd13"]
    one = load_inventory(inventory_dir / "one-host.toml").hosts[0]
    assert one.roles == ("server", "loadgen") and one.user == "root"


@pytest.mark.parametrize("fixture, message", [
    ("bad-unknown-key.toml", r"host 'bsd13': unknown key\(s\) \['cpu'\]"),
    ("bad-role.toml", r"host 'bsd13': key 'role' = 'client': unknown role 'client'"),
])
def test_bad_example_inventories(inventory_dir, fixture, message):
    with pytest.raises(InventoryError, match=message) as caught:
        load_inventory(inventory_dir / fixture)
    assert str(inventory_dir / fixture) in str(caught.value)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('address = "127.0.0.1"\n', ""), r"host 'h1': missing key 'address'"),
    (lambda t: t + "port = 70000\n", r"key 'port' = 70000: must be an integer from 1 to 65535"),
    (lambda t: t + 'port = "22"\n', r"key 'port' = '22'"),
    (lambda t: t + 'cpus = [0, "1"]\n', r"key 'cpus' = \[0, '1'\]: must be a non-empty list"),
    (lambda t: t + "cpus = [1, 1]\n", r"key 'cpus' = \[1, 1\]: lists a CPU twice"),
    (lambda t: t + 'roles = ["server"]\n', r"either 'role' or 'roles'"),
    (lambda t: t.replace('role = "server"', 'roles = ["server", "db"]'),
     r"key 'roles' = \['server', 'db'\]: unknown role 'db'"),
    (lambda t: t.replace('role = "server"\n', ""), r"missing key 'role'"),
    (lambda t: t.replace("keys/bench_ed25519", "keys/nope"), r"key 'key_file' = 'keys/nope': "
                                                            r".*keys/nope not found"),
    (lambda t: t.replace('"known_hosts"', '"kh-missing"'), r"key 'known_hosts' = 'kh-missing'"),
    (lambda t: t + "sudo = 1\n", r"key 'sudo' = 1: must be true or false"),
    (lambda t: t + "address2 = 1\n", r"unknown key\(s\) \['address2'\]"),
    (lambda t: t.replace("[hosts.h1]", "[host.h1]"), r"unknown top-level key\(s\) \['host'\]"),
    (lambda t: "", r"no hosts"),
    (lambda t: t + "port = \n", r"not valid TOML"),
])
def test_inventory_errors_name_file_host_key_and_value(inventory_dir, edit, message):
    path = write_inventory(inventory_dir, edit(HOST))
    with pytest.raises(InventoryError, match=message) as caught:
        load_inventory(path)
    assert str(path) in str(caught.value)


def test_readable_key_is_refused(inventory_dir):
    key = inventory_dir / "keys" / "bench_ed25519"
    key.chmod(0o644)
    with pytest.raises(InventoryError, match=r"accessible by group/others \(mode 0644\); "
                                             r"chmod 600"):
        load_inventory(write_inventory(inventory_dir, HOST))


def test_missing_inventory_is_a_provider_error(tmp_path):
    with pytest.raises(ProviderError, match="inventory file not found"):
        SshProvider(tmp_path / "nope.toml", state_dir=tmp_path).provision()


# ---------------------------------------------------------------------- real SSH


@pytest.fixture
def sshd(tmp_path: Path):
    with loopback_sshd(tmp_path / "sshd") as info:
        yield info


def inventory_for(directory: Path, hosts: dict[str, dict]) -> Path:
    lines = []
    for name, keys in hosts.items():
        lines.append(f"[hosts.{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
        lines.append("")
    return write_inventory(directory, "\n".join(lines))


def loopback(info, **extra) -> dict:
    return {"address": "127.0.0.1", "port": info.port, "user": info.user,
            "key_file": str(info.key_file), "known_hosts": str(info.known_hosts), **extra}


@needs_sshd
def test_provision_gathers_real_facts_over_ssh(sshd, tmp_path):
    state_dir = tmp_path / "state"
    inventory = inventory_for(tmp_path, {"box": loopback(sshd, roles=["server", "loadgen"])})
    provider = SshProvider(inventory, state_dir=state_dir)
    state = provider.provision()
    facts = state["hosts"]["box"]["facts"]
    # The facts came from the far end of a real SSH session: this very machine.
    assert facts["hostname"] == socket.gethostname()
    assert facts["kernel"] == platform.release() and facts["arch"] == platform.machine()
    assert facts["user"] == sshd.user and facts["is_root"] == (os.geteuid() == 0)
    assert facts["usable_cpus"] == sorted(os.sched_getaffinity(0))
    saved = (state_dir / "ssh.json").read_text()
    assert json.loads(saved)["complete"] is True
    # Key paths are recorded, key material never.
    assert str(sshd.key_file) in saved
    private = sshd.key_file.read_text()
    assert "PRIVATE KEY" not in saved and private.splitlines()[1] not in saved

    lab = provider.lab()
    assert lab.target_address == "127.0.0.1" and lab.server is lab.loadgen
    placement = lab.placement(1)
    assert placement.server_cpus == facts["usable_cpus"][-1:]
    # No cpus in the inventory: the placement says where it got them.
    assert placement.warning and "no cpus in the inventory" in placement.warning
    assert lab.server.run(["uname", "-n"]).stdout.strip() == socket.gethostname()
    lab.server.close()

    entries = provider.hosts()
    assert [(e.name, e.roles, e.address) for e in entries] == \
        [("box", ["server", "loadgen"], "127.0.0.1")]
    rows = provider.status()
    assert rows[0]["reachable"] is True and rows[0]["provisioned"] is True


@needs_sshd
def test_two_hosts_with_cpus_give_an_isolated_placement(sshd, tmp_path):
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2:
        pytest.skip("needs 2 usable CPUs")
    inventory = inventory_for(tmp_path, {
        "srv": loopback(sshd, role="server", cpus=usable[-1:]),
        "gen": loopback(sshd, role="loadgen", cpus=usable[:1]),
    })
    provider = SshProvider(inventory, state_dir=tmp_path / "state")
    provider.provision()
    lab = provider.lab()
    placement = lab.placement(1)
    assert (placement.server_cpus, placement.aux_cpus) == (usable[-1:], usable[:1])
    assert placement.isolation == "isolated" and placement.warning is None
    assert lab.placement(2).isolation == "shared"
    assert set(lab.facts) == {"srv", "gen"}


@needs_sshd
def test_inventory_cpus_the_host_lacks_are_refused(sshd, tmp_path):
    inventory = inventory_for(tmp_path, {"box": loopback(sshd, role="server", cpus=[4095])})
    with pytest.raises(ProviderError, match=r"host box .*: facts: inventory cpus \[4095\]"):
        SshProvider(inventory, state_dir=tmp_path / "state").provision()


@needs_sshd
def test_bootstrap_dry_run_over_ssh_changes_nothing(sshd, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the loopback sshd logs in as the test user; bootstrap needs root here")
    inventory = inventory_for(tmp_path, {"box": loopback(sshd, role="server")})
    state = SshProvider(inventory, state_dir=tmp_path / "state").provision(bootstrap=True,
                                                                            dry_run=True)
    log = state["hosts"]["box"]["bootstrap_log"]
    queried = [step["cmd"] for step in log if step.get("kind") == "query"]
    assert queried[0].startswith("dpkg-query -W")
    assert "id papaya" in queried
    # Whatever is missing here is only planned: no change command ran.
    for step in log:
        if step.get("kind") == "change":
            assert step["skipped"] == "dry run" and "returncode" not in step
    assert state["bootstrap"] == "dry run"


@needs_sshd
def test_unreachable_host_names_host_and_step(sshd, tmp_path):
    dead = free_port()
    inventory = inventory_for(tmp_path, {"gone": loopback(sshd, role="server", port=dead)})
    # known_hosts has the loopback sshd's key under its own port: add it for the dead one.
    key_line = sshd.known_hosts.read_text().split(None, 1)[1]
    sshd.known_hosts.write_text(sshd.known_hosts.read_text()
                                + f"[127.0.0.1]:{dead} {key_line}")
    provider = SshProvider(inventory, state_dir=tmp_path / "state", connect_timeout=3)
    with pytest.raises(ProviderError) as caught:
        provider.provision()
    message = str(caught.value)
    assert message.startswith("host gone (") and ": connect: cannot reach the host" in message
    assert f"127.0.0.1:{dead}" in message
    # What was learnt is kept: the state says the provision did not complete, and why.
    saved = json.loads((tmp_path / "state" / "ssh.json").read_text())
    assert saved["complete"] is False and "cannot reach" in saved["error"]
    with pytest.raises(ProviderError, match="did not finish"):
        provider.lab()
    assert provider.status()[0]["reachable"] is False


@needs_sshd
def test_wrong_key_is_refused(sshd, tmp_path):
    other = keygen(tmp_path / "other_ed25519")
    inventory = inventory_for(tmp_path, {"box": loopback(sshd, role="server",
                                                        key_file=str(other))})
    with pytest.raises(ProviderError,
                       match=r"^host box \(.*\): connect: key .*other_ed25519 refused"):
        SshProvider(inventory, state_dir=tmp_path / "state").provision()


@needs_sshd
def test_unknown_host_key_is_refused_with_keyscan_hint(sshd, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    inventory = inventory_for(tmp_path, {"box": loopback(sshd, role="server",
                                                        known_hosts=str(empty))})
    with pytest.raises(ProviderError) as caught:
        SshProvider(inventory, state_dir=tmp_path / "state").provision()
    message = str(caught.value)
    assert message.startswith("host box (") and ": connect: host key unknown" in message
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {empty}" in message


@needs_sshd
def test_changed_host_key_is_refused(sshd, tmp_path):
    impostor = keygen(tmp_path / "impostor")
    public = Path(f"{impostor}.pub").read_text().split()
    known = tmp_path / "wrong_known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {public[0]} {public[1]}\n")
    inventory = inventory_for(tmp_path, {"box": loopback(sshd, role="server",
                                                        known_hosts=str(known))})
    with pytest.raises(ProviderError, match=r"^host box \(.*\): connect: host key mismatch"):
        SshProvider(inventory, state_dir=tmp_path / "state").provision()


# ---------------------------------------------------------------------- a non-root user


@contextlib.contextmanager
def user_sshd(tmp_path: Path) -> Iterator[tuple[SshdInfo, str, Path]]:
    """A throwaway local account (no sudo, no password) and a loopback sshd it can log in to.

    Its home is outside pytest's root-only tmp tree, so the account can reach it; its
    authorized_keys lives there too (sshd reads it as that user).
    """
    name = f"pt{uuid.uuid4().hex[:8]}"
    base = Path(tempfile.mkdtemp(prefix="papaya-ssh-user-"))
    base.chmod(0o755)
    home = base / "home"
    # "*": no password, but not locked ("!"), so sshd without PAM lets the key in.
    subprocess.run(["useradd", "--no-user-group", "--gid", "nogroup", "--home-dir", str(home),
                    "--create-home", "--shell", "/bin/sh", "--password", "*", name],
                   check=True, capture_output=True, timeout=30)
    try:
        match = f"Match User {name}\n    AuthorizedKeysFile {home}/.ssh/authorized_keys\n"
        with loopback_sshd(tmp_path / "sshd", extra_config=match) as info:
            (home / ".ssh").mkdir()
            (home / ".ssh" / "authorized_keys").write_text(
                (info.directory / "client_ed25519.pub").read_text())
            subprocess.run(["chown", "-R", f"{name}:nogroup", str(home)], check=True,
                           timeout=30)
            yield info, name, home
    finally:
        remove_user(name)
        shutil.rmtree(base, ignore_errors=True)


def remove_user(name: str) -> None:
    """userdel refuses while the user's sshd session is still winding down: retry briefly."""
    deadline = time.monotonic() + 15
    while True:
        done = subprocess.run(["userdel", name], capture_output=True, text=True, timeout=30,
                              check=False)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"userdel {name} failed: {done.stderr.strip()}")
        time.sleep(0.2)


needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                                reason="creating a throwaway user needs root and useradd")


def sudo_works_for(user: str) -> bool:
    if shutil.which("sudo") is None:
        return False
    done = subprocess.run(["runuser", "-u", user, "--", "sudo", "-n", "true"],
                          capture_output=True, timeout=30, check=False)
    return done.returncode == 0


@needs_sshd
@needs_root
def test_non_root_user_without_sudo_gets_a_bootstrap_error(tmp_path):
    with user_sshd(tmp_path) as (sshd, user, home):
        if sudo_works_for(user):
            pytest.skip(f"{user} has passwordless sudo on this machine")
        inventory = inventory_for(tmp_path, {"box": loopback(sshd, role="server", user=user)})
        provider = SshProvider(inventory, state_dir=tmp_path / "state")
        with pytest.raises(ProviderError) as caught:
            provider.provision(bootstrap=True)
        message = str(caught.value)
        assert message.startswith(f"host box: bootstrap: user {user} has no passwordless sudo "
                                  "(sudo -n true: ")
        saved = json.loads((tmp_path / "state" / "ssh.json").read_text())
        # Facts were gathered as that user before bootstrap stopped; they are kept.
        assert saved["hosts"]["box"]["facts"]["user"] == user
        assert saved["hosts"]["box"]["facts"]["is_root"] is False
        assert saved["complete"] is False
        # Without bootstrap the same user provisions fine.
        assert provider.provision()["complete"] is True
        assert pwd.getpwnam(user).pw_dir == str(home)


@needs_sshd
@needs_root
def test_destroy_removes_only_the_scratch_dir_and_the_state(tmp_path):
    with user_sshd(tmp_path) as (sshd, user, home):
        inventory = inventory_for(tmp_path, {"box": loopback(sshd, role="server", user=user)})
        state_dir = tmp_path / "state"
        provider = SshProvider(inventory, state_dir=state_dir)
        provider.provision()
        host = provider.hosts()[0].host
        scratch = host.mkdir(host.scratch)
        host.run(["touch", f"{scratch}/left-by-a-run"])
        (home / "keep-me").write_text("the user's own file")
        host.close()
        assert Path(str(scratch)) == home / ".papaya-bench" and Path(str(scratch)).is_dir()
        removed = provider.destroy()
        assert removed == [f"box: {scratch}", str(state_dir / "ssh.json")]
        assert not Path(str(scratch)).exists() and (home / "keep-me").is_file()
        assert not (state_dir / "ssh.json").exists()
        assert provider.destroy() == []  # nothing left to forget
