"""The cloud provider against libcloud's dummy driver, with real sshd processes as the VMs.

No test reaches a cloud: the driver is libcloud's in-memory dummy (a subclass that also keeps
key pairs and can fail on demand). The dummy gives its nodes 127.0.0.N addresses; a real
sshd listens on each of them, on the config's ssh_port, and accepts the public key the lab
generates (its AuthorizedKeysCommand reads data/state/cloud/*/id_ed25519.pub), so the
waits, the host-key pinning, facts and destroy all run for real over SSH.
"""

from __future__ import annotations

import io
import os
import secrets
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from libcloud.compute.base import KeyPair
from libcloud.compute.drivers.dummy import DummyNodeDriver
from rich.console import Console

from infra.cloud.config import CloudConfigError, load_cloud_config
from infra.cloud.credentials import CredentialsError, load_credentials, read_credentials_file
from infra.hosts import HostError
from infra.providers import ProviderError
from infra.providers.cloud import CloudProvider
from tests.ssh_util import free_port, loopback_sshd, sshd_unavailable_reason

TOKEN = "tok-" + secrets.token_hex(16)
NODE_ADDRESSES = [f"127.0.0.{n}" for n in range(3, 9)]  # dummy-1/2 exist; ours start at .3
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

needs_sshd = pytest.mark.skipif(sshd_unavailable_reason() is not None,
                                reason=sshd_unavailable_reason() or "")


class KeyedDummyDriver(DummyNodeDriver):
    """The dummy driver plus the key-pair listing real drivers have; can fail on demand."""

    def __init__(self, creds: str, *, fail_on_create: int | None = None) -> None:
        super().__init__(creds)
        self.keys: list[KeyPair] = []
        self.fail_on_create = fail_on_create
        self.creates = 0

    def import_key_pair_from_string(self, name: str, key_material: str) -> KeyPair:
        pair = KeyPair(name=name, public_key=key_material, fingerprint=None, driver=self,
                       extra={"id": f"key-{len(self.keys) + 1}"})
        self.keys.append(pair)
        return pair

    def list_key_pairs(self) -> list[KeyPair]:
        return list(self.keys)

    def delete_key_pair(self, key_pair: KeyPair) -> bool:
        self.keys = [k for k in self.keys if k.extra["id"] != key_pair.extra["id"]]
        return True

    def create_node(self, name: str, size: Any, image: Any) -> Any:  # type: ignore[override]
        self.creates += 1
        if self.fail_on_create == self.creates:
            # As an API error would: quoting the request, token included.
            raise RuntimeError(f"quota exceeded (Authorization: Bearer {self.creds})")
        return super().create_node(name=name, size=size, image=image)


def write_config(path: Path, *, hosts: str, port: int = 22, extra: str = "") -> Path:
    path.write_text(f"""
[cloud]
driver = "dummy"
region = "London Loft"
max_hosts = 4
max_hourly_usd = 100
ttl_hours = 4
ssh_port = {port}
ssh_timeout = "20s"
{extra}
{hosts}
""")
    return path


TWO_HOSTS = """
[cloud.hosts.server]
role = "server"
image = "Ubuntu 9.10"
[cloud.hosts.loadgen]
role = "loadgen"
image = "Slackware 4"
"""
ONE_HOST = """
[cloud.hosts.both]
roles = ["server", "loadgen"]
image = "Ubuntu 9.10"
"""


class Harness:
    """One dummy driver shared by every CloudProvider of a test, as one cloud account is."""

    def __init__(self, tmp_path: Path, driver: KeyedDummyDriver) -> None:
        self.tmp_path = tmp_path
        self.driver = driver
        self.state_dir = tmp_path / "state"
        self.output = io.StringIO()
        self.console = Console(file=self.output, width=200)
        self.seen_keys: list[str] = []
        self.now = T0

    def factory(self, config: Any, credentials: Any) -> KeyedDummyDriver:
        self.seen_keys.append(credentials.key)
        return self.driver

    def provider(self, config: Path | None, **kwargs: Any) -> CloudProvider:
        kwargs.setdefault("confirm", lambda prompt: pytest.fail(f"asked: {prompt}"))
        return CloudProvider(config, state_dir=self.state_dir, console=self.console,
                             environ={"PAPAYA_CLOUD_KEY": TOKEN}, driver_factory=self.factory,
                             clock=lambda: self.now, poll_s=0.1, **kwargs)

    def node_names(self) -> list[str]:
        return sorted(n.name for n in self.driver.list_nodes())

    def assert_token_nowhere(self, *texts: str) -> None:
        for path in self.tmp_path.rglob("*"):
            if path.is_file():
                assert TOKEN.encode() not in path.read_bytes(), f"token written to {path}"
        for text in (self.output.getvalue(), *texts):
            assert TOKEN not in text


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path, KeyedDummyDriver(TOKEN))


