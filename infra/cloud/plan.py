"""What a provision would create and what it would cost, before anything is created.

The plan resolves every image and size through the driver's own lists (so a typo fails
here, listing close matches), prices each host in hourly USD (normalised per driver, see
drivers.Adapter.price_unit) and checks the config's guards. ``provision(dry_run=True)``
prints it and stops; a real provision checks the guards again and asks for confirmation.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libcloud.compute.base import NodeDriver, NodeLocation, NodeSize
from rich.console import Console
from rich.table import Table

from infra.cloud.config import CloudConfig, CloudHostSpec
from infra.cloud.credentials import Credentials
from infra.cloud.drivers import Adapter, CloudError, call

MIN_RAM_MB = 2048  # the paper's VMs: 1 vCPU, 2 GB
MIN_VCPUS = 1
CELL_OVERHEAD_S = 5.0  # start/stop of server, load generator and tracer per cell
SETUP_HOURS = 0.25  # creation, boot, bootstrap and build before the first cell


@dataclass
class PlannedHost:
    spec: CloudHostSpec
    image_id: str
    image_name: str
    size_id: str
    size_name: str
    ram_mb: int | None
    vcpus: int | None
    hourly_usd: float | None  # one VM; None: the driver gives no price
    # The libcloud objects, for create_node; not part of the printed plan.
    image: Any = field(repr=False, default=None)
    size: Any = field(repr=False, default=None)

    @property
    def total_hourly_usd(self) -> float | None:
        return None if self.hourly_usd is None else self.hourly_usd * self.spec.count


@dataclass
class CloudPlan:
    driver: str
    region: str
    hosts: list[PlannedHost]
    price_note: str
    run_hours: float
    run_hours_source: str
    ttl_hours: float
    max_hosts: int
    max_hourly_usd: float
    location: Any = field(repr=False, default=None)

    @property
    def host_count(self) -> int:
        return sum(h.spec.count for h in self.hosts)

    @property
    def prices_known(self) -> bool:
        return all(h.hourly_usd is not None for h in self.hosts)

    @property
    def total_hourly_usd(self) -> float | None:
        if not self.prices_known:
            return None
        return sum(h.total_hourly_usd or 0.0 for h in self.hosts)

    @property
    def run_estimate_usd(self) -> float | None:
        total = self.total_hourly_usd
        return None if total is None else total * self.run_hours

    @property
    def ttl_estimate_usd(self) -> float | None:
        total = self.total_hourly_usd
        return None if total is None else total * self.ttl_hours

    def to_dict(self) -> dict[str, Any]:
        return {
            "driver": self.driver, "region": self.region, "price_note": self.price_note,
            "hosts": [{"name": h.spec.name, "count": h.spec.count, "roles": list(h.spec.roles),
                       "image": h.image_name, "image_id": h.image_id, "size": h.size_name,
                       "size_id": h.size_id, "ram_mb": h.ram_mb, "vcpus": h.vcpus,
                       "hourly_usd": h.hourly_usd} for h in self.hosts],
            "host_count": self.host_count, "total_hourly_usd": self.total_hourly_usd,
            "run_hours": self.run_hours, "run_hours_source": self.run_hours_source,
            "run_estimate_usd": self.run_estimate_usd, "ttl_hours": self.ttl_hours,
            "ttl_estimate_usd": self.ttl_estimate_usd,
        }


def usd(value: float | None, digits: int = 4) -> str:
    return "unknown" if value is None else f"${value:.{digits}f}"


def build_plan(config: CloudConfig, driver: NodeDriver, adapter: Adapter,
               credentials: Credentials | None) -> CloudPlan:
    location = call(credentials, f"{config.driver}: list regions", adapter.find_location,
                    driver, config.region)
    images = call(credentials, f"{config.driver}: list images", adapter.images, driver,
                  location)
    sizes = call(credentials, f"{config.driver}: list sizes", adapter.sizes, driver, location)
    hosts = []
    for spec in config.hosts:
        image = find_image(images, spec, config.driver)
        size = pick_size(sizes, spec, adapter, config.driver)
        hosts.append(PlannedHost(spec, str(image.id), str(image.name), str(size.id),
                                 str(size.name), _int_or_none(size.ram), adapter.vcpus(size),
                                 adapter.hourly_price(size), image, size))
    run_hours, source = estimate_run_hours(config.path, config.ttl_hours)
    return CloudPlan(config.driver, config.region, hosts, adapter.price_note, run_hours, source,
                     config.ttl_hours, config.max_hosts, config.max_hourly_usd, location)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _image_labels(image: Any) -> list[str]:
    """Every name a user may give an image: its name, "<distribution> <name>" (DigitalOcean
    calls Ubuntu 24.04 "24.04 (LTS) x64" with distribution "Ubuntu"), its slug and its id."""
    extra = image.extra or {}
    labels = [str(image.name)]
    if extra.get("distribution"):
        labels.append(f"{extra['distribution']} {image.name}")
    if extra.get("family") and not str(image.name).casefold().startswith(
            str(extra["family"]).casefold()):
        labels.append(f"{extra['family']} {image.name}")
    if extra.get("slug"):
        labels.append(str(extra["slug"]))
    return labels


def _is_arm(label: str, image: Any) -> bool:
    arch = str((image.extra or {}).get("arch") or "").casefold()
    text = label.casefold()
    return "arm" in arch or "aarch64" in arch or "arm64" in text or "aarch64" in text


def find_image(images: list[Any], spec: CloudHostSpec, driver: str) -> Any:
    """The image ``spec.image`` names: by id or slug, exact name, else a unique prefix."""
    wanted = spec.image.casefold()
    where = f"host {spec.name}: image {spec.image!r}"
    for image in images:
        if str(image.id).casefold() == wanted:
            return image
    exact = [i for i in images if any(lab.casefold() == wanted for lab in _image_labels(i))]
    if len(exact) == 1:
        return exact[0]
    prefix = exact or [i for i in images
                       if any(lab.casefold().startswith(wanted) for lab in _image_labels(i))]
    if len(prefix) > 1 and "arm" not in wanted and "aarch64" not in wanted:
        # "FreeBSD 14" means the x86-64 build unless the user asks for ARM.
        prefix = [i for i in prefix if not _is_arm(str(i.name), i)] or prefix
    if len(prefix) == 1:
        return prefix[0]
    if len(prefix) > 1:
        names = ", ".join(sorted(f"{i.name} (id {i.id})" for i in prefix)[:12])
        raise CloudError(f"{where} is ambiguous in the {driver} image list: {names}; "
                         "give the full name or the id")
    labels = sorted({lab for i in images for lab in _image_labels(i)})
    close = difflib.get_close_matches(spec.image, labels, n=6, cutoff=0.4)
    if not close:
        words = wanted.split()
        close = [lab for lab in labels if words and words[0] in lab.casefold()][:6]
    hint = f"close matches: {', '.join(close)}" if close else \
        f"{len(images)} images listed, none close"
    raise CloudError(f"{where} not found in the {driver} image list; {hint}")


def pick_size(sizes: list[NodeSize], spec: CloudHostSpec, adapter: Adapter,
              driver: str) -> NodeSize:
    """``spec.size`` by id or name, else the cheapest with >= 1 vCPU and >= 2 GB RAM."""
    where = f"host {spec.name}"
    if spec.size is not None:
        wanted = spec.size.casefold()
        for size in sizes:
            if str(size.id).casefold() == wanted or str(size.name).casefold() == wanted:
                return size
        labels = sorted({str(s.id) for s in sizes} | {str(s.name) for s in sizes})
        close = difflib.get_close_matches(spec.size, labels, n=6, cutoff=0.4)
        hint = f"close matches: {', '.join(close)}" if close else \
            f"sizes: {', '.join(labels[:12])}"
        raise CloudError(f"{where}: size {spec.size!r} not offered by {driver} here; {hint}")
    fitting = []
    for size in sizes:
        ram = _int_or_none(size.ram)
        vcpus = adapter.vcpus(size)
        # A driver that does not say how many vCPUs a size has gives at least one.
        if ram is not None and ram >= MIN_RAM_MB and (vcpus is None or vcpus >= MIN_VCPUS):
            fitting.append(size)
    if not fitting:
        raise CloudError(f"{where}: no {driver} size has >= {MIN_VCPUS} vCPU and "
                         f">= {MIN_RAM_MB} MB RAM here; name one with size = \"...\"")

    def cost(size: NodeSize) -> tuple[int, float, int]:
        price = adapter.hourly_price(size)
        # Priced sizes first (cheapest), then unpriced ones by RAM: never guess a price.
        return (price is None, price or 0.0, _int_or_none(size.ram) or 0)

    return min(fitting, key=cost)


def estimate_run_hours(config_path: Path, ttl_hours: float) -> tuple[float, str]:
    """Hours one run of the experiment config takes (cells × cell time + setup), or the TTL
    when the config has no experiment (a provider-only file) or cannot be read."""
    try:
        from experiments.cells import plan_cells
        from experiments.config import load_config

        experiment = load_config(config_path)
        cells = plan_cells(experiment)
    except Exception:  # noqa: BLE001 - any failure falls back to the TTL, said in the plan
        return ttl_hours, "ttl_hours (the config's cells could not be counted)"
    if not cells:
        return ttl_hours, "ttl_hours (the config has no cells)"
    seconds = len(cells) * (experiment.load_duration_s + CELL_OVERHEAD_S)
    hours = seconds / 3600 + SETUP_HOURS
    return hours, (f"{len(cells)} cells × ({experiment.load_duration_s:g} s + "
                   f"{CELL_OVERHEAD_S:g} s) + {SETUP_HOURS * 60:g} min setup")


def check_guards(plan: CloudPlan, *, existing_hosts: int = 0,
                 existing_hourly_usd: float = 0.0) -> None:
    """Refuse a plan beyond the config's guards, naming the guard; nothing is created.

    ``existing_*``: VMs of labs this checkout already has running; the guards bound what
    runs at once, so a second provision cannot double the spend unnoticed.
    """
    already = (f" plus {existing_hosts} already running in other labs"
               if existing_hosts else "")
    if plan.host_count + existing_hosts > plan.max_hosts:
        raise CloudError(f"guard max_hosts: the plan has {plan.host_count} hosts{already}, the "
                         f"config allows {plan.max_hosts}; raise max_hosts in [cloud], lower "
                         "counts" + (" or destroy the other labs" if existing_hosts else ""))
    if not plan.prices_known:
        unknown = ", ".join(h.spec.name for h in plan.hosts if h.hourly_usd is None)
        raise CloudError(f"guard max_hourly_usd: the {plan.driver} driver gives no price for "
                         f"host(s) {unknown}, so the hourly cost cannot be checked against "
                         f"${plan.max_hourly_usd:.2f}; refusing rather than guessing")
    total = (plan.total_hourly_usd or 0.0) + existing_hourly_usd
    if total > plan.max_hourly_usd + 1e-12:
        extra = (f" (with {usd(existing_hourly_usd)}/h of labs already running)"
                 if existing_hourly_usd else "")
        raise CloudError(f"guard max_hourly_usd: the plan costs {usd(total)}/h{extra}, the "
                         f"config allows ${plan.max_hourly_usd:.4f}/h; raise max_hourly_usd in "
                         "[cloud] or choose smaller sizes or fewer hosts")


def render_plan(plan: CloudPlan, console: Console) -> None:
    table = Table(title=f"cloud plan: {plan.driver}, region {plan.region}")
    for column in ("host", "count", "roles", "image", "size", "vCPU", "RAM MB", "$/h each",
                   "$/h total"):
        table.add_column(column, justify="right" if column.startswith(("$", "count", "vCPU",
                                                                         "RAM")) else "left")
    for host in plan.hosts:
        table.add_row(host.spec.name, str(host.spec.count), ",".join(host.spec.roles),
                      host.image_name, host.size_name,
                      "?" if host.vcpus is None else str(host.vcpus),
                      "?" if host.ram_mb is None else str(host.ram_mb),
                      usd(host.hourly_usd), usd(host.total_hourly_usd))
    console.print(table)
    console.print(f"prices: {plan.price_note}")
    console.print(f"total: {plan.host_count} host(s), {usd(plan.total_hourly_usd)}/h; "
                  f"per run ≈ {usd(plan.run_estimate_usd, 2)} ({plan.run_hours:.2f} h: "
                  f"{plan.run_hours_source}); until the TTL ({plan.ttl_hours:g} h) ≈ "
                  f"{usd(plan.ttl_estimate_usd, 2)}")
    console.print(f"guards: max_hosts {plan.max_hosts}, max_hourly_usd "
                  f"${plan.max_hourly_usd:.4f}")


def location_id(location: NodeLocation | None) -> str | None:
    return None if location is None else str(location.id)
