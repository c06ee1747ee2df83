"""libcloud's real Vultr v2 and DigitalOcean v2 drivers against the 127.0.0.1 fake APIs.

First the fakes on their own, with raw driver calls (so they are right whatever the cloud
provider code does), then the whole CloudProvider flow through both drivers: plan with the
fake's prices, dry run, create, wait, host key recorded on first contact and pinned, facts over
real SSH to the simulated VM, status and destroy confirmed through the API, orphans, a failed
creation part-way cleaned up, and the token never written anywhere.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tests.cloud_fakes import FAKES, FakeCloudApi, fake_cloud, ssh_unavailable_reason
from tests.ssh_util import free_port, keygen

TOKEN = "papaya-test-token-5f1c9e0b7a"  # what the fakes accept; grepped for in every file
PROVIDERS = ["vultr", "digitalocean"]
needs_ssh = pytest.mark.skipif(ssh_unavailable_reason() is not None,
                               reason=ssh_unavailable_reason() or "")


def pool(first: int, count: int = 8) -> list[str]:
    return [f"127.0.0.{first + i}" for i in range(count)]


def import_key(fake: FakeCloudApi, driver: Any, name: str, public_key: str) -> Any:
    if fake.provider == "vultr":
        return driver.import_key_pair_from_string(name, public_key)
    return driver.create_key_pair(name, public_key=public_key)


def create(fake: FakeCloudApi, driver: Any, name: str, key: Any, tags: list[str]) -> Any:
    """A 1 vCPU / 2 GB Ubuntu 24.04 node in Amsterdam, the way each driver wants it."""
    sizes = driver.list_sizes()
    images = driver.list_images()
    if fake.provider == "vultr":
        location = next(loc for loc in driver.list_locations() if loc.id == "ams")
        size = next(s for s in sizes if s.id == "vc2-1c-2gb")
        image = next(i for i in images if i.name == "Ubuntu 24.04 LTS x64")
        return driver.create_node(name, size, location, image=image,
                                  ex_ssh_key_ids=[key.extra["id"]], ex_tag=tags[0])
    location = next(loc for loc in driver.list_locations() if loc.id == "ams3")
    size = next(s for s in sizes if s.id == "s-1vcpu-2gb")
    image = next(i for i in images if i.extra["slug"] == "ubuntu-24-04-x64")
    return driver.create_node(name, size, image, location,
                              ex_create_attr={"ssh_keys": [key.extra["id"]], "tags": tags})


@pytest.fixture(scope="module")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return keygen(tmp_path_factory.mktemp("client") / "id_ed25519")


# ------------------------------------------------------------------ the fakes, raw driver calls
def test_vultr_driver_honours_host_port_secure() -> None:
    with fake_cloud("vultr", token=TOKEN, address_pool=[]) as fake:
        connection = fake.driver().connection
        assert (connection.host, connection.port, connection.secure) == \
            ("127.0.0.1", fake.port, False)


def test_digitalocean_driver_cannot_take_host_kwargs_so_the_fake_repoints_it() -> None:
    from libcloud.compute.providers import get_driver
    from libcloud.compute.types import Provider
    cls = get_driver(Provider.DIGITAL_OCEAN)
    # libcloud 3.9.1: DigitalOceanNodeDriver.__new__ hands extra kwargs to object.__new__.
    with pytest.raises(TypeError):
        cls(TOKEN, host="127.0.0.1", port=9, secure=False)
    # ... and without them it talks to the real API, which no test may reach.
    assert cls(TOKEN).connection.host == "api.digitalocean.com"
    with fake_cloud("digitalocean", token=TOKEN, address_pool=[]) as fake:
        driver = fake.driver()
        assert (driver.connection.host, driver.connection.port) == ("127.0.0.1", fake.port)
        assert driver.list_locations()
        assert fake.calls("GET", "/v2/regions")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_catalogue_is_paginated_like_the_provider(provider: str) -> None:
    with fake_cloud(provider, token=TOKEN, address_pool=[], max_per_page=5) as fake:
        driver = fake.driver()
        images = driver.list_images()
        sizes = driver.list_sizes()
        names = {i.name for i in images}
        image_calls = fake.calls("GET", "/v2/os" if provider == "vultr" else "/v2/images")
    if provider == "vultr":
        assert {"FreeBSD 14 x64", "Ubuntu 24.04 LTS x64"} <= names
        assert len(images) == 33
        # Every request asks for 500 per page; the fake gives 5, so 7 requests with cursors.
        assert len(image_calls) == 7
        assert all(c.query["per_page"] == ["500"] for c in image_calls)
        assert "cursor" not in image_calls[0].query
        assert all(c.query["cursor"][0] for c in image_calls[1:])
        small = next(s for s in sizes if s.id == "vc2-1c-2gb")
        assert (small.ram, small.extra["vcpu_count"], small.price) == (2048, 1, 10)  # monthly
    else:
        assert {"24.04 (LTS) x64", "14.1 x64 ufs"} <= names
        assert len(images) == 7
        assert [c.query.get("page") for c in image_calls] == [None, ["2"]]
        assert all(c.query["per_page"] == ["200"] for c in image_calls)
        small = next(s for s in sizes if s.id == "s-1vcpu-2gb")
        assert (small.ram, small.extra["vcpus"], small.price) == (2048, 1, 0.01786)  # hourly


@pytest.mark.parametrize("provider", PROVIDERS)
def test_node_life_cycle_through_the_real_driver(provider: str, client_key: Path) -> None:
    from libcloud.compute.types import NodeState
    public = client_key.with_suffix(".pub").read_text().strip()
    with fake_cloud(provider, token=TOKEN, address_pool=pool(40), active_after=2) as fake:
        driver = fake.driver()
        key = import_key(fake, driver, "papaya-test", public)
        assert [k.name for k in driver.list_key_pairs()] == ["papaya-test"]
        node = create(fake, driver, "papaya-test-web-1", key, ["papaya-bench", "papaya-test"])
        assert node.state == NodeState.PENDING
        assert node.public_ips in ([], ["0.0.0.0"])  # no address before it runs

        (post,) = fake.calls("POST", "/v2/instances" if provider == "vultr" else "/v2/droplets")
        assert post.headers["Authorization"] == f"Bearer {TOKEN}"
        if provider == "vultr":
            assert post.body["sshkey_id"] == [key.extra["id"]]
            assert (post.body["region"], post.body["plan"], post.body["os_id"]) == \
                ("ams", "vc2-1c-2gb", "2284")
            assert post.body["tag"] == "papaya-bench"
        else:
            assert post.body["ssh_keys"] == [key.extra["id"]]
            assert post.body["tags"] == ["papaya-bench", "papaya-test"]
            assert (post.body["region"], post.body["size"]) == ("ams3", "s-1vcpu-2gb")

        states = []
        for _ in range(3):
            (listed,) = driver.list_nodes()
            states.append((listed.state, listed.public_ips))
        assert states[0] == (NodeState.PENDING, node.public_ips)
        assert states[1:] == [(NodeState.RUNNING, ["127.0.0.40"])] * 2

        assert driver.destroy_node(listed) is True
        assert driver.list_nodes() == []
        gone = "/v2/instances/" if provider == "vultr" else "/v2/droplets/"
        with pytest.raises(Exception, match="404|not be found|Not found"):
            driver.connection.request(gone + node.id)
        assert driver.delete_key_pair(key) is True
        assert driver.list_key_pairs() == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_token_gets_the_providers_401(provider: str) -> None:
    from libcloud.common.types import InvalidCredsError
    from libcloud.common.vultr import VultrException
    with fake_cloud(provider, token=TOKEN, address_pool=[]) as fake:
        driver = fake.driver(token="not-the-token")
        expected = VultrException if provider == "vultr" else InvalidCredsError
        with pytest.raises(expected) as raised:
            driver.list_nodes()
        (call,) = fake.calls()
        assert call.headers["Authorization"] == "Bearer not-the-token"
    text = str(raised.value)
    assert ("401" in text and "Invalid API token" in text) if provider == "vultr" else \
        "Unable to authenticate you" in text


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fail_switch_fails_only_the_chosen_create(provider: str, client_key: Path) -> None:
    public = client_key.with_suffix(".pub").read_text().strip()
    with fake_cloud(provider, token=TOKEN, address_pool=pool(50), fail_create={2}) as fake:
        driver = fake.driver()
        key = import_key(fake, driver, "papaya-fail", public)
        create(fake, driver, "papaya-fail-a-1", key, ["papaya-bench"])
        with pytest.raises(Exception, match="400|422|exceed|failed"):
            create(fake, driver, "papaya-fail-a-2", key, ["papaya-bench"])
        create(fake, driver, "papaya-fail-a-3", key, ["papaya-bench"])
        assert sorted(n.name for n in driver.list_nodes()) == ["papaya-fail-a-1",
                                                               "papaya-fail-a-3"]


@needs_ssh
@pytest.mark.parametrize("provider", PROVIDERS)
def test_active_node_answers_ssh_with_the_registered_key(provider: str, client_key: Path,
                                                         tmp_path: Path) -> None:
    public = client_key.with_suffix(".pub").read_text().strip()
    other = keygen(tmp_path / "other_ed25519")
    port = free_port()
    address = "127.0.0.61" if provider == "vultr" else "127.0.0.62"
    with fake_cloud(provider, token=TOKEN, address_pool=[address], active_after=1,
                    ssh_port=port, sshd_root=tmp_path / "vms") as fake:
        driver = fake.driver()
        key = import_key(fake, driver, "papaya-ssh", public)
        create(fake, driver, "papaya-ssh-vm-1", key, ["papaya-bench"])
        (node,) = driver.list_nodes()
        assert node.public_ips == [address] and not fake.sshd_errors
        (sshd,) = fake.live_sshds()
        assert (sshd.address, sshd.port) == (address, port)

        seen = ssh_host_key(address, port, client_key)
        assert seen == sshd.host_public_key
        with pytest.raises(paramiko.AuthenticationException):
            ssh_host_key(address, port, other)

        driver.destroy_node(node)
        assert fake.live_sshds() == []
        assert sshd.process.poll() is not None
        with pytest.raises(OSError):
            socket.create_connection((address, port), timeout=1).close()


def ssh_host_key(address: str, port: int, key_file: Path) -> str:
    """Log in as root with ``key_file``; return the server's host key "<type> <base64>"."""
    with socket.create_connection((address, port), timeout=5) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=5)
            server_key = transport.get_remote_server_key()
            transport.auth_publickey("root", paramiko.Ed25519Key.from_private_key_file(
                str(key_file)))
            channel = transport.open_session()
            channel.exec_command("echo up")
            assert channel.recv(16).strip() == b"up"
        finally:
            transport.close()
    return f"{server_key.get_name()} {server_key.get_base64()}"


