"""Creating and deleting a lab's VMs: key pair, nodes, waits, host keys; and finding orphans.

Every step writes the lab's state before the next one starts (``save``), so whatever exists
at the provider is in data/state/cloud.json even if this process dies. A failure part-way
deletes what was created (nodes, then the key pair) and says what it deleted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from libcloud.compute.base import KeyPair, Node, NodeDriver
from libcloud.compute.types import NodeState
from rich.console import Console

from infra.cloud.credentials import Credentials
from infra.cloud.drivers import Adapter, CloudError, KeyRecord, call
from infra.cloud.plan import CloudPlan
from infra.cloud.state import LAB_PREFIX

POLL_S = 5.0
TCP_PROBE_S = 3.0


@dataclass
class Cloud:
    """One driver with its adapter, the credentials to scrub, and where progress goes."""

    driver_name: str
    driver: NodeDriver
    adapter: Adapter
    credentials: Credentials | None
    console: Console
    poll_s: float = POLL_S

    def call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return call(self.credentials, f"{self.driver_name}: {what}", function, *args, **kwargs)

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def nodes(self) -> list[Node]:
        return self.call("list nodes", self.adapter.nodes, self.driver)

    def keys(self) -> list[KeyPair] | None:
        return self.call("list key pairs", self.adapter.list_keys, self.driver)


# ---------------------------------------------------------------------------- keys

def generate_key(lab_dir: Path, lab_id: str) -> tuple[Path, Path]:
    """An ed25519 key pair for the lab, private key 0600 in a 0700 directory."""
    lab_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(lab_dir, 0o700)
    key_file = lab_dir / "id_ed25519"
    if not key_file.exists():
        result = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", lab_id,
                                 "-f", str(key_file)], capture_output=True, text=True,
                                timeout=60, check=False)
        if result.returncode != 0:
            raise CloudError(f"ssh-keygen for lab {lab_id} failed: {result.stderr.strip()}")
    os.chmod(key_file, 0o600)
    return key_file, key_file.with_name("id_ed25519.pub")


# ---------------------------------------------------------------------------- creation

class LabCreation:
    """Creates one lab from a plan; ``lab`` is its state record, ``save`` persists it."""

    def __init__(self, cloud: Cloud, plan: CloudPlan, lab: dict[str, Any],
                 save: Callable[[dict[str, Any]], None], *, ssh_port: int, timeout_s: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.cloud = cloud
        self.plan = plan
        self.lab = lab
        self.save = save
        self.ssh_port = ssh_port
        self.timeout_s = timeout_s
        self.monotonic = monotonic

    def run(self) -> dict[str, Any]:
        """Key, nodes, running, SSH with host keys recorded. The caller cleans up on error."""
        self._import_key()
        self._create_nodes()
        deadline = self.monotonic() + self.timeout_s
        self._wait_running(deadline)
        self._wait_ssh(deadline)
        self.lab["status"] = "created"
        self.save(self.lab)
        return self.lab

    def _import_key(self) -> None:
        public_key = Path(self.lab["public_key_file"]).read_text().strip()
        name = self.lab["lab_id"]
        self.cloud.say(f"registering SSH key {name} with {self.cloud.driver_name}")
        record: KeyRecord = self.cloud.call(f"import key pair {name}",
                                            self.cloud.adapter.import_key, self.cloud.driver,
                                            name, public_key)
        self.lab["key"] = {**record.to_state(), "registered": self.cloud.adapter.has_key_resource}
        self.save(self.lab)

    def _create_nodes(self) -> None:
        public_key = Path(self.lab["public_key_file"]).read_text().strip()
        key = KeyRecord(self.lab["key"]["name"], self.lab["key"]["id"])
        for planned in self.plan.hosts:
            spec = planned.spec
            for n, vm_name in enumerate(spec.node_names(self.lab["lab_id"]), start=1):
                self.cloud.say(f"creating {vm_name} ({planned.image_name}, {planned.size_name})")
                node: Node = self.cloud.call(
                    f"create node {vm_name}", self.cloud.adapter.create_node, self.cloud.driver,
                    name=vm_name, size=planned.size, image=planned.image,
                    location=self.plan.location, key=key, public_key=public_key,
                    lab_id=self.lab["lab_id"])
                self.lab["nodes"][vm_name] = {
                    "id": str(node.id), "host": spec.name,
                    "short_name": spec.name if spec.count == 1 else f"{spec.name}-{n}",
                    "roles": list(spec.roles), "user": spec.user, "python": spec.python,
                    "sudo": spec.sudo, "image": planned.image_name, "size": planned.size_name,
                    "hourly_usd": planned.hourly_usd, "address": _ipv4(node),
                    "state": str(node.state), "tags": self.cloud.adapter.node_tags(node),
                }
                self.save(self.lab)  # the node exists now: it must be in the state file

    def _wait_running(self, deadline: float) -> None:
        wanted = {rec["id"]: name for name, rec in self.lab["nodes"].items()}
        start = self.monotonic()
        while True:
            listed = {str(n.id): n for n in self.cloud.nodes()}
            running = 0
            for node_id, name in wanted.items():
                node = listed.get(node_id)
                record = self.lab["nodes"][name]
                if node is None:
                    # Some APIs list a new node only after a while: wait, up to the deadline.
                    record["state"] = "not listed"
                    continue
                record["state"] = str(node.state)
                record["address"] = _ipv4(node) or record.get("address")
                if node.state == NodeState.RUNNING and record["address"]:
                    running += 1
            self.save(self.lab)
            elapsed = self.monotonic() - start
            self.cloud.say(f"waiting for nodes to run: {running}/{len(wanted)} running "
                           f"({elapsed:.0f} s)")
            if running == len(wanted):
                return
            if self.monotonic() >= deadline:
                late = [n for n in wanted.values()
                        if self.lab["nodes"][n]["state"] != str(NodeState.RUNNING)]
                raise CloudError(f"timeout: node(s) {', '.join(late)} not running after "
                                 f"{elapsed:.0f} s (ssh_timeout {self.timeout_s:g} s)")
            time.sleep(min(self.cloud.poll_s, max(0.0, deadline - self.monotonic())))

    def _wait_ssh(self, deadline: float) -> None:
        known_hosts = Path(self.lab["known_hosts"])
        for name, record in self.lab["nodes"].items():
            address = record["address"]
            wait_for_port(address, self.ssh_port, deadline, self.monotonic,
                          lambda s, n=name: self.cloud.say(f"waiting for SSH on {n}: {s}"),
                          self.cloud.poll_s)
            record["host_key"] = record_host_key(address, self.ssh_port, known_hosts,
                                                 max(1.0, deadline - self.monotonic()))
            self.cloud.say(f"{name}: SSH answers at {address}:{self.ssh_port}; host key "
                           f"{record['host_key']['fingerprint']} recorded (pinned from now on)")
            self.save(self.lab)


def _ipv4(node: Node) -> str | None:
    for address in list(node.public_ips or []) + list(node.private_ips or []):
        # Vultr reports 0.0.0.0 until the address is assigned; IPv6 is not used.
        if address and ":" not in str(address) and str(address) != "0.0.0.0":
            return str(address)
    return None


def wait_for_port(address: str, port: int, deadline: float, monotonic: Callable[[], float],
                  progress: Callable[[str], None], poll_s: float) -> None:
    start = monotonic()
    last = ""
    while True:
        try:
            with socket.create_connection((address, port), timeout=TCP_PROBE_S):
                return
        except OSError as error:
            last = error.strerror or str(error)
        if monotonic() >= deadline:
            raise CloudError(f"timeout: {address}:{port} does not answer on SSH after "
                             f"{monotonic() - start:.0f} s ({last})")
        progress(f"{address}:{port} not yet ({last}, {monotonic() - start:.0f} s)")
        time.sleep(min(poll_s, max(0.0, deadline - monotonic())))


def known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def record_host_key(address: str, port: int, known_hosts: Path,
                    timeout: float) -> dict[str, str]:
    """Trust on first use: the key the host shows now goes into the lab's known_hosts.

    An entry already there is kept, never replaced: from then on RemoteHost (RejectPolicy)
    refuses a host that shows another key.
    """
    name = known_hosts_name(address, port)
    hostkeys = paramiko.HostKeys()
    if known_hosts.is_file():
        hostkeys.load(str(known_hosts))
    existing = hostkeys.lookup(name)
    if existing:
        key = next(iter(existing.values()))
        return {"line": f"{name} {key.get_name()} {key.get_base64()}",
                "fingerprint": _fingerprint(key)}
    try:
        with socket.create_connection((address, port), timeout=min(timeout, 30.0)) as sock:
            transport = paramiko.Transport(sock)
            try:
                transport.start_client(timeout=min(timeout, 30.0))
                key = transport.get_remote_server_key()
            finally:
                transport.close()
    except (OSError, paramiko.SSHException, EOFError) as error:
        raise CloudError(f"{address}:{port}: reading the SSH host key failed: "
                         f"{error or type(error).__name__}") from None
    line = f"{name} {key.get_name()} {key.get_base64()}"
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    with known_hosts.open("a") as out:
        out.write(line + "\n")
    return {"line": line, "fingerprint": _fingerprint(key)}


def _fingerprint(key: paramiko.PKey) -> str:
    return key.fingerprint if hasattr(key, "fingerprint") else key.get_base64()[:16]


# ---------------------------------------------------------------------------- deletion

def destroy_lab(cloud: Cloud, lab: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Delete the lab's nodes and key pair and check through the API that they are gone.

    Returns (what was deleted, what is still there with why). Nodes the API no longer lists
    count as gone (deleted by hand, or never finished creating).
    """
    deleted: list[str] = []
    left: list[str] = []
    wanted = {rec["id"]: name for name, rec in lab.get("nodes", {}).items() if rec.get("id")}
    if wanted:
        try:
            listed = {str(n.id): n for n in cloud.nodes()}
        except CloudError as error:
            return deleted, [f"nodes {', '.join(wanted.values())}: {error}"]
        for node_id, name in wanted.items():
            node = listed.get(node_id)
            if node is None:
                deleted.append(f"node {name} (id {node_id}, already gone)")
                continue
            try:
                cloud.call(f"delete node {name}", cloud.driver.destroy_node, node)
                deleted.append(f"node {name} (id {node_id})")
            except CloudError as error:
                left.append(f"node {name} (id {node_id}): {error}")
        try:
            still = {str(n.id) for n in cloud.nodes()} & set(wanted)
        except CloudError as error:
            still = set()
            left.append(f"could not confirm the nodes are gone: {error}")
        for node_id in sorted(still):
            message = f"node {wanted[node_id]} (id {node_id}): still listed after delete"
            if not any(item.startswith(f"node {wanted[node_id]} ") for item in left):
                left.append(message)
            deleted[:] = [d for d in deleted if not d.startswith(f"node {wanted[node_id]} ")]
    key = lab.get("key")
    if key and key.get("registered", True):
        deleted_key, problem = _delete_key(cloud, key)
        if deleted_key:
            deleted.append(deleted_key)
        if problem:
            left.append(problem)
    return deleted, left


