"""Known-answer tests of the statistics: simulated traces, hand computations, scipy itself.

Everything random is seeded, so these tests are deterministic; the simulation sizes are the
smallest that still separate a working method from a broken one (a few seconds in all).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.hypothesis import (
    effective_size_for_variance,
    feltz_miller,
    hedges_g,
    holm,
    levene_relative,
    mann_whitney,
    welch,
)
from analysis.resampling import (
    bca_mean,
    bca_ratio_of_means,
    block_bootstrap_ratio,
    block_bootstrap_t,
    bootstrap_p_value,
    t_interval,
)
from analysis.timeseries import (
    acf,
    ar1_block_length,
    block_length,
    dominant_period,
    fisher_g_pvalue,
    politis_white_block_length,
)
from analysis.withinrun import analyse_run


def ar1(rng: np.random.Generator, n: int, phi: float, mean: float, sd: float) -> np.ndarray:
    """A stationary Gaussian AR(1) series with the given marginal mean and sd."""
    shocks = rng.normal(0.0, sd * math.sqrt(1 - phi**2), n)
    x = np.empty(n)
    x[0] = rng.normal(0.0, sd)  # start in the stationary distribution: no burn-in needed
    for i in range(1, n):
        x[i] = phi * x[i - 1] + shocks[i]
    return mean + x


# --- synthetic traces with known mean and CV ------------------------------------------------

def test_synthetic_trace_mean_and_cv_are_recovered():
    rng = np.random.default_rng(11)
    mean, cv = 40.0, 0.15
    x = ar1(rng, 3000, 0.5, mean, cv * mean)
    result = analyse_run(x, 0.5, "known")
    assert x.mean() == pytest.approx(mean, rel=0.01)
    assert x.std(ddof=1) / x.mean() == pytest.approx(cv, rel=0.05)
    # The within-run intervals contain the truth and are not absurdly wide.
    assert result["cpu_pct_mbb_low"] <= mean <= result["cpu_pct_mbb_high"]
    assert result["cpu_pct_mbb_high"] - result["cpu_pct_mbb_low"] < 0.02 * mean
    assert result["cpu_cv_mbb_low"] <= cv <= result["cpu_cv_mbb_high"]
    assert result["acf_lag1"] == pytest.approx(0.5, abs=0.05)


# --- the block bootstrap's coverage -------------------------------------------------------

@pytest.mark.parametrize("kind,truth", [("mean", 50.0), ("cv", 0.1)])
def test_block_bootstrap_covers_at_least_90_percent_on_ar1(kind, truth):
    """Nominal 95% intervals on AR(1) traces (rho = 0.5, 120 samples: a 60 s run at 500 ms)
    must cover the true value in at least 90% of 300 replications. An i.i.d. bootstrap
    covers about 80% here, the plain percentile block bootstrap about 85%."""
    rng = np.random.default_rng(20261123)
    replications, hits = 300, 0
    for i in range(replications):
        x = ar1(rng, 120, 0.5, 50.0, 5.0)
        interval = block_bootstrap_t(x, i, kind, n_resamples=200, rng=rng).interval
        hits += interval.low <= truth <= interval.high
    assert hits / replications >= 0.90


def test_iid_bootstrap_would_undercover_the_same_series():
    """The reason for blocks: resampling single samples of the same series covers badly."""
    rng = np.random.default_rng(20261123)
    replications, hits = 300, 0
    for _ in range(replications):
        x = ar1(rng, 120, 0.5, 50.0, 5.0)
        means = x[rng.integers(0, x.size, (200, x.size))].mean(axis=1)
        low, high = np.quantile(means, [0.025, 0.975])
        hits += low <= 50.0 <= high
    assert hits / replications < 0.85


def test_block_ratio_test_holds_its_size():
    """Two independent AR(1) runs with the same CV (different means): the bootstrap-t test
    of equal CVs rejects at 5% no more than about 5% of the time."""
    rng = np.random.default_rng(7)
    replications, rejections = 200, 0
    for i in range(replications):
        a = ar1(rng, 120, 0.5, 50.0, 5.0)
        b = ar1(rng, 120, 0.5, 20.0, 2.0)
        rejections += block_bootstrap_ratio(a, b, i, "cv", n_resamples=200).p_value < 0.05
    assert rejections / replications <= 0.10


def test_block_ratio_of_means_finds_a_real_difference():
    rng = np.random.default_rng(3)
    a, b = ar1(rng, 120, 0.5, 30.0, 3.0), ar1(rng, 120, 0.5, 20.0, 2.0)
    test = block_bootstrap_ratio(a, b, "diff", "mean")
    assert test.interval.low < 1.5 < test.interval.high
    assert test.interval.estimate == pytest.approx(a.mean() / b.mean())
    assert test.p_value < 0.001


# --- block length ---------------------------------------------------------------------------

def test_block_length_grows_with_dependence():
    rng = np.random.default_rng(5)
    white = rng.normal(size=400)
    strong = ar1(rng, 400, 0.8, 0.0, 1.0)
    assert block_length(white) <= 2
    assert block_length(strong) > 5 * block_length(white) / 2
    assert block_length(np.full(50, 3.0)) == 1  # nothing to preserve
    assert block_length(np.array([1.0, 2.0])) == 1
    assert block_length(strong) == max(politis_white_block_length(strong),
                                       ar1_block_length(strong))


def test_ar1_block_length_matches_andrews_formula():
    """A series whose lag-1 autocorrelation is known exactly: the period-3 pattern 1, 0, -1
    repeated 40 times has mean 0, sum of squares 80 and lag-1 products summing to -39
    (-1 per full period of the 119 pairs), so rho = -39/80 with the biased estimator."""
    x = np.tile([1.0, 0.0, -1.0], 40)  # n = 120
    rho = acf(x, 1)[1]
    assert rho == pytest.approx(-39 / 80, rel=1e-12)
    expected = 1.1447 * (4 * rho**2 * 120 / (1 - rho**2) ** 2) ** (1 / 3)
    assert ar1_block_length(x) == round(expected)


# --- repetition-level intervals -----------------------------------------------------------

def test_t_and_bca_intervals_against_scipy():
    values = np.array([3.1, 2.7, 3.6, 3.3, 2.9, 3.8])
    low, high, half = t_interval(values)
    ref = stats.t.interval(0.95, df=5, loc=values.mean(), scale=stats.sem(values))
    assert (low, high) == pytest.approx(ref)
    assert half == pytest.approx((high - low) / 2)
    b_low, b_high = bca_mean(values, "k")
    assert values.min() < b_low < values.mean() < b_high < values.max()
    assert bca_mean(values, "k") == bca_mean(values, "k")  # seeded: reproducible
    assert all(math.isnan(v) for v in bca_mean([1.0], "k"))
    assert all(math.isnan(v) for v in bca_mean([2.0, 2.0, 2.0], "k"))  # degenerate


def test_bca_ratio_of_means_brackets_the_ratio():
    go, c = np.array([12.0, 13.0, 14.0, 13.5]), np.array([8.0, 8.5, 9.0, 8.2])
    low, high, dist = bca_ratio_of_means(go, c, "r")
    assert low < go.mean() / c.mean() < high
    assert dist.size > 1000 and bootstrap_p_value(dist, 1.0) < 0.01


# --- tests and effect sizes against hand computations ---------------------------------------

def test_holm_hand_worked_example():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max so far 0.06.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # NaN entries are skipped and do not count towards m; values cap at 1.
    adjusted = holm([0.5, math.nan, 0.6])
    assert adjusted[0] == pytest.approx(1.0) and adjusted[2] == pytest.approx(1.0)
    assert math.isnan(adjusted[1])
    assert holm([0.02]) == pytest.approx([0.02])


def test_hedges_g_hand_computation():
    # Means 4 and 2, both sample variances 1: pooled sd 1, d = 2; df = 4 and
    # J = Gamma(2) / (sqrt(2) Gamma(1.5)) = 1 / (sqrt(2) * sqrt(pi) / 2) = 0.797885.
    g = hedges_g([3.0, 4.0, 5.0], [1.0, 2.0, 3.0])
    assert g == pytest.approx(2 * 2 / (math.sqrt(2) * math.sqrt(math.pi)), rel=1e-12)
    assert g == pytest.approx(2 * (1 - 3 / (4 * 4 - 1)), rel=0.01)  # Hedges' approximation
    assert hedges_g([1.0, 2.0, 3.0], [3.0, 4.0, 5.0]) == pytest.approx(-g)
    assert math.isnan(hedges_g([1.0], [2.0, 3.0]))


def test_feltz_miller_hand_computation():
    # CVs 0.1 and 0.2 from n = 11 and 21: m = 10, 20; pooled c = (1 + 4) / 30 = 1/6;
    # sum m (c_j - c)^2 = 10/225 + 20/900 = 1/15; D = (1/15) / ((1/36)(0.5 + 1/36)).
    result = feltz_miller([0.1, 0.2], [11, 21])
    d = (1 / 15) / ((1 / 36) * (0.5 + 1 / 36))
    assert result.statistic == pytest.approx(d, rel=1e-12)
    assert result.df == 1
    assert result.p_value == pytest.approx(stats.chi2.sf(d, 1), rel=1e-12)


def test_feltz_miller_reproduces_the_published_example():
    """Feltz and Miller (1996), three assays with n = 5: CVs 0.090, 0.462, 0.340, D = 5.53,
    p = 0.063 (the values R's cvequality package checks against)."""
    result = feltz_miller([0.090, 0.462, 0.340], [5, 5, 5])
    assert result.statistic == pytest.approx(5.530452, abs=1e-5)
    assert result.p_value == pytest.approx(0.06296186, abs=1e-6)
    assert math.isnan(feltz_miller([0.1], [10]).p_value)


def test_welch_and_mann_whitney_wrap_scipy():
    a, b = [5.0, 6.0, 7.5, 6.2], [4.0, 4.4, 5.1]
    w = welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert (w.statistic, w.p_value) == pytest.approx((ref.statistic, ref.pvalue))
    u = mann_whitney(a, b)
    assert u.p_value == pytest.approx(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)
    assert mann_whitney([1.0, 2.0], [3.0, 4.0]).p_value == pytest.approx(1 / 3)  # its floor
    assert math.isnan(welch([1.0], [2.0, 3.0]).p_value)


def test_levene_on_relative_dispersion():
    rng = np.random.default_rng(9)
    same_cv = [[rng.normal(50, 5, 200)], [rng.normal(10, 1, 200)]]  # CV 0.1 both
    assert levene_relative(same_cv).p_value > 0.05
    assert stats.levene(same_cv[0][0], same_cv[1][0]).pvalue < 1e-6  # raw samples would differ
    different = [[rng.normal(50, 5, 200)], [rng.normal(10, 3, 200)]]
    assert levene_relative(different).p_value < 1e-6


def test_effective_size_for_variance():
    assert effective_size_for_variance(100, 0.0) == 100
    assert effective_size_for_variance(100, 0.5) == pytest.approx(100 * 0.75 / 1.25)
    assert effective_size_for_variance(100, -0.5) == effective_size_for_variance(100, 0.5)
    assert effective_size_for_variance(10, 0.999) == 2.0


# --- periodicity --------------------------------------------------------------------------

def test_fisher_g_pvalue_hand_computation():
    assert fisher_g_pvalue(0.75, 2) == pytest.approx(2 * 0.25)  # floor(1/g) = 1 term
    assert fisher_g_pvalue(0.5, 3) == pytest.approx(3 * 0.5**2 - 3 * 0.0**2)
    assert fisher_g_pvalue(0.002, 2000) == 1.0  # no peak: p is 1


def test_dominant_period_finds_a_gc_like_cycle():
    rng = np.random.default_rng(2)
    t = np.arange(120) * 0.5
    x = 20 + 3 * np.sin(2 * np.pi * t / 4.0) + rng.normal(0, 1, t.size)  # a 4 s cycle
    found = dominant_period(x, 0.5)
    assert found.period_s == pytest.approx(4.0, rel=0.05)
    assert found.p_value < 1e-6
    noise = dominant_period(rng.normal(0, 1, 120), 0.5)
    assert noise.p_value > 0.01
    assert math.isnan(dominant_period(np.ones(30), 0.5).period_s)
