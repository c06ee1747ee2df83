"""Fake Vultr v2 and DigitalOcean v2 HTTP APIs on 127.0.0.1, so libcloud's real drivers run.

Each fake is a small stateful HTTP server (a thread): it answers the requests libcloud 3.9.1's
``VultrNodeDriverV2`` and ``DigitalOcean_v2_NodeDriver`` make, with bodies shaped after the
providers' API documentation (tests/fixtures/cloud/README.md says where each shape comes from).
It keeps the key pairs and nodes created through it, paginates lists the way each provider
does (Vultr: opaque ``cursor`` + ``meta.links.next``; DigitalOcean: ``page`` +
``links.pages.last``), checks the bearer token (a wrong one gets the provider's 401 body) and
records every request so a test can assert what the driver sent.

A created node is "pending" (Vultr) / "new" (DigitalOcean) with no public address; after
``active_after`` observations (list or get) it turns "active" and gets the next address of
``address_pool`` (loopback addresses only: a test never hands out a public one). With
``ssh_port`` set (and running as root), activation also starts a real sshd on that address and
port whose authorized_keys are the public keys the node was created with: the simulated VM
answers on SSH with exactly the key the provider registered. ``stop()`` ends every sshd.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import ipaddress
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from tests.ssh_util import SshdInfo, loopback_sshd, sshd_unavailable_reason

FIXTURES = Path(__file__).parent / "fixtures" / "cloud"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when it is not JSON, or None


@dataclass
class FakeKey:
    id: str
    name: str
    public_key: str
    created_at: str


@dataclass
class FakeNode:
    id: str
    name: str
    region: str
    size: str
    image: Any
    key_ids: list[str]
    tags: list[str]
    created_at: str
    user_data: str | None
    status: str
    observations: int = 0
    address: str | None = None
    sshd: SshdInfo | None = None
    sshd_stack: contextlib.ExitStack | None = None
    sshd_starts: int = 0


class FakeApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def _load(provider_dir: str, name: str) -> Any:
    return json.loads((FIXTURES / provider_dir / name).read_text())


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def ssh_unavailable_reason() -> str | None:
    """Why the fakes cannot start simulated VMs' sshd here, or None when they can."""
    if os.geteuid() != 0:
        return "simulated VMs log in as root: the test must run as root"
    return sshd_unavailable_reason()


