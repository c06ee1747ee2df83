"""Per-cell and per-condition statistics of CPU usage, and the Go/C ratio.

The repetition (cell) is the unit of replication: samples within one cell are
autocorrelated, so intervals are computed over repetition means, never over samples.
Later inferential statistics (bootstrap intervals, tests) should take ``Summary.cells`` as
their input and add columns or frames next to these rather than change them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.rawdata import RawRun

CONFIDENCE = 0.95
C_SERVER = "c-fork"
GO_SERVER = "go-goroutine"

# A condition is everything a cell varies except the repetition.
GROUP_KEYS = ["server", "workload", "bandwidth_bps", "cpus", "connections"]
RATIO_KEYS = ["workload", "bandwidth_bps", "cpus", "connections"]
CELL_KEYS = ["cell_id", *GROUP_KEYS, "repetition"]

# Sample columns averaged per cell, and the name each mean gets.
_SAMPLE_MEANS = {
    "user_pct": "user_pct_mean",
    "system_pct": "system_pct_mean",
    "ctx_voluntary_per_s": "ctx_voluntary_per_s_mean",
    "ctx_involuntary_per_s": "ctx_involuntary_per_s_mean",
    "rss_bytes": "rss_bytes_mean",
    "n_procs": "n_procs_mean",
}


@dataclass(frozen=True)
class Summary:
    cells: pd.DataFrame  # one row per repetition
    groups: pd.DataFrame  # one row per condition (server, ..., connections)
    ratios: pd.DataFrame  # Go/C mean-CPU ratio per condition without the server


def measured_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """Samples outside the warm-up window, the only ones any statistic uses."""
    return samples[pd.to_numeric(samples["warmup"]) == 0]


def t_interval(values: pd.Series | np.ndarray, confidence: float = CONFIDENCE) -> tuple[
    float, float, float
]:
    """(low, high, half-width) of the Student-t interval for the mean of ``values``.

    NaN when fewer than two finite values: one repetition carries no information about
    between-repetition spread, and pretending otherwise would print a zero-width interval.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    n = finite.size
    if n < 2:
        return math.nan, math.nan, math.nan
    mean = float(finite.mean())
    half = float(stats.t.ppf((1 + confidence) / 2, df=n - 1) * finite.std(ddof=1) / math.sqrt(n))
    return mean - half, mean + half, half


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    # A zero denominator has no meaningful ratio; NaN keeps it out of later means.
    return numerator / denominator.where(denominator != 0)


def summarize_cells(run: RawRun) -> pd.DataFrame:
    """One row per completed cell: its measured-window statistics and achieved load."""
    measured = measured_samples(run.samples)
    grouped = measured.groupby("cell_id", sort=False)
    per_cell = pd.DataFrame(
        {
            "n_samples": grouped["cpu_pct"].count(),
            "cpu_pct_mean": grouped["cpu_pct"].mean(),
            "cpu_pct_sd": grouped["cpu_pct"].std(ddof=1),
        }
    )
    for column, name in _SAMPLE_MEANS.items():
        if column in measured.columns:
            per_cell[name] = grouped[column].mean()
    per_cell["cpu_cv"] = _ratio(per_cell["cpu_pct_sd"], per_cell["cpu_pct_mean"])

    cells = run.cells.drop(columns=["message"], errors="ignore").merge(
        per_cell, left_on="cell_id", right_index=True, how="left"
    )
    cells["n_samples"] = cells["n_samples"].fillna(0).astype(int)
    # loadgen.json's target is per connection and null when unpaced; the configured
    # bandwidth factor is the fallback so the ratio still says how close the load came.
    per_connection = pd.to_numeric(cells["target_bandwidth_bps"], errors="coerce").fillna(
        pd.to_numeric(cells["bandwidth_bps"], errors="coerce")
    )
    cells["target_aggregate_bps"] = cells["connections"] * per_connection
    cells["load_ratio"] = _ratio(
        pd.to_numeric(cells["aggregate_bandwidth_bps"], errors="coerce"),
        cells["target_aggregate_bps"],
    )
    # Tracer CPU as a percentage of one CPU over the whole load, comparable to cpu_pct.
    cells["tracer_cpu_pct"] = 100 * _ratio(
        pd.to_numeric(cells["tracer_cpu_seconds"], errors="coerce"),
        pd.to_numeric(cells["warmup_s"], errors="coerce")
        + pd.to_numeric(cells["measure_s"], errors="coerce"),
    )
    return cells.sort_values(GROUP_KEYS + ["repetition"], ignore_index=True)