def test_fakes_refuse_public_addresses() -> None:
    for cls in FAKES.values():
        with pytest.raises(ValueError, match="not a loopback"):
            cls(token=TOKEN, address_pool=["203.0.113.7"])


PROJECT_DATA = Path(__file__).resolve().parent.parent / "data"


def grep_token(paths: list[Path], text: str = "", *, since: float | None = None) -> list[str]:
    """Files under ``paths`` (and the project's data/ when ``since``, files modified after
    it) and captured text that contain the token."""
    roots = [*paths, PROJECT_DATA] if since is not None else paths
    hits = [str(p) for root in roots if root.exists()
            for p in ([root] if root.is_file() else root.rglob("*"))
            if p.is_file() and not p.is_symlink()
            and (root in paths or p.stat().st_mtime >= (since or 0))
            and TOKEN.encode() in p.read_bytes()]
    if TOKEN in text:
        hits.append("<captured output>")
    return hits



# ------------------------------------------------------------------ the CloudProvider flow
# Per driver: what the config names, and what the fake's catalogue makes of it.
IMAGES = {"vultr": {"bsd": "FreeBSD 14", "ubuntu": "Ubuntu 24.04"},
          "digitalocean": {"bsd": "FreeBSD 14.1 x64 ufs", "ubuntu": "Ubuntu 24.04"}}