class FakeCloudApi:
    """The provider-independent part: server thread, auth, recording, node life cycle."""

    provider: ClassVar[str]
    fixture_dir: ClassVar[str]
    max_per_page: ClassVar[int]
    default_per_page: ClassVar[int]

    def __init__(self, *, token: str, address_pool: Iterable[str], active_after: int = 2,
                 ssh_port: int | None = None, sshd_root: Path | None = None,
                 max_per_page: int | None = None, fail_create: Iterable[int] = ()) -> None:
        """``fail_create``: 1-based ordinals of node creations that fail with the provider's
        error (e.g. ``{2}`` fails the second create). ``max_per_page`` caps page size below
        the provider's own cap, so small catalogues still take several pages."""
        self.token = token
        pool = list(address_pool)
        for address in pool:
            if not ipaddress.ip_address(address).is_loopback:
                raise ValueError(f"fake {self.provider}: {address} is not a loopback address")
        self._pool = iter(pool)
        self.active_after = active_after
        self.ssh_port = ssh_port
        if ssh_port is not None and sshd_root is None:
            raise ValueError("ssh_port needs sshd_root (a directory for the sshd files)")
        self.sshd_root = sshd_root
        self.page_cap = min(max_per_page or self.max_per_page, self.max_per_page)
        self.fail_create = set(fail_create)
        self.requests: list[RecordedRequest] = []
        self.keys: dict[str, FakeKey] = {}
        self.nodes: dict[str, FakeNode] = {}
        self.creates = 0  # node creation attempts, for fail_create
        self.sshd_errors: list[str] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- life cycle
    def start(self) -> FakeCloudApi:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

            def do_DELETE(self) -> None:
                fake._handle(self, "DELETE")

            def do_PUT(self) -> None:
                fake._handle(self, "PUT")

            def do_PATCH(self) -> None:
                fake._handle(self, "PATCH")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # the record is self.requests; stderr would leak request lines

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=f"fake-{self.provider}")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            for node in self.nodes.values():
                self._stop_sshd(node)

    def __enter__(self) -> FakeCloudApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "fake not started"
        return self._server.server_address[1]

    @property
    def driver_options(self) -> dict[str, Any]:
        """Constructor kwargs that point a driver at this fake (see ``driver``)."""
        return {"host": "127.0.0.1", "port": self.port, "secure": False}

    def driver(self, token: str | None = None) -> Any:
        raise NotImplementedError

    # ---- what tests look at
    def calls(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, optionally only those with this method and/or path (regex)."""
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method)
                    and (path is None or re.fullmatch(path, r.path))]

    def live_sshds(self) -> list[SshdInfo]:
        with self._lock:
            return [n.sshd for n in self.nodes.values() if n.sshd is not None]

    def node_named(self, name: str) -> FakeNode:
        with self._lock:
            return next(n for n in self.nodes.values() if n.name == name)

    def rekey_vm(self, node_id: str) -> SshdInfo:
        """Restart a VM's sshd with a fresh host key (a rebuilt VM, or someone else answering
        on its address): a client that pinned the old key must refuse it."""
        with self._lock:
            node = self.nodes[node_id]
            assert node.sshd is not None, f"{node.name} has no sshd"
            self._stop_sshd(node)
            self._start_sshd(node)
            assert node.sshd is not None, self.sshd_errors
            return node.sshd

    # ---- HTTP plumbing
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        query = parse_qs(split.query, keep_blank_values=True)
        record = RecordedRequest(method, split.path, query, dict(handler.headers.items()), body)
        with self._lock:
            self.requests.append(record)
            try:
                if handler.headers.get("Authorization") != f"Bearer {self.token}":
                    raise FakeApiError(401, self._error_body("error_401.json"))
                status, payload = self._route(method, split.path, query, body)
            except FakeApiError as error:
                status, payload = error.status, error.body
        data = b"" if payload is None else json.dumps(payload).encode()
        handler.send_response(status)
        if payload is not None:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _error_body(self, name: str) -> dict[str, Any]:
        return _load(self.fixture_dir, name)

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def _per_page(self, query: dict[str, list[str]]) -> int:
        try:
            wanted = int(query.get("per_page", [self.default_per_page])[0])
        except ValueError:
            wanted = self.default_per_page
        return max(1, min(wanted, self.page_cap))

    # ---- node life cycle
    def _observe(self, node: FakeNode) -> None:
        """A node is seen by the client; after ``active_after`` looks it is up."""
        node.observations += 1
        if node.status == self.pending_status and node.observations >= self.active_after:
            self._activate(node)

    pending_status: ClassVar[str]

    def _activate(self, node: FakeNode) -> None:
        try:
            node.address = next(self._pool)
        except StopIteration:
            node.address = None
            self.sshd_errors.append(f"{node.name}: address pool exhausted")
            return  # stays pending: a test that gives too few addresses times out clearly
        node.status = "active"
        if self.ssh_port is not None:
            self._start_sshd(node)

    def _start_sshd(self, node: FakeNode) -> None:
        reason = ssh_unavailable_reason()
        if reason is not None:
            self.sshd_errors.append(f"{node.name}: no sshd: {reason}")
            return
        assert self.sshd_root is not None and node.address is not None
        node.sshd_starts += 1  # a fresh directory each start: fresh host and client keys
        directory = self.sshd_root / f"{self.provider}-{node.id}-{node.sshd_starts}"
        directory.mkdir(parents=True)
        authorized = directory / "registered_keys"
        authorized.write_text("".join(self.keys[k].public_key.strip() + "\n"
                                      for k in node.key_ids if k in self.keys))
        stack = contextlib.ExitStack()
        try:
            node.sshd = stack.enter_context(loopback_sshd(
                directory, listen_address=node.address, port=self.ssh_port,
                authorized_keys=authorized))
        except Exception as error:  # noqa: BLE001 - reported through sshd_errors
            stack.close()
            self.sshd_errors.append(f"{node.name}: sshd on {node.address}:{self.ssh_port}: "
                                    f"{error}")
            return
        node.sshd_stack = stack

    def _stop_sshd(self, node: FakeNode) -> None:
        if node.sshd_stack is not None:
            node.sshd_stack.close()
            node.sshd_stack = None
            node.sshd = None

    def _next_create_fails(self) -> bool:
        self.creates += 1
        return self.creates in self.fail_create

    def _node_item(self, method: str, node_id: str, key: str,
                   render: Callable[[FakeNode], dict[str, Any]]) -> tuple[int, Any]:
        """GET or DELETE one node: the same on both APIs but for the body's key and shape."""
        node = self.nodes.get(node_id)
        if node is None:
            raise FakeApiError(404, self._error_body("error_404.json"))
        if method == "GET":
            self._observe(node)
            return 200, {key: render(node)}
        self._delete_node(node.id)
        return 204, None

    def _delete_node(self, node_id: str) -> None:
        node = self.nodes.pop(node_id)
        self._stop_sshd(node)


