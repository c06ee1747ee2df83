"""Apache Libcloud drivers and the little each one does differently.

Libcloud gives one ``NodeDriver`` interface; what differs per provider is how an SSH key
reaches the VM, how tags are passed, whether ``NodeSize.price`` is hourly or monthly, and
where the vCPU count hides. ``Adapter`` collects exactly those differences, so the
lifecycle code never branches on the driver's name.

Every call into a driver goes through ``call``: libcloud errors may quote request headers
or bodies, so they are re-raised as ``CloudError`` with the credentials scrubbed and the
original exception (and its traceback) dropped.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from libcloud.compute.base import KeyPair, Node, NodeDriver, NodeLocation, NodeSize
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from infra.cloud.config import CloudConfig
from infra.cloud.credentials import Credentials
from infra.providers import ProviderError

HOURS_PER_MONTH = 730.0  # 365 * 24 / 12: how providers turn monthly prices into hourly ones
PROJECT_TAG = "papaya-bench"
T = TypeVar("T")


class CloudError(ProviderError):
    """A cloud API call failed; the message names the step and never holds a credential."""


def call(credentials: Credentials | None, what: str, function: Callable[..., T],
         *args: Any, **kwargs: Any) -> T:
    """``function(*args, **kwargs)``, with any error turned into a scrubbed CloudError."""
    try:
        return function(*args, **kwargs)
    except CloudError:
        raise
    except Exception as error:  # noqa: BLE001 - libcloud raises many unrelated types
        message = f"{type(error).__name__}: {error}"
        if credentials is not None:
            message = credentials.scrub(message)
        # from None: the chained traceback would print the original message (and locals).
        raise CloudError(f"{what}: {message}") from None


@dataclass(frozen=True)
class KeyRecord:
    """The lab's public key as registered with the provider (never key material)."""

    name: str
    id: str | None  # None: the driver has no key resource (passed at creation instead)

    def to_state(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id}


class Adapter:
    """Defaults: the generic libcloud calls; subclasses override what their driver needs."""

    name = "generic"
    price_unit = "hourly"  # what NodeSize.price means for this driver
    price_note = "NodeSize.price as hourly USD"
    has_key_resource = True

    # ---------------------------------------------------------------- listing

    def nodes(self, driver: NodeDriver) -> list[Node]:
        return list(driver.list_nodes())

    def sizes(self, driver: NodeDriver, location: NodeLocation | None) -> list[NodeSize]:
        return list(driver.list_sizes())

    def images(self, driver: NodeDriver, location: NodeLocation | None) -> list[Any]:
        return list(driver.list_images())

    def locations(self, driver: NodeDriver) -> list[NodeLocation]:
        return list(driver.list_locations())

    def find_location(self, driver: NodeDriver, region: str) -> NodeLocation | None:
        """The location whose id or name is ``region``; CloudError listing them if none."""
        locations = self.locations(driver)
        wanted = region.casefold()
        for location in locations:
            if str(location.id).casefold() == wanted or str(location.name).casefold() == wanted:
                return location
        known = ", ".join(f"{loc.id} ({loc.name})" for loc in locations)
        raise CloudError(f"region {region!r} not offered by the {self.name} driver; "
                         f"regions: {known or 'none listed'}")

    # ---------------------------------------------------------------- sizes

    def hourly_price(self, size: NodeSize) -> float | None:
        price = size.price
        if price is None or price == "":
            return None
        try:
            value = float(price)
        except (TypeError, ValueError):
            return None
        return value / HOURS_PER_MONTH if self.price_unit == "monthly" else value

    @staticmethod
    def vcpus(size: NodeSize) -> int | None:
        extra = size.extra or {}
        for key in ("vcpu_count", "vcpus", "vcpu", "cpu", "cpu_count", "cpus"):
            value = extra.get(key)
            try:
                if value is not None and int(value) > 0:
                    return int(value)
            except (TypeError, ValueError):
                continue
        return None

    # ---------------------------------------------------------------- keys

    def import_key(self, driver: NodeDriver, name: str, public_key: str) -> KeyRecord:
        pair = driver.import_key_pair_from_string(name, public_key)
        return KeyRecord(name, self.key_id(pair))

    @staticmethod
    def key_id(pair: KeyPair) -> str:
        return str((pair.extra or {}).get("id") or pair.name)

    def list_keys(self, driver: NodeDriver) -> list[KeyPair] | None:
        """The provider's key pairs, or None when the driver cannot list them."""
        try:
            return list(driver.list_key_pairs())
        except NotImplementedError:
            return None

    def delete_key(self, driver: NodeDriver, pair: KeyPair) -> bool:
        return bool(driver.delete_key_pair(pair))

    # ---------------------------------------------------------------- nodes

    def create_node(self, driver: NodeDriver, *, name: str, size: NodeSize, image: Any,
                    location: NodeLocation | None, key: KeyRecord, public_key: str,
                    lab_id: str) -> Node:
        return driver.create_node(name=name, size=size, image=image, location=location)

    def node_tags(self, node: Node) -> list[str]:
        extra = node.extra or {}
        tags = extra.get("tags") or []
        if isinstance(tags, dict):  # EC2: {key: value}
            return [str(t) for item in tags.items() for t in item]
        if isinstance(tags, str):
            return [tags]
        return [str(t) for t in tags]


