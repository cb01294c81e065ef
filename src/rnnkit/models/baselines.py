r"""Baseline forecasts with prediction intervals: naive, seasonal naive, drift, and ETS.

Each baseline reads a history :math:`y_1 .. y_N` (N,) and returns the next H steps as a point
forecast (H,) and quantiles (H, Q) at the requested levels. Intervals of the simple methods are
Gaussian with the residual standard deviation :math:`\sigma` of the one-step in-sample fit and the
multipliers of Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, section 5.5:

=================  =====================================  =================================
method             forecast :math:`\hat y_{N+h}`          :math:`\sigma_h`
=================  =====================================  =================================
naive              :math:`y_N`                            :math:`\sigma \sqrt{h}`
seasonal naive     :math:`y_{N+h-m(k+1)}`                 :math:`\sigma \sqrt{k+1}`
drift              :math:`y_N + h (y_N - y_1)/(N-1)`      :math:`\sigma \sqrt{h (1 + h/N)}`
=================  =====================================  =================================

with :math:`k = \lfloor (h-1)/m \rfloor`, m the season. ``ets`` fits statsmodels' ETSModel
(additive errors, additive trend, damped when that lowers the AICc, additive season) on :math:`\log y` when the series is
positive (a multiplicative model in effect) and on :math:`y` otherwise, and takes its analytic
intervals; it needs ``statsmodels`` (the extra ``rnnkit[baselines]``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

BASELINES: tuple[str, ...] = ("naive", "seasonal_naive", "drift", "ets")


@dataclass(frozen=True)
class BaselineForecast:
    """A baseline's forecast: ``point`` (H,) and ``quantiles`` (H, Q) at ``levels`` (Q,); for
    several series (:func:`run_baselines_columns`) ``point`` (H, C) and ``quantiles`` (H, C, Q)."""

    point: np.ndarray
    quantiles: np.ndarray
    levels: tuple[float, ...]


def _check(history: np.ndarray, horizon: int, levels: Sequence[float], need: int) -> np.ndarray:
    y = np.asarray(history, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"history must be (N,), got shape {y.shape}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if len(y) < need:
        raise ValueError(f"history has {len(y)} points, this baseline needs at least {need}")
    if not np.isfinite(y).all():
        raise ValueError("history has missing or infinite values")
    if not all(0.0 < q < 1.0 for q in levels):
        raise ValueError(f"quantile levels must be in (0, 1), got {list(levels)}")
    return y


def _gaussian(point: np.ndarray, sigma_h: np.ndarray, levels: Sequence[float]) -> BaselineForecast:
    z = np.array([NormalDist().inv_cdf(q) for q in levels])  # (Q,)
    quantiles = point[:, None] + sigma_h[:, None] * z[None, :]  # (H, Q)
    return BaselineForecast(point, quantiles, tuple(float(q) for q in levels))


def _sigma(residuals: np.ndarray) -> float:
    return float(np.sqrt(np.mean(residuals**2))) if len(residuals) else 0.0


def naive(history: np.ndarray, horizon: int, levels: Sequence[float]) -> BaselineForecast:
    """Repeat the last value: ``y_N`` for every step."""
    y = _check(history, horizon, levels, 2)
    h = np.arange(1, horizon + 1)
    sigma = _sigma(np.diff(y))
    return _gaussian(np.full(horizon, y[-1]), sigma * np.sqrt(h), levels)


def seasonal_naive(
    history: np.ndarray, horizon: int, season: int, levels: Sequence[float]
) -> BaselineForecast:
    """Repeat the last season: ``y_{N+h-m(k+1)}``, k = floor((h-1)/m)."""
    if season < 1:
        raise ValueError(f"season must be >= 1, got {season}")
    y = _check(history, horizon, levels, season + 1)
    h = np.arange(1, horizon + 1)
    k = (h - 1) // season
    point = y[len(y) - season + (h - 1) % season]
    sigma = _sigma(y[season:] - y[:-season])
    return _gaussian(point, sigma * np.sqrt(k + 1.0), levels)


def drift(history: np.ndarray, horizon: int, levels: Sequence[float]) -> BaselineForecast:
    """The line through the first and last values, extended: ``y_N + h (y_N - y_1) / (N - 1)``."""
    y = _check(history, horizon, levels, 2)
    N = len(y)
    h = np.arange(1, horizon + 1)
    slope = (y[-1] - y[0]) / (N - 1)
    sigma = _sigma(np.diff(y) - slope)
    return _gaussian(y[-1] + h * slope, sigma * np.sqrt(h * (1.0 + h / N)), levels)


def ets_available() -> bool:
    """Whether statsmodels (needed by :func:`ets`) is installed."""
    import importlib.util

    return importlib.util.find_spec("statsmodels") is not None


def ets(
    history: np.ndarray, horizon: int, season: int, levels: Sequence[float]
) -> BaselineForecast:
    """statsmodels ETS on log y for positive series (else on y), analytic intervals.

    Additive errors, additive trend (damped or not, whichever has the lower AICc) and an additive
    season when ``season > 1`` and the history holds at least two seasons plus two points.
    """
    y = _check(history, horizon, levels, 4)
    try:
        from statsmodels.tsa.exponential_smoothing.ets import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
            ETSModel,
        )
    except ImportError:
        raise ImportError(
            "the ETS baseline needs statsmodels; install it with: pip install 'rnnkit[baselines]'"
        ) from None
    log = bool((y > 0).all())
    z = np.log(y) if log else y
    seasonal = season > 1 and len(y) >= 2 * season + 2
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    fits = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for damped in (False, True):
            model = ETSModel(
                pd.Series(z),  # statsmodels' prediction needs an indexed series
                error="add",
                trend="add",
                damped_trend=damped,
                seasonal="add" if seasonal else None,
                seasonal_periods=season if seasonal else None,
            )
            fits.append(model.fit(disp=False, maxiter=2000))
        fit = min(fits, key=lambda f: float(f.aicc))
        prediction = fit.get_prediction(start=len(z), end=len(z) + horizon - 1)
        mean = np.asarray(prediction.predicted_mean, dtype=np.float64)  # (H,)
        sd = np.sqrt(np.asarray(prediction.var_pred_mean, dtype=np.float64))  # (H,)
    z_q = np.array([NormalDist().inv_cdf(q) for q in levels])
    quantiles = mean[:, None] + sd[:, None] * z_q[None, :]  # (H, Q)
    point = mean
    if log:
        point, quantiles = np.exp(point), np.exp(quantiles)
    if not (np.isfinite(point).all() and np.isfinite(quantiles).all()):
        raise ValueError("ETS produced a non-finite forecast")
    return BaselineForecast(point, quantiles, tuple(float(q) for q in levels))


def run_baselines(
    history: np.ndarray,
    horizon: int,
    season: int,
    levels: Sequence[float],
    names: Sequence[str] | None = None,
) -> dict[str, BaselineForecast]:
    """Several baselines on one history (N,); ``names`` defaults to every baseline available
    (``ets`` only when statsmodels is installed). Unknown names raise ValueError."""
    if names is None:
        names = [b for b in BASELINES if b != "ets" or ets_available()]
    out: dict[str, BaselineForecast] = {}
    for name in names:
        if name == "naive":
            out[name] = naive(history, horizon, levels)
        elif name == "seasonal_naive":
            out[name] = seasonal_naive(history, horizon, season, levels)
        elif name == "drift":
            out[name] = drift(history, horizon, levels)
        elif name == "ets":
            out[name] = ets(history, horizon, season, levels)
        else:
            raise ValueError(f"unknown baseline '{name}'; valid baselines: {', '.join(BASELINES)}")
    return out


def run_baselines_columns(
    history: np.ndarray,
    horizon: int,
    season: int,
    levels: Sequence[float],
    names: Sequence[str] | None = None,
) -> dict[str, BaselineForecast]:
    """:func:`run_baselines` on each column of ``history`` (N, C) on its own; each forecast has
    ``point`` (H, C) and ``quantiles`` (H, C, Q)."""
    y = np.asarray(history, dtype=np.float64)
    if y.ndim != 2:
        raise ValueError(f"history must be (N, C), got shape {y.shape}")
    columns = [run_baselines(y[:, c], horizon, season, levels, names) for c in range(y.shape[1])]
    return {
        name: BaselineForecast(
            np.stack([column[name].point for column in columns], axis=1),  # (H, C)
            np.stack([column[name].quantiles for column in columns], axis=1),  # (H, C, Q)
            columns[0][name].levels,
        )
        for name in columns[0]
    }