# ---------------------------------------------------------------- Vultr API v2
class FakeVultr(FakeCloudApi):
    """https://api.vultr.com/v2 as VultrNodeDriverV2 uses it."""

    provider = "vultr"
    fixture_dir = "vultr_v2"
    max_per_page = 500  # Vultr: "Default is 100 and Max is 500"
    default_per_page = 100
    pending_status = "pending"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catalogue = {
            "regions": _load("vultr_v2", "regions.json")["regions"],
            "plans": _load("vultr_v2", "plans.json")["plans"],
            "plans_metal": _load("vultr_v2", "plans-metal.json")["plans_metal"],
            "os": _load("vultr_v2", "os.json")["os"],
        }

    def driver(self, token: str | None = None) -> Any:
        from libcloud.compute.providers import get_driver
        from libcloud.compute.types import Provider
        # VultrNodeDriverV2 passes host/port/secure to its connection (checked in the tests).
        return get_driver(Provider.VULTR)(token or self.token, **self.driver_options)

    def _page(self, key: str, items: Sequence[Any], query: dict[str, list[str]]) -> Any:
        per_page = self._per_page(query)
        start = 0
        if query.get("cursor", [""])[0]:
            cursor = base64.b64decode(query["cursor"][0]).decode()
            match = re.fullmatch(r"next__(\d+)", cursor)
            if match is None:
                raise FakeApiError(400, {"error": "Invalid cursor.", "status": 400})
            start = int(match.group(1))
        chunk = list(items[start:start + per_page])
        after = start + per_page
        nxt = base64.b64encode(f"next__{after}".encode()).decode() if after < len(items) else ""
        prev = (base64.b64encode(f"prev__{max(start - per_page, 0)}".encode()).decode()
                if start > 0 else "")
        return {key: chunk, "meta": {"total": len(items), "links": {"next": nxt, "prev": prev}}}

    def _instance(self, node: FakeNode) -> dict[str, Any]:
        data = copy.deepcopy(_load("vultr_v2", "instance.json")["instance"])
        plan = next(p for p in self.catalogue["plans"] if p["id"] == node.size)
        os_ = next(o for o in self.catalogue["os"] if o["id"] == node.image)
        active = node.status == "active"
        data.update({
            "id": node.id, "label": node.name, "region": node.region, "plan": node.size,
            "os": os_["name"], "os_id": os_["id"], "ram": plan["ram"], "disk": plan["disk"],
            "vcpu_count": plan["vcpu_count"], "allowed_bandwidth": plan["bandwidth"],
            "date_created": node.created_at, "status": node.status,
            "power_status": "running", "server_status": "ok" if active else "none",
            "main_ip": node.address if active and node.address else "0.0.0.0",
            "netmask_v4": "255.0.0.0" if active else "",
            "gateway_v4": "127.0.0.1" if active else "0.0.0.0",
            "internal_ip": "", "tag": node.tags[0] if node.tags else "", "tags": node.tags,
            "hostname": node.name, "features": [],
        })
        return data

    def _key(self, key: FakeKey) -> dict[str, Any]:
        return {"id": key.id, "date_created": key.created_at, "name": key.name,
                "ssh_key": key.public_key}

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, Any]:
        lists = {"/v2/regions": "regions", "/v2/plans": "plans", "/v2/os": "os",
                 "/v2/plans-metal": "plans_metal"}
        if method == "GET" and path in lists:
            key = lists[path]
            return 200, self._page(key, self.catalogue[key], query)
        if method == "GET" and path == "/v2/bare-metals":
            return 200, self._page("bare_metals", [], query)
        if path == "/v2/ssh-keys":
            if method == "GET":
                return 200, self._page("ssh_keys", [self._key(k) for k in self.keys.values()],
                                       query)
            if method == "POST":
                return 201, {"ssh_key": self._key(self._create_key(body))}
        match = re.fullmatch(r"/v2/ssh-keys/([^/]+)", path)
        if match:
            key = self.keys.get(match.group(1))
            if key is None:
                raise FakeApiError(404, self._error_body("error_404.json"))
            if method == "GET":
                return 200, {"ssh_key": self._key(key)}
            if method == "DELETE":
                del self.keys[key.id]
                return 204, None
        if path == "/v2/instances":
            if method == "GET":
                nodes = [n for n in self.nodes.values()
                         if self._matches(n, query.get("tag", [""])[0],
                                          query.get("label", [""])[0])]
                for node in nodes:
                    self._observe(node)
                return 200, self._page("instances", [self._instance(n) for n in nodes], query)
            if method == "POST":
                return 202, {"instance": self._instance(self._create_node(body))}
        match = re.fullmatch(r"/v2/instances/([^/]+)", path)
        if match and method in ("GET", "DELETE"):
            return self._node_item(method, match.group(1), "instance", self._instance)
        raise FakeApiError(404, {"error": f"fake vultr: no route {method} {path}",
                                 "status": 404})

    @staticmethod
    def _matches(node: FakeNode, tag: str, label: str) -> bool:
        return (not tag or tag in node.tags) and (not label or label == node.name)

    def _create_key(self, body: Any) -> FakeKey:
        if not isinstance(body, dict) or not body.get("name") or not body.get("ssh_key"):
            raise FakeApiError(400, {"error": "Missing name or ssh_key", "status": 400})
        if not re.match(r"(ssh-(ed25519|rsa)|ecdsa-sha2-\S+) [A-Za-z0-9+/=]+", body["ssh_key"]):
            raise FakeApiError(400, {"error": "Invalid SSH key.", "status": 400})
        key = FakeKey(str(uuid.uuid4()), body["name"], body["ssh_key"], _now())
        self.keys[key.id] = key
        return key

    def _create_node(self, body: Any) -> FakeNode:
        if not isinstance(body, dict):
            raise FakeApiError(400, {"error": "Invalid JSON body", "status": 400})
        region, plan, os_id = body.get("region"), body.get("plan"), body.get("os_id")
        # libcloud's NodeImage makes every id a str, so the driver sends "2284" where the API
        # documents an integer; accept a numeric string as the driver's own tests assume.
        if isinstance(os_id, str) and os_id.isdigit():
            os_id = int(os_id)
        if region not in {r["id"] for r in self.catalogue["regions"]}:
            raise FakeApiError(400, {"error": "Invalid region.", "status": 400})
        plans = {p["id"]: p for p in self.catalogue["plans"]}
        if plan not in plans:
            raise FakeApiError(400, {"error": "Invalid plan.", "status": 400})
        if region not in plans[plan]["locations"]:
            raise FakeApiError(400, {"error": "Plan is not available in the selected region.",
                                     "status": 400})
        if os_id not in {o["id"] for o in self.catalogue["os"]}:
            raise FakeApiError(400, {"error": "Invalid operating system.", "status": 400})
        key_ids = list(body.get("sshkey_id") or [])
        if any(k not in self.keys for k in key_ids):
            raise FakeApiError(400, {"error": "Invalid SSH key.", "status": 400})
        if self._next_create_fails():
            raise FakeApiError(400, self._error_body("error_400_create.json"))
        tags = list(body.get("tags") or ([body["tag"]] if body.get("tag") else []))
        user_data = body.get("user_data")
        node = FakeNode(str(uuid.uuid4()), body.get("label") or "", region, plan, os_id,
                        key_ids, tags, _now(),
                        base64.b64decode(user_data).decode() if user_data else None,
                        self.pending_status)
        self.nodes[node.id] = node
        return node


