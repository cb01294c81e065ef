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

with :math:`k = \lfloor (h-1)/m \rfloor`, m the season. ``ets`` chooses an exponential smoothing
model automatically, as R's ``forecast::ets`` does: it fits every candidate ETS(error, trend,
season) with statsmodels' ETSModel (errors additive or multiplicative, trend none, additive or
damped, season none, additive or multiplicative; multiplicative parts for positive series only),
keeps the one with the lowest AICc and takes its prediction intervals (analytic for the linear
models, simulated for the others); it needs ``statsmodels`` (the extra ``rnnkit[baselines]``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

BASELINES: tuple[str, ...] = ("naive", "seasonal_naive", "drift", "ets")
ETS_REFIT = 3
"""How many of the best-screened ETS candidates :func:`ets` refits with estimated initial states."""


@dataclass(frozen=True)
class BaselineForecast:
    """A baseline's forecast: ``point`` (H,) and ``quantiles`` (H, Q) at ``levels`` (Q,); for
    several series (:func:`run_baselines_columns`) ``point`` (H, C) and ``quantiles`` (H, C, Q).
    """

    point: np.ndarray
    quantiles: np.ndarray
    levels: tuple[float, ...]
    model: str = ""
    """The fitted model where the baseline chooses one (``ets``: ``ETS(M,Ad,M)``), else empty."""


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


@dataclass(frozen=True)
class EtsSpec:
    """One exponential smoothing model ETS(error, trend, season) in the taxonomy of Hyndman et al.

    ``error`` and ``seasonal`` are ``"add"`` or ``"mul"`` (``seasonal`` None: no season),
    ``trend`` is ``"add"`` or None, ``damped`` damps an additive trend.
    """

    error: Literal["add", "mul"]
    trend: Literal["add"] | None
    damped: bool
    seasonal: Literal["add", "mul"] | None

    @property
    def name(self) -> str:
        """The model's short name, ``ETS(M,Ad,M)`` style (N none, A additive, M multiplicative)."""
        letter = {None: "N", "add": "A", "mul": "M"}
        trend = letter[self.trend] + ("d" if self.damped else "")
        return f"ETS({letter[self.error]},{trend},{letter[self.seasonal]})"


def ets_candidates(history: np.ndarray, season: int) -> list[EtsSpec]:
    """The models :func:`ets` chooses among for ``history`` (N,), as R's ``forecast::ets`` does.

    Errors additive or multiplicative; trend none, additive or additive damped; season none,
    additive or multiplicative, only when ``season > 1`` and the history holds at least two
    seasons plus two points. Multiplicative errors and seasons need a strictly positive series;
    additive errors with a multiplicative season are left out (R's ``restrict = TRUE``: their
    likelihood is numerically unstable).
    """
    y = np.asarray(history, dtype=np.float64)
    positive = bool((y > 0).all())
    errors: tuple[Literal["add", "mul"], ...] = ("add", "mul") if positive else ("add",)
    seasonal: list[Literal["add", "mul"] | None] = [None]
    if season > 1 and len(y) >= 2 * season + 2:
        seasonal += ["add", "mul"] if positive else ["add"]
    trends: tuple[tuple[Literal["add"] | None, bool], ...] = (
        (None, False),
        ("add", False),
        ("add", True),
    )
    return [
        EtsSpec(error, trend, damped, s)
        for error in errors
        for trend, damped in trends
        for s in seasonal
        if not (error == "add" and s == "mul")
    ]


def _ets_model(y: np.ndarray, spec: EtsSpec, season: int, initialization: str) -> Any:
    """statsmodels' ETSModel of ``spec`` on ``y`` (N,) with the given initialization method."""
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    from statsmodels.tsa.exponential_smoothing.ets import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        ETSModel,
    )

    return ETSModel(
        pd.Series(y),  # statsmodels' prediction needs an indexed series
        error=spec.error,
        trend=spec.trend,
        damped_trend=spec.damped,
        seasonal=spec.seasonal,
        seasonal_periods=season if spec.seasonal else None,
        initialization_method=initialization,
    )


_FIT_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)


def _screen_aicc(y: np.ndarray, spec: EtsSpec, season: int) -> float | None:
    """AICc of ``spec`` on ``y`` (N,) with heuristic initial states (moving averages of the
    first seasons, Hyndman et al., *Forecasting with Exponential Smoothing*, section 2.6) and
    only the smoothing parameters fitted; None when the fit fails or the AICc is undefined or
    not finite."""
    from statsmodels.tools.eval_measures import aicc  # type: ignore[import-untyped, unused-ignore]

    initialization = "heuristic" if len(y) >= 10 else "estimated"
    try:
        model = _ets_model(y, spec, season, initialization)
        params = model.fit(disp=False, maxiter=1000, return_params=True)
        llf = float(model.loglike(params))
    except _FIT_ERRORS:
        return None
    k = len(params) + 1  # + the error variance, as statsmodels counts the degrees of freedom
    if len(y) - k - 1 <= 0 or not np.isfinite(llf):
        return None
    return float(aicc(llf, len(y), k))


