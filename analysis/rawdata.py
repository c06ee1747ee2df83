"""Load one raw run (``data/raw/<run-id>/``) into tidy pandas frames.

The layout and field meanings are the contract in ``data/README.md``; this module is the
only place that knows them, so a format change touches one file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.errors import AnalysisError
from analysis.factors import CORE_FACTORS, extra_factor_names, extra_value

MANIFEST = "manifest.json"
STATUS = "status.json"
TRACE = "trace.csv"
LOADGEN = "loadgen.json"

# The factor columns copied from the manifest onto every sample and cell row, so that each
# frame can be grouped without joining back to the manifest. Ablation factors found in the
# manifest (RawRun.extra_factors) follow them.
FACTOR_COLUMNS = CORE_FACTORS

TRACE_COLUMNS = (
    "t_unix", "t_rel_s", "warmup", "cpu_pct", "user_pct", "system_pct",
    "ctx_voluntary", "ctx_involuntary", "ctx_voluntary_per_s", "ctx_involuntary_per_s",
    "rss_bytes", "n_procs", "n_threads",
    "host_user_pct", "host_system_pct", "host_softirq_pct", "host_idle_pct",
)


class RawDataError(AnalysisError, ValueError):
    """A raw run that cannot be read; the message names the offending file."""


@dataclass(frozen=True)
class RawRun:
    run_id: str
    raw_dir: Path
    manifest: dict[str, Any]
    cells: pd.DataFrame  # one row per completed ("ok") cell: factors, timings, tracer, load
    samples: pd.DataFrame  # one row per trace sample of every completed cell, factors added
    failed: pd.DataFrame  # cells the manifest marks "failed": id, factors, reason
    pending: pd.DataFrame  # cells the manifest still marks "pending" (run stopped or running)
    extra_factors: tuple[str, ...] = ()  # ablation factors beyond FACTOR_COLUMNS, as text

    @property
    def host(self) -> dict[str, Any]:
        return primary_host(self.manifest)

    @property
    def factor_columns(self) -> tuple[str, ...]:
        return (*FACTOR_COLUMNS, *self.extra_factors)

    @property
    def imported(self) -> bool:
        """Data converted from legacy logs (`invoke import-top`), not measured by the runner."""
        return self.manifest.get("source") == "imported"


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise RawDataError(f"{path}: missing") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RawDataError(f"{path}: not valid JSON: {error}") from error


def _read_object(path: Path) -> dict[str, Any]:
    value = _read_json(path)
    if not isinstance(value, dict):
        raise RawDataError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / MANIFEST
    manifest = _read_json(path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cells"), list):
        raise RawDataError(f"{path}: corrupt manifest: expected an object with a 'cells' list")
    for index, cell in enumerate(manifest["cells"]):
        if not isinstance(cell, dict) or "id" not in cell or not isinstance(
            cell.get("factors"), dict
        ):
            raise RawDataError(
                f"{path}: corrupt manifest: cells[{index}] lacks an 'id' or a 'factors' object"
            )
    return manifest


def primary_host(manifest: dict[str, Any]) -> dict[str, Any]:
    """The facts of the host that ran the servers (the provider's entry, else the first)."""
    hosts = manifest.get("hosts") or {}
    provider = manifest.get("provider")
    if provider in hosts:
        return hosts[provider]
    return next(iter(hosts.values()), {})


def _ok_cell_ids(manifest: dict[str, Any]) -> list[str]:
    return [c["id"] for c in manifest["cells"] if c.get("status") == "ok"]


def _started_at(manifest: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(manifest["started_at"])
    except (KeyError, TypeError, ValueError):
        return None


def latest_run_id(data_dir: Path) -> str:
    """The newest run under ``data_dir/raw`` whose manifest lists at least one ok cell.

    Runs with an unreadable manifest are skipped here (they may be in progress or broken);
    loading one by id still reports its exact problem.
    """
    raw_root = data_dir / "raw"
    candidates: list[tuple[float, str]] = []
    skipped: list[str] = []
    for run_dir in sorted(p for p in raw_root.glob("*") if p.is_dir()) if raw_root.is_dir() else []:
        try:
            manifest = read_manifest(run_dir)
        except RawDataError as error:
            skipped.append(str(error))
            continue
        if not any((run_dir / cid / STATUS).is_file() for cid in _ok_cell_ids(manifest)):
            continue
        started = _started_at(manifest)
        # Run ids start with a timestamp, so the name is a fair tiebreak and fallback.
        stamp = started.timestamp() if started else run_dir.stat().st_mtime
        candidates.append((stamp, run_dir.name))
    if not candidates:
        detail = f" (skipped: {'; '.join(skipped)})" if skipped else ""
        raise RawDataError(
            f"{raw_root}: no run with a manifest and at least one completed (ok) cell; "
            f"run `invoke run-experiment` first{detail}"
        )
    return max(candidates)[1]


def _factor_values(factors: dict[str, Any], extras: list[str]) -> dict[str, Any]:
    values = {k: factors.get(k) for k in FACTOR_COLUMNS}
    values.update({k: extra_value(factors.get(k)) for k in extras})
    return values


LATENCY_QUANTILES = ("p50", "p90", "p99", "p999", "max")


def _cell_row(
    manifest_cell: dict[str, Any], status: dict[str, Any], loadgen: dict[str, Any],
    extras: list[str],
) -> dict[str, Any]:
    factors = {**manifest_cell["factors"], **(status.get("factors") or {})}
    tracer = status.get("tracer") or {}
    conns = loadgen.get("connections") or {}
    row: dict[str, Any] = {"cell_id": manifest_cell["id"], "order": manifest_cell.get("order")}
    row.update(_factor_values(factors, extras))
    row.update(
        {
            "started_at": status.get("started_at"),
            "ended_at": status.get("ended_at"),
            "warmup_s": status.get("warmup_s"),
            "measure_s": status.get("measure_s"),
            "sample_interval_s": status.get("sample_interval_s"),
            "cpu_isolation": status.get("cpu_isolation"),
            "server_cpus": ",".join(str(c) for c in status.get("server_cpus") or []),
            "tracer_method": tracer.get("method"),
            "tracer_cpu_seconds": tracer.get("cpu_seconds"),
            "tracer_samples": tracer.get("samples"),
            "loadgen_tool": loadgen.get("tool"),
            "loadgen_target": loadgen.get("target"),
            "load_duration_s": loadgen.get("duration_s"),
            "connections_requested": conns.get("requested"),
            "connections_opened": conns.get("opened"),
            "connections_failed": conns.get("failed"),
            "bytes_sent": loadgen.get("bytes_sent"),
            "target_bandwidth_bps": loadgen.get("target_bandwidth_bps"),
            "aggregate_bandwidth_bps": loadgen.get("aggregate_bandwidth_bps"),
            "loadgen_errors": len(loadgen.get("errors") or []),
            # The chat workload's delivery figures (null for sink cells).
            "lines_sent": loadgen.get("lines_sent"),
            "lines_expected": loadgen.get("lines_expected"),
            "lines_received": loadgen.get("lines_received"),
            **{f"latency_{name}_s": (loadgen.get("latency_s") or {}).get(name)
               for name in LATENCY_QUANTILES},
        }
    )
    return row


def _read_trace(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError as error:
        raise RawDataError(f"{path}: missing") from error
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise RawDataError(f"{path}: not a readable CSV: {error}") from error
    missing = [c for c in ("t_rel_s", "warmup", "cpu_pct") if c not in frame.columns]
    if missing:
        raise RawDataError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame


def _factor_frame(cells: list[dict[str, Any]], extras: list[str]) -> pd.DataFrame:
    rows = [
        {"cell_id": c["id"], **_factor_values(c["factors"], extras), "reason": c.get("reason")}
        for c in cells
    ]
    return pd.DataFrame(rows, columns=["cell_id", *FACTOR_COLUMNS, *extras, "reason"])


def load_run(data_dir: Path, run_id: str) -> RawRun:
    """Manifest plus every completed cell of one run.

    A cell counts as completed when the manifest says "ok"; its directory must then hold a
    status.json that agrees, else the run is inconsistent and we stop rather than guess.
    """
    run_dir = data_dir / "raw" / run_id
    if not run_dir.is_dir():
        raise RawDataError(f"{run_dir}: no such run directory")
    manifest = read_manifest(run_dir)
    extras = extra_factor_names(c["factors"] for c in manifest["cells"])

    cell_rows: list[dict[str, Any]] = []
    traces: list[pd.DataFrame] = []
    for manifest_cell in manifest["cells"]:
        if manifest_cell.get("status") != "ok":
            continue
        cell_dir = run_dir / manifest_cell["id"]
        status = _read_object(cell_dir / STATUS)
        if status.get("status") != "ok":
            raise RawDataError(
                f"{cell_dir / STATUS}: status is {status.get('status')!r} "
                f"but {run_dir / MANIFEST} says 'ok'"
            )
        # Imported top logs carry no load data: no loadgen.json, achieved load NaN.
        imported = manifest.get("source") == "imported" and not (cell_dir / LOADGEN).exists()
        loadgen = {} if imported else _read_object(cell_dir / LOADGEN)
        row = _cell_row(manifest_cell, status, loadgen, extras)
        trace = _read_trace(cell_dir / TRACE)
        trace.insert(0, "cell_id", row["cell_id"])
        for position, column in enumerate((*FACTOR_COLUMNS, *extras), start=1):
            trace.insert(position, column, row[column])
        cell_rows.append(row)
        traces.append(trace)

    cells = pd.DataFrame(cell_rows)
    samples = pd.concat(traces, ignore_index=True) if traces else pd.DataFrame(
        columns=["cell_id", *FACTOR_COLUMNS, *extras, *TRACE_COLUMNS]
    )
    failed = _factor_frame([c for c in manifest["cells"] if c.get("status") == "failed"], extras)
    pending = _factor_frame(
        [c for c in manifest["cells"] if c.get("status") not in ("ok", "failed")], extras
    )
    return RawRun(
        run_id=run_id,
        raw_dir=run_dir,
        manifest=manifest,
        cells=cells,
        samples=samples,
        failed=failed,
        pending=pending,
        extra_factors=tuple(extras),
    )
