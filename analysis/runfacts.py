"""Facts about a run that the paper and the HTML report both state.

Computed once here so the two outputs cannot disagree about, say, how many cells failed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analysis import cleaning
from analysis.rawdata import MANIFEST, RawRun
from analysis.summary import Summary

UNKNOWN = "unknown"


@dataclass(frozen=True)
class RunFacts:
    run_id: str
    raw_dir: str
    manifest_sha256: str
    config_name: str
    config_path: str
    config_sha256: str
    source: str
    git_commit: str
    git_dirty: str
    started_at: str
    ended_at: str  # "unknown" while the run is still going or was interrupted
    provider: str
    host: dict[str, Any]
    cc: str
    go: str
    loadgen: str
    cpu_isolation: str
    server_cpu_list: tuple[str, ...]
    cells_planned: int
    cells_planned_per_server: dict[str, int]
    cells_ok: int
    cells_failed: int
    cells_pending: int
    repetitions_planned: int
    warmup_s: tuple[float, ...]  # distinct values over ok cells; normally exactly one
    measure_s: tuple[float, ...]
    sample_interval_s: tuple[float, ...]
    connection_levels: tuple[int, ...]
    cpus_levels: tuple[int, ...]
    bandwidth_per_connection_bps: tuple[float, ...]
    load_ratio_min: float
    load_ratio_mean: float
    load_ratio_max: float
    connections_failed_total: int
    tracer_methods: tuple[str, ...]
    tracer_cpu_seconds_mean: float
    tracer_cpu_seconds_max: float
    tracer_cpu_pct_max: float
    tracer_cpu_pct_mean: float = math.nan
    seed: str = UNKNOWN
    network_path: str = UNKNOWN  # "loopback", "network", or unknown (no load generator data)
    load_targets: tuple[str, ...] = ()
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    imported: bool = False
    imported_files: tuple[tuple[str, str], ...] = ()  # (path as given, sha256)
    cleaning_rule: str = cleaning.ALL_SAMPLES
    no_match_screens: int = 0
    repetitions_min: int = 0
    block_length_min: float = math.nan
    block_length_max: float = math.nan


def _distinct(series: pd.Series) -> tuple[Any, ...]:
    return tuple(sorted(series.dropna().unique().tolist()))


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return UNKNOWN
    return str(value)


def _number(series: pd.Series, how: str) -> float:
    values = pd.to_numeric(series, errors="coerce").dropna()
    return float(getattr(values, how)()) if not values.empty else math.nan


def _planned(planned: list[dict[str, Any]], factor: str) -> list[Any]:
    """Distinct levels of a factor over every planned cell, not only the completed ones."""
    return sorted({c["factors"][factor] for c in planned if c["factors"].get(factor) is not None})


def _network_path(targets: tuple[str, ...]) -> str:
    """"loopback" when every load went to a loopback address, "network" when none did."""
    if not targets:
        return UNKNOWN
    kinds = set()
    for target in targets:
        host = target.rsplit(":", 1)[0].strip("[]")
        try:
            kinds.add("loopback" if ipaddress.ip_address(host).is_loopback else "network")
        except ValueError:
            kinds.add("loopback" if host == "localhost" else "network")
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _imported_files(manifest: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    files = []
    for record in manifest.get("imports") or []:
        for item in record.get("files") or []:
            files.append((str(item.get("path")), str(item.get("sha256"))))
    return tuple(files)


def _isolation(manifest: dict[str, Any], cells: pd.DataFrame) -> str:
    """The manifest's CPU isolation, else the cells' (imported runs record none)."""
    if manifest.get("cpu_isolation"):
        return str(manifest["cpu_isolation"])
    values = _distinct(cells["cpu_isolation"]) if "cpu_isolation" in cells else ()
    return ", ".join(str(v) for v in values) if values else UNKNOWN


def collect(run: RawRun, summary: Summary) -> RunFacts:
    manifest = run.manifest
    host = run.host
    tools = manifest.get("tools") or {}
    git = manifest.get("git") or {}
    cells = summary.cells
    planned = manifest["cells"]
    commit = git.get("commit")
    dirty = git.get("dirty")
    targets = tuple(str(t) for t in _distinct(cells["loadgen_target"])) if (
        "loadgen_target" in cells and not cells.empty) else ()
    return RunFacts(
        run_id=run.run_id,
        raw_dir=str(run.raw_dir.resolve()),
        manifest_sha256=hashlib.sha256((run.raw_dir / MANIFEST).read_bytes()).hexdigest(),
        config_name=_text(manifest.get("config_name")),
        config_path=_text(manifest.get("config_path")),
        config_sha256=_text(manifest.get("config_sha256")),
        source=_text(manifest.get("source")),
        git_commit=commit[:12] if isinstance(commit, str) else UNKNOWN,
        git_dirty=UNKNOWN if dirty is None else ("yes" if dirty else "no"),
        started_at=_text(manifest.get("started_at")),
        ended_at=_text(manifest.get("ended_at")),
        provider=_text(manifest.get("provider")),
        host=host,
        cc=_text(tools.get("cc") or host.get("cc")),
        go=_text(tools.get("go") or host.get("go")),
        loadgen=_text(tools.get("loadgen")),
        cpu_isolation=_isolation(manifest, cells),
        server_cpu_list=_distinct(cells["server_cpus"]) if not cells.empty else (),
        cells_planned=len(planned),
        cells_planned_per_server=dict(Counter(c["factors"].get("server") for c in planned)),
        cells_ok=len(cells),
        cells_failed=len(run.failed),
        cells_pending=len(run.pending),
        repetitions_planned=max(
            (int(c["factors"].get("repetition") or 0) for c in planned), default=0
        ),
        warmup_s=_distinct(cells["warmup_s"]) if not cells.empty else (),
        measure_s=_distinct(cells["measure_s"]) if not cells.empty else (),
        sample_interval_s=_distinct(cells["sample_interval_s"]) if not cells.empty else (),
        connection_levels=tuple(int(v) for v in _planned(planned, "connections")),
        cpus_levels=tuple(int(v) for v in _planned(planned, "cpus")),
        bandwidth_per_connection_bps=tuple(float(v) for v in _planned(planned, "bandwidth_bps")),
        load_ratio_min=_number(cells.get("load_ratio", pd.Series()), "min"),
        load_ratio_mean=_number(cells.get("load_ratio", pd.Series()), "mean"),
        load_ratio_max=_number(cells.get("load_ratio", pd.Series()), "max"),
        connections_failed_total=int(
            pd.to_numeric(cells.get("connections_failed", pd.Series()), errors="coerce").sum()
        ),
        tracer_methods=_distinct(cells["tracer_method"]) if not cells.empty else (),
        tracer_cpu_seconds_mean=_number(cells.get("tracer_cpu_seconds", pd.Series()), "mean"),
        tracer_cpu_seconds_max=_number(cells.get("tracer_cpu_seconds", pd.Series()), "max"),
        tracer_cpu_pct_max=_number(cells.get("tracer_cpu_pct", pd.Series()), "max"),
        tracer_cpu_pct_mean=_number(cells.get("tracer_cpu_pct", pd.Series()), "mean"),
        seed=_text(manifest.get("seed")),
        network_path=_network_path(targets),
        load_targets=targets,
        hosts={str(k): v or {} for k, v in (manifest.get("hosts") or {}).items()},
        imported=run.imported,
        imported_files=_imported_files(manifest),
        cleaning_rule=summary.rule,
        no_match_screens=cleaning.no_match_count(run.samples),
        repetitions_min=int(summary.groups["n_reps"].min()) if not summary.groups.empty else 0,
        block_length_min=_number(cells.get("block_length", pd.Series()), "min"),
        block_length_max=_number(cells.get("block_length", pd.Series()), "max"),
    )
