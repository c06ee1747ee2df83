"""Synthetic raw runs laid out exactly as data/README.md specifies, with known statistics.

Each measured window alternates mean+delta and mean-delta over an even number of samples,
so its mean is exactly ``mean`` and its sample sd is delta*sqrt(n/(n-1)). Warm-up rows carry
an absurd CPU value so any leak into the statistics is obvious.

Options cover what the other parts of the pipeline may write: ablation factors
(``variants``: extra factor values per cell, Go-only factors "n/a" for the C server, and a
known factor by which each variant scales the Go server's CPU), and imported `top` logs
(``imported``: no loadgen.json, a ``top_no_match`` column whose flagged screens are 0%).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GO_ONLY_FACTORS = ("gogc", "gomaxprocs")

TRACE_HEADER = [
    "t_unix", "t_rel_s", "warmup", "cpu_pct", "user_pct", "system_pct",
    "ctx_voluntary", "ctx_involuntary", "ctx_voluntary_per_s", "ctx_involuntary_per_s",
    "rss_bytes", "n_procs", "n_threads",
    "host_user_pct", "host_system_pct", "host_softirq_pct", "host_idle_pct",
]
WARMUP_CPU = 999.0
BANDWIDTH_BPS = 1_000_000
LOAD_ACCURACY = 0.98  # achieved aggregate bandwidth / target in every synthetic cell
TRACER_CPU_SECONDS = 0.05

HOST = {
    "os": "Linux",
    "os_release": "Debian GNU/Linux 12 (bookworm)",
    "kernel": "6.1.0-28-amd64",
    "arch": "x86_64",
    # Special characters check the LaTeX escaping end to end.
    "cpu_model": "Synthetic_CPU 100% & more @ 2.20GHz",
    "cores": 2,
    "memory_bytes": 8 * 2**30,
    "cc": "gcc (Debian 12.2.0-14) 12.2.0",
    "go": "go version go1.27.3 linux/amd64",
    "hostname": "synthetic_host",
}


def cpu_mean(server: str, connections: int, repetition: int) -> float:
    """The exact measured-window mean CPU% of a synthetic cell."""
    base = {"c-fork": 2.0, "go-goroutine": 1.0}[server]
    return base * connections + 2.0 * (repetition - 1)


def cpu_delta(mean: float) -> float:
    return 0.1 * mean


@dataclass
class SyntheticRun:
    run_id: str
    raw_dir: Path
    cells: list[dict[str, Any]] = field(default_factory=list)  # manifest cell entries

    def cell(self, server: str, connections: int, repetition: int,
             **extra: Any) -> dict[str, Any]:
        return next(
            c for c in self.cells
            if (c["factors"]["server"], c["factors"]["connections"],
                c["factors"]["repetition"]) == (server, connections, repetition)
            and all(c["factors"].get(k) == v for k, v in extra.items())
        )


@dataclass(frozen=True)
class Variant:
    """One setting of the ablation factors; ``go_scale`` multiplies the Go server's CPU."""

    factors: dict[str, Any]
    go_scale: float = 1.0


def _variant_factors(variant: Variant, server: str) -> dict[str, Any]:
    return {k: ("n/a" if server == "c-fork" and k in GO_ONLY_FACTORS else v)
            for k, v in variant.factors.items()}


def cell_id(factors: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(factors, sort_keys=True).encode()).hexdigest()[:6]
    return (f"{factors['server']}-{factors['workload']}-c{factors['connections']:04d}"
            f"-cpu{factors['cpus']}-r{factors['repetition']}-{digest}")


def measured_values(mean: float, n: int) -> list[float]:
    delta = cpu_delta(mean)
    return [mean + delta if i % 2 == 0 else mean - delta for i in range(n)]


