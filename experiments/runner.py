"""Run an experiment: plan the cells, build, run each cell, and keep the manifest current.

The runner's only state is what is on disk under data/raw/<run-id>/, so a run can be resumed
after any interruption, including SIGKILL.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from experiments import loadgens
from experiments.build import BUILD_ROOT, build_all
from experiments.cell_run import (
    CellContext,
    RunAborted,
    chat_key_file,
    check_tracer_runs,
    run_cell,
    stage_chat_key,
)
from experiments.cells import WORKLOAD_CHAT, Cell, plan_cells
from experiments.config import ExperimentConfig, load_config
from experiments.rawdata import RAW_DIR, RunDir, now_iso
from experiments.server_registry import discover_servers
from infra.facts import tool_version
from infra.providers import Lab, ProviderError, get_provider

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CELL_OVERHEAD_S = 2.5  # server start, tracer start-up, stop: measured on a 2-core machine


@dataclass
class RunPlan:
    config: ExperimentConfig
    cells: list[Cell]
    run_dir: RunDir | None  # set when resuming

    @property
    def estimated_s(self) -> float:
        return len(self.cells) * (self.config.load_duration_s + CELL_OVERHEAD_S)


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True,
                                  text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(dirty) if dirty is not None else None}


def new_run_id(config: ExperimentConfig) -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{config.name}-{secrets.token_hex(2)}"


def plan_run(config_name: str, resume: str | None, raw_dir: Path = RAW_DIR) -> RunPlan:
    servers = discover_servers()
    known = {n for n, s in servers.items() if s.workload == "sink"}
    known_chat = {n for n, s in servers.items() if s.workload == "chat"}
    if resume:
        run_dir = RunDir.open(resume, raw_dir)
        config = load_config(run_dir.path / "config.toml", known, known_chat)
        manifest = run_dir.read_manifest()
        cells = [Cell(c["id"], c["order"], c["factors"]) for c in manifest["cells"]]
        return RunPlan(config, [c for c in cells if not run_dir.is_complete(c.id)], run_dir)
    config = load_config(config_name, known, known_chat)
    return RunPlan(config, plan_cells(config, {n: s.factors for n, s in servers.items()}), None)


def describe_plan(plan: RunPlan, lab_description: list[str], console: Console) -> None:
    config = plan.config
    console.print(f"[bold]Plan[/bold]: config {config.name} ({config.path})")
    for line in lab_description:
        console.print(f"  host {line}")
    console.print(
        f"  {len(plan.cells)} cells × ({config.warmup_s:g} s warm-up + {config.measure_s:g} s "
        f"measured), sampling every {config.sample_interval_s * 1000:g} ms, "
        f"load {config.generator} at {config.bandwidth_bps / 1e6:g} Mbit/s per connection")
    for cell in plan.cells:
        console.print(f"  {cell.order:3d}  {cell.id}")
    minutes, seconds = divmod(int(plan.estimated_s), 60)
    console.print(f"  estimated duration: {minutes} min {seconds:02d} s")


def _initial_manifest(run_dir: RunDir, plan: RunPlan, lab: Lab, tools: dict[str, Any]
                      ) -> dict[str, Any]:
    config = plan.config
    try:
        config_path = str(config.path.relative_to(PROJECT_ROOT))
    except ValueError:
        config_path = str(config.path)
    return {
        "schema": 1,
        "run_id": run_dir.run_id,
        "source": "measured",
        "config_name": config.name,
        "config_path": config_path,
        "config": config.raw,
        "config_sha256": config.sha256,
        "seed": config.seed,
        "git": git_state(),
        "provider": lab.provider,
        "hosts": lab.facts,
        "server_host": lab.server.name,
        "loadgen_host": lab.loadgen.name,
        "target_address": lab.target_address,
        "cpu_isolation": None,
        "tools": tools,
        "started_at": now_iso(),
        "ended_at": None,
        "resumes": [],
        "cells": [{"id": c.id, "order": c.order, "factors": c.factors, "status": "pending",
                   "reason": None} for c in plan.cells],
    }


def run_experiment(provider_name: str, config_name: str, resume: str | None = None,
                   raw_dir: Path = RAW_DIR, build_root: Path = BUILD_ROOT,
                   console: Console | None = None, inventory: Path | None = None,
                   teardown: bool = False) -> RunDir:
    """Run (or resume) an experiment; ``teardown`` destroys the provider's hosts afterwards,
    whether the run ends, fails or is interrupted (the cloud provider's VMs cost money)."""
    console = console or Console()
    plan = plan_run(config_name, resume, raw_dir)
    provider = get_provider(provider_name, config=plan.config.path, inventory=inventory)
    if teardown and not hasattr(provider, "teardown_on_exit"):
        raise ProviderError(f"--teardown is for the cloud provider, not {provider_name}")
    guard = provider.teardown_on_exit() if teardown else contextlib.nullcontext()
    with guard:
        lab = provider.lab()
        try:
            return _run(plan, lab, build_root, raw_dir, console)
        finally:
            for host in {id(h): h for h in (lab.server, lab.loadgen)}.values():
                host.close()  # remote hosts: kill what a failed cell left, drop the connection


def _run(plan: RunPlan, lab: Lab, build_root: Path, raw_dir: Path, console: Console) -> RunDir:
    check_tracer_runs(lab.server)
    servers = discover_servers()
    wanted = [servers[name] for name in dict.fromkeys(c.server for c in plan.cells)]

    if plan.config.generator == "tcpkali" and loadgens.find_tcpkali() is None:
        raise RunAborted("loadgen = 'tcpkali' in the config, but no tcpkali is on PATH: "
                         "install it, or use loadgen = 'native'")
    with console.status(f"building servers on {lab.server.name} and the load generator "
                        f"for {lab.loadgen.name}"):
        build = build_all(lab.server, wanted, build_root, loadgen_host=lab.loadgen)
    if plan.config.generator == "tcpkali":
        build.tools["tcpkali"] = tool_version(lab.loadgen, ["tcpkali", "--version"])

    if plan.run_dir is None:
        run_dir = RunDir.create(new_run_id(plan.config), raw_dir)
        shutil.copyfile(plan.config.path, run_dir.path / "config.toml")
        manifest = _initial_manifest(run_dir, plan, lab, build.tools)
    else:
        run_dir = plan.run_dir
        manifest = run_dir.read_manifest()
        manifest["resumes"].append({"at": now_iso(), "git": git_state(), "tools": build.tools,
                                    "remaining_cells": len(plan.cells)})
        manifest["ended_at"] = None
        run_dir.discard_work()
    run_dir.write_manifest(manifest)
    entries = {entry["id"]: entry for entry in manifest["cells"]}
    console.print(f"run [bold]{run_dir.run_id}[/bold] → {run_dir.path}")

    key_dir = Path(tempfile.mkdtemp(prefix="papaya-chat-key-"))
    chat_key = chat_key_file(key_dir) if any(
        c.factors["workload"] == WORKLOAD_CHAT for c in plan.cells) else None
    keys_on = {role: stage_chat_key(host, chat_key, run_dir.run_id) if chat_key else None
               for role, host in (("server", lab.server), ("loadgen", lab.loadgen))}
    context = CellContext(lab, plan.config, build, servers, run_dir, chat_key,
                          keys_on["server"], keys_on["loadgen"])
    warned: set[str] = set()
    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TextColumn("elapsed"), TimeElapsedColumn(),
        TextColumn("ETA"), TimeRemainingColumn(), console=console,
    )
    started = time.monotonic()
    try:
        with progress:
            task = progress.add_task("cells", total=len(plan.cells))
            for cell in plan.cells:
                progress.update(task, description=cell.id)
                placement = lab.placement(cell.cpus)
                if placement.warning and placement.warning not in warned:
                    warned.add(placement.warning)
                    progress.console.print(f"[yellow]warning:[/yellow] {placement.warning}")
                if placement.isolation == "shared" or manifest["cpu_isolation"] is None:
                    manifest["cpu_isolation"] = placement.isolation
                where, status = run_cell(context, cell, placement)
                entries[cell.id]["status"] = status["status"]
                entries[cell.id]["reason"] = status["reason"]
                if status["status"] != "ok":
                    entries[cell.id]["failed_dir"] = str(where.relative_to(run_dir.path))
                    progress.console.print(f"[red]cell {cell.id} failed:[/red] {status['reason']}")
                run_dir.write_manifest(manifest)
                progress.advance(task)
                if not console.is_terminal:  # logs and CI get a line per cell instead of a bar
                    done = int(progress.tasks[0].completed)
                    elapsed = time.monotonic() - started
                    eta = elapsed / done * (len(plan.cells) - done)
                    console.print(f"[{done}/{len(plan.cells)}] {cell.id}: {status['status']} "
                                  f"(elapsed {elapsed:.0f} s, ETA {eta:.0f} s)")
    except KeyboardInterrupt:
        run_dir.write_manifest(manifest)
        console.print(f"[yellow]interrupted[/yellow]: completed cells are kept; continue with "
                      f"`invoke run-experiment --resume {run_dir.run_id}`")
        raise
    except RunAborted as error:
        run_dir.write_manifest(manifest)
        raise RunAborted(f"{error}\n(completed cells are kept; continue with "
                         f"`invoke run-experiment --resume {run_dir.run_id}`)") from error
    finally:
        shutil.rmtree(key_dir, ignore_errors=True)  # the key is per run; it is not data
    manifest["ended_at"] = now_iso()
    run_dir.write_manifest(manifest)
    run_dir.discard_work()
    failed = [e for e in manifest["cells"] if e["status"] == "failed"]
    ok = sum(1 for e in manifest["cells"] if e["status"] == "ok")
    console.print(f"run {run_dir.run_id}: {ok} cells ok, {len(failed)} failed")
    return run_dir


def dry_run(provider_name: str, config_name: str, resume: str | None = None,
            raw_dir: Path = RAW_DIR, console: Console | None = None,
            inventory: Path | None = None) -> RunPlan:
    console = console or Console()
    plan = plan_run(config_name, resume, raw_dir)
    lab = get_provider(provider_name, config=plan.config.path, inventory=inventory).lab()
    lines = []
    for name, facts in lab.facts.items():
        placement = lab.placement(plan.config.cpus[0])
        lines.append(
            f"{name}: {facts['os_release']} {facts['arch']}, {facts['cores']} cores; server on "
            f"CPUs {placement.server_cpus}, load generator and tracer on {placement.aux_cpus} "
            f"({placement.isolation})")
    describe_plan(plan, lines, console)
    return plan
