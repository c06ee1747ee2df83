"""Tests and effect sizes that compare two servers, and the multiple-testing correction.

scipy.stats provides Welch's t, Mann-Whitney U and Levene; Holm's step-down correction,
Hedges' g and the Feltz-Miller test of equal CVs are not in scipy (its
``false_discovery_control`` is Benjamini-Hochberg, which controls a different error rate),
so they are written out here, each in a few lines with its reference.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float
    df: float = math.nan  # degrees of freedom where the test has them

    @classmethod
    def missing(cls) -> TestResult:
        return cls(math.nan, math.nan, math.nan)


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array)]


def holm(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values; NaN entries stay NaN and do not count.

    Sort the m finite p-values ascending, multiply the i-th (0-based) by m - i, take the
    running maximum so adjusted values keep the order of the raw ones, and cap at 1. This
    controls the family-wise error rate under any dependence between the tests.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m == 0:
        return adjusted
    order = finite[np.argsort(p[finite], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def hedges_g(treatment: Sequence[float] | np.ndarray,
             control: Sequence[float] | np.ndarray) -> float:
    """Hedges' g: (mean_t - mean_c) / pooled sd, times the exact small-sample correction.

    J(df) = Gamma(df/2) / (sqrt(df/2) Gamma((df-1)/2)), df = n_t + n_c - 2 (Hedges 1981);
    the familiar 1 - 3/(4 df - 1) is its approximation. With a handful of repetitions per
    server, Cohen's d (no correction) overstates the effect noticeably.
    """
    t, c = _finite(treatment), _finite(control)
    n_t, n_c = t.size, c.size
    df = n_t + n_c - 2
    if n_t < 2 or n_c < 2:
        return math.nan
    pooled = math.sqrt(((n_t - 1) * t.var(ddof=1) + (n_c - 1) * c.var(ddof=1)) / df)
    if pooled == 0:
        return math.nan
    correction = math.exp(special.gammaln(df / 2) - special.gammaln((df - 1) / 2)) / math.sqrt(
        df / 2
    )
    return float((t.mean() - c.mean()) / pooled * correction)


def welch(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Welch's two-sample t test (unequal variances); NaN with fewer than two values a side
    or when both sides are constant (no variance to test against)."""
    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2 or (x.var() == 0 and y.var() == 0):
        return TestResult.missing()
    result = stats.ttest_ind(x, y, equal_var=False)
    return TestResult(float(result.statistic), float(result.pvalue), float(result.df))


def mann_whitney(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> TestResult:
    """Two-sided Mann-Whitney U (exact distribution for the small samples we have).

    With two repetitions per server the smallest attainable p-value is 1/3: the test cannot
    reject, and the report shows that rather than hiding it.
    """
    x, y = _finite(a), _finite(b)
    if x.size < 2 or y.size < 2:
        return TestResult.missing()
    result = stats.mannwhitneyu(x, y, alternative="two-sided", method="auto")
    return TestResult(float(result.statistic), float(result.pvalue))


def feltz_miller(cvs: Sequence[float], sizes: Sequence[float]) -> TestResult:
    """Feltz and Miller (1996) asymptotic test that k populations have equal CVs.

    With m_j = n_j - 1 and the pooled CV c = sum(m_j c_j) / sum(m_j):
    D = sum(m_j (c_j - c)^2) / (c^2 (0.5 + c^2)), chi-square with k - 1 df under H0 for
    normal samples. ``sizes`` may be effective sample sizes (not integers) for
    autocorrelated data.
    """
    c = np.asarray(cvs, dtype=float)
    n = np.asarray(sizes, dtype=float)
    keep = np.isfinite(c) & np.isfinite(n) & (n > 1)
    c, m = c[keep], n[keep] - 1
    if c.size < 2:
        return TestResult.missing()
    pooled = float(np.sum(m * c) / np.sum(m))
    if pooled == 0:
        return TestResult.missing()
    d = float(np.sum(m * (c - pooled) ** 2) / (pooled**2 * (0.5 + pooled**2)))
    df = c.size - 1
    return TestResult(d, float(stats.chi2.sf(d, df)), float(df))


def effective_size_for_variance(n: int, rho1: float) -> float:
    """Samples an AR(1) series of n is worth for estimating a variance: n (1-r^2)/(1+r^2).

    Var(s^2) of an AR(1) series is (1+r^2)/(1-r^2) times its i.i.d. value; the sd term
    dominates the CV's variance when CV^2 << 0.5, which holds for CPU traces. The lag-1
    autocorrelation is clamped to +-0.97 and the result kept at least 2.
    """
    if n < 2 or not math.isfinite(rho1):
        return float(n)
    r2 = min(abs(rho1), 0.97) ** 2
    return max(2.0, n * (1 - r2) / (1 + r2))


def levene_relative(groups: Sequence[Sequence[np.ndarray]]) -> TestResult:
    """Brown-Forsythe/Levene test (median-centred) on samples divided by their run's mean.

    ``groups``: one entry per server, each a list of runs (arrays of samples). Raw samples of
    a server at 13% CPU vary more in absolute terms than those of one at 8% simply because
    the level is higher; dividing each run by its mean makes the test compare relative
    dispersion, the quantity a CV measures. Samples are treated as independent, which they
    are not, so this p-value is liberal; it is reported beside the two CV tests, not alone.
    """
    pooled = []
    for runs in groups:
        # Rounded to 12 digits so that floating-point noise in identical relative deviations
        # cannot turn into a "significant" difference.
        scaled = [np.round(_finite(r) / _finite(r).mean(), 12) for r in runs
                  if _finite(r).size >= 2 and _finite(r).mean() != 0]
        pooled.append(np.concatenate(scaled) if scaled else np.array([]))
    if len(pooled) < 2 or any(a.size < 2 for a in pooled):
        return TestResult.missing()
    if all(np.ptp(a) == 0 for a in pooled):
        return TestResult.missing()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.levene(*pooled, center="median")
    return TestResult(float(result.statistic), float(result.pvalue))