def summarize_groups(cells: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """One row per condition, aggregating over its repetitions."""
    measured = measured_samples(samples)
    pooled_sd = measured.groupby(GROUP_KEYS)["cpu_pct"].std(ddof=1).rename(
        "cpu_pct_sd_pooled_samples"
    )
    rows = []
    for keys, group in cells.groupby(GROUP_KEYS, sort=True):
        reps = group[np.isfinite(group["cpu_pct_mean"].astype(float))]
        cpu_low, cpu_high, cpu_half = t_interval(reps["cpu_pct_mean"])
        cv_low, cv_high, _ = t_interval(reps["cpu_cv"])
        rows.append(
            {
                **dict(zip(GROUP_KEYS, keys, strict=True)),
                "n_reps": len(reps),
                "n_samples": int(group["n_samples"].sum()),
                "cpu_pct_mean": reps["cpu_pct_mean"].mean(),
                "cpu_pct_ci_low": cpu_low,
                "cpu_pct_ci_high": cpu_high,
                "cpu_pct_ci_half": cpu_half,
                "cpu_pct_sd_of_rep_means": reps["cpu_pct_mean"].std(ddof=1),
                "cv_mean_of_reps": reps["cpu_cv"].mean(),
                "cv_mean_of_reps_ci_low": cv_low,
                "cv_mean_of_reps_ci_high": cv_high,
                **{name: reps[name].mean() for name in _SAMPLE_MEANS.values()
                   if name in reps.columns},
                "aggregate_bandwidth_bps_mean": pd.to_numeric(
                    group["aggregate_bandwidth_bps"], errors="coerce"
                ).mean(),
                "target_aggregate_bps": group["target_aggregate_bps"].mean(),
                "load_ratio_mean": group["load_ratio"].mean(),
            }
        )
    groups = pd.DataFrame(rows)
    if groups.empty:
        return groups
    return groups.merge(pooled_sd, left_on=GROUP_KEYS, right_index=True, how="left")


def go_over_c(groups: pd.DataFrame) -> pd.DataFrame:
    """Mean CPU of the Go server divided by that of the C server, per shared condition."""
    columns = [*RATIO_KEYS, "c_cpu_pct_mean", "go_cpu_pct_mean", "go_over_c"]
    if groups.empty:
        return pd.DataFrame(columns=columns)
    by_server = {
        server: groups[groups["server"] == server].set_index(RATIO_KEYS)["cpu_pct_mean"]
        for server in (C_SERVER, GO_SERVER)
    }
    ratios = pd.concat(
        {"c_cpu_pct_mean": by_server[C_SERVER], "go_cpu_pct_mean": by_server[GO_SERVER]},
        axis=1,
        join="inner",
    ).reset_index()
    ratios["go_over_c"] = _ratio(ratios["go_cpu_pct_mean"], ratios["c_cpu_pct_mean"])
    return ratios[columns]


def summarize(run: RawRun) -> Summary:
    cells = summarize_cells(run)
    groups = summarize_groups(cells, run.samples)
    return Summary(cells=cells, groups=groups, ratios=go_over_c(groups))


def write_processed(run: RawRun, summary: Summary, processed_dir: Path) -> list[Path]:
    """CSV tables under ``data/processed/<run-id>/``; returns the files written."""
    processed_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "cells.csv": summary.cells,
        "summary.csv": summary.groups,
        "ratios.csv": summary.ratios,
        "failed_cells.csv": run.failed,
        "samples.csv": run.samples,
    }
    written = []
    for name, frame in tables.items():
        path = processed_dir / name
        frame.to_csv(path, index=False)
        written.append(path)
    return written