class DummyAdapter(Adapter):
    """libcloud's in-memory dummy driver: prices are taken as hourly, as given."""

    name = "dummy"
    price_note = "dummy driver: NodeSize.price taken as hourly USD"

    def find_location(self, driver: NodeDriver, region: str) -> NodeLocation | None:
        return super().find_location(driver, region)

    def create_node(self, driver: NodeDriver, *, name: str, size: NodeSize, image: Any,
                    location: NodeLocation | None, key: KeyRecord, public_key: str,
                    lab_id: str) -> Node:
        node = driver.create_node(name=name, size=size, image=image)
        # The dummy ignores the name (calls every node dummy-N); a real API keeps it, and
        # orphan detection relies on it, so give the in-memory record the name asked for.
        node.name = name
        node.extra = {**(node.extra or {}), "tags": [PROJECT_TAG, lab_id]}
        return node


class VultrAdapter(Adapter):
    """Vultr API v2: monthly prices, ssh key ids at creation, one tag per instance."""

    name = "vultr"
    price_unit = "monthly"
    price_note = f"Vultr lists monthly prices: hourly = monthly / {HOURS_PER_MONTH:g}"

    def nodes(self, driver: NodeDriver) -> list[Node]:
        return list(driver.list_nodes(ex_list_bare_metals=False))

    def sizes(self, driver: NodeDriver, location: NodeLocation | None) -> list[NodeSize]:
        sizes = list(driver.list_sizes(ex_list_bare_metals=False))
        if location is not None:
            # Plans list the regions they are sold in; one not sold here would fail at create.
            sizes = [s for s in sizes if not (s.extra or {}).get("locations")
                     or location.id in s.extra["locations"]]
        return sizes

    def images(self, driver: NodeDriver, location: NodeLocation | None) -> list[Any]:
        return list(driver.list_images())

    def create_node(self, driver: NodeDriver, *, name: str, size: NodeSize, image: Any,
                    location: NodeLocation | None, key: KeyRecord, public_key: str,
                    lab_id: str) -> Node:
        return driver.create_node(name=name, size=size, location=location, image=image,
                                  ex_ssh_key_ids=[key.id], ex_tag=lab_id, ex_hostname=name)

    def node_tags(self, node: Node) -> list[str]:
        extra = node.extra or {}
        tags = list(extra.get("tags") or [])
        if extra.get("tag"):
            tags.append(str(extra["tag"]))
        return [str(t) for t in tags]


class DigitalOceanAdapter(Adapter):
    """DigitalOcean API v2: hourly prices, keys via /account/keys, tags in ex_create_attr."""

    name = "digitalocean"
    price_note = "DigitalOcean lists hourly prices (price_hourly)"

    def sizes(self, driver: NodeDriver, location: NodeLocation | None) -> list[NodeSize]:
        return list(driver.list_sizes(location=location))

    def import_key(self, driver: NodeDriver, name: str, public_key: str) -> KeyRecord:
        pair = driver.create_key_pair(name, public_key=public_key)
        return KeyRecord(name, self.key_id(pair))

    def create_node(self, driver: NodeDriver, *, name: str, size: NodeSize, image: Any,
                    location: NodeLocation | None, key: KeyRecord, public_key: str,
                    lab_id: str) -> Node:
        key_id: int | str = int(key.id) if key.id and key.id.isdigit() else str(key.id)
        return driver.create_node(name=name, size=size, image=image, location=location,
                                  ex_create_attr={"ssh_keys": [key_id],
                                                  "tags": [PROJECT_TAG, lab_id]})


