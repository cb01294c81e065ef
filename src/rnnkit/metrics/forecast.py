r"""Point and probabilistic forecast metrics (NumPy, float64).

Shapes: H horizon steps (any leading shape works for the point metrics), C series, Q quantile
levels, N in-sample steps. With actuals :math:`y_t`, forecasts :math:`\hat y_t` over the horizon:

- MAE :math:`= \frac1H \sum_t |y_t - \hat y_t|`, RMSE :math:`= \sqrt{\frac1H \sum_t (y_t - \hat y_t)^2}`
- sMAPE :math:`= \frac{100}{H} \sum_t \frac{2 |y_t - \hat y_t|}{|y_t| + |\hat y_t|}` in percent
  (0 to 200; a term with :math:`y_t = \hat y_t = 0` counts 0)
- MASE :math:`= \text{MAE} / s` with :math:`s = \frac{1}{N-m} \sum_{t>m} |x_t - x_{t-m}|` the
  in-sample MAE of the seasonal naive forecast (season m) on the training history x
- coverage of an interval [l, u] :math:`= \frac1H \sum_t [l_t \le y_t \le u_t]`
- pinball loss of quantile q :math:`= \frac1H \sum_t \max(q (y_t - \hat y^q_t), (q-1)(y_t - \hat y^q_t))`,
  averaged over the Q levels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# the torch-free runtime's, so that coverage columns and forecast tables pair levels alike
from rnnkit.runtime.series import interval_pairs as interval_pairs

FloatArray = np.ndarray


def _pair(actual: FloatArray, forecast: FloatArray) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(actual, dtype=np.float64)
    f = np.asarray(forecast, dtype=np.float64)
    if a.shape != f.shape:
        raise ValueError(f"actual and forecast shapes differ: {a.shape} vs {f.shape}")
    if a.size == 0:
        raise ValueError("no points to score")
    return a, f


def mae(actual: FloatArray, forecast: FloatArray) -> float:
    """Mean absolute error over all points of ``actual`` and ``forecast`` (same shape, e.g. (H,))."""
    a, f = _pair(actual, forecast)
    return float(np.mean(np.abs(a - f)))


def rmse(actual: FloatArray, forecast: FloatArray) -> float:
    """Root mean squared error over all points."""
    a, f = _pair(actual, forecast)
    return float(np.sqrt(np.mean((a - f) ** 2)))


def smape(actual: FloatArray, forecast: FloatArray) -> float:
    """Symmetric MAPE in percent (0-200); points where both are 0 count 0."""
    a, f = _pair(actual, forecast)
    denominator = np.abs(a) + np.abs(f)
    terms = np.divide(2.0 * np.abs(a - f), denominator, out=np.zeros_like(a), where=denominator > 0)
    return float(100.0 * np.mean(terms))


def seasonal_naive_scale(insample: FloatArray, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast on ``insample`` (N,): MASE's denominator."""
    x = np.asarray(insample, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"insample must be (N,), got shape {x.shape}")
    if season < 1:
        raise ValueError(f"season must be >= 1, got {season}")
    if len(x) <= season:
        raise ValueError(f"MASE needs more than season = {season} in-sample points, got {len(x)}")
    return float(np.mean(np.abs(x[season:] - x[:-season])))


def mase(actual: FloatArray, forecast: FloatArray, insample: FloatArray, season: int) -> float:
    """MAE of (H,) ``forecast`` scaled by the in-sample seasonal naive MAE of (N,) ``insample``."""
    scale = seasonal_naive_scale(insample, season)
    if scale == 0.0:
        raise ValueError("MASE is undefined: the in-sample seasonal naive error is zero")
    return mae(actual, forecast) / scale


def coverage(actual: FloatArray, lower: FloatArray, upper: FloatArray) -> float:
    """Fraction of ``actual`` points inside ``[lower, upper]`` (all the same shape)."""
    a, lo = _pair(actual, lower)
    _, hi = _pair(actual, upper)
    return float(np.mean((a >= lo) & (a <= hi)))


def pinball(actual: FloatArray, quantiles: FloatArray, levels: Sequence[float]) -> float:
    """Mean pinball loss of quantile forecasts ``quantiles`` (..., Q) of ``actual`` (...,) at
    ``levels`` (Q,) in (0, 1)."""
    a = np.asarray(actual, dtype=np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    tau = np.asarray(levels, dtype=np.float64)
    if q.shape != (*a.shape, len(tau)):
        raise ValueError(
            f"quantiles must have shape {(*a.shape, len(tau))} (actual's shape + Q), got {q.shape}"
        )
    if not ((tau > 0) & (tau < 1)).all():
        raise ValueError(f"quantile levels must be in (0, 1), got {list(levels)}")
    error = a[..., None] - q  # (..., Q)
    return float(np.mean(np.maximum(tau * error, (tau - 1.0) * error)))


def forecast_metrics(
    actual: FloatArray,
    point: FloatArray,
    quantiles: FloatArray | None,
    levels: Sequence[float],
    insample: FloatArray,
    season: int,
) -> dict[str, float]:
    """All metrics of one forecast of C series, each averaged over the series.

    Args:
        actual: (H, C) actuals. point: (H, C) point forecasts.
        quantiles: (H, C, Q) quantile forecasts at ``levels``, or None (no interval metrics).
        insample: (N, C) history before the forecast origin (for MASE).
        season: m for MASE.

    Returns:
        ``mae``, ``rmse``, ``smape``, ``mase``, and with quantiles ``pinball`` and
        ``coverage_<p>`` for each central p % interval formed by the levels.
    """
    a, f = _pair(actual, point)
    if a.ndim != 2:
        raise ValueError(f"actual must be (H, C), got shape {a.shape}")
    x = np.asarray(insample, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != a.shape[1]:
        raise ValueError(f"insample must be (N, {a.shape[1]}), got shape {x.shape}")
    C = a.shape[1]
    out = {
        "mae": float(np.mean([mae(a[:, c], f[:, c]) for c in range(C)])),
        "rmse": float(np.mean([rmse(a[:, c], f[:, c]) for c in range(C)])),
        "smape": float(np.mean([smape(a[:, c], f[:, c]) for c in range(C)])),
        "mase": float(np.mean([mase(a[:, c], f[:, c], x[:, c], season) for c in range(C)])),
    }
    if quantiles is not None:
        q = np.asarray(quantiles, dtype=np.float64)
        out["pinball"] = pinball(a, q, levels)
        for percent, i, j in interval_pairs(levels):
            out[f"coverage_{percent}"] = coverage(a, q[..., i], q[..., j])
    return out
