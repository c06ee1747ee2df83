"""Per-repetition and per-condition statistics of CPU usage, with their intervals.

The repetition (cell) is the unit of replication. Per repetition: the mean, sd and CV of
the measured samples, plus within-run bootstrap intervals (``analysis.withinrun``). Per
condition (all factors but the repetition): the mean over repetition means with a BCa
bootstrap interval and the Student-t interval beside it. The "primary" interval
(``*_ci_low``/``*_ci_high``, drawn as the figure bands) is BCa when there are two or more
repetitions and the within-run block bootstrap of the single run otherwise, which is all
a legacy log allows; ``*_ci_method`` says which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis import cleaning
from analysis.factors import at_baseline, condition_keys, paper_workload
from analysis.rawdata import RawRun
from analysis.resampling import CONFIDENCE, bca_mean, t_interval
from analysis.withinrun import measured_samples, run_values, within_run

__all__ = ["CONFIDENCE", "C_SERVER", "GO_SERVER", "Summary", "measured_samples", "summarize",
           "t_interval"]

C_SERVER = "c-fork"
GO_SERVER = "go-goroutine"
BCA = "BCa bootstrap over repetitions"
MBB = "studentized moving-block bootstrap within the run"

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
    groups: pd.DataFrame  # one row per condition
    keys: list[str]  # the condition's columns (factors but the repetition)
    extras: list[str] = field(default_factory=list)  # ablation factors among ``keys``
    rule: str = cleaning.ALL_SAMPLES  # cleaning rule applied to the samples
    values: dict[str, np.ndarray] = field(default_factory=dict)  # cell_id -> measured CPU %

    def baseline(self, frame: pd.DataFrame, *, include_cpus: bool = False) -> pd.DataFrame:
        """Rows of ``frame`` whose ablation factors are at the paper-faithful baseline: what
        the main RQ1/RQ2 tables and figures show (the ablations get their own section)."""
        if frame.empty:
            return frame
        rows = frame[at_baseline(frame, self.cells, self.extras, include_cpus=include_cpus)]
        workload = paper_workload(self.cells)
        if workload is not None and "workload" in rows.columns:
            rows = rows[rows["workload"] == workload]
        return rows

    def paper_servers(self) -> list[str]:
        """Servers of the baseline cells: the ones the paper's figures show."""
        return sorted(self.baseline(self.cells)["server"].unique())


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    # A zero denominator has no meaningful ratio; NaN keeps it out of later means.
    return numerator / denominator.where(denominator != 0)


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(math.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce")


def summarize_cells(run: RawRun, samples: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per completed cell: its measured-window statistics and achieved load."""
    measured = measured_samples(samples)
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
            per_cell[name] = pd.to_numeric(measured[column], errors="coerce").groupby(
                measured["cell_id"], sort=False).mean()
    per_cell["cpu_cv"] = _ratio(per_cell["cpu_pct_sd"], per_cell["cpu_pct_mean"])
    if cleaning.has_top_screens(samples):
        per_cell["no_match_screens"] = (
            pd.to_numeric(measured[cleaning.NO_MATCH], errors="coerce").fillna(0)
            .groupby(measured["cell_id"], sort=False).sum()
        )

    cells = run.cells.merge(per_cell, left_on="cell_id", right_index=True, how="left")
    cells["n_samples"] = cells["n_samples"].fillna(0).astype(int)
    intervals = dict(zip(cells["cell_id"], _numeric(cells, "sample_interval_s"), strict=True))
    cells = cells.merge(within_run(samples, intervals), left_on="cell_id", right_index=True,
                        how="left")

    # Context switches per second per connection: the direct evidence for the kernel-space
    # (a process per client) versus user-space (goroutines) switching question.
    ctx_total = _numeric(cells, "ctx_voluntary_per_s_mean") + _numeric(
        cells, "ctx_involuntary_per_s_mean")
    cells["ctx_per_s_per_conn"] = _ratio(ctx_total, _numeric(cells, "connections"))
    # loadgen.json's target is per connection and null when unpaced; the configured
    # bandwidth factor is the fallback so the ratio still says how close the load came.
    per_connection = _numeric(cells, "target_bandwidth_bps").fillna(
        _numeric(cells, "bandwidth_bps"))
    cells["target_aggregate_bps"] = _numeric(cells, "connections") * per_connection
    cells["load_ratio"] = _ratio(_numeric(cells, "aggregate_bandwidth_bps"),
                                 cells["target_aggregate_bps"])
    # Tracer CPU as a percentage of one CPU over the whole load, comparable to cpu_pct.
    cells["tracer_cpu_pct"] = 100 * _ratio(
        _numeric(cells, "tracer_cpu_seconds"),
        _numeric(cells, "warmup_s") + _numeric(cells, "measure_s"),
    )
    return cells.sort_values([*keys, "repetition"], ignore_index=True, na_position="first")


def _interval_columns(prefix: str, reps: pd.DataFrame, column: str, key: tuple[object, ...],
                      single_low: str, single_high: str) -> dict[str, object]:
    values = reps[column].to_numpy(dtype=float)
    t_low, t_high, t_half = t_interval(values)
    bca_low, bca_high = bca_mean(values, (prefix, *key))
    if len(values) >= 2:
        low, high, method = bca_low, bca_high, BCA
    elif len(values) == 1:
        low, high, method = reps[single_low].iloc[0], reps[single_high].iloc[0], MBB
    else:
        low, high, method = math.nan, math.nan, "none"
    if not (np.isfinite(low) and np.isfinite(high)):
        method = "none"
    return {
        f"{prefix}_t_low": t_low, f"{prefix}_t_high": t_high, f"{prefix}_t_half": t_half,
        f"{prefix}_bca_low": bca_low, f"{prefix}_bca_high": bca_high,
        f"{prefix}_ci_low": low, f"{prefix}_ci_high": high, f"{prefix}_ci_method": method,
    }


def summarize_groups(cells: pd.DataFrame, samples: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per condition, aggregating over its repetitions."""
    measured = measured_samples(samples)
    pooled_sd = measured.groupby(keys, dropna=False)["cpu_pct"].std(ddof=1).rename(
        "cpu_pct_sd_pooled_samples"
    )
    rows = []
    for key, group in cells.groupby(keys, sort=True, dropna=False):
        reps = group[np.isfinite(group["cpu_pct_mean"].astype(float))]
        ctx = reps["ctx_per_s_per_conn"].to_numpy(dtype=float)
        ctx_low, ctx_high, _ = t_interval(ctx)
        user = _numeric(reps, "user_pct_mean").mean()
        system = _numeric(reps, "system_pct_mean").mean()
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_reps": len(reps),
                "n_samples": int(group["n_samples"].sum()),
                "cpu_pct_mean": reps["cpu_pct_mean"].mean(),
                **_interval_columns("cpu_pct", reps, "cpu_pct_mean", key, "cpu_pct_mbb_low",
                                    "cpu_pct_mbb_high"),
                "cpu_pct_sd_of_rep_means": reps["cpu_pct_mean"].std(ddof=1),
                "cv_mean_of_reps": reps["cpu_cv"].mean(),
                **_interval_columns("cv", reps.dropna(subset=["cpu_cv"]), "cpu_cv", key,
                                    "cpu_cv_mbb_low", "cpu_cv_mbb_high"),
                **{name: _numeric(reps, name).mean() for name in _SAMPLE_MEANS.values()
                   if name in reps.columns},
                "system_share": system / (user + system) if user + system > 0 else math.nan,
                "ctx_per_s_per_conn": float(np.nanmean(ctx)) if np.isfinite(ctx).any()
                else math.nan,
                "ctx_per_s_per_conn_t_low": ctx_low,
                "ctx_per_s_per_conn_t_high": ctx_high,
                "acf_lag1_mean": reps["acf_lag1"].mean(),
                "block_length_max": reps["block_length"].max(),
                "aggregate_bandwidth_bps_mean": _numeric(group, "aggregate_bandwidth_bps").mean(),
                "target_aggregate_bps": group["target_aggregate_bps"].mean(),
                "load_ratio_mean": group["load_ratio"].mean(),
                **({"no_match_screens": int(group["no_match_screens"].sum())}
                   if "no_match_screens" in group.columns else {}),
            }
        )
    groups = pd.DataFrame(rows)
    if groups.empty:
        return groups
    return groups.merge(pooled_sd, left_on=keys, right_index=True, how="left")