# ---------------------------------------------------------------- DigitalOcean API v2
_DO_TAG = re.compile(r"[A-Za-z0-9_\-:]{1,255}")
_DO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,254}")


class FakeDigitalOcean(FakeCloudApi):
    """https://api.digitalocean.com/v2 as DigitalOcean_v2_NodeDriver uses it."""

    provider = "digitalocean"
    fixture_dir = "digitalocean_v2"
    max_per_page = 200  # DigitalOcean: per_page at most 200
    default_per_page = 20
    pending_status = "new"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catalogue = {
            "regions": _load("digitalocean_v2", "regions.json")["regions"],
            "sizes": _load("digitalocean_v2", "sizes.json")["sizes"],
            "images": _load("digitalocean_v2", "images.json")["images"],
        }
        self._next_id = 470000000
        self._next_key_id = 41000000

    def driver(self, token: str | None = None) -> Any:
        from libcloud.compute.providers import get_driver
        from libcloud.compute.types import Provider
        # DigitalOcean's driver cannot take host/port/secure: its __new__ hands every extra
        # kwarg to object.__new__ (TypeError) and DigitalOcean_v2_BaseDriver.__init__ drops
        # them. So build it with the token only and re-point its connection (point_driver_at).
        driver = get_driver(Provider.DIGITAL_OCEAN)(token or self.token)
        point_driver_at(driver, "127.0.0.1", self.port, secure=False)
        return driver

    def _page(self, key: str, items: Sequence[Any], path: str,
              query: dict[str, list[str]]) -> Any:
        per_page = self._per_page(query)
        try:
            page = max(1, int(query.get("page", ["1"])[0]))
        except ValueError:
            page = 1
        last = max(1, -(-len(items) // per_page))
        chunk = list(items[(page - 1) * per_page:page * per_page])

        def url(n: int) -> str:
            return f"https://api.digitalocean.com{path}?page={n}&per_page={per_page}"

        pages: dict[str, str] = {}
        if page > 1:
            pages.update(first=url(1), prev=url(page - 1))
        if page < last:
            pages.update(next=url(page + 1), last=url(last))
        links = {"pages": pages} if pages else {}
        return {key: chunk, "links": links, "meta": {"total": len(items)}}

    def _droplet(self, node: FakeNode) -> dict[str, Any]:
        data = copy.deepcopy(_load("digitalocean_v2", "droplet.json")["droplet"])
        size = next(s for s in self.catalogue["sizes"] if s["slug"] == node.size)
        image = next(i for i in self.catalogue["images"] if i["id"] == node.image)
        region = next(r for r in self.catalogue["regions"] if r["slug"] == node.region)
        v4 = []
        if node.status == "active" and node.address:
            v4 = [{"ip_address": node.address, "netmask": "255.0.0.0", "gateway": "127.0.0.1",
                   "type": "public"}]
        data.update({
            "id": int(node.id), "name": node.name, "status": node.status,
            "memory": size["memory"], "vcpus": size["vcpus"], "disk": size["disk"],
            "size": copy.deepcopy(size), "size_slug": size["slug"],
            "image": copy.deepcopy(image), "region": copy.deepcopy(region),
            "created_at": node.created_at.replace("+00:00", "Z"),
            "networks": {"v4": v4, "v6": []}, "tags": list(node.tags),
            "backup_ids": [], "snapshot_ids": [], "volume_ids": [],
        })
        return data

    @staticmethod
    def _fingerprint(public_key: str) -> str:
        blob = base64.b64decode(public_key.split()[1])
        digest = hashlib.md5(blob).hexdigest()  # noqa: S324 - DigitalOcean's fingerprint format
        return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))

    def _key(self, key: FakeKey) -> dict[str, Any]:
        return {"id": int(key.id), "fingerprint": self._fingerprint(key.public_key),
                "public_key": key.public_key, "name": key.name}

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, Any]:
        lists = {"/v2/regions": "regions", "/v2/sizes": "sizes", "/v2/images": "images"}
        if method == "GET" and path in lists:
            key = lists[path]
            return 200, self._page(key, self.catalogue[key], path, query)
        if path == "/v2/account/keys":
            if method == "GET":
                return 200, self._page("ssh_keys", [self._key(k) for k in self.keys.values()],
                                       path, query)
            if method == "POST":
                return 201, {"ssh_key": self._key(self._create_key(body))}
        match = re.fullmatch(r"/v2/account/keys/([^/]+)", path)
        if match:
            key = self._find_key(match.group(1))
            if key is None:
                raise FakeApiError(404, self._error_body("error_404.json"))
            if method == "GET":
                return 200, {"ssh_key": self._key(key)}
            if method == "DELETE":
                del self.keys[key.id]
                return 204, None
        if path == "/v2/droplets":
            if method == "GET":
                tag = query.get("tag_name", [""])[0]
                nodes = [n for n in self.nodes.values() if not tag or tag in n.tags]
                for node in nodes:
                    self._observe(node)
                return 200, self._page("droplets", [self._droplet(n) for n in nodes], path,
                                       query)
            if method == "POST":
                node = self._create_node(body)
                action = {"id": int(node.id) + 7, "rel": "create",
                          "href": f"https://api.digitalocean.com/v2/actions/{int(node.id) + 7}"}
                return 202, {"droplet": self._droplet(node), "links": {"actions": [action]}}
        match = re.fullmatch(r"/v2/droplets/([^/]+)", path)
        if match and method in ("GET", "DELETE"):
            return self._node_item(method, match.group(1), "droplet", self._droplet)
        raise FakeApiError(404, {"id": "not_found",
                                 "message": f"fake digitalocean: no route {method} {path}"})

    def _find_key(self, id_or_fingerprint: str) -> FakeKey | None:
        if id_or_fingerprint in self.keys:
            return self.keys[id_or_fingerprint]
        return next((k for k in self.keys.values()
                     if self._fingerprint(k.public_key) == id_or_fingerprint), None)

    def _create_key(self, body: Any) -> FakeKey:
        if not isinstance(body, dict) or not body.get("name") or not body.get("public_key"):
            raise FakeApiError(422, {"id": "unprocessable_entity",
                                     "message": "name and public_key are required"})
        if not re.match(r"(ssh-(ed25519|rsa)|ecdsa-sha2-\S+) [A-Za-z0-9+/=]+",
                        body["public_key"]):
            raise FakeApiError(422, {"id": "unprocessable_entity",
                                     "message": "Key invalid type, we support 'ssh-rsa', "
                                                "'ssh-ed25519', 'ecdsa-sha2-nistp256', ..."})
        if any(k.public_key.split()[:2] == body["public_key"].split()[:2]
               for k in self.keys.values()):
            raise FakeApiError(422, {"id": "unprocessable_entity",
                                     "message": "SSH Key is already in use on your account"})
        self._next_key_id += 1
        key = FakeKey(str(self._next_key_id), body["name"], body["public_key"], _now())
        self.keys[key.id] = key
        return key

    def _create_node(self, body: Any) -> FakeNode:
        def unprocessable(message: str) -> FakeApiError:
            return FakeApiError(422, {"id": "unprocessable_entity", "message": message})

        if not isinstance(body, dict):
            raise unprocessable("invalid JSON body")
        name = body.get("name")
        if not isinstance(name, str) or not _DO_NAME.fullmatch(name):
            raise unprocessable("Only valid hostname characters are allowed. (a-z, A-Z, 0-9, "
                                ". and -)")
        region = body.get("region")
        if region not in {r["slug"] for r in self.catalogue["regions"] if r["available"]}:
            raise unprocessable("You specified an invalid region for Droplet creation.")
        size = body.get("size")
        if size not in {s["slug"] for s in self.catalogue["sizes"]}:
            raise unprocessable("You specified an invalid size for Droplet creation.")
        image = next((i for i in self.catalogue["images"]
                      if body.get("image") in (i["id"], i["slug"], str(i["id"]))), None)
        if image is None:
            raise unprocessable("You specified an invalid image for Droplet creation.")
        tags = list(body.get("tags") or [])
        bad = [t for t in tags if not isinstance(t, str) or not _DO_TAG.fullmatch(t)]
        if bad:
            raise unprocessable(f"invalid tag name {bad[0]!r}: tags may contain letters, "
                                "numbers, colons, dashes, and underscores")
        key_ids: list[str] = []
        for ref in body.get("ssh_keys") or []:
            key = self._find_key(str(ref))
            if key is None:
                raise unprocessable(f"ssh key {ref} not found")
            key_ids.append(key.id)
        if self._next_create_fails():
            raise FakeApiError(422, self._error_body("error_422_create.json"))
        self._next_id += 1
        node = FakeNode(str(self._next_id), name, region, size, image["id"], key_ids, tags,
                        _now(), body.get("user_data"), self.pending_status)
        self.nodes[node.id] = node
        return node


def point_driver_at(driver: Any, host: str, port: int, *, secure: bool = False) -> None:
    """Send a libcloud driver's HTTP to ``host:port`` (for drivers that ignore host/port)."""
    connection = driver.connection
    connection.host = host
    connection.port = port
    connection.secure = secure
    connection.connect()  # rebuild the HTTP session against the new endpoint


FAKES: dict[str, type[FakeCloudApi]] = {"vultr": FakeVultr, "digitalocean": FakeDigitalOcean}


@contextlib.contextmanager
def fake_cloud(provider: str, **kwargs: Any) -> Iterator[FakeCloudApi]:
    """Start the fake for ``provider`` ("vultr" or "digitalocean"); stop it and its sshds."""
    fake = FAKES[provider](**kwargs)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()