def _write_trace(path: Path, mean: float, warmup_rows: int, measured_rows: int,
                 interval: float, no_match_rows: int = 0) -> None:
    """``no_match_rows`` > 0 writes an imported-style trace: the last measured pairs of
    samples become 0% screens flagged top_no_match (a pair, so the alternating pattern of the
    rest keeps its exact mean)."""
    values = [WARMUP_CPU] * warmup_rows + measured_values(mean, measured_rows)
    flags = [0] * len(values)
    for i in range(len(values) - no_match_rows, len(values)):
        values[i], flags[i] = 0.0, 1
    header = TRACE_HEADER + (["top_no_match"] if no_match_rows else [])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i, cpu in enumerate(values):
            t_rel = (i + 1) * interval
            warm = 1 if i < warmup_rows else 0
            writer.writerow([
                1_790_000_000 + t_rel, t_rel, warm, cpu, 0.6 * cpu, 0.4 * cpu,
                100 * (i + 1), 10 * (i + 1), 200.0, 20.0,
                5_000_000, 3, 3, 10.0, 5.0, 1.0, 84.0,
            ] + ([flags[i]] if no_match_rows else []))


def write_run(
    data_dir: Path,
    run_id: str = "20261123-193000-quick-1a2b",
    *,
    servers: tuple[str, ...] = ("c-fork", "go-goroutine"),
    connections: tuple[int, ...] = (1, 4, 16),
    repetitions: int = 2,
    failed: dict[tuple[str, int, int], str] | None = None,
    pending: tuple[tuple[str, int, int], ...] = (),
    warmup_rows: int = 4,
    measured_rows: int = 16,
    interval: float = 0.5,
    started_at: str = "2026-11-23T19:30:00+00:00",
    variants: tuple[Variant, ...] = (Variant({}),),
    imported_no_match: int = 0,
    cpus: tuple[int, ...] = (1,),
    chat_servers: tuple[str, ...] = (),
) -> SyntheticRun:
    """A run under ``data_dir/raw/run_id``; ``failed`` maps (server, conn, rep) -> reason.

    ``imported_no_match`` > 0 makes an imported run (source "imported", no loadgen.json)
    whose traces end with that many 0% screens without the server.
    """
    failed = failed or {}
    imported = imported_no_match > 0
    raw_dir = data_dir / "raw" / run_id
    raw_dir.mkdir(parents=True)
    run = SyntheticRun(run_id, raw_dir)
    warmup_s = warmup_rows * interval
    measure_s = measured_rows * interval
    order = 0
    seen: set[str] = set()
    for repetition in range(1, repetitions + 1):
        for variant in variants:
            for server in servers:
                for conn in connections:
                    for n_cpus in cpus:
                        factors = {"server": server, "workload": "sink", "connections": conn,
                                   "bandwidth_bps": None if imported else BANDWIDTH_BPS,
                                   "message": None if imported else "message\n",
                                   "cpus": n_cpus, "repetition": repetition,
                                   **_variant_factors(variant, server)}
                        if cell_id(factors) in seen:
                            continue  # the C server has one cell for every Go-only setting
                        seen.add(cell_id(factors))
                        key = (server, conn, repetition)
                        first = variant is variants[0] and n_cpus == cpus[0]
                        status = ("failed" if first and key in failed else
                                  "pending" if first and key in pending else "ok")
                        entry = {"id": cell_id(factors), "order": order, "factors": factors,
                                 "status": status, "reason": failed.get(key) if first else None}
                        order += 1
                        run.cells.append(entry)
                        scale = variant.go_scale if server == "go-goroutine" else 1.0
                        if status == "ok":
                            _write_cell(raw_dir / entry["id"], entry, scale * cpu_mean(*key),
                                        warmup_rows, measured_rows, interval, warmup_s,
                                        measure_s, imported_no_match)
                        elif status == "failed":
                            attempt = raw_dir / "failed" / f"{entry['id']}.1"
                            attempt.mkdir(parents=True)
                            (attempt / "server.stderr").write_text("bind: address in use\n")
    for repetition in range(1, repetitions + 1):  # another workload in the same run
        for server in chat_servers:
            factors = {"server": server, "workload": "chat", "connections": 4,
                       "bandwidth_bps": None, "message": None, "message_rate": 10,
                       "message_size": 64, "history": 7, "cpus": 1,
                       **dict.fromkeys(variants[0].factors, "n/a"), "repetition": repetition}
            entry = {"id": cell_id(factors), "order": order, "factors": factors,
                     "status": "ok", "reason": None}
            order += 1
            run.cells.append(entry)
            _write_cell(raw_dir / entry["id"], entry, 30.0 + repetition, warmup_rows,
                        measured_rows, interval, warmup_s, measure_s)
    manifest = {
        "schema": 1,
        "run_id": run_id,
        "source": "imported" if imported else "synthetic",
        "config_name": "quick",
        "config_path": "experiments/configs/quick.toml",
        "config": {"experiment": {"name": "quick", "repetitions": repetitions}},
        "config_sha256": "0" * 64,
        "seed": 20261123,
        "git": {"commit": "abcdef0123456789abcdef0123456789abcdef01", "dirty": False},
        "provider": "local",
        "hosts": {"local": HOST},
        "cpu_isolation": "isolated",
        "tools": {"cc": HOST["cc"], "go": HOST["go"], "loadgen": "papaya-loadgen 0.1.0"},
        "started_at": started_at,
        "ended_at": "2026-11-23T19:33:00+00:00",
        "cells": run.cells,
    }
    if imported:
        manifest.update({"cpu_isolation": None, "provider": None, "tools": None,
                         "cleaning_rule": "zero-fill"})
        manifest["imports"] = [{"files": [{"path": f"logs/{c['id']}.txt", "sha256": "ab" * 32}
                                          for c in run.cells]}]
    (raw_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return run


def _write_cell(cell_dir: Path, entry: dict[str, Any], mean: float, warmup_rows: int,
                measured_rows: int, interval: float, warmup_s: float, measure_s: float,
                no_match_rows: int = 0) -> None:
    cell_dir.mkdir()
    conn = entry["factors"]["connections"]
    status = {
        "id": entry["id"], "factors": entry["factors"], "status": "ok", "reason": None,
        "started_at": "2026-11-23T19:30:00+00:00", "ended_at": "2026-11-23T19:30:10+00:00",
        "warmup_s": warmup_s, "measure_s": measure_s, "sample_interval_s": interval,
        "server_cpus": [1], "aux_cpus": [0], "cpu_isolation": "isolated",
        "tracer": {"method": "cgroup-v2", "cpu_seconds": TRACER_CPU_SECONDS,
                   "samples": warmup_rows + measured_rows},
        "server": {"exit_code": None, "stderr_tail": ""},
    }
    duration = warmup_s + measure_s
    aggregate = conn * BANDWIDTH_BPS * LOAD_ACCURACY
    loadgen = {
        "tool": "papaya-loadgen", "version": "0.1.0", "target": "127.0.0.1:50000",
        "connections": {"requested": conn, "opened": conn, "failed": 0},
        "duration_s": duration, "bytes_sent": int(aggregate * duration / 8),
        "bytes_received": 0, "messages_sent": int(aggregate * duration / 64),
        "target_bandwidth_bps": BANDWIDTH_BPS, "aggregate_bandwidth_bps": aggregate,
        "per_connection_bandwidth_bps": {"min": 0.97e6, "median": 0.98e6, "max": 0.99e6},
        "errors": [],
    }
    if no_match_rows:  # imported: what `invoke import-top` leaves unknown
        status.update({"server_cpus": None, "aux_cpus": None, "cpu_isolation": None,
                       "tracer": {"method": "top-procps", "cpu_seconds": None,
                                  "samples": warmup_rows + measured_rows}})
    (cell_dir / "status.json").write_text(json.dumps(status))
    if not no_match_rows:
        (cell_dir / "loadgen.json").write_text(json.dumps(loadgen))
    (cell_dir / "tracer.json").write_text(json.dumps(status["tracer"]))
    (cell_dir / "server.stderr").write_text("")
    _write_trace(cell_dir / "trace.csv", mean, warmup_rows, measured_rows, interval,
                 no_match_rows)
