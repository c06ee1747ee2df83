"""Time-series properties of one trace: autocorrelation, block length, dominant period.

CPU samples taken every 500 ms are autocorrelated (a busy interval tends to be followed by
another), so anything that resamples them must know how far the dependence reaches. The
block length rule and the periodicity test live here; the resampling itself is in
``analysis.resampling``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal, special


def autocovariance(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Biased sample autocovariances (divided by n) for lags 0..max_lag.

    The biased estimator is the standard one for spectral and block-length estimates: it is
    positive semi-definite and does not blow up at long lags of short series.
    """
    x = np.asarray(x, dtype=float)
    n = x.size
    eps = x - x.mean()
    max_lag = min(max_lag, n - 1)
    return np.array([eps[k:] @ eps[: n - k] / n for k in range(max_lag + 1)])


def acf(x: np.ndarray, max_lag: int) -> np.ndarray:
    """Sample autocorrelation for lags 0..max_lag; all-NaN for a constant series."""
    acv = autocovariance(x, max_lag)
    if acv.size == 0 or acv[0] <= 0:
        return np.full(max(acv.size, 1), math.nan)
    return acv / acv[0]


def _flat_top(t: np.ndarray) -> np.ndarray:
    # Politis-Romano flat-top lag window: 1 near zero, linear taper to 0 at |t| = 1.
    t = np.abs(t)
    return np.where(t <= 0.5, 1.0, np.where(t <= 1.0, 2.0 * (1.0 - t), 0.0))


def max_block_length(n: int) -> int:
    """Cap from Politis and White: min(3 sqrt(n), n/3), so at least three blocks exist."""
    return max(1, math.ceil(min(3 * math.sqrt(n), n / 3)))


def politis_white_block_length(x: np.ndarray) -> int:
    """Block length for a moving-block bootstrap of the mean, by Politis and White (2004).

    The rule, with the correction of Patton, Politis and White (2009):
    1. K = max(5, floor(log10 n)); m_hat is the smallest lag after which K consecutive
       autocorrelations are all below 2 sqrt(log10(n) / n) in absolute value (the lag where
       the dependence has visibly died out). M = 2 max(m_hat, 1), capped at
       ceil(sqrt n) + K.
    2. With the flat-top window lambda over lags |k| <= M:
       g = sum lambda(k/M) R(k), G = sum lambda(k/M) |k| R(k), D = (4/3) g^2 (the constant
       for moving/circular blocks).
    3. b = (2 G^2 / D)^(1/3) n^(1/3), rounded and clamped to [1, max_block_length(n)].
    White noise gives b = 1 (the i.i.d. bootstrap); stronger dependence, longer blocks.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 4:
        return 1
    k_n = max(5, int(math.log10(n)))
    m_max = math.ceil(math.sqrt(n)) + k_n
    acv = autocovariance(x, m_max)
    if acv[0] <= 0:
        return 1  # a constant series has no dependence to preserve
    rho = np.abs(acv[1:] / acv[0])  # rho[k-1] is lag k
    threshold = 2 * math.sqrt(math.log10(n) / n)
    m_hat = None
    for m in range(0, rho.size - k_n + 1):
        if np.all(rho[m : m + k_n] < threshold):
            m_hat = m
            break
    big_m = min(2 * max(m_hat, 1), m_max) if m_hat is not None else m_max
    big_m = min(big_m, acv.size - 1)
    lags = np.arange(1, big_m + 1)
    weights = _flat_top(lags / big_m)
    g = acv[0] + 2 * np.sum(weights * acv[lags])
    big_g = 2 * np.sum(weights * lags * acv[lags])
    if g <= 0:
        return 1
    d = 4 / 3 * g**2
    b = (2 * big_g**2 / d) ** (1 / 3) * n ** (1 / 3)
    return int(min(max(round(b), 1), max_block_length(n)))


def ar1_block_length(x: np.ndarray) -> int:
    """Andrews' (1991) AR(1) plug-in length for the Bartlett kernel, the MBB's variance.

    b = 1.1447 (4 rho^2 n / (1 - rho^2)^2)^(1/3) with rho the lag-1 autocorrelation
    (clamped to +-0.97). It is the Politis-White formula evaluated for an AR(1) process, so
    it estimates the same optimum from one well-determined autocorrelation instead of a
    truncated sum of noisy ones.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 4:
        return 1
    acv = autocovariance(x, 1)
    if acv[0] <= 0:
        return 1
    rho = float(np.clip(acv[1] / acv[0], -0.97, 0.97))
    b = 1.1447 * (4 * rho**2 * n / (1 - rho**2) ** 2) ** (1 / 3)
    return int(min(max(round(b), 1), max_block_length(n)))