def _delete_key(cloud: Cloud, key: dict[str, Any]) -> tuple[str | None, str | None]:
    name, key_id = key.get("name"), key.get("id")
    label = f"key pair {name}" + (f" (id {key_id})" if key_id and key_id != name else "")
    try:
        pairs = cloud.keys()
    except CloudError as error:
        return None, f"{label}: {error}"
    if pairs is None:
        # Nothing to list means nothing to delete through this driver (libcloud's dummy).
        return f"{label} (the {cloud.driver_name} driver keeps no key pairs)", None
    matching = [p for p in pairs if _key_matches(cloud.adapter, p, name, key_id)]
    if not matching:
        return f"{label} (already gone)", None
    for pair in matching:
        try:
            cloud.call(f"delete {label}", cloud.adapter.delete_key, cloud.driver, pair)
        except CloudError as error:
            return None, f"{label}: {error}"
    try:
        again = cloud.keys() or []
    except CloudError as error:
        return None, f"{label}: could not confirm it is gone: {error}"
    if any(_key_matches(cloud.adapter, p, name, key_id) for p in again):
        return None, f"{label}: still listed after delete"
    return label, None


def _key_matches(adapter: Adapter, pair: KeyPair, name: str | None, key_id: str | None) -> bool:
    return (key_id is not None and adapter.key_id(pair) == str(key_id)) or \
        (name is not None and pair.name == name)