REGION = {"vultr": "ams", "digitalocean": "ams3"}
SIZE = {"vultr": ("vc2-1c-2gb", 10 / 730), "digitalocean": ("s-1vcpu-2gb", 0.01786)}
TOKEN_ENV = {"vultr": "VULTR_API_KEY", "digitalocean": "DIGITALOCEAN_ACCESS_TOKEN"}
FIRST_ADDRESS = {"vultr": 70, "digitalocean": 90}


def write_config(path: Path, provider: str, fake: FakeCloudApi, ssh_port: int, *,
                 hosts: dict[str, tuple[str, str]] | None = None) -> Path:
    """A [cloud] config for ``provider`` pointed at ``fake``; hosts: name -> (role, image)."""
    images = IMAGES[provider]
    hosts = hosts or {"bsd": ("server", images["bsd"]), "ubuntu": ("server", images["ubuntu"]),
                      "loadgen": ("loadgen", images["ubuntu"])}
    lines = ["[cloud]", f'driver = "{provider}"', f'region = "{REGION[provider]}"',
             "max_hosts = 4", "max_hourly_usd = 0.50", "ttl_hours = 4",
             f"ssh_port = {ssh_port}", 'ssh_timeout = "60s"',
             f'driver_options = {{ host = "127.0.0.1", port = {fake.port}, secure = false }}']
    for name, (role, image) in hosts.items():
        lines += ["", f"[cloud.hosts.{name}]", f'role = "{role}"', f'image = "{image}"']
    path.write_text("\n".join(lines) + "\n")
    return path


