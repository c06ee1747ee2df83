"""RQ1: how the mean CPU usage of the two servers compares as connections grow.

Per pair of conditions (same connections, CPUs and other factors):
- the ratio of mean CPU%, Go over C, with a 95% CI: BCa bootstrap over repetition means
  (each server resampled on its own) when both have at least two repetitions; otherwise
  the studentized block bootstrap-t of the two single runs (``resampling.block_bootstrap_ratio``);
- Welch's t test and the Mann-Whitney U test on repetition means, each Holm-corrected over
  the connection levels of a family (the pair's factors other than connections);
- Hedges' g of Go minus C, in units of the pooled between-repetition sd.
Across levels, per server and family: CPU% against connections by least squares on the
repetition means (slope = marginal CPU% per connection, with its t-based CI), and the
growth exponent b of CPU% ~ a connections^b from the same fit on log2-log2 axes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from analysis.hypothesis import hedges_g, holm, mann_whitney, welch
from analysis.pairing import PAIR_ID, family_keys, pair_keys, pairs
from analysis.resampling import CONFIDENCE, bca_ratio_of_means, block_bootstrap_ratio
from analysis.summary import BCA, Summary

WITHIN_RUN = "studentized moving-block bootstrap of the two runs"


@dataclass(frozen=True)
class RQ1:
    comparisons: pd.DataFrame  # one row per pair
    scaling: pd.DataFrame  # one row per server and family
    replicates: dict[str, np.ndarray] = field(default_factory=dict)  # pair_id -> ratio*


def _reps(summary: Summary, condition: str) -> pd.DataFrame:
    cells = summary.cells
    mine = cells[cells["condition_id"] == condition]
    return mine[np.isfinite(mine["cpu_pct_mean"].astype(float))].sort_values("repetition")


def _ratio_interval(summary: Summary, c: pd.DataFrame, go: pd.DataFrame, pair_id: str) -> tuple[
    float, float, str, np.ndarray
]:
    c_means = c["cpu_pct_mean"].to_numpy(dtype=float)
    go_means = go["cpu_pct_mean"].to_numpy(dtype=float)
    if len(c_means) >= 2 and len(go_means) >= 2:
        low, high, dist = bca_ratio_of_means(go_means, c_means, ("rq1", pair_id))
        return low, high, BCA if math.isfinite(low) else "none", dist
    if len(c_means) >= 1 and len(go_means) >= 1:
        # A single run on a side: compare the first repetition of each, within the runs.
        test = block_bootstrap_ratio(summary.values.get(go["cell_id"].iloc[0], np.array([])),
                                     summary.values.get(c["cell_id"].iloc[0], np.array([])),
                                     ("rq1", pair_id), "mean")
        method = WITHIN_RUN if math.isfinite(test.interval.low) else "none"
        return test.interval.low, test.interval.high, method, test.replicates
    return math.nan, math.nan, "none", np.array([])


def compare(summary: Summary) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    table = pairs(summary)
    rows = []
    replicates: dict[str, np.ndarray] = {}
    for pair in table.itertuples(index=False):
        pair_id = getattr(pair, PAIR_ID)
        c = _reps(summary, pair.c_condition)
        go = _reps(summary, pair.go_condition)
        c_mean = c["cpu_pct_mean"].mean()
        go_mean = go["cpu_pct_mean"].mean()
        low, high, method, dist = _ratio_interval(summary, c, go, pair_id)
        replicates[pair_id] = dist
        w = welch(go["cpu_pct_mean"], c["cpu_pct_mean"])
        u = mann_whitney(go["cpu_pct_mean"], c["cpu_pct_mean"])
        rows.append({
            "n_reps_c": len(c), "n_reps_go": len(go),
            "c_cpu_pct_mean": c_mean, "go_cpu_pct_mean": go_mean,
            "go_over_c": go_mean / c_mean if c_mean else math.nan,
            "go_over_c_ci_low": low, "go_over_c_ci_high": high, "go_over_c_ci_method": method,
            "diff_cpu_pct": go_mean - c_mean,
            "welch_t": w.statistic, "welch_df": w.df, "welch_p": w.p_value,
            "mwu_u": u.statistic, "mwu_p": u.p_value,
            "hedges_g": hedges_g(go["cpu_pct_mean"], c["cpu_pct_mean"]),
        })
    out = pd.concat([table.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
    if out.empty:
        return out, replicates
    for column in ("welch_p", "mwu_p"):
        out[f"{column}_holm"] = adjust_by_family(out, column, family_keys(summary))
    return out, replicates


def adjust_by_family(frame: pd.DataFrame, column: str, family: list[str]) -> pd.Series:
    """Holm-adjusted ``column`` within each family (rows sharing the ``family`` values)."""
    adjusted = pd.Series(math.nan, index=frame.index, dtype=float)
    if frame.empty:
        return adjusted
    if not family:
        adjusted[:] = holm(frame[column].to_numpy(dtype=float))
        return adjusted
    for _, rows in frame.groupby(family, dropna=False, sort=False):
        adjusted[rows.index] = holm(rows[column].to_numpy(dtype=float))
    return adjusted


def _fit(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least-squares line with a t-based CI for the slope; NaN below 3 points or 2 x's."""
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3 or np.unique(x).size < 2:
        return dict.fromkeys(["slope", "slope_low", "slope_high", "intercept", "r2", "n"],
                             math.nan) | {"n": float(x.size)}
    fit = stats.linregress(x, y)
    half = stats.t.ppf((1 + CONFIDENCE) / 2, df=x.size - 2) * fit.stderr
    return {"slope": fit.slope, "slope_low": fit.slope - half, "slope_high": fit.slope + half,
            "intercept": fit.intercept, "r2": fit.rvalue**2, "n": float(x.size)}


def scaling(summary: Summary) -> pd.DataFrame:
    """Per server and family: CPU% = a + s * connections, and log2 CPU% = c + b log2 conn."""
    cells = summary.cells
    family = ["server", *family_keys(summary)]
    rows = []
    for key, group in cells.groupby(family, dropna=False, sort=True):
        x = group["connections"].to_numpy(dtype=float)
        y = group["cpu_pct_mean"].to_numpy(dtype=float)
        linear = _fit(x, y)
        positive = (x > 0) & (y > 0)  # log of a 0% sample is undefined
        loglog = _fit(np.log2(x[positive]), np.log2(y[positive]))
        rows.append({
            **dict(zip(family, key, strict=True)),
            "levels": int(np.unique(x[np.isfinite(x)]).size),
            "n_points": int(linear["n"]),
            "slope_cpu_pct_per_conn": linear["slope"],
            "slope_ci_low": linear["slope_low"], "slope_ci_high": linear["slope_high"],
            "intercept_cpu_pct": linear["intercept"], "r2_linear": linear["r2"],
            "exponent": loglog["slope"],
            "exponent_ci_low": loglog["slope_low"], "exponent_ci_high": loglog["slope_high"],
            "r2_loglog": loglog["r2"],
        })
    return pd.DataFrame(rows)


def analyse(summary: Summary) -> RQ1:
    comparisons, replicates = compare(summary)
    return RQ1(comparisons=comparisons, scaling=scaling(summary), replicates=replicates)


__all__ = ["RQ1", "WITHIN_RUN", "adjust_by_family", "analyse", "compare", "pair_keys", "scaling"]
