"""Ablations: how much of the Go/C gap each confound explains.

For each factor the run varies away from its paper-faithful baseline (output, read buffer,
GOGC, GOMAXPROCS, CPUs, or any factor a config adds), and each of its other levels, the
Go/C ratio with that one factor changed is set beside the ratio at the baseline, all other
factors at their baseline, at each connection level. Designs that cross the factors and
one-factor-at-a-time designs both provide these slices; a combination the run lacks is
skipped. The change in ratio gets a percentile interval from the difference of the two
pairs' bootstrap replicates (independent cells, so replicates pair by index), and the
share of the gap explained is (R_base - R_ablated) / (R_base - 1): 100% means the factor
accounts for the whole difference from parity, negative values mean it widens the gap.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.factors import NOT_APPLICABLE, ablation_factors, at_baseline, baseline_level
from analysis.resampling import percentile_interval
from analysis.rq1 import RQ1
from analysis.summary import Summary

# Keys that must agree between the ablated pair and its baseline pair (besides the factor).
_CONTEXT = ["workload", "bandwidth_bps", "message", "cpus", "connections"]
COLUMNS = ["factor", "level", "baseline_level", "connections", "cpus", "base_ratio",
           "base_ci_low", "base_ci_high", "base_ci_method", "base_reps", "ratio", "ci_low",
           "ci_high", "ci_method", "reps", "change", "change_ci_low", "change_ci_high",
           "gap_explained", "base_pair", "pair"]


def _difference_interval(ablated: np.ndarray, base: np.ndarray) -> tuple[float, float]:
    n = min(ablated.size, base.size)
    if n < 10:
        return math.nan, math.nan
    return percentile_interval(ablated[:n] - base[:n])


def analyse(summary: Summary, rq1: RQ1) -> pd.DataFrame:
    comparisons = rq1.comparisons
    cells = summary.cells
    if comparisons.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for factor in ablation_factors(cells, summary.extras):
        if factor not in comparisons.columns:
            continue
        base_level = baseline_level(cells, factor)
        others = comparisons[at_baseline(comparisons, cells, summary.extras, except_for=factor,
                                         include_cpus=factor != "cpus")]
        is_base = (others[factor] == base_level) | (others[factor] == NOT_APPLICABLE)
        context = [k for k in _CONTEXT if k in others.columns and k != factor]
        base_rows = others[is_base]
        for level in sorted(others.loc[~is_base, factor].unique(), key=str):
            for _, ablated in others[others[factor] == level].iterrows():
                match = base_rows
                for key in context:
                    value = ablated[key]
                    match = match[match[key].isna()] if pd.isna(value) else match[
                        match[key] == value]
                if match.empty:
                    continue
                base = match.iloc[0]
                change_low, change_high = _difference_interval(
                    rq1.replicates.get(ablated["pair_id"], np.array([])),
                    rq1.replicates.get(base["pair_id"], np.array([])))
                gap = base["go_over_c"] - 1
                rows.append({
                    "factor": factor, "level": level, "baseline_level": base_level,
                    "connections": ablated["connections"], "cpus": ablated["cpus"],
                    "base_ratio": base["go_over_c"], "base_ci_low": base["go_over_c_ci_low"],
                    "base_ci_high": base["go_over_c_ci_high"],
                    "base_ci_method": base["go_over_c_ci_method"],
                    "base_reps": min(base["n_reps_c"], base["n_reps_go"]),
                    "ratio": ablated["go_over_c"], "ci_low": ablated["go_over_c_ci_low"],
                    "ci_high": ablated["go_over_c_ci_high"],
                    "ci_method": ablated["go_over_c_ci_method"],
                    "reps": min(ablated["n_reps_c"], ablated["n_reps_go"]),
                    "change": ablated["go_over_c"] - base["go_over_c"],
                    "change_ci_low": change_low, "change_ci_high": change_high,
                    # A gap within 1% of parity has nothing to explain.
                    "gap_explained": (base["go_over_c"] - ablated["go_over_c"]) / gap
                    if abs(gap) > 0.01 else math.nan,
                    "base_pair": base["pair_id"], "pair": ablated["pair_id"],
                })
    return pd.DataFrame(rows, columns=COLUMNS)
