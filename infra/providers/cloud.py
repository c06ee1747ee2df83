"""The cloud provider: VMs created through Apache Libcloud, then used like ssh-inventory hosts.

``provision`` plans (images, sizes, prices), checks the guards, asks for confirmation,
creates a key pair and the VMs, waits for them to run and answer on SSH, records their host
keys (trust on first use, pinned afterwards), gathers facts and optionally bootstraps them
with the ssh provider's code. Any failure part-way deletes what was created. ``destroy``
deletes every VM and key of every lab in data/state/cloud.json (or only expired labs, or
papaya-named resources no state knows) and checks through the API that they are gone.

Hosts from an ssh inventory (``[cloud] inventory = ...``) join the lab: clouds have no
32-bit images, so a 32-bit Kali VM the user runs comes in that way.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from libcloud.compute.base import NodeDriver
from rich.console import Console
from rich.prompt import Confirm

from infra.bootstrap import bootstrap as bootstrap_host
from infra.cloud.config import CloudConfig, CloudConfigError, load_cloud_config
from infra.cloud.credentials import Credentials, CredentialsError, load_credentials
from infra.cloud.drivers import PROJECT_TAG, CloudError, adapter_for, make_driver
from infra.cloud.lifecycle import (
    POLL_S,
    Cloud,
    LabCreation,
    delete_orphans,
    destroy_lab,
    find_orphans,
    generate_key,
)
from infra.cloud.plan import CloudPlan, build_plan, check_guards, render_plan, usd
from infra.cloud.state import CloudState, new_lab_id
from infra.hosts import HostError
from infra.providers import HostEntry, Lab, ProviderError
from infra.providers.ssh import SshLab, SshProvider
from infra.remote import RemoteHost
from infra.remote_facts import gather_facts
from infra.state import STATE_DIR

DriverFactory = Callable[[CloudConfig, Credentials], NodeDriver]
_CONNECT_TIMEOUT_S = 10.0


def _default_confirm(console: Console) -> Callable[[str], bool]:
    def ask(prompt: str) -> bool:
        if not sys.stdin.isatty():
            console.print("no terminal to confirm on: pass --yes to create paid VMs")
            return False
        return Confirm.ask(prompt, default=False, console=console)
    return ask


class CloudProvider:
    name = "cloud"

    def __init__(self, config: Path | None, *, state_dir: Path = STATE_DIR,
                 console: Console | None = None, confirm: Callable[[str], bool] | None = None,
                 environ: Mapping[str, str] = os.environ,
                 driver_factory: DriverFactory | None = None,
                 clock: Callable[[], datetime] | None = None,
                 poll_s: float = POLL_S) -> None:
        self.config_path = Path(config) if config is not None else None
        self.state = CloudState(state_dir)
        self.state_dir = Path(state_dir)
        self.console = console or Console()
        self.confirm = confirm or _default_confirm(self.console)
        self.environ = environ
        # One factory for every driver this provider makes: tests hand in one that returns
        # the same in-memory dummy driver, so its nodes outlive a CloudProvider instance.
        self.driver_factory = driver_factory or make_driver
        self.clock = clock or (lambda: datetime.now(UTC))
        self.poll_s = poll_s
        self._config: CloudConfig | None = None
        self._clouds: dict[str, Cloud] = {}

    # ------------------------------------------------------------------ helpers

    @property
    def config(self) -> CloudConfig:
        if self._config is None:
            if self.config_path is None:
                raise ProviderError("cloud provider: no config: pass --config with a [cloud] "
                                    "section (see experiments/configs/cloud-example.toml)")
            try:
                self._config = load_cloud_config(self.config_path)
            except CloudConfigError as error:
                raise ProviderError(f"cloud provider: {error}") from None
        return self._config

    def _cloud(self, config: CloudConfig) -> Cloud:
        ident = f"{config.driver} {sorted(config.driver_options.items())} " \
                f"{config.credentials_file}"
        if ident not in self._clouds:
            try:
                credentials = load_credentials(config, self.environ)
            except CredentialsError as error:
                raise ProviderError(f"cloud provider: {error}") from None
            try:
                driver = self.driver_factory(config, credentials)
            except CloudError:
                raise
            except Exception as error:  # noqa: BLE001 - scrubbed, chain dropped
                raise CloudError(credentials.scrub(f"{config.driver}: driver: {error}")
                                 ) from None
            self._clouds[ident] = Cloud(config.driver, driver, adapter_for(config.driver),
                                        credentials, self.console, self.poll_s)
        return self._clouds[ident]

    def _lab_config(self, lab: dict[str, Any]) -> CloudConfig:
        """What a lab was created with (driver, options, credentials file), from its state:
        destroy must work without the config, or after it changed."""
        credentials_file = lab.get("credentials_file")
        return CloudConfig(Path(lab.get("config") or "."), lab["driver"], lab["region"], (),
                           credentials_file=Path(credentials_file) if credentials_file else None,
                           driver_options=dict(lab.get("driver_options") or {}))

    def say(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def _current_lab(self) -> dict[str, Any]:
        data = self.state.load()
        lab_id = data.get("current")
        lab = data["labs"].get(lab_id) if lab_id else None
        if lab is None:
            raise ProviderError(f"cloud provider: no lab ({self.state.path} has none): run "
                                "`invoke provision --provider cloud --config <file>` first")
        if lab.get("status") != "ready":
            raise ProviderError(f"cloud provider: lab {lab_id} is {lab.get('status')!r}, not "
                                f"ready ({lab.get('error', 'provision did not finish')}); "
                                "destroy it and provision again")
        return lab

    # ------------------------------------------------------------------ plan / provision

    def plan(self) -> CloudPlan:
        config = self.config
        cloud = self._cloud(config)
        return build_plan(config, cloud.driver, cloud.adapter, cloud.credentials)

    def provision(self, *, bootstrap: bool = False, dry_run: bool = False,
                  yes: bool = False) -> dict[str, Any]:
        config = self.config
        plan = self.plan()
        render_plan(plan, self.console)
        running = [lab for lab in self.state.labs().values()
                   if lab.get("driver") == config.driver and lab.get("nodes")]
        existing = {"existing_hosts": sum(len(lab["nodes"]) for lab in running),
                    "existing_hourly_usd": sum(rec.get("hourly_usd") or 0.0 for lab in running
                                               for rec in lab["nodes"].values())}
        for lab in running:
            self.say(f"note: lab {lab['lab_id']} still has {len(lab['nodes'])} VM(s); the "
                     "guards count them too")
        if dry_run:
            try:
                check_guards(plan, **existing)
                guard_error = None
                self.say("guards: ok. Dry run: nothing created.")
            except CloudError as error:
                guard_error = str(error)
                self.say(f"[red]{error}[/red]\nDry run: nothing created.")
            return {"dry_run": True, "plan": plan.to_dict(), "guard_error": guard_error}
        check_guards(plan, **existing)
        if config.inventory is not None:
            SshProvider(config.inventory, state_dir=self.state_dir).inventory()  # fail early
        prompt = (f"create {plan.host_count} VM(s) on {plan.driver} in {plan.region} for "
                  f"{usd(plan.total_hourly_usd)}/h (≈ {usd(plan.run_estimate_usd, 2)} per "
                  f"run, deleted by `invoke destroy --expired` after {plan.ttl_hours:g} h)?")
        if not yes and not self.confirm(prompt):
            raise ProviderError("cloud provider: not confirmed: nothing created")
        lab = self._new_lab(config, plan)
        cloud = self._cloud(config)
        try:
            LabCreation(cloud, plan, lab, self.state.save_lab, ssh_port=config.ssh_port,
                        timeout_s=config.ssh_timeout_s).run()
            self._connect_nodes(lab, config, bootstrap=bootstrap)
            if config.inventory is not None:
                self._provision_inventory(lab, config, bootstrap=bootstrap)
        except BaseException as error:  # KeyboardInterrupt too: nothing may stay behind
            self._cleanup_failed(cloud, lab, error)
            if isinstance(error, ProviderError | HostError):
                raise ProviderError(f"{error}; {lab['cleanup_summary']}") from None
            raise
        lab["status"] = "ready"
        lab.pop("error", None)
        self.state.save_lab(lab)
        self.say(f"lab {lab['lab_id']} ready: {len(lab['nodes'])} VM(s); expires "
                 f"{lab['expires_at']} (`invoke destroy --provider cloud` deletes it)")
        return {**lab, "hosts": self._hosts_summary(lab)}

    @staticmethod
    def _hosts_summary(lab: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Every host by its short name with roles, address and facts, as the other
        providers' states have them (tasks.py prints this)."""
        hosts = {rec["short_name"]: {"roles": rec["roles"], "address": rec["address"],
                                     "vm": vm, "facts": rec.get("facts", {})}
                 for vm, rec in lab["nodes"].items()}
        for name, rec in lab.get("inventory_hosts", {}).items():
            hosts[name] = {"roles": rec["roles"], "address": rec["address"],
                           "vm": None, "facts": rec.get("facts", {})}
        return hosts

    def _new_lab(self, config: CloudConfig, plan: CloudPlan) -> dict[str, Any]:
        now = self.clock()
        lab_id = new_lab_id(now)
        lab_dir = self.state.lab_dir(lab_id)
        key_file, public_key_file = generate_key(lab_dir, lab_id)
        known_hosts = lab_dir / "known_hosts"
        known_hosts.touch(mode=0o600)
        lab: dict[str, Any] = {
            "lab_id": lab_id, "provider": self.name, "driver": config.driver,
            "region": config.region, "config": str(config.path.resolve()),
            "credentials_file": str(config.credentials_file) if config.credentials_file
            else None,
            "driver_options": dict(config.driver_options),
            "created_at": now.isoformat(timespec="seconds"),
            "ttl_hours": config.ttl_hours,
            "expires_at": (now + timedelta(hours=config.ttl_hours)).isoformat(
                timespec="seconds"),
            "status": "creating", "ssh_port": config.ssh_port,
            "key_file": str(key_file), "public_key_file": str(public_key_file),
            "known_hosts": str(known_hosts), "tags": [PROJECT_TAG, lab_id],
            "key": None, "nodes": {}, "plan": plan.to_dict(),
            "inventory": str(config.inventory) if config.inventory else None,
            "inventory_hosts": {}, "server": config.server, "loadgen": config.loadgen,
        }
        self.state.save_lab(lab)
        return lab

    def _cleanup_failed(self, cloud: Cloud, lab: dict[str, Any], error: BaseException) -> None:
        reason = str(error) or type(error).__name__
        lab["status"] = "failed"
        lab["error"] = reason
        self.state.save_lab(lab)
        self.say(f"[red]lab {lab['lab_id']}: provision failed: {reason}[/red]")
        self.say("deleting what was created ...")
        deleted, left = destroy_lab(cloud, lab)
        for line in deleted:
            self.say(f"  deleted {line}")
        if left:
            lab["cleanup"] = {"deleted": deleted, "left": left}
            self.state.save_lab(lab)
            lab["cleanup_summary"] = (f"deleted: {', '.join(deleted) or 'nothing'}; LEFT "
                                      f"BEHIND: {'; '.join(left)} (run `invoke destroy "
                                      "--provider cloud` again)")
            self.say(f"[red]{lab['cleanup_summary']}[/red]")
        else:
            self.state.forget_lab(lab["lab_id"])
            lab["cleanup_summary"] = f"deleted: {', '.join(deleted) or 'nothing'}"

    # ------------------------------------------------------------------ hosts

    def _remote(self, lab: dict[str, Any], vm_name: str) -> RemoteHost:
        record = lab["nodes"][vm_name]
        return RemoteHost(record["short_name"], record["address"], port=lab["ssh_port"],
                          user=record["user"], key_file=Path(lab["key_file"]),
                          known_hosts=Path(lab["known_hosts"]),
                          connect_timeout=_CONNECT_TIMEOUT_S, python=record["python"])

    def _connect(self, lab: dict[str, Any], vm_name: str, deadline: float) -> RemoteHost:
        """Log in with the lab's key; retried while the image is still installing the key
        (cloud-init), never when the host key differs from the recorded one."""
        while True:
            host = self._remote(lab, vm_name)
            try:
                host.connect()
                return host
            except HostError as error:
                host.close()
                message = str(error)
                pinned = "host key" in message and ("mismatch" in message or "not in" in message)
                if pinned or time.monotonic() >= deadline:
                    raise ProviderError(f"host {vm_name}: connect: {message}") from None
                self.say(f"{vm_name}: not ready for login yet ({message}); retrying")
            time.sleep(min(self.poll_s, max(0.0, deadline - time.monotonic())))

    def _connect_nodes(self, lab: dict[str, Any], config: CloudConfig, *,
                       bootstrap: bool) -> None:
        deadline = time.monotonic() + config.ssh_timeout_s
        for vm_name, record in lab["nodes"].items():
            host = self._connect(lab, vm_name, deadline)
            try:
                record["facts"] = self._facts(vm_name, host)
                if bootstrap:
                    self.say(f"{vm_name}: bootstrap")
                    record["bootstrap_log"] = bootstrap_host(host, vm_name, record["facts"],
                                                             sudo=record.get("sudo"))
                    record["facts"] = self._facts(vm_name, host)
            except HostError as error:
                raise ProviderError(f"host {vm_name}: {error}") from None
            finally:
                host.close()
            facts = record["facts"]
            self.say(f"{vm_name}: {facts.get('os_release') or facts.get('os')} "
                     f"{facts.get('arch')}, {len(facts.get('usable_cpus') or [])} CPU(s)")
            self.state.save_lab(lab)

    @staticmethod
    def _facts(vm_name: str, host: RemoteHost) -> dict[str, Any]:
        try:
            return gather_facts(host)
        except HostError as error:
            raise ProviderError(f"host {vm_name}: facts: {error}") from None

    def _ssh(self, lab: dict[str, Any]) -> SshProvider | None:
        if not lab.get("inventory"):
            return None
        return SshProvider(Path(lab["inventory"]), state_dir=self.state_dir)

    def _provision_inventory(self, lab: dict[str, Any], config: CloudConfig, *,
                             bootstrap: bool) -> None:
        ssh = self._ssh(lab)
        assert ssh is not None
        for entry in ssh.inventory().hosts:
            if any(rec["short_name"] == entry.name for rec in lab["nodes"].values()):
                raise ProviderError(f"cloud provider: inventory host {entry.name!r} has the "
                                    "name of a cloud host; rename one of them")
            record: dict[str, Any] = entry.to_state()
            lab["inventory_hosts"][entry.name] = record
            self.say(f"inventory host {entry.describe()}: facts"
                     + (" and bootstrap" if bootstrap else ""))
            ssh._provision_host(entry, record, bootstrap=bootstrap, dry_run=False)
            self.state.save_lab(lab)

    def hosts(self) -> list[HostEntry]:
        lab = self._current_lab()
        entries = [HostEntry(rec["short_name"], list(rec["roles"]), self._remote(lab, vm),
                             rec["address"], None, rec.get("facts", {}))
                   for vm, rec in lab["nodes"].items()]
        ssh = self._ssh(lab)
        if ssh is not None:
            inventory = ssh.inventory()
            entries += [ssh.host_entry(inventory.host(name), rec)
                        for name, rec in lab["inventory_hosts"].items()]
        return entries

    def lab(self) -> Lab:
        lab = self._current_lab()
        entries = {e.name: e for e in self.hosts()}
        server = self._pick(lab, entries, "server")
        loadgen = self._pick(lab, entries, "loadgen", avoid=server.name)
        result = SshLab(self.name, server.host,
                        server.host if loadgen.name == server.name else loadgen.host,
                        {name: e.facts for name, e in entries.items()}, server.address)
        result.server_cpus, server_note = _cpus(server)
        result.aux_cpus, loadgen_note = _cpus(loadgen)
        result.same_host = loadgen.name == server.name
        notes = [n for n in (server_note, None if result.same_host else loadgen_note) if n]
        result.cpus_note = "; ".join(notes) or None
        return result

    @staticmethod
    def _pick(lab: dict[str, Any], entries: dict[str, HostEntry], role: str,
              avoid: str | None = None) -> HostEntry:
        chosen = lab.get(role)
        if chosen:
            if chosen not in entries:
                raise ProviderError(f"cloud provider: [cloud] {role} = {chosen!r} is not a host "
                                    f"of the lab ({', '.join(entries)})")
            if role not in entries[chosen].roles:
                raise ProviderError(f"cloud provider: [cloud] {role} = {chosen!r} does not "
                                    f"have role {role!r} (roles: {entries[chosen].roles})")
            return entries[chosen]
        candidates = [e for e in entries.values() if role in e.roles]
        if not candidates:
            raise ProviderError(f"cloud provider: the lab has no host with role {role!r} "
                                f"(hosts: {', '.join(entries)})")
        return next((e for e in candidates if e.name != avoid), candidates[0])

    # ------------------------------------------------------------------ status / destroy

    def status(self) -> list[dict[str, Any]]:
        """Every node of every lab, with whether the provider's API still lists it."""
        rows: list[dict[str, Any]] = []
        now = self.clock()
        for lab_id, lab in self.state.labs().items():
            expired = _expired(lab, now)
            try:
                listed: dict[str, Any] | None = {
                    str(n.id): n for n in self._cloud(self._lab_config(lab)).nodes()}
                api_error = None
            except ProviderError as error:
                listed, api_error = None, str(error)
            for vm_name, rec in lab.get("nodes", {}).items():
                node = listed.get(rec["id"]) if listed is not None else None
                exists = None if listed is None else node is not None
                row = {"host": rec.get("short_name"), "provisioned": lab.get("status") == "ready",
                       "reachable": bool(exists) and _answers(rec.get("address"),
                                                              lab.get("ssh_port", 22)),
                       "lab": lab_id, "vm": vm_name,
                       "id": rec["id"], "driver": lab["driver"], "region": lab["region"],
                       "address": rec.get("address"), "roles": ",".join(rec.get("roles", [])),
                       "lab_status": lab.get("status"), "expires_at": lab.get("expires_at"),
                       "expired": expired,
                       "exists": exists,
                       "state": str(node.state) if node is not None else
                       ("unknown" if listed is None else "gone")}
                if api_error:
                    row["error"] = api_error
                rows.append(row)
            for name, rec in lab.get("inventory_hosts", {}).items():
                rows.append({"host": name, "provisioned": bool(rec.get("facts")),
                             "reachable": _answers(rec["address"], rec["port"]),
                             "lab": lab_id, "vm": None, "id": None,
                             "driver": "ssh inventory", "region": None,
                             "address": f"{rec['address']}:{rec['port']}",
                             "roles": ",".join(rec.get("roles", [])),
                             "lab_status": lab.get("status"), "expires_at": None,
                             "expired": False, "exists": None, "state": "inventory"})
        return rows

    def destroy(self, *, expired: bool = False, orphans: bool = False,
                lab_id: str | None = None) -> list[str]:
        """Delete labs (all; only expired ones; or one) or, with ``orphans``, papaya-named
        resources no state knows. Returns what was deleted; raises ProviderError listing
        whatever is still there."""
        if orphans:
            return self._destroy_orphans()
        labs = self.state.labs()
        now = self.clock()
        chosen = {i: lab for i, lab in labs.items()
                  if (lab_id is None or i == lab_id) and (not expired or _expired(lab, now))}
        if not chosen:
            what = ("no expired lab" if expired else f"no lab {lab_id}" if lab_id else "no lab")
            self.say(f"cloud: nothing to destroy: {what} in {self.state.path}"
                     + (f" ({len(labs)} lab(s) not expired yet)" if expired and labs else ""))
            return []
        deleted: list[str] = []
        problems: list[str] = []
        for i, lab in chosen.items():
            self.say(f"destroying lab {i} ({lab['driver']}, {len(lab.get('nodes', {}))} "
                     "VM(s))")
            try:
                cloud = self._cloud(self._lab_config(lab))
            except ProviderError as error:
                problems.append(f"lab {i}: {error}")
                continue
            done, left = destroy_lab(cloud, lab)
            deleted += [f"lab {i}: {d}" for d in done]
            for line in done:
                self.say(f"  deleted {line}")
            if left:
                problems += [f"lab {i}: {p}" for p in left]
                lab["status"] = "destroy-incomplete"
                lab["cleanup"] = {"deleted": done, "left": left}
                self.state.save_lab(lab, current=False)
            else:
                self.state.forget_lab(i)
                deleted.append(f"lab {i}: state and keys in {self.state.lab_dir(i)}")
        if problems:
            raise ProviderError("cloud provider: destroy incomplete, still there: "
                                + "; ".join(problems) + " (run destroy again)")
        return deleted

    def _destroy_orphans(self) -> list[str]:
        labs = self.state.labs()
        configs: dict[str, CloudConfig] = {}
        config_error = None
        if self.config_path is not None:
            try:
                configs[self.config.driver] = self.config
            except ProviderError as error:  # e.g. the default config, with no [cloud]
                config_error = error
        for lab in labs.values():
            configs.setdefault(lab["driver"], self._lab_config(lab))
        if not configs:
            raise ProviderError("cloud provider: destroy --orphans needs --config with a "
                                "[cloud] section (which driver and account to search) when "
                                "no lab is in the state" + (f": {config_error}" if config_error
                                                            else ""))
        known_nodes = {rec["id"] for lab in labs.values() for rec in lab.get("nodes", {}).values()}
        known_keys = {str(v) for lab in labs.values() if lab.get("key")
                      for v in (lab["key"].get("name"), lab["key"].get("id")) if v}
        deleted: list[str] = []
        problems: list[str] = []
        for driver_name, config in configs.items():
            cloud = self._cloud(config)
            nodes, keys = find_orphans(cloud, known_nodes, known_keys)
            if not nodes and not keys:
                self.say(f"cloud: no orphans on {driver_name}")
                continue
            done, left = delete_orphans(cloud, nodes, keys)
            for line in done:
                self.say(f"  deleted {line}")
            deleted += done
            problems += left
        if problems:
            raise ProviderError("cloud provider: orphans left: " + "; ".join(problems))
        return deleted

    @contextlib.contextmanager
    def teardown_on_exit(self, *, keep: bool = False) -> Iterator[CloudProvider]:
        """Destroy the current lab when the block ends, also on error or Ctrl-C; not with
        ``keep``. A teardown failure is reported; it does not hide the block's own error."""
        lab_id = self.state.load().get("current")
        failed: BaseException | None = None
        try:
            yield self
        except BaseException as error:
            failed = error
            raise
        finally:
            lab_id = lab_id or self.state.load().get("current")
            if keep:
                self.say(f"--keep: lab {lab_id} stays; `invoke destroy --provider cloud` "
                         "deletes it")
            elif lab_id:
                why = "interrupted" if isinstance(failed, KeyboardInterrupt) else \
                    "failed" if failed else "finished"
                self.say(f"run {why}: tearing down lab {lab_id}")
                try:
                    self.destroy(lab_id=lab_id)
                except ProviderError as error:
                    self.say(f"[red]teardown: {error}[/red]")
                    if failed is None:
                        raise


def _answers(address: str | None, port: int) -> bool:
    """Whether something accepts TCP connections on the SSH port (a quick probe)."""
    if not address:
        return False
    try:
        with socket.create_connection((address, port), timeout=2.0):
            return True
    except OSError:
        return False


def _expired(lab: dict[str, Any], now: datetime) -> bool:
    try:
        return datetime.fromisoformat(lab["expires_at"]) <= now
    except (KeyError, TypeError, ValueError):
        return True  # a lab without a readable expiry is treated as expired: never kept


def _cpus(entry: HostEntry) -> tuple[list[int], str | None]:
    if entry.cpus:
        return list(entry.cpus), None
    usable = list(entry.facts.get("usable_cpus") or [])
    return usable, (f"host {entry.name}: using every CPU it reports "
                    f"({','.join(map(str, usable))})")