def block_length(x: np.ndarray) -> int:
    """The block length every within-run bootstrap uses: the larger of the two rules above.

    Both estimate the MSE-optimal length for the variance of the mean. In short traces
    (tens to a hundred samples) Politis-White often stops the autocorrelation sum after a
    lag or two and picks blocks that are too short; too-short blocks cut the dependence and
    make intervals too narrow, the worse error for a confidence interval, so the longer of
    the two is used. On simulated AR(1) traces (rho = 0.5, n = 120) this gives about 93%
    coverage for a nominal 95% studentized interval (tests/test_analysis_inference.py).
    """
    return max(politis_white_block_length(x), ar1_block_length(x))


def fisher_g_pvalue(g: float, m: int) -> float:
    """P(max periodogram ordinate / sum >= g) for m Fourier ordinates of Gaussian white noise.

    Fisher (1929): p = sum_{j=1}^{floor(1/g)} (-1)^(j-1) C(m, j) (1 - j g)^(m-1). Terms are
    computed in log space; when they are so large that the alternating sum would cancel
    catastrophically (only for small g, where p is near 1), the first, Bonferroni-type
    term m (1 - g)^(m-1), capped at 1, is used instead.
    """
    if m < 2 or not math.isfinite(g) or g <= 0:
        return math.nan
    if g >= 1:
        return 0.0
    terms = []
    for j in range(1, min(int(1 / g), m) + 1):
        base = 1 - j * g
        if base <= 0:
            break
        log_term = (special.gammaln(m + 1) - special.gammaln(j + 1)
                    - special.gammaln(m - j + 1) + (m - 1) * math.log(base))
        terms.append((-1) ** (j - 1) * math.exp(min(log_term, 700.0)))
    if not terms:
        return 0.0
    if max(abs(t) for t in terms) > 1e10:
        return float(min(1.0, terms[0]))
    return float(min(max(sum(terms), 0.0), 1.0))


@dataclass(frozen=True)
class Periodicity:
    period_s: float  # period of the largest periodogram peak (NaN if none)
    fisher_g: float  # share of the spectrum in that peak
    p_value: float  # Fisher's g test against white noise


def dominant_period(x: np.ndarray, interval_s: float) -> Periodicity:
    """Largest peak of the periodogram (linear trend removed) and Fisher's g test.

    Only Fourier frequencies strictly between 0 and Nyquist enter the test, as Fisher's
    distribution assumes. The null is white noise: an autocorrelated (red) trace puts power
    at low frequencies anyway, so a small p-value at a period near the window length is
    weak evidence; a sharp peak at a short period (e.g. a GC cycle) is the interesting case.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 6 or not np.ptp(x) > 0 or not interval_s > 0:
        return Periodicity(math.nan, math.nan, math.nan)
    freqs, power = signal.periodogram(x, fs=1.0 / interval_s, detrend="linear",
                                      scaling="spectrum")
    nyquist = 0.5 / interval_s
    inner = (freqs > 0) & (freqs < nyquist - 1e-12)
    if inner.sum() < 2 or power[inner].sum() <= 0:
        return Periodicity(math.nan, math.nan, math.nan)
    f_in, p_in = freqs[inner], power[inner]
    peak = int(np.argmax(p_in))
    g = float(p_in[peak] / p_in.sum())
    return Periodicity(float(1.0 / f_in[peak]), g, fisher_g_pvalue(g, int(inner.sum())))