class LinodeAdapter(Adapter):
    """Linode API v4: hourly prices; the public key goes in at creation (no key resource)."""

    name = "linode"
    price_note = "Linode lists hourly prices"
    has_key_resource = False

    def import_key(self, driver: NodeDriver, name: str, public_key: str) -> KeyRecord:
        return KeyRecord(name, None)

    def list_keys(self, driver: NodeDriver) -> list[KeyPair] | None:
        return None

    def create_node(self, driver: NodeDriver, *, name: str, size: NodeSize, image: Any,
                    location: NodeLocation | None, key: KeyRecord, public_key: str,
                    lab_id: str) -> Node:
        # Linode wants a root password with an image; a random one nobody keeps: the
        # pipeline logs in with the lab's key only.
        return driver.create_node(location, name, size, image,
                                  root_pass=secrets.token_urlsafe(24),
                                  ex_authorized_keys=[public_key],
                                  ex_tags=[PROJECT_TAG, lab_id])


class Ec2Adapter(Adapter):
    """EC2: the region is the driver's; hourly prices from libcloud's pricing data."""

    name = "ec2"
    price_note = "EC2 hourly on-demand Linux prices from libcloud's bundled pricing data"

    def find_location(self, driver: NodeDriver, region: str) -> NodeLocation | None:
        # The driver is built for the region; its "locations" are availability zones.
        return None

    def create_node(self, driver: NodeDriver, *, name: str, size: NodeSize, image: Any,
                    location: NodeLocation | None, key: KeyRecord, public_key: str,
                    lab_id: str) -> Node:
        return driver.create_node(name=name, size=size, image=image, ex_keyname=key.name,
                                  ex_metadata={PROJECT_TAG: lab_id})


ADAPTERS: dict[str, type[Adapter]] = {
    "dummy": DummyAdapter, "vultr": VultrAdapter, "digitalocean": DigitalOceanAdapter,
    "linode": LinodeAdapter, "ec2": Ec2Adapter,
}
_PROVIDER = {"dummy": Provider.DUMMY, "vultr": Provider.VULTR,
             "digitalocean": Provider.DIGITAL_OCEAN, "linode": Provider.LINODE,
             "ec2": Provider.EC2}


def adapter_for(driver_name: str) -> Adapter:
    return ADAPTERS[driver_name]()


def make_driver(config: CloudConfig, credentials: Credentials) -> NodeDriver:
    """The libcloud driver the config names, with ``driver_options`` (tests: a local fake)."""
    cls = get_driver(_PROVIDER[config.driver])
    options = dict(config.driver_options)
    if config.driver == "dummy":
        return call(credentials, "dummy driver", cls, credentials.key)
    if config.driver == "vultr":
        options.setdefault("api_version", "2")
        return call(credentials, "vultr driver", cls, credentials.key, **options)
    if config.driver == "digitalocean":
        # libcloud 3.9.1's DigitalOcean driver takes no host/port/secure: its __new__ hands
        # extra kwargs to object.__new__ (TypeError) and DigitalOcean_v2_BaseDriver.__init__
        # drops them (it would talk to api.digitalocean.com). Re-point the connection instead.
        endpoint = {k: options.pop(k) for k in ("host", "port", "secure") if k in options}
        options.setdefault("api_version", "v2")
        driver = call(credentials, "digitalocean driver", cls, credentials.key, **options)
        if endpoint:
            connection = driver.connection
            connection.host = endpoint.get("host", connection.host)
            connection.port = int(endpoint.get("port", connection.port))
            connection.secure = bool(endpoint.get("secure", connection.secure))
            connection.connect()
        return driver
    if config.driver == "linode":
        options.setdefault("api_version", "4.0")
        return call(credentials, "linode driver", cls, credentials.key, **options)
    options.setdefault("region", config.region)
    return call(credentials, "ec2 driver", cls, credentials.key, credentials.secret, **options)