class Run:
    """One CloudProvider against one fake, with its console captured."""

    def __init__(self, provider: str, fake: FakeCloudApi, config: Path, state_dir: Path,
                 token: str = TOKEN) -> None:
        import io

        from rich.console import Console

        from infra.providers.cloud import CloudProvider
        self.out = io.StringIO()
        self.cloud = CloudProvider(config, state_dir=state_dir,
                                   console=Console(file=self.out, width=160),
                                   confirm=lambda prompt: False,
                                   environ={TOKEN_ENV[provider]: token}, poll_s=0.05)

    def output(self) -> str:
        return self.out.getvalue()


@pytest.fixture
def vm_fake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeCloudApi]:
    provider = request.param
    with fake_cloud(provider, token=TOKEN, address_pool=pool(FIRST_ADDRESS[provider]),
                    active_after=2, ssh_port=free_port(), sshd_root=tmp_path / "vms",
                    max_per_page=5) as fake:
        yield fake


@needs_ssh
@pytest.mark.parametrize("vm_fake", PROVIDERS, indirect=True)
def test_cloud_provider_whole_flow(vm_fake: FakeCloudApi, tmp_path: Path) -> None:
    from infra.hosts import HostError
    fake, provider = vm_fake, vm_fake.provider
    assert fake.ssh_port is not None
    state_dir = tmp_path / "state"
    config = write_config(tmp_path / "cloud.toml", provider, fake, fake.ssh_port)
    run = Run(provider, fake, config, state_dir)
    started, wall_start = time.monotonic(), time.time()

    # plan: sizes and prices from the fake's catalogue, normalised to USD per hour
    plan = run.cloud.plan()
    size_id, hourly = SIZE[provider]
    assert plan.total_hourly_usd == pytest.approx(3 * hourly, rel=1e-3)
    assert {h.size_name for h in plan.hosts} == {size_id}

    # dry run: prices printed, nothing created, not even a key
    result = run.cloud.provision(dry_run=True)
    assert result["dry_run"] is True and result["guard_error"] is None
    assert fake.calls("POST") == [] and not state_dir.joinpath("cloud.json").exists()
    printed = run.output()
    assert size_id in printed and f"{3 * hourly:.4f}" in printed, printed

    # without --yes and without confirmation: nothing created
    with pytest.raises(Exception, match="not confirmed"):
        run.cloud.provision()
    assert fake.calls("POST") == []

    lab = run.cloud.provision(yes=True)
    created_s = time.monotonic() - started
    lab_id = lab["lab_id"]
    assert lab["status"] == "ready" and len(lab["nodes"]) == 3

    # what the driver sent: one key, three nodes carrying it, tagged/named with the lab
    (key_post,) = fake.calls("POST", "/v2/ssh-keys" if provider == "vultr"
                             else "/v2/account/keys")
    assert key_post.body["name"] == lab_id
    public_key = Path(lab["public_key_file"]).read_text().strip()
    assert key_post.body["ssh_key" if provider == "vultr" else "public_key"] == public_key
    (key,) = fake.keys.values()
    node_posts = fake.calls("POST", "/v2/instances" if provider == "vultr" else "/v2/droplets")
    assert len(node_posts) == 3
    for post in node_posts:
        if provider == "vultr":
            assert post.body["sshkey_id"] == [key.id] and post.body["tag"] == lab_id
            assert (post.body["region"], post.body["plan"]) == ("ams", size_id)
        else:
            assert post.body["ssh_keys"] == [int(key.id)]
            assert post.body["tags"] == ["papaya-bench", lab_id]
            assert (post.body["region"], post.body["size"]) == ("ams3", size_id)
    assert sorted(n.name for n in fake.nodes.values()) == sorted(
        f"{lab_id}-{h}-1" for h in ("bsd", "ubuntu", "loadgen"))
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests)

    # TOFU: the recorded host keys are the simulated VMs' own; facts came over SSH
    known_hosts = Path(lab["known_hosts"]).read_text()
    for vm_name, record in lab["nodes"].items():
        node = fake.node_named(vm_name)
        assert node.sshd is not None and record["address"] == node.address
        assert f"[{node.address}]:{fake.ssh_port} {node.sshd.host_public_key}" in known_hosts
        assert record["facts"]["os"] == "Linux" and record["facts"]["is_root"] is True
        assert record["facts"]["hostname"]

    # the hosts are usable, pinned: a VM answering with another host key is refused
    entries = {e.name: e for e in run.cloud.hosts()}
    assert set(entries) == {"bsd", "ubuntu", "loadgen"}
    assert entries["ubuntu"].host.run(["echo", "hello"]).stdout.strip() == "hello"
    entries["ubuntu"].host.close()
    fake.rekey_vm(fake.node_named(f"{lab_id}-ubuntu-1").id)
    again = {e.name: e for e in run.cloud.hosts()}["ubuntu"].host
    with pytest.raises(HostError, match="mismatch|not in|key"):
        again.run(["echo", "hello"])
    again.close()

    # status asks the API; a node deleted behind our back shows as gone
    gets_before = len(fake.calls("GET"))
    rows = {r["host"]: r for r in run.cloud.status()}
    assert len(fake.calls("GET")) > gets_before
    assert all(r["exists"] is True and r["state"] == "running" for r in rows.values())
    fake.driver().destroy_node(next(n for n in fake.driver().list_nodes()
                                    if n.name.endswith("-loadgen-1")))
    rows = {r["host"]: r for r in run.cloud.status()}
    assert (rows["loadgen"]["exists"], rows["loadgen"]["state"]) == (False, "gone")
    assert rows["bsd"]["exists"] is True

    # destroy: every node and the key, confirmed through the API; sshds gone with the VMs
    deletes_before = len(fake.calls("DELETE"))
    removed = run.cloud.destroy()
    assert fake.nodes == {} and fake.keys == {} and fake.live_sshds() == []
    assert len(fake.calls("DELETE")) - deletes_before == 3  # 2 nodes + 1 key
    last_delete = max(i for i, r in enumerate(fake.requests) if r.method == "DELETE")
    assert any(r.method == "GET" for r in fake.requests[last_delete + 1:])  # confirmed
    text = "\n".join(removed)
    assert f"{lab_id}-bsd-1" in text and f"{lab_id}-ubuntu-1" in text and "key pair" in text
    assert not state_dir.joinpath("cloud.json").exists()

    # a second destroy is a no-op that says so, and calls nothing that deletes
    calls_before = len(fake.requests)
    assert run.cloud.destroy() == []
    assert "nothing to destroy" in run.output()
    assert all(r.method != "DELETE" for r in fake.requests[calls_before:])

    # the token is in no file written and nowhere in the output
    assert grep_token([state_dir, tmp_path], run.output(), since=wall_start) == []
    print(f"{provider}: provision to ready in {created_s:.1f} s")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_failed_creation_part_way_deletes_what_was_created(provider: str,
                                                           tmp_path: Path) -> None:
    with fake_cloud(provider, token=TOKEN, address_pool=pool(110), fail_create={2}) as fake:
        config = write_config(tmp_path / "cloud.toml", provider, fake, free_port())
        run = Run(provider, fake, config, tmp_path / "state")
        with pytest.raises(Exception) as raised:
            run.cloud.provision(yes=True)
        message = str(raised.value)
        assert "deleted" in message and ("400" in message or "exceed" in message)
        # the first node and the key existed, and were deleted through the API
        assert len(fake.calls("POST", "/v2/(instances|droplets)")) == 2
        assert fake.nodes == {} and fake.keys == {}
        assert len(fake.calls("DELETE")) == 2
        assert "LEFT BEHIND" not in message
    assert grep_token([tmp_path], run.output() + message) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_orphans_are_papaya_resources_no_state_knows(provider: str, client_key: Path,
                                                     tmp_path: Path) -> None:
    public = client_key.with_suffix(".pub").read_text().strip()
    with fake_cloud(provider, token=TOKEN, address_pool=pool(130)) as fake:
        driver = fake.driver()
        orphan_key = import_key(fake, driver, "papaya-20260101000000-dead", public)
        create(fake, driver, "papaya-20260101000000-dead-ubuntu-1", orphan_key,
               ["papaya-bench"])
        create(fake, driver, "someone-elses-vm", orphan_key, ["production"])
        config = write_config(tmp_path / "cloud.toml", provider, fake, free_port())
        run = Run(provider, fake, config, tmp_path / "state")
        removed = run.cloud.destroy(orphans=True)
        assert [n.name for n in fake.nodes.values()] == ["someone-elses-vm"]
        assert fake.keys == {}
        assert any("papaya-20260101000000-dead-ubuntu-1" in r for r in removed)
        assert run.cloud.destroy(orphans=True) == []
    assert grep_token([tmp_path], run.output()) == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_token_fails_clearly_and_is_not_repeated(provider: str, tmp_path: Path) -> None:
    with fake_cloud(provider, token=TOKEN, address_pool=[]) as fake:
        config = write_config(tmp_path / "cloud.toml", provider, fake, free_port())
        wrong = "wrong-token-0123456789"
        run = Run(provider, fake, config, tmp_path / "state", token=wrong)
        with pytest.raises(Exception) as raised:
            run.cloud.plan()
    message = str(raised.value)
    assert "401" in message or "authenticate" in message
    assert wrong not in message and wrong not in run.output()


