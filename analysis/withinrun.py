"""Statistics of one run on its own: what a single legacy log supports.

Per cell (repetition): the block length the autocorrelation calls for, studentized
moving-block bootstrap intervals for the mean and the CV, the lag-1 autocorrelation, the
effective sample size for a variance, and the dominant period of the trace.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis.hypothesis import effective_size_for_variance
from analysis.resampling import block_bootstrap_t
from analysis.timeseries import acf, dominant_period

# Lags shown in the ACF figure and used for the lag-1 value.
MAX_LAG = 20


def measured_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """Samples outside the warm-up window, the only ones any statistic uses."""
    return samples[pd.to_numeric(samples["warmup"]) == 0]


def run_values(samples: pd.DataFrame, column: str = "cpu_pct") -> dict[str, np.ndarray]:
    """cell_id -> its measured samples of ``column`` in time order (the series to resample)."""
    measured = measured_samples(samples)
    out: dict[str, np.ndarray] = {}
    for cell_id, trace in measured.groupby("cell_id", sort=False):
        ordered = trace.sort_values("t_rel_s")
        values = pd.to_numeric(ordered[column], errors="coerce").to_numpy(dtype=float)
        out[str(cell_id)] = values[np.isfinite(values)]
    return out


def analyse_run(values: np.ndarray, interval_s: float, key: str) -> dict[str, Any]:
    mean = block_bootstrap_t(values, key, "mean")
    cv = block_bootstrap_t(values, key, "cv")
    rho = acf(values, 1) if values.size >= 3 else np.array([math.nan])
    rho1 = float(rho[1]) if rho.size > 1 else math.nan
    periodicity = dominant_period(values, interval_s)
    return {
        "block_length": mean.block,
        "cpu_pct_mbb_low": mean.interval.low,
        "cpu_pct_mbb_high": mean.interval.high,
        "cpu_cv_mbb_low": cv.interval.low,
        "cpu_cv_mbb_high": cv.interval.high,
        "acf_lag1": rho1,
        "n_eff_variance": effective_size_for_variance(values.size, rho1),
        "dominant_period_s": periodicity.period_s,
        "fisher_g": periodicity.fisher_g,
        "fisher_p": periodicity.p_value,
    }


def within_run(samples: pd.DataFrame, intervals: dict[str, float]) -> pd.DataFrame:
    """One row per cell_id (index) with the columns of ``analyse_run``."""
    rows = {cell_id: analyse_run(values, intervals.get(cell_id, math.nan), cell_id)
            for cell_id, values in run_values(samples).items()}
    return pd.DataFrame.from_dict(rows, orient="index")