# ---------------------------------------------------------------------------- orphans

def is_papaya(name: str | None, tags: Iterable[str]) -> bool:
    return bool(name and str(name).startswith(LAB_PREFIX)) or any(
        str(t).startswith(LAB_PREFIX) for t in tags)


def find_orphans(cloud: Cloud, known_node_ids: set[str], known_keys: set[str]
                 ) -> tuple[list[Node], list[KeyPair]]:
    """Nodes and key pairs named or tagged papaya-* that no state file knows."""
    nodes = [n for n in cloud.nodes()
             if is_papaya(n.name, cloud.adapter.node_tags(n)) and str(n.id) not in known_node_ids]
    pairs = cloud.keys() or []
    keys = [p for p in pairs if str(p.name).startswith(LAB_PREFIX)
            and p.name not in known_keys and cloud.adapter.key_id(p) not in known_keys]
    return nodes, keys


def delete_orphans(cloud: Cloud, nodes: list[Node], keys: list[KeyPair]
                   ) -> tuple[list[str], list[str]]:
    deleted: list[str] = []
    left: list[str] = []
    for node in nodes:
        try:
            cloud.call(f"delete orphan node {node.name}", cloud.driver.destroy_node, node)
            deleted.append(f"orphan node {node.name} (id {node.id})")
        except CloudError as error:
            left.append(str(error))
    for pair in keys:
        try:
            cloud.call(f"delete orphan key pair {pair.name}", cloud.adapter.delete_key,
                       cloud.driver, pair)
            deleted.append(f"orphan key pair {pair.name}")
        except CloudError as error:
            left.append(str(error))
    with contextlib.suppress(CloudError):
        still = {str(n.id) for n in cloud.nodes()} & {str(n.id) for n in nodes}
        for node in nodes:
            if str(node.id) in still:
                left.append(f"orphan node {node.name} (id {node.id}): still listed after delete")
                deleted[:] = [d for d in deleted if d != f"orphan node {node.name} (id {node.id})"]
    return deleted, left