def test_digitalocean_freebsd_14_is_ambiguous_and_the_error_lists_both(tmp_path: Path) -> None:
    with fake_cloud("digitalocean", token=TOKEN, address_pool=[]) as fake:
        config = write_config(tmp_path / "cloud.toml", "digitalocean", fake, free_port(),
                              hosts={"bsd": ("server", "FreeBSD 14")})
        with pytest.raises(Exception, match=r"ambiguous.*14\.1 x64 ufs.*14\.1 x64 zfs"):
            Run("digitalocean", fake, config, tmp_path / "state").cloud.plan()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_make_driver_sends_both_drivers_to_the_fake_only(provider: str, tmp_path: Path) -> None:
    """driver_options must reach the connection: a driver that ignored them would talk to the
    real API with the token (DigitalOcean's does, unless make_driver re-points it)."""
    from infra.cloud.config import load_cloud_config
    from infra.cloud.credentials import load_credentials
    from infra.cloud.drivers import make_driver
    with fake_cloud(provider, token=TOKEN, address_pool=[]) as fake:
        config = load_cloud_config(write_config(tmp_path / "cloud.toml", provider, fake, 2222))
        driver = make_driver(config, load_credentials(config, {TOKEN_ENV[provider]: TOKEN}))
        connection = driver.connection
        assert (connection.host, int(connection.port), connection.secure) == \
            ("127.0.0.1", fake.port, False)
        assert driver.list_locations() and fake.calls("GET", "/v2/regions")


