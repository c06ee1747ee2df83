"""`invoke status`: the provider's hosts and the runs on disk, at a glance."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from experiments.rawdata import RAW_DIR, RunDir, RunDirError
from infra.providers import Provider


def print_status(provider: Provider, console: Console, raw_dir: Path = RAW_DIR) -> None:
    hosts = Table(title=f"provider {provider.name}")
    for column in ("host", "provisioned", "reachable", "details"):
        hosts.add_column(column)
    rows = provider.status()
    if not rows:
        hosts.add_row("(none)", "False", "", f"run `invoke provision --provider {provider.name}`")
    for host in rows:
        details = ", ".join(f"{k}={v}" for k, v in host.items()
                            if k not in ("host", "provisioned", "reachable"))
        hosts.add_row(host["host"], str(host["provisioned"]), str(host["reachable"]), details)
    console.print(hosts)

    runs = Table(title=f"runs in {raw_dir}")
    for column in ("run", "config", "ok", "failed", "pending", "started", "ended"):
        runs.add_column(column)
    for path in sorted(raw_dir.glob("*/manifest.json")):
        try:
            manifest = RunDir(path.parent).read_manifest()
        except RunDirError as error:
            runs.add_row(path.parent.name, f"[red]{error}[/red]", "", "", "", "", "")
            continue
        counts = Counter(cell["status"] for cell in manifest["cells"])
        imported = manifest.get("source") == "imported"
        runs.add_row(manifest["run_id"], manifest["config_name"], str(counts["ok"]),
                     str(counts["failed"]), str(counts["pending"]),
                     "imported" if imported else manifest["started_at"],
                     "imported" if imported else
                     manifest["ended_at"] or "[yellow]not finished[/yellow]")
    console.print(runs)