def _fit_ets(y: np.ndarray, spec: EtsSpec, season: int) -> Any | None:
    """statsmodels' ETSResults of ``spec`` on ``y`` (N,), smoothing parameters and initial states
    fitted by maximum likelihood; None when the fit fails or its AICc is undefined."""
    try:
        fit = _ets_model(y, spec, season, "estimated").fit(disp=False, maxiter=1000)
    except _FIT_ERRORS:
        return None
    if len(y) - int(fit.df_model) - 1 <= 0 or not np.isfinite(float(fit.aicc)):
        return None
    return fit


def _simulate_seed() -> dict[str, int]:
    """The seed keyword of statsmodels' ``simulate`` (``rng`` from 0.15, ``random_state`` before),
    so that simulated intervals are the same on every call."""
    import inspect

    from statsmodels.tsa.exponential_smoothing.ets import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
        ETSResults,
    )

    parameters = inspect.signature(ETSResults.simulate).parameters
    return {"rng": 0} if "rng" in parameters else {"random_state": 0}


def _ets_quantiles(
    fit: Any, start: int, horizon: int, levels: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted mean (H,) and quantiles (H, Q) of a fitted ETS model for the ``horizon`` steps
    after index ``start - 1``. The quantile q is an end of statsmodels' central prediction
    interval with alpha = 2 min(q, 1 - q): analytic for the linear models (additive errors and
    season), from 1000 simulated paths for the others."""
    prediction = fit.get_prediction(start=start, end=start + horizon - 1, **_simulate_seed())
    mean = np.asarray(prediction.predicted_mean, dtype=np.float64)  # (H,)
    columns = []
    for q in levels:
        interval = np.asarray(prediction.pred_int(alpha=2 * min(q, 1 - q)), dtype=np.float64)
        columns.append(interval[:, 0] if q < 0.5 else interval[:, 1])  # (H,)
    return mean, np.stack(columns, axis=1)  # (H,), (H, Q)


def ets(
    history: np.ndarray,
    horizon: int,
    season: int,
    levels: Sequence[float],
) -> BaselineForecast:
    """Automatic ETS like R's ``forecast::ets``: the lowest AICc among :func:`ets_candidates`.

    To stay fast (about a second for 150 monthly points) the search runs in two stages: every
    candidate is fitted with heuristic initial states (only its smoothing parameters by maximum
    likelihood) and ranked by AICc; the best :data:`ETS_REFIT` are refitted with their initial
    states estimated too, as R does, and the lowest AICc among them whose forecast is finite
    wins (further candidates in rank order if none is). The point forecast is its predicted
    mean, the quantiles the ends of its prediction intervals at ``levels``; ``model`` names it
    (``ETS(M,Ad,M)``). It models y itself: the same search on log y changed the geometric mean
    of MASE on the forecasting panel (``benchmarks/forecasting.py --panel``) by under 1 %
    (better on AirPassengers, worse on most others), so there is no log option.
    """
    y = _check(history, horizon, levels, 4)
    if not ets_available():
        raise ImportError(
            "the ETS baseline needs statsmodels; install it with: pip install 'rnnkit[baselines]'"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and overflow warnings of weak candidates
        screened = []
        for spec in ets_candidates(y, season):
            score = _screen_aicc(y, spec, season)
            if score is not None:
                screened.append((score, spec))
        ranked = [spec for _, spec in sorted(screened, key=lambda row: row[0])]  # ties: in order
        for start in range(0, len(ranked), ETS_REFIT):
            fits = []
            for spec in ranked[start : start + ETS_REFIT]:
                fit = _fit_ets(y, spec, season)
                if fit is not None:
                    fits.append((float(fit.aicc), spec, fit))
            for _, spec, fit in sorted(fits, key=lambda row: row[0]):
                point, quantiles = _ets_quantiles(fit, len(y), horizon, levels)
                if np.isfinite(point).all() and np.isfinite(quantiles).all():
                    return BaselineForecast(
                        point, quantiles, tuple(float(q) for q in levels), spec.name
                    )
    raise ValueError("ETS: no candidate model gave a finite forecast")


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
