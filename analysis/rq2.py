"""RQ2: how stable each server's CPU usage is, and whether the two differ.

Stability is the CV (sd / mean) of the measured samples of a run; a condition's CV is the
mean of its repetitions' CVs, with the interval rule of ``analysis.summary`` (BCa over
repetitions, or the within-run block bootstrap of a single run).

Equal CVs of the two servers at each level are tested three ways, because each has a
weakness:
- bootstrap test on the ratio CV_go / CV_c: with two or more repetitions per server,
  repetition CVs are resampled (BCa interval; p-value 2 min(P(r* <= 1), P(r* >= 1)) from
  the bootstrap distribution); with one run per server, the studentized block bootstrap-t
  on log(CV_go / CV_c) within the runs;
- Feltz-Miller's asymptotic test, with each server's sample size replaced by its effective
  size for a variance (n (1 - r1^2) / (1 + r1^2) per run, summed over repetitions), since
  the samples are autocorrelated and the test assumes independent ones;
- Levene's (Brown-Forsythe) test on samples divided by their run's mean (liberal: it treats
  samples as independent).
Each p-value is Holm-corrected over the connection levels of a family, as in RQ1.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.hypothesis import feltz_miller, levene_relative
from analysis.pairing import PAIR_ID, family_keys, pairs
from analysis.resampling import bca, block_bootstrap_ratio, bootstrap_p_value
from analysis.rq1 import WITHIN_RUN, adjust_by_family
from analysis.summary import BCA, Summary


def _reps(summary: Summary, condition: str) -> pd.DataFrame:
    cells = summary.cells
    mine = cells[cells["condition_id"] == condition]
    return mine[np.isfinite(mine["cpu_cv"].astype(float))].sort_values("repetition")


def _ratio_of_mean_cvs(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mean(a, axis=axis) / np.mean(b, axis=axis)


def _cv_ratio_test(summary: Summary, c: pd.DataFrame, go: pd.DataFrame, pair_id: str) -> tuple[
    float, float, float, str
]:
    """(low, high, p, method) for CV_go / CV_c."""
    c_cv = c["cpu_cv"].to_numpy(dtype=float)
    go_cv = go["cpu_cv"].to_numpy(dtype=float)
    if len(c_cv) >= 2 and len(go_cv) >= 2:
        low, high, dist = bca([go_cv, c_cv], _ratio_of_mean_cvs, ("rq2", pair_id))
        if not math.isfinite(low):
            return math.nan, math.nan, math.nan, "none"
        return low, high, bootstrap_p_value(dist, 1.0), BCA
    if len(c_cv) >= 1 and len(go_cv) >= 1:
        test = block_bootstrap_ratio(summary.values.get(go["cell_id"].iloc[0], np.array([])),
                                     summary.values.get(c["cell_id"].iloc[0], np.array([])),
                                     ("rq2", pair_id), "cv")
        method = WITHIN_RUN if math.isfinite(test.interval.low) else "none"
        return test.interval.low, test.interval.high, test.p_value, method
    return math.nan, math.nan, math.nan, "none"


def compare(summary: Summary) -> pd.DataFrame:
    table = pairs(summary)
    groups = summary.groups.set_index("condition_id") if not summary.groups.empty else None
    rows = []
    for pair in table.itertuples(index=False):
        pair_id = getattr(pair, PAIR_ID)
        c = _reps(summary, pair.c_condition)
        go = _reps(summary, pair.go_condition)
        assert groups is not None
        c_group, go_group = groups.loc[pair.c_condition], groups.loc[pair.go_condition]
        c_cv, go_cv = c["cpu_cv"].mean(), go["cpu_cv"].mean()
        low, high, p_boot, method = _cv_ratio_test(summary, c, go, pair_id)
        n_eff = [float(c["n_eff_variance"].sum()), float(go["n_eff_variance"].sum())]
        fm = feltz_miller([c_cv, go_cv], n_eff)
        levene = levene_relative([
            [summary.values.get(cid, np.array([])) for cid in go["cell_id"]],
            [summary.values.get(cid, np.array([])) for cid in c["cell_id"]],
        ])
        rows.append({
            "n_reps_c": len(c), "n_reps_go": len(go),
            "c_cv": c_cv, "c_cv_ci_low": c_group["cv_ci_low"],
            "c_cv_ci_high": c_group["cv_ci_high"], "c_cv_ci_method": c_group["cv_ci_method"],
            "go_cv": go_cv, "go_cv_ci_low": go_group["cv_ci_low"],
            "go_cv_ci_high": go_group["cv_ci_high"], "go_cv_ci_method": go_group["cv_ci_method"],
            "cv_ratio": go_cv / c_cv if c_cv else math.nan,
            "cv_ratio_ci_low": low, "cv_ratio_ci_high": high, "cv_ratio_ci_method": method,
            "boot_p": p_boot,
            "n_eff_c": n_eff[0], "n_eff_go": n_eff[1],
            "fm_stat": fm.statistic, "fm_p": fm.p_value,
            "levene_w": levene.statistic, "levene_p": levene.p_value,
            "c_acf_lag1": c["acf_lag1"].mean(), "go_acf_lag1": go["acf_lag1"].mean(),
        })
    out = pd.concat([table.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
    if out.empty:
        return out
    for column in ("boot_p", "fm_p", "levene_p"):
        out[f"{column}_holm"] = adjust_by_family(out, column, family_keys(summary))
    return out