@contextmanager
def vm_sshd(tmp_path: Path, state_dir: Path, port: int, name: str = "sshd") -> Iterator[Any]:
    """A real sshd on 127.0.0.3-8:<port>, accepting every lab key under ``state_dir``."""
    listen = "".join(f"ListenAddress {address}:{port}\n" for address in NODE_ADDRESSES)
    command = f"/bin/sh -c 'cat {state_dir}/cloud/*/id_ed25519.pub 2>/dev/null; true'"
    extra = (listen + f"AuthorizedKeysCommand {command}\nAuthorizedKeysCommandUser root\n")
    with loopback_sshd(tmp_path / name, extra_config=extra) as info:
        yield info


# ------------------------------------------------------------------ config and credentials

def test_config_errors_name_file_key_and_value(tmp_path: Path) -> None:
    bad = write_config(tmp_path / "a.toml", hosts=TWO_HOSTS, extra='colour = "red"')
    with pytest.raises(CloudConfigError, match=r"a\.toml.*unknown key.*colour"):
        load_cloud_config(bad)
    bad = write_config(tmp_path / "b.toml", hosts=TWO_HOSTS).read_text().replace(
        'driver = "dummy"', 'driver = "azure"')
    (tmp_path / "b.toml").write_text(bad)
    with pytest.raises(CloudConfigError, match="'driver' = 'azure'.*vultr"):
        load_cloud_config(tmp_path / "b.toml")
    leaky = write_config(tmp_path / "c.toml", hosts=TWO_HOSTS,
                         extra='driver_options = { key = "abc" }')
    with pytest.raises(CloudConfigError, match="credentials never go in the config"):
        load_cloud_config(leaky)
    counted = write_config(tmp_path / "d.toml", hosts=TWO_HOSTS.replace(
        'role = "loadgen"', 'role = "loadgen"\ncount = 0'))
    with pytest.raises(CloudConfigError, match=r"cloud\.hosts\.loadgen.*'count' = 0"):
        load_cloud_config(counted)


def test_credentials_from_env_or_private_file_and_never_shown(tmp_path: Path) -> None:
    config = load_cloud_config(write_config(tmp_path / "c.toml", hosts=TWO_HOSTS).resolve())
    creds = load_credentials(config, {"PAPAYA_CLOUD_KEY": TOKEN})
    assert creds.key == TOKEN and TOKEN not in repr(creds) and TOKEN not in str(creds)
    assert creds.scrub(f"401 for Bearer {TOKEN}!") == "401 for Bearer ***!"

    vultr = write_config(tmp_path / "v.toml", hosts=TWO_HOSTS).read_text().replace(
        '"dummy"', '"vultr"')
    (tmp_path / "v.toml").write_text(vultr)
    vconfig = load_cloud_config(tmp_path / "v.toml")
    assert load_credentials(vconfig, {"VULTR_API_KEY": TOKEN}).source == \
        "environment VULTR_API_KEY"
    with pytest.raises(CredentialsError, match="VULTR_API_KEY"):
        load_credentials(vconfig, {})

    secret_file = tmp_path / "cloud-creds.toml"
    secret_file.write_text(f'key = "{TOKEN}"\n')
    secret_file.chmod(0o644)
    with pytest.raises(CredentialsError, match="mode 0644.*chmod 600") as error:
        read_credentials_file(secret_file)
    assert TOKEN not in str(error.value)
    secret_file.chmod(0o600)
    assert read_credentials_file(secret_file).key == TOKEN
    secret_file.write_text(f'key = {TOKEN}\n')  # invalid TOML quoting the token
    with pytest.raises(CredentialsError, match="not valid TOML") as error:
        read_credentials_file(secret_file)
    assert TOKEN not in "".join(traceback.format_exception(error.value))


# ------------------------------------------------------------------ plan and guards