def _id_text(value: object) -> str:
    if pd.isna(value):
        return "n/a"
    return str(value).encode("unicode_escape").decode("ascii")


def condition_id(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    """A readable, stable id of each row's condition, shared by cells and groups."""
    # Missing values (an imported run's unknown bandwidth) print as "n/a" on both sides;
    # astype(str) would keep them missing and the whole id would vanish.
    # Control characters are escaped (the message "message\n") so an id stays on one line.
    parts = [k + "=" + frame[k].map(_id_text) for k in keys]
    if not parts:
        return pd.Series("", index=frame.index)
    out = parts[0]
    for part in parts[1:]:
        out = out + "|" + part
    return out


def summarize(run: RawRun, rule: str | None = None) -> Summary:
    """Statistics of ``run`` under a cleaning rule (default: the run's primary rule)."""
    rule = rule or cleaning.primary_rule(run.samples, run.manifest)
    if run.cells.empty:
        raise ValueError(f"{run.raw_dir}: no completed cell to summarize")
    samples = cleaning.apply(run.samples, rule)
    extras = list(run.extra_factors)
    keys = condition_keys(run.cells, extras)
    cells = summarize_cells(run, samples, keys)
    cells["condition_id"] = condition_id(cells, keys)
    groups = summarize_groups(cells, samples, keys)
    if not groups.empty:
        groups["condition_id"] = condition_id(groups, keys)
    return Summary(cells=cells, groups=groups, keys=keys, extras=extras, rule=rule,
                   values=run_values(samples))