def test_invoke_provision_dry_run_prints_a_priced_plan(tmp_path: Path) -> None:
    """The issue's "done when", through the README's command: the example config (one
    FreeBSD server, one Ubuntu server, one load generator), its API answered by the fake."""
    import os
    import subprocess
    import sys

    from tests.pipeline_util import PROJECT_ROOT

    example = (PROJECT_ROOT / "experiments" / "configs" / "cloud-example.toml").read_text()
    with fake_cloud("vultr", token=TOKEN, address_pool=pool(120, 3)) as fake:
        config = tmp_path / "cloud-example.toml"
        config.write_text(example.replace(
            "[cloud]\n", "[cloud]\ndriver_options = { host = \"127.0.0.1\", "
                         f"port = {fake.port}, secure = false }}\n", 1))
        env = {**os.environ, "VULTR_API_KEY": TOKEN, "PAPAYA_WORKDIR": str(tmp_path),
               "COLUMNS": "160"}
        done = subprocess.run(
            [sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), "provision",
             "--provider", "cloud", "--dry-run", "--config", str(config)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert fake.calls("POST") == [] and fake.calls("DELETE") == []
    for expected in ("bsd", "ubuntu", "loadgen", "FreeBSD 14", "Ubuntu 24.04", "ams",
                     "vc2-1c-2gb"):
        assert expected in output, (expected, output)
    assert "$" in output or "USD" in output, output
    assert TOKEN not in output
    assert not (tmp_path / "data" / "state" / "cloud.json").exists()