def test_plan_prices_default_size_and_run_estimate(tmp_path: Path, harness: Harness) -> None:
    # A full experiment config (quick.toml's cells) with a [cloud] section: the per-run
    # estimate comes from its cells, not from the TTL.
    quick = (Path(__file__).resolve().parent.parent / "experiments/configs/quick.toml")
    config = tmp_path / "exp.toml"
    config.write_text(quick.read_text() + write_config(
        tmp_path / "x.toml", hosts=TWO_HOSTS).read_text())
    plan = harness.provider(config).plan()
    # The dummy's sizes: 128 MB $4, 512 MB $8, 4096 MB $32, 8192 MB $64: the cheapest with
    # >= 2 GB is "Big", for both hosts.
    assert [(h.size_name, h.hourly_usd) for h in plan.hosts] == [("Big", 32.0), ("Big", 32.0)]
    assert plan.total_hourly_usd == 64.0
    assert "cells" in plan.run_hours_source and plan.run_hours < plan.ttl_hours
    assert plan.run_estimate_usd == pytest.approx(64.0 * plan.run_hours)
    assert [h.image_name for h in plan.hosts] == ["Ubuntu 9.10", "Slackware 4"]

    provider = harness.provider(config)
    result = provider.provision(dry_run=True)
    assert result["dry_run"] and result["guard_error"] is None
    out = harness.output.getvalue()
    assert "$64.0000/h" in out and "Dry run: nothing created" in out
    assert harness.node_names() == ["dummy-1", "dummy-2"]
    assert not (harness.state_dir / "cloud.json").exists()


def test_image_not_found_lists_close_matches(tmp_path: Path, harness: Harness) -> None:
    config = write_config(tmp_path / "c.toml", hosts=TWO_HOSTS.replace(
        '"Slackware 4"', '"Slakware 4"'))
    with pytest.raises(ProviderError, match="'Slakware 4' not found.*close matches: "
                                            "Slackware 4"):
        harness.provider(config).plan()
    ambiguous = write_config(tmp_path / "d.toml", hosts=TWO_HOSTS.replace(
        '"Ubuntu 9.10"', '"Ubuntu 9"'))
    with pytest.raises(ProviderError, match="ambiguous.*Ubuntu 9.04.*Ubuntu 9.10"):
        harness.provider(ambiguous).plan()


def test_guards_refuse_before_anything_is_created(tmp_path: Path, harness: Harness) -> None:
    many = write_config(tmp_path / "many.toml", hosts=TWO_HOSTS.replace(
        'role = "loadgen"', 'role = "loadgen"\ncount = 4'))
    with pytest.raises(ProviderError, match="guard max_hosts: the plan has 5 hosts.*allows 4"):
        harness.provider(many).provision(yes=True)
    dear = write_config(tmp_path / "dear.toml", hosts=TWO_HOSTS)
    dear.write_text(dear.read_text().replace("max_hourly_usd = 100", "max_hourly_usd = 50"))
    with pytest.raises(ProviderError, match=r"guard max_hourly_usd: .*\$64\.0000/h.*\$50"):
        harness.provider(dear).provision(yes=True)
    # Not confirmed: nothing either.
    ok = write_config(tmp_path / "ok.toml", hosts=TWO_HOSTS)
    with pytest.raises(ProviderError, match="not confirmed"):
        harness.provider(ok, confirm=lambda prompt: False).provision()
    assert harness.node_names() == ["dummy-1", "dummy-2"]
    assert harness.driver.keys == [] and harness.driver.creates == 0
    assert not (harness.state_dir / "cloud.json").exists()


# ------------------------------------------------------------------ the whole flow

@needs_sshd
def test_provision_ssh_facts_pinning_status_destroy(tmp_path: Path, harness: Harness) -> None:
    port = free_port()
    config = write_config(tmp_path / "c.toml", hosts=TWO_HOSTS, port=port)
    with vm_sshd(tmp_path, harness.state_dir, port, "sshd-a"):
        lab = harness.provider(config).provision(yes=True)
        lab_id = lab["lab_id"]
        assert lab["status"] == "ready"
        assert lab["hosts"]["server"]["facts"]["os"] and lab["hosts"]["loadgen"]["roles"] == \
            ["loadgen"]  # what `invoke provision` prints, as for the other providers
        assert lab_id.startswith("papaya-20300101120000-")
        nodes = lab["nodes"]
        assert sorted(nodes) == [f"{lab_id}-loadgen-1", f"{lab_id}-server-1"]
        assert {r["address"] for r in nodes.values()} == {"127.0.0.3", "127.0.0.4"}
        # The names and tags reached the driver's node list (orphan detection needs them).
        assert sorted(n for n in harness.node_names() if n.startswith(lab_id)) == sorted(nodes)
        assert [k.name for k in harness.driver.keys] == [lab_id]
        # Host keys recorded on first contact, one line per node, in the lab's known_hosts.
        known_hosts = Path(lab["known_hosts"]).read_text().splitlines()
        assert sorted(line.split()[0] for line in known_hosts) == \
            [f"[127.0.0.3]:{port}", f"[127.0.0.4]:{port}"]
        key_file = Path(lab["key_file"])
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert all(r["facts"]["usable_cpus"] for r in nodes.values())

        # A later provider (another `invoke` run) finds the lab in the state file.
        provider = harness.provider(None)
        lab_view = provider.lab()
        assert lab_view.target_address == nodes[f"{lab_id}-server-1"]["address"]
        result = lab_view.server.run(["uname", "-s"])
        assert result.stdout.strip() == "Linux"
        lab_view.server.close()  # type: ignore[attr-defined]
        assert {e.name for e in provider.hosts()} == {"server", "loadgen"}
        rows = provider.status()
        assert {(r["vm"], r["exists"], r["reachable"]) for r in rows} == \
            {(vm, True, True) for vm in nodes}
        from experiments.status import print_status
        print_status(provider, harness.console, raw_dir=tmp_path / "raw")
        assert "provider cloud" in harness.output.getvalue()

    # Another host key on the same address: refused (pinned), never re-learnt.
    with vm_sshd(tmp_path, harness.state_dir, port, "sshd-b"):
        server = harness.provider(None).lab().server
        with pytest.raises(HostError, match="host key mismatch"):
            server.run(["true"])

    # A node deleted behind our back shows as gone.
    harness.driver.destroy_node(next(n for n in harness.driver.list_nodes()
                                     if n.name == f"{lab_id}-loadgen-1"))
    rows = harness.provider(None).status()
    assert {r["host"]: r["exists"] for r in rows} == {"server": True, "loadgen": False}

    removed = harness.provider(None).destroy()
    assert {r["host"]: r["reachable"] for r in rows} == {"server": False, "loadgen": False}
    assert any("node " + f"{lab_id}-server-1" in r for r in removed)
    assert any("already gone" in r for r in removed)
    assert any(f"key pair {lab_id}" in r for r in removed)
    assert harness.node_names() == ["dummy-1", "dummy-2"]  # confirmed through the API
    assert harness.driver.keys == []
    assert not (harness.state_dir / "cloud.json").exists()
    assert not (harness.state_dir / "cloud" / lab_id).exists()

    assert harness.provider(None).destroy() == []
    assert "nothing to destroy: no lab" in harness.output.getvalue()
    assert set(harness.seen_keys) == {TOKEN}  # the token did reach the driver
    harness.assert_token_nowhere()


@needs_sshd
def test_orphans_and_ttl_expiry(tmp_path: Path, harness: Harness) -> None:
    port = free_port()
    config = write_config(tmp_path / "c.toml", hosts=ONE_HOST, port=port)
    with vm_sshd(tmp_path, harness.state_dir, port):
        old = harness.provider(config).provision(yes=True)["lab_id"]
        harness.now = T0 + timedelta(hours=3)
        new = harness.provider(config).provision(yes=True)["lab_id"]
    assert old != new
    # The guards bound what runs at once: a third lab would bring 96 $/h past 70.
    capped = tmp_path / "capped.toml"
    capped.write_text(config.read_text().replace("max_hourly_usd = 100", "max_hourly_usd = 70"))
    with pytest.raises(ProviderError, match=r"max_hourly_usd: .*\$96\.0000/h \(with "
                                            r"\$64\.0000/h of labs already running"):
        harness.provider(capped).provision(yes=True)
    # Orphans: a papaya-named node and key pair no state file knows (a crashed run in
    # another checkout); dummy-1/dummy-2 are someone else's and stay.
    stray = harness.driver.create_node(name="x", size=None, image=None)
    stray.name = "papaya-20290101000000-dead-server-1"
    harness.driver.import_key_pair_from_string("papaya-20290101000000-dead", "ssh-ed25519 AAAA")
    removed = harness.provider(None).destroy(orphans=True)
    assert removed == ["orphan node papaya-20290101000000-dead-server-1 (id 5)",
                       "orphan key pair papaya-20290101000000-dead"]
    assert harness.node_names() == ["dummy-1", "dummy-2", f"{old}-both-1", f"{new}-both-1"]
    assert sorted(k.name for k in harness.driver.keys) == sorted([old, new])
    assert harness.provider(None).destroy(orphans=True) == []

    # TTL: at T0 + 5 h the first lab (expires T0 + 4 h) is past it, the second is not.
    harness.now = T0 + timedelta(hours=5)
    rows = {r["lab"]: r["expired"] for r in harness.provider(None).status()}
    assert rows == {old: True, new: False}
    removed = harness.provider(None).destroy(expired=True)
    assert any(f"node {old}-both-1" in r for r in removed)
    assert harness.node_names() == ["dummy-1", "dummy-2", f"{new}-both-1"]
    assert harness.provider(None).destroy(expired=True) == []
    assert "no expired lab" in harness.output.getvalue()
    harness.now = T0 + timedelta(hours=8)
    harness.provider(None).destroy(expired=True)
    assert harness.node_names() == ["dummy-1", "dummy-2"] and harness.driver.keys == []
    harness.assert_token_nowhere()


@needs_sshd
def test_teardown_on_interrupt_and_keep(tmp_path: Path, harness: Harness) -> None:
    port = free_port()
    config = write_config(tmp_path / "c.toml", hosts=ONE_HOST, port=port)
    with vm_sshd(tmp_path, harness.state_dir, port):
        provider = harness.provider(config)
        provider.provision(yes=True)
        with pytest.raises(KeyboardInterrupt), provider.teardown_on_exit():
            provider.lab().server.run(["true"])
            raise KeyboardInterrupt
        assert harness.node_names() == ["dummy-1", "dummy-2"] and harness.driver.keys == []
        assert not (harness.state_dir / "cloud.json").exists()
        assert "run interrupted: tearing down" in harness.output.getvalue()

        lab_id = provider.provision(yes=True)["lab_id"]
        with provider.teardown_on_exit(keep=True):
            pass
        assert harness.node_names() == ["dummy-1", "dummy-2", f"{lab_id}-both-1"]
        with provider.teardown_on_exit():
            pass
        assert harness.node_names() == ["dummy-1", "dummy-2"]
    harness.assert_token_nowhere()


def test_failed_creation_deletes_what_was_created(tmp_path: Path) -> None:
    harness = Harness(tmp_path, KeyedDummyDriver(TOKEN, fail_on_create=2))
    config = write_config(tmp_path / "c.toml", hosts=TWO_HOSTS)
    with pytest.raises(ProviderError) as error:
        harness.provider(config).provision(yes=True)
    message = str(error.value)
    assert "create node" in message and "quota exceeded" in message
    assert "deleted: node papaya-" in message and "-server-1 (id 3)" in message
    assert "key pair papaya-" in message
    assert harness.node_names() == ["dummy-1", "dummy-2"] and harness.driver.keys == []
    assert not (harness.state_dir / "cloud.json").exists()
    assert "Bearer ***" in message
    harness.assert_token_nowhere(message, "".join(traceback.format_exception(error.value)))


def test_node_never_running_times_out_and_is_deleted(tmp_path: Path) -> None:
    from libcloud.compute.types import NodeState

    class Stuck(KeyedDummyDriver):
        def create_node(self, name: str, size: Any, image: Any) -> Any:  # type: ignore[override]
            node = super().create_node(name, size, image)
            node.state = NodeState.PENDING  # boots forever
            return node

    harness = Harness(tmp_path, Stuck(TOKEN))
    config = write_config(tmp_path / "c.toml", hosts=ONE_HOST)
    config.write_text(config.read_text().replace('ssh_timeout = "20s"', 'ssh_timeout = "1s"'))
    with pytest.raises(ProviderError, match=r"timeout: node\(s\) papaya-.*-both-1 not running "
                                            r"after \d+ s .*deleted: node papaya-"):
        harness.provider(config).provision(yes=True)
    assert "waiting for nodes to run: 0/1 running" in harness.output.getvalue()
    assert harness.node_names() == ["dummy-1", "dummy-2"] and harness.driver.keys == []


def test_interrupt_during_creation_deletes_what_was_created(tmp_path: Path) -> None:
    class Interrupted(KeyedDummyDriver):
        interrupted = False

        def list_nodes(self) -> Any:
            if self.creates and not self.interrupted:  # first poll after creating: Ctrl-C
                self.interrupted = True
                raise KeyboardInterrupt
            return super().list_nodes()

    harness = Harness(tmp_path, Interrupted(TOKEN))
    config = write_config(tmp_path / "c.toml", hosts=TWO_HOSTS)
    with pytest.raises(KeyboardInterrupt):
        harness.provider(config).provision(yes=True)
    assert harness.node_names() == ["dummy-1", "dummy-2"] and harness.driver.keys == []
    assert not (harness.state_dir / "cloud.json").exists()
    out = harness.output.getvalue()
    assert "provision failed: KeyboardInterrupt" in out
    assert out.count("deleted node papaya-") == 2 and "deleted key pair papaya-" in out


def test_state_written_before_each_step_lets_destroy_finish(tmp_path: Path) -> None:
    """A crash (here: the process dies in the second create) leaves a state file that
    destroy uses to delete the node already created and the key."""
    class Crash(BaseException):
        pass

    class Dying(KeyedDummyDriver):
        def create_node(self, name: str, size: Any, image: Any) -> Any:  # type: ignore[override]
            if self.creates == 1:
                self.creates += 1
                raise Crash  # not an Exception: stands for the process being killed
            return super().create_node(name, size, image)

    harness = Harness(tmp_path, Dying(TOKEN))
    config = write_config(tmp_path / "c.toml", hosts=TWO_HOSTS)
    provider = harness.provider(config)
    provider._cleanup_failed = lambda *args: None  # type: ignore[method-assign]  # killed
    with pytest.raises(Crash):
        provider.provision(yes=True)
    assert len(harness.node_names()) == 3 and len(harness.driver.keys) == 1
    removed = harness.provider(None).destroy()
    assert any("-server-1 (id 3)" in r for r in removed)
    assert harness.node_names() == ["dummy-1", "dummy-2"] and harness.driver.keys == []


# ------------------------------------------------------------------ mixing in inventory hosts

@needs_sshd
def test_inventory_host_joins_the_lab_as_server(tmp_path: Path, harness: Harness) -> None:
    """A host the user runs (the 32-bit Kali VM in the README) is the run's server."""
    port = free_port()
    with loopback_sshd(tmp_path / "kali") as kali, \
            vm_sshd(tmp_path, harness.state_dir, port):
        inventory = tmp_path / "inventory.toml"
        inventory.write_text(f"""
[hosts.kali]
address = "127.0.0.1"
port = {kali.port}
user = "{kali.user}"
key_file = "{kali.key_file}"
known_hosts = "{kali.known_hosts}"
role = "server"
""")
        config = write_config(tmp_path / "c.toml", hosts=TWO_HOSTS, port=port,
                              extra=f'inventory = "{inventory}"\nserver = "kali"')
        lab = harness.provider(config).provision(yes=True)
        assert lab["inventory_hosts"]["kali"]["facts"]["usable_cpus"]
        provider = harness.provider(None)
        names = {e.name: e.roles for e in provider.hosts()}
        assert names == {"server": ["server"], "loadgen": ["loadgen"], "kali": ["server"]}
        run_lab = provider.lab()
        assert run_lab.target_address == "127.0.0.1"
        assert run_lab.server.port == kali.port  # type: ignore[attr-defined]
        assert run_lab.loadgen.address == "127.0.0.4"  # type: ignore[attr-defined]
        assert run_lab.server.run(["true"]).returncode == 0
        run_lab.server.close()  # type: ignore[attr-defined]
        removed = provider.destroy()
    assert not any("kali" in r for r in removed)  # the user's own host is never deleted
    assert harness.node_names() == ["dummy-1", "dummy-2"]
    harness.assert_token_nowhere()


def test_real_make_driver_builds_the_dummy(tmp_path: Path) -> None:
    """Without a factory the provider builds libcloud's driver itself (get_driver)."""
    config = write_config(tmp_path / "c.toml", hosts=TWO_HOSTS)
    output = io.StringIO()
    provider = CloudProvider(config, state_dir=tmp_path / "state",
                             console=Console(file=output, width=200),
                             environ={"PAPAYA_CLOUD_KEY": TOKEN})
    assert provider.plan().total_hourly_usd == 64.0
    assert TOKEN not in output.getvalue()
    assert os.environ.get("PAPAYA_CLOUD_KEY") != TOKEN


def test_example_config_is_valid_for_both_readers() -> None:
    from experiments.config import load_config

    path = Path(__file__).resolve().parent.parent / "experiments/configs/cloud-example.toml"
    cloud = load_cloud_config(path)
    assert cloud.driver == "vultr" and cloud.region == "ams"
    assert [(h.name, h.roles, h.image) for h in cloud.hosts] == [
        ("bsd", ("server",), "FreeBSD 14"), ("ubuntu", ("server",), "Ubuntu 24.04"),
        ("loadgen", ("loadgen",), "Ubuntu 24.04")]
    assert load_config(path).name == "cloud-example"
