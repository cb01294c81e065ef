r"""Time-series forecasting with an RNN, LSTM or GRU encoder: the model, the ``forecasting`` task,
and the public functions behind ``rnnkit predict`` / ``rnnkit evaluate`` for forecasts.

Shapes: B batch, L lookback, H horizon, C target series, P past covariates, K calendar feature
columns, D hidden units (the ``hidden_size``), n distribution parameters per value, Q quantile
levels.

The model (:class:`Forecaster`) reads raw values and returns a predictive distribution in a
normalised space; all the scaling lives in it, as buffers fitted on the training part only, so a
saved model forecasts on its own::

    z = (f(y) - loc) / scale                 (B, L, C)  f = log or identity, loc/scale per series
    level = mean(z over the last season)     (B, 1, C)  (model.normalize: window; else 0)
    u = z - level                            the window seen relative to its own level
    base_h = u at the same season position   (B, H, C)  (model.residual: seasonal_naive;
                                             naive repeats u_L; none is 0)
    x_t = [u_t, past covariates_t, calendar_t]          (B, L, C + P + K)
    e, s = Encoder(x)                        e (B, L, D), s the final state

    direct:         theta = W dropout(s_top) -> (B, H, C, n), all steps at once
    autoregressive: a decoder cell started from s, fed [previous value, calendar of the step]
                    (the true previous value in training: teacher forcing; its own point forecast
                    otherwise), theta_h = W dropout(d_h)
    attention:      as autoregressive, plus c_h = Attention(d_h, e) and theta_h = W [d_h; c_h];
                    the weights (B, H, L) are returned and plotted

The location of theta is added to base_h, so the network learns what the seasonal naive forecast
misses. Distributions (``model.likelihood``): ``quantile`` (monotone quantiles at
``model.quantiles``, trained with the pinball loss), ``gaussian`` (mu, sigma) or ``student_t``
(mu, sigma, nu > 2), trained by negative log-likelihood. Prediction intervals are the quantiles
(analytic for the Gaussian, by bisection of the CDF for Student-t), mapped back by the inverse
scaling; the point forecast is the median. With ``model.ensemble`` = E, E independently
initialised networks (:class:`ForecastNetwork`) share the scaling and are trained side by side on
the same batches; their quantiles are averaged.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from torch import Tensor, nn

from rnnkit import nn as rnn
from rnnkit.config import FrozenConfig
from rnnkit.data.timeseries import (
    BUILTIN_NAMES,
    CalendarFeature,
    FillGaps,
    ScalerKind,
    ScalerStats,
    SeriesError,
    TimeSeries,
    TimeSplit,
    Transform,
    auto_calendar,
    calendar_features,
    fit_scaler,
    future_times,
    infer_season,
    load_builtin,
    read_table,
    split_by_time,
    to_series,
    windows,
)
from rnnkit.io import write_bytes_atomic, write_text_atomic
from rnnkit.metrics.forecast import forecast_metrics, interval_pairs
from rnnkit.models.baselines import run_baselines
from rnnkit.models.generated import epoch_generator
from rnnkit.nn.attention import Attention
from rnnkit.registry import register_task
from rnnkit.training.task import StepOutput, Task

CellKind = Literal["rnn", "lstm", "gru"]
Head = Literal["direct", "autoregressive", "attention"]
Likelihood = Literal["quantile", "gaussian", "student_t"]
Residual = Literal["none", "naive", "seasonal_naive"]
Normalize = Literal["none", "window"]
Weights = Literal["best", "final"]

META_FILE = "series.json"


# ============================================================================ configs


class ForecasterConfig(FrozenConfig):
    """Architecture of a :class:`Forecaster` (no optimiser settings).

    Attributes:
        cell: the recurrent unit of encoder and decoder.
        head: ``direct``, ``autoregressive`` or ``attention`` (see the module docstring).
        hidden_size: D, units per layer.
        num_layers: encoder layers (the decoder has one, started from the top layer's state).
        dropout: between encoder layers and before the output layer (training only).
        likelihood: ``quantile`` (pinball loss), ``gaussian`` or ``student_t`` (NLL).
        quantiles: levels in (0, 1), increasing, with 0.5 (the point forecast); symmetric pairs
            (q, 1 - q) give the (1 - 2q) prediction intervals.
        residual: what the network's forecast is added to: the seasonal naive forecast of the
            window, the naive one (last value), or nothing.
        normalize: ``window`` subtracts each window's mean over its last season (in scaled units)
            from inputs and targets; ``none`` keeps the global scaling only.
        ensemble: E, independently initialised members trained side by side on the same
            batches (the loss is their mean); their quantiles are averaged.
    """

    cell: CellKind = "gru"
    head: Head = "direct"
    hidden_size: int = Field(16, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = 0.3
    likelihood: Likelihood = "quantile"
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    residual: Residual = "seasonal_naive"
    normalize: Normalize = "window"
    ensemble: int = Field(1, ge=1)

    @field_validator("dropout")
    @classmethod
    def _probability(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {value}")
        return value

    @field_validator("quantiles")
    @classmethod
    def _levels(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not all(0.0 < q < 1.0 for q in value):
            raise ValueError(f"quantiles must be in (0, 1), got {list(value)}")
        if list(value) != sorted(set(value)):
            raise ValueError(f"quantiles must be increasing without repeats, got {list(value)}")
        if 0.5 not in value:
            raise ValueError(f"quantiles must include 0.5 (the point forecast), got {list(value)}")
        return value


class ForecastDataConfig(FrozenConfig):
    """Data of the ``forecasting`` task.

    Attributes:
        path: CSV or Parquet file; or ``series``: a built-in series (one of the two).
        time_column: the timestamps' column. target: one or more target columns.
        past_covariates: numeric columns known only up to the present (encoder inputs).
        calendar: calendar features (known in the future) from the time column, or ``auto``
            (chosen from the frequency: month for monthly data, hour and day of week below daily).
        freq: pandas frequency; inferred from the timestamps when null.
        fill_gaps: ``interpolate`` fills missing timestamps and values linearly in time; ``none``
            reports them as errors.
        horizon: H, steps forecast at once (the longest horizon the model can predict).
        lookback: L, steps the encoder reads.
        season: the season length (MASE, seasonal naive); inferred from the frequency when null.
        valid_size: final steps before the test part whose windows validate (0: validate on the
            training windows).
        test_size: final steps held out from training (default: the horizon).
        scaler: per-series scaling fitted on the training part: standard, robust or none.
        transform: ``log`` models log values (positive series only).
    """

    path: str | None = None
    series: str | None = None
    time_column: str = "time"
    target: str | tuple[str, ...] = "value"
    past_covariates: tuple[str, ...] = ()
    calendar: tuple[CalendarFeature, ...] | Literal["auto"] = "auto"
    freq: str | None = None
    fill_gaps: FillGaps = "none"
    horizon: int = Field(12, ge=1)
    lookback: int = Field(24, ge=1)
    season: int | None = Field(None, ge=1)
    valid_size: int = Field(0, ge=0)
    test_size: int | None = Field(None, ge=0)
    scaler: ScalerKind = "robust"
    transform: Transform = "none"

    @field_validator("series")
    @classmethod
    def _builtin(cls, value: str | None) -> str | None:
        if value is not None and value not in BUILTIN_NAMES:
            raise ValueError(
                f"unknown built-in series '{value}'; valid series: {', '.join(BUILTIN_NAMES)}"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ForecastDataConfig:
        if (self.path is None) == (self.series is None):
            raise ValueError("set exactly one of data.path and data.series")
        return self

    @property
    def targets(self) -> tuple[str, ...]:
        """The target columns as a tuple."""
        return (self.target,) if isinstance(self.target, str) else tuple(self.target)

    @property
    def held_out(self) -> int:
        """Steps held out for testing (``test_size``, default the horizon)."""
        return self.horizon if self.test_size is None else self.test_size


# ============================================================================ distributions


def _n_params(likelihood: Likelihood, levels: Sequence[float]) -> int:
    return {"quantile": len(levels), "gaussian": 2, "student_t": 3}[likelihood]


def student_t_icdf(q: float, df: Tensor) -> Tensor:
    """Quantile ``q`` of the standard Student-t with ``df`` (...,) > 0 degrees of freedom.

    Solves CDF(x) = q by bisection; the CDF is 1/2 plus the integral of the density from 0 to x
    (composite Simpson, 257 nodes). Accurate to ~1e-6 for q in [0.001, 0.999] and df >= 2.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got {q}")
    if q == 0.5:
        return torch.zeros_like(df)
    p = max(q, 1.0 - q)
    nu = df.double()  # (...,)
    log_norm = (
        torch.lgamma((nu + 1) / 2) - torch.lgamma(nu / 2) - 0.5 * torch.log(nu * math.pi)
    )  # (...,)
    nodes = torch.linspace(0.0, 1.0, 257, dtype=torch.float64)  # (S,)
    weights = torch.ones(257, dtype=torch.float64)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0

    def cdf(x: Tensor) -> Tensor:  # x (...,) >= 0
        t = x[..., None] * nodes  # (..., S)
        density = torch.exp(
            log_norm[..., None] - (nu[..., None] + 1) / 2 * torch.log1p(t**2 / nu[..., None])
        )
        return 0.5 + (density * weights).sum(-1) * x / (3 * 256)

    lo = torch.zeros_like(nu)
    hi = torch.full_like(nu, 1.0)
    for _ in range(60):  # grow hi until CDF(hi) >= p
        short = cdf(hi) < p
        if not bool(short.any()):
            break
        hi = torch.where(short, hi * 2, hi)
    for _ in range(50):
        mid = (lo + hi) / 2
        below = cdf(mid) < p
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    x = ((lo + hi) / 2).to(df.dtype)
    return x if q > 0.5 else -x


def distribution_quantiles(
    params: Tensor, likelihood: Likelihood, trained: Sequence[float], levels: Sequence[float]
) -> Tensor:
    """Quantiles (B, H, C, Q) at ``levels`` of the distributions ``params`` (B, H, C, n).

    With ``likelihood="quantile"`` only the ``trained`` levels exist (ValueError otherwise).
    """
    if likelihood == "quantile":
        missing = [q for q in levels if q not in trained]
        if missing:
            raise ValueError(
                f"quantile level {missing[0]} was not trained; trained levels: {list(trained)}"
            )
        return params[..., [list(trained).index(q) for q in levels]]
    mu, sigma = params[..., 0], params[..., 1]  # (B, H, C)
    if likelihood == "gaussian":
        z = [torch.full_like(mu, NormalDist().inv_cdf(q)) for q in levels]
    else:
        z = [student_t_icdf(q, params[..., 2]) for q in levels]
    return mu[..., None] + sigma[..., None] * torch.stack(z, dim=-1)  # (B, H, C, Q)


def point_forecast(params: Tensor, likelihood: Likelihood, trained: Sequence[float]) -> Tensor:
    """The median (B, H, C) of the distributions ``params`` (B, H, C, n)."""
    if likelihood == "quantile":
        return params[..., list(trained).index(0.5)]
    return params[..., 0]


def forecast_loss(
    params: Tensor, target: Tensor, likelihood: Likelihood, levels: Sequence[float]
) -> Tensor:
    """Mean loss of ``params`` (B, H, C, n) for ``target`` (B, H, C), both normalised.

    ``quantile``: pinball loss averaged over the levels; ``gaussian`` / ``student_t``: negative
    log-likelihood per value.
    """
    if likelihood == "quantile":
        tau = torch.tensor(levels, dtype=params.dtype, device=params.device)  # (Q,)
        error = target[..., None] - params  # (B, H, C, Q)
        return torch.maximum(tau * error, (tau - 1) * error).mean()
    mu, sigma = params[..., 0], params[..., 1]  # (B, H, C)
    if likelihood == "gaussian":
        return (
            torch.log(sigma) + 0.5 * ((target - mu) / sigma) ** 2 + 0.5 * math.log(2 * math.pi)
        ).mean()
    nu = params[..., 2]
    log_density = (
        torch.lgamma((nu + 1) / 2)
        - torch.lgamma(nu / 2)
        - 0.5 * torch.log(nu * math.pi)
        - torch.log(sigma)
        - (nu + 1) / 2 * torch.log1p(((target - mu) / sigma) ** 2 / nu)
    )
    return -log_density.mean()


# ============================================================================ model


class ForecastOutput(NamedTuple):
    """What :meth:`Forecaster.forward` returns.

    Attributes:
        params: (E, B, H, C, n) each member's distribution parameters in normalised units.
        level: (B, 1, C) the window level that normalised units are relative to.
        attention: (E, B, H, L) decoder attention over the lookback (``attention`` head), else
            None.
    """

    params: Tensor
    level: Tensor
    attention: Tensor | None


def _cell(kind: CellKind, input_size: int, hidden_size: int) -> nn.Module:
    from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell

    cells: dict[str, type[nn.Module]] = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
    return cells[kind](input_size, hidden_size)


def _distribution(
    raw: Tensor, base: Tensor, likelihood: Likelihood, levels: Sequence[float]
) -> Tensor:
    """Raw outputs (..., n) plus the base forecast (...,) -> distribution parameters (..., n).

    Quantiles are made monotone: the median is ``raw_m + base`` and every other level sits a
    sum of softplus gaps below or above it. sigma = softplus + 1e-3; nu = 2 + softplus + 1e-3.
    """
    if likelihood == "quantile":
        m = list(levels).index(0.5)
        median = raw[..., m : m + 1]  # (..., 1)
        below = F.softplus(raw[..., :m]).flip(-1).cumsum(-1).flip(-1)  # gaps to the median
        above = F.softplus(raw[..., m + 1 :]).cumsum(-1)
        return torch.cat([median - below, median, median + above], dim=-1) + base[..., None]
    mu = raw[..., 0] + base
    sigma = F.softplus(raw[..., 1]) + 1e-3
    if likelihood == "gaussian":
        return torch.stack([mu, sigma], dim=-1)
    nu = 2.0 + F.softplus(raw[..., 2]) + 1e-3
    return torch.stack([mu, sigma, nu], dim=-1)


class ForecastNetwork(nn.Module):
    """One ensemble member: the recurrent encoder and its head, in normalised units.

    Args:
        config: the architecture. inputs: I = C + P + K, the encoder's input features.
        targets: C. calendar: K. horizon: H.
    """

    def __init__(
        self, config: ForecasterConfig, *, inputs: int, targets: int, calendar: int, horizon: int
    ) -> None:
        super().__init__()
        self.config = config
        self.levels = tuple(config.quantiles)
        self.C, self.H = targets, horizon
        self.n = _n_params(config.likelihood, self.levels)
        D = config.hidden_size
        layer = {"rnn": rnn.RNN, "lstm": rnn.LSTM, "gru": rnn.GRU}[config.cell]
        self.encoder = layer(
            inputs,
            D,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.decoder: nn.Module | None = None
        self.attention: Attention | None = None
        if config.head == "direct":
            self.out = nn.Linear(D, horizon * targets * self.n)
        else:
            self.decoder = _cell(config.cell, targets + calendar, D)
            if config.head == "attention":
                self.attention = Attention(D, D, score="additive")
            self.out = nn.Linear(2 * D if config.head == "attention" else D, targets * self.n)

    def forward(
        self, x: Tensor, future: Tensor, base: Tensor, teacher: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """Distribution parameters of the H steps after the window.

        Args:
            x: (B, L, I) encoder inputs; ``x[..., :C]`` are the normalised values.
            future: (B, H, K) calendar features of the forecast steps.
            base: (B, H, C) base forecast the network corrects.
            teacher: (B, H, C) normalised true values for teacher forcing, or None.

        Returns:
            params (B, H, C, n) and attention weights (B, H, L) (attention head) or None.
        """
        B = x.size(0)
        encoded, state = self.encoder(x)  # (B, L, D), state
        if self.decoder is None:
            raw = self.out(self.dropout(encoded[:, -1])).view(B, self.H, self.C, self.n)
            return _distribution(raw, base, self.config.likelihood, self.levels), None
        lstm = self.config.cell == "lstm"
        s: Any = (state[0][-1], state[1][-1]) if lstm else state[-1]  # top layer, (B, D)
        projected = self.attention.project_keys(encoded) if self.attention is not None else None
        previous = x[:, -1, : self.C]  # (B, C)
        steps, weights = [], []
        for h in range(self.H):
            s = self.decoder(torch.cat([previous, future[:, h]], dim=-1), s)
            d = s[0] if lstm else s  # (B, D)
            features = d
            if self.attention is not None:
                context, w = self.attention(d, encoded, projected_keys=projected)  # (B, D), (B, L)
                features = torch.cat([d, context], dim=-1)  # (B, 2D)
                weights.append(w)
            raw = self.out(self.dropout(features)).view(B, self.C, self.n)
            params = _distribution(raw, base[:, h], self.config.likelihood, self.levels)
            steps.append(params)  # (B, C, n)
            if teacher is not None:
                previous = teacher[:, h]
            else:
                previous = point_forecast(params, self.config.likelihood, self.levels)
        attention = torch.stack(weights, dim=1) if weights else None  # (B, H, L)
        return torch.stack(steps, dim=1), attention


class Forecaster(nn.Module):
    """Scaling plus ``model.ensemble`` independent :class:`ForecastNetwork` members, on raw
    values (see the module docstring for the equations). E = number of members.

    Args:
        config: the architecture.
        targets: C. past: P. calendar: K (calendar feature columns, 2 per feature).
        lookback: L. horizon: H. season: m (for ``normalize`` and ``residual``).
        log: whether values are modelled in log space.

    Buffers (saved with the weights, set by :meth:`set_scaling`): ``target_loc``,
    ``target_scale`` (C,), ``past_loc``, ``past_scale`` (P,).
    """

    target_loc: Tensor
    target_scale: Tensor
    past_loc: Tensor
    past_scale: Tensor

    def __init__(
        self,
        config: ForecasterConfig,
        *,
        targets: int,
        past: int,
        calendar: int,
        lookback: int,
        horizon: int,
        season: int,
        log: bool = False,
    ) -> None:
        super().__init__()
        if config.residual == "seasonal_naive" and lookback < season:
            raise ValueError(
                f"model.residual 'seasonal_naive' needs data.lookback >= the season, got "
                f"lookback {lookback} and season {season}; raise data.lookback or set "
                "model.residual: naive"
            )
        self.config = config
        self.C, self.P, self.K = targets, past, calendar
        self.L, self.H, self.season, self.log = lookback, horizon, season, log
        self.levels = tuple(config.quantiles)
        self.members = nn.ModuleList(
            ForecastNetwork(
                config,
                inputs=targets + past + calendar,
                targets=targets,
                calendar=calendar,
                horizon=horizon,
            )
            for _ in range(config.ensemble)
        )
        self.register_buffer("target_loc", torch.zeros(targets))
        self.register_buffer("target_scale", torch.ones(targets))
        self.register_buffer("past_loc", torch.zeros(past))
        self.register_buffer("past_scale", torch.ones(past))

    def set_scaling(self, target: ScalerStats, past: ScalerStats | None = None) -> None:
        """Copy fitted scaler statistics into the buffers."""
        if target.log != self.log:
            raise ValueError(f"scaler log={target.log} but the model has log={self.log}")
        with torch.no_grad():
            self.target_loc.copy_(torch.as_tensor(target.loc))
            self.target_scale.copy_(torch.as_tensor(target.scale))
            if past is not None:
                self.past_loc.copy_(torch.as_tensor(past.loc))
                self.past_scale.copy_(torch.as_tensor(past.scale))

    # ------------------------------------------------------------------ scaling

    def normalize(self, values: Tensor, level: Tensor) -> Tensor:
        """Raw values (B, T, C) -> normalised units (B, T, C) relative to ``level`` (B, 1, C)."""
        f = torch.log(values) if self.log else values
        return (f - self.target_loc) / self.target_scale - level

    def denormalize(self, z: Tensor, level: Tensor) -> Tensor:
        """Normalised (B, H, C, Q) -> raw values (B, H, C, Q) (monotone, so quantiles map)."""
        f = (z + level[..., None]) * self.target_scale[:, None] + self.target_loc[:, None]
        return torch.exp(f) if self.log else f

    def _level(self, z: Tensor) -> Tensor:
        """(B, L, C) scaled window -> (B, 1, C) level: mean of its last season, or 0."""
        if self.config.normalize == "none":
            return torch.zeros_like(z[:, :1])
        m = min(self.season, z.size(1))
        return z[:, -m:].mean(dim=1, keepdim=True)  # (B, 1, C)

    def _base(self, u: Tensor) -> Tensor:
        """(B, L, C) normalised window -> (B, H, C) base forecast the network corrects."""
        B, L, C = u.shape
        if self.config.residual == "none":
            return u.new_zeros(B, self.H, C)
        if self.config.residual == "naive":
            return u[:, -1:].expand(B, self.H, C)
        h = torch.arange(self.H, device=u.device)
        return u[:, L - self.season + h % self.season]  # (B, H, C)

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        history: Tensor,
        calendar: Tensor,
        past: Tensor | None = None,
        targets: Tensor | None = None,
    ) -> ForecastOutput:
        """Forecast the H steps after ``history`` with every member.

        Args:
            history: (B, L, C) raw target values.
            calendar: (B, L + H, K) calendar features of the window and the forecast steps.
            past: (B, L, P) raw past covariates (None when P = 0).
            targets: (B, H, C) raw true values, used for teacher forcing by the
                autoregressive and attention heads (None: feed back their own forecasts).

        Returns:
            :class:`ForecastOutput` with params (E, B, H, C, n) in normalised units.
        """
        B, L, C = history.shape
        if L != self.L or C != self.C:
            raise ValueError(f"history must be (B, {self.L}, {self.C}), got {tuple(history.shape)}")
        if calendar.shape != (B, L + self.H, self.K):
            raise ValueError(
                f"calendar must be (B, L + H, K) = {(B, L + self.H, self.K)}, "
                f"got {tuple(calendar.shape)}"
            )
        z = self.normalize(history, torch.zeros_like(history[:, :1]))  # (B, L, C)
        level = self._level(z)  # (B, 1, C)
        u = z - level  # (B, L, C)
        parts = [u]
        if self.P:
            if past is None or past.shape != (B, L, self.P):
                raise ValueError(f"past covariates must be (B, {L}, {self.P})")
            parts.append((past - self.past_loc) / self.past_scale)  # (B, L, P)
        parts.append(calendar[:, :L])  # (B, L, K)
        x = torch.cat(parts, dim=-1)  # (B, L, C + P + K)
        base = self._base(u)  # (B, H, C)
        teacher = None if targets is None else self.normalize(targets, level)  # (B, H, C)
        outputs = [member(x, calendar[:, L:], base, teacher) for member in self.members]
        params = torch.stack([p for p, _ in outputs])  # (E, B, H, C, n)
        weights = [w for _, w in outputs if w is not None]
        return ForecastOutput(params, level, torch.stack(weights) if weights else None)

    # ------------------------------------------------------------------ predictions

    def predict(
        self,
        history: Tensor,
        calendar: Tensor,
        past: Tensor | None = None,
        levels: Sequence[float] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Forecast in raw units without teacher forcing (call under ``eval()``/``no_grad``).

        The ensemble's quantiles are the members' quantiles averaged (Vincentization) and the
        point forecast the members' medians averaged.

        Returns:
            point (B, H, C), quantiles (B, H, C, Q) at ``levels`` (default: the trained ones),
            and the members' mean attention weights (B, H, L) or None.
        """
        levels = self.levels if levels is None else tuple(levels)
        out = self(history, calendar, past)
        likelihood = self.config.likelihood
        q = distribution_quantiles(out.params, likelihood, self.levels, levels).mean(0)
        point = point_forecast(out.params, likelihood, self.levels).mean(0)  # (B, H, C)
        attention = None if out.attention is None else out.attention.mean(0)  # (B, H, L)
        return (
            self.denormalize(point[..., None], out.level)[..., 0],
            self.denormalize(q, out.level),  # (B, H, C, Q)
            attention,
        )


# ============================================================================ data for the task


class ForecastBatch(NamedTuple):
    """Windows of a series: history (B, L, C), past (B, L, P), calendar (B, L + H, K) and the
    true future targets (B, H, C), all float32 and raw (unscaled)."""

    history: Tensor
    past: Tensor
    calendar: Tensor
    targets: Tensor


@dataclass(frozen=True)
class SeriesMeta:
    """What a trained run remembers about its series (``series.json`` in the run folder).

    Attributes:
        freq: pandas frequency. season: m. calendar: calendar feature names.
        targets / past_covariates: column names. train_end: last timestamp of the training part.
    """

    freq: str
    season: int
    calendar: tuple[CalendarFeature, ...]
    targets: tuple[str, ...]
    past_covariates: tuple[str, ...]
    train_end: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "freq": self.freq,
                "season": self.season,
                "calendar": list(self.calendar),
                "targets": list(self.targets),
                "past_covariates": list(self.past_covariates),
                "train_end": self.train_end,
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> SeriesMeta:
        raw = json.loads(text)
        return cls(
            freq=str(raw["freq"]),
            season=int(raw["season"]),
            calendar=tuple(raw["calendar"]),
            targets=tuple(raw["targets"]),
            past_covariates=tuple(raw["past_covariates"]),
            train_end=str(raw["train_end"]),
        )


@dataclass(frozen=True)
class BacktestRequest:
    """A series to backtest on (what :meth:`ForecastingTask.load_examples` returns)."""

    series: TimeSeries
    folds: int = 1
    step: int | None = None


@dataclass(frozen=True)
class ForecastResult:
    """A forecast of C series over H steps.

    Attributes:
        time: (H,) forecast timestamps. point: (H, C) medians. quantiles: (H, C, Q) at ``levels``.
        attention: (H, L) attention weights over the lookback (attention head), else None.
        lookback_time: (L,) timestamps the model read.
    """

    time: pd.DatetimeIndex
    point: np.ndarray
    quantiles: np.ndarray
    levels: tuple[float, ...]
    targets: tuple[str, ...]
    time_column: str
    attention: np.ndarray | None
    lookback_time: pd.DatetimeIndex

    def to_frame(self) -> pd.DataFrame:
        """One row per step: the time column, ``forecast``, ``lower_<p>``/``upper_<p>`` for each
        central p % interval and ``q<level>`` for each quantile; columns are prefixed with
        ``<target>_`` when there are several targets."""
        columns: dict[str, Any] = {self.time_column: self.time}
        for c, name in enumerate(self.targets):
            prefix = f"{name}_" if len(self.targets) > 1 else ""
            columns[f"{prefix}forecast"] = self.point[:, c]
            for percent, i, j in interval_pairs(self.levels):
                columns[f"{prefix}lower_{percent}"] = self.quantiles[:, c, i]
                columns[f"{prefix}upper_{percent}"] = self.quantiles[:, c, j]
            for k, q in enumerate(self.levels):
                columns[f"{prefix}q{q:g}"] = self.quantiles[:, c, k]
        return pd.DataFrame(columns)


# ============================================================================ the task


@register_task
class ForecastingTask(Task):
    """Forecast the next ``data.horizon`` steps of one or more series from ``data.lookback``
    steps, trained on windows of the training part (split by time, scaler fitted on it only)."""

    name = "forecasting"
    DataConfig: ClassVar[type[FrozenConfig]] = ForecastDataConfig
    ModelConfig: ClassVar[type[FrozenConfig]] = ForecasterConfig
    metric_names: ClassVar[tuple[str, ...]] = ("loss", "mae")
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("loss", "min")

    _series: TimeSeries | None = None
    _meta: SeriesMeta | None = None
    _cache: dict[str, ForecastBatch] | None = None

    @property
    def data(self) -> ForecastDataConfig:
        assert isinstance(self.config.data, ForecastDataConfig)
        return self.config.data

    @property
    def model_config(self) -> ForecasterConfig:
        assert isinstance(self.config.model, ForecasterConfig)
        return self.config.model

    # ------------------------------------------------------------------ data

    def read(
        self, source: str | Path | pd.DataFrame, freq: str | None = None, name: str = "data"
    ) -> TimeSeries:
        """Read and check a series with this config's columns from a file or a DataFrame
        (``name`` is used in messages about a DataFrame)."""
        d = self.data
        if isinstance(source, pd.DataFrame):
            frame = source
        else:
            frame, name = read_table(source), str(source)
        series = to_series(
            frame,
            time_column=d.time_column,
            targets=d.targets,
            past_covariates=d.past_covariates,
            freq=freq or d.freq,
            fill_gaps=d.fill_gaps,
            source=name,
        )
        if d.transform == "log":
            bad = np.argwhere(series.values <= 0)
            if len(bad):
                i, c = (int(k) for k in bad[0])
                raise SeriesError(
                    f"{name}: transform 'log' needs positive values, found "
                    f"{series.values[i, c]:g} in column '{d.targets[c]}' at {series.time[i]}"
                )
        return series

    def series(self) -> TimeSeries:
        """The training series (``data.path`` or ``data.series``), read once."""
        if self._series is None:
            d = self.data
            if d.series is not None:
                frame = load_builtin(d.series).rename(
                    columns={"time": d.time_column, "value": d.targets[0]}
                )
                self._series = self.read(frame, name=d.series)
            else:
                assert d.path is not None
                self._series = self.read(d.path)
        return self._series

    def split(self) -> TimeSplit:
        """The split by time of the training series."""
        d = self.data
        return split_by_time(
            len(self.series()),
            lookback=d.lookback,
            horizon=d.horizon,
            valid_size=d.valid_size,
            test_size=d.held_out,
        )

    def meta(self) -> SeriesMeta:
        """The run's series facts: read from ``series.json`` in the run folder when present,
        else resolved from the data (and written there)."""
        if self._meta is not None:
            return self._meta
        path = self.run_dir / META_FILE if self.run_dir is not None else None
        if path is not None and path.is_file():
            self._meta = SeriesMeta.from_json(path.read_text(encoding="utf-8"))
            return self._meta
        d = self.data
        series, split = self.series(), self.split()
        self._meta = SeriesMeta(
            freq=series.freq,
            season=d.season or infer_season(series.freq),
            calendar=auto_calendar(series.freq) if d.calendar == "auto" else tuple(d.calendar),
            targets=d.targets,
            past_covariates=d.past_covariates,
            train_end=str(series.time[split.fit_end - 1]),
        )
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, self._meta.to_json())
        return self._meta

    def scalers(self) -> tuple[ScalerStats, ScalerStats]:
        """Target and past-covariate scalers fitted on the training part only."""
        d, series, split = self.data, self.series(), self.split()
        target = fit_scaler(series.values[: split.fit_end], d.scaler, d.transform, "targets")
        past = fit_scaler(series.past[: split.fit_end], d.scaler, "none", "past covariates")
        return target, past

    def batch(self, series: TimeSeries, origins: np.ndarray) -> ForecastBatch:
        """Windows of ``series`` at ``origins`` (index of each window's first forecast step);
        steps past the series' end get calendar features from the frequency and NaN targets."""
        d, meta = self.data, self.meta()
        L, H = d.lookback, d.horizon
        extra = max(0, int(origins.max()) + H - len(series)) if len(origins) else 0
        time = (
            series.time.append(future_times(series.time[-1], meta.freq, extra))
            if extra
            else series.time
        )
        values = np.concatenate([series.values, np.full((extra, series.values.shape[1]), np.nan)])
        calendar = calendar_features(time, meta.calendar)  # (N + extra, K)
        return ForecastBatch(
            history=torch.from_numpy(windows(values, origins, L, 0)).float(),  # (W, L, C)
            past=torch.from_numpy(windows(series.past, origins, L, 0)).float(),  # (W, L, P)
            calendar=torch.from_numpy(windows(calendar, origins, L, H)).float(),  # (W, L+H, K)
            targets=torch.from_numpy(windows(values, origins, 0, H)).float(),  # (W, H, C)
        )

    def _windows(self, part: Literal["train", "valid", "test"]) -> ForecastBatch:
        if self._cache is None:
            self._cache = {}
        if part not in self._cache:
            split = self.split()
            origins = {
                "train": split.train_origins,
                "valid": split.valid_origins,
                "test": split.test_origins,
            }[part]()
            if part == "valid" and len(origins) == 0:
                origins = split.train_origins()  # valid_size 0: validate in-sample
            self._cache[part] = self.batch(self.series(), origins)
        return self._cache[part]

    def _chunks(self, batch: ForecastBatch, order: Tensor) -> Iterator[ForecastBatch]:
        size = self.config.train.batch_size
        for start in range(0, len(order), size):
            index = order[start : start + size]
            yield ForecastBatch(*(t[index] for t in batch))

    def train_batches(self, epoch: int) -> Iterator[ForecastBatch]:
        batch = self._windows("train")
        generator = epoch_generator(self.config.train.seed, epoch, "train")
        return self._chunks(batch, torch.randperm(len(batch.history), generator=generator))

    def valid_batches(self) -> list[ForecastBatch]:
        batch = self._windows("valid")
        return list(self._chunks(batch, torch.arange(len(batch.history))))

    def test_batches(self) -> list[ForecastBatch]:
        """Non-overlapping windows of the held-out test part (empty when test_size < horizon)."""
        batch = self._windows("test")
        return list(self._chunks(batch, torch.arange(len(batch.history))))

    # ------------------------------------------------------------------ model and loss

    def build_model(self) -> Forecaster:
        d, meta = self.data, self.meta()
        model = Forecaster(
            self.model_config,
            targets=len(d.targets),
            past=len(d.past_covariates),
            calendar=2 * len(meta.calendar),
            lookback=d.lookback,
            horizon=d.horizon,
            season=meta.season,
            log=d.transform == "log",
        )
        if _has_data(d):  # else: a run loaded without its data; the buffers come from the weights
            model.set_scaling(*self.scalers())
        return model

    def step(self, model: nn.Module, batch: ForecastBatch, state: Any = None) -> StepOutput:
        assert isinstance(model, Forecaster)
        teacher = batch.targets if model.training else None
        out = model(batch.history, batch.calendar, batch.past, targets=teacher)
        target = model.normalize(batch.targets, out.level)  # (B, H, C)
        likelihood = self.model_config.likelihood
        loss = forecast_loss(out.params, target, likelihood, model.levels)
        point = point_forecast(out.params.detach(), likelihood, model.levels).mean(0)
        return StepOutput(
            loss=loss,
            metrics={"mae": (point - target).abs().mean()},
            num_tokens=int(target.numel()),
        )

    # ------------------------------------------------------------------ forecasting

    def forecast_from(
        self,
        model: Forecaster,
        series: TimeSeries,
        horizon: int | None = None,
        origin: int | None = None,
    ) -> ForecastResult:
        """Forecast ``horizon`` steps (default ``data.horizon``) after ``series[:origin]``
        (default: after its end)."""
        d = self.data
        horizon = d.horizon if horizon is None else horizon
        if horizon > d.horizon:
            raise ValueError(
                f"horizon {horizon} is longer than the model was trained for "
                f"(data.horizon = {d.horizon})"
            )
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        origin = len(series) if origin is None else origin
        if origin < d.lookback:
            raise SeriesError(
                f"{series.source}: too few rows: {origin} rows of history, the model reads "
                f"lookback {d.lookback}"
            )
        batch = self.batch(series, np.array([origin]))
        model.eval()
        with torch.no_grad():
            point, quantiles, attention = model.predict(
                batch.history, batch.calendar, batch.past if model.P else None
            )
        time = future_times(series.time[origin - 1], self.meta().freq, horizon)
        return ForecastResult(
            time=time,
            point=point[0, :horizon].double().numpy(),
            quantiles=quantiles[0, :horizon].double().numpy(),
            levels=model.levels,
            targets=d.targets,
            time_column=d.time_column,
            attention=None if attention is None else attention[0, :horizon].double().numpy(),
            lookback_time=series.time[origin - d.lookback : origin],
        )

    def backtest_series(
        self,
        model: Forecaster,
        series: TimeSeries,
        folds: int = 1,
        step: int | None = None,
        baselines: Sequence[str] | None = None,
    ) -> dict[str, float]:
        """Rolling-origin backtest of a trained model (no refitting) next to the baselines.

        The last fold forecasts the final ``data.horizon`` steps of ``series``; each earlier one
        starts ``step`` (default: the horizon) steps before. Every metric is averaged over the
        folds; baselines see the same history and are reported as ``<baseline>.<metric>``.
        """
        d, meta = self.data, self.meta()
        H = d.horizon
        step = H if step is None else step
        if folds < 1 or step < 1:
            raise ValueError(f"folds and step must be >= 1, got folds={folds}, step={step}")
        first = len(series) - H - (folds - 1) * step
        need = max(d.lookback, meta.season + 1)
        if first < need:
            raise SeriesError(
                f"{series.source}: too few rows for {folds} fold(s) of horizon {H}: the first "
                f"origin would be row {first + 1}, but {need} rows of history are needed"
            )
        results: list[dict[str, float]] = []
        for k in range(folds):
            origin = first + k * step
            actual = series.values[origin : origin + H]  # (H, C)
            history = series.values[:origin]  # (N, C)
            fold: dict[str, float] = {}
            result = self.forecast_from(model, series, H, origin)
            fold.update(
                forecast_metrics(
                    actual, result.point, result.quantiles, model.levels, history, meta.season
                )
            )
            per_channel = [
                run_baselines(history[:, c], H, meta.season, model.levels, baselines)
                for c in range(history.shape[1])
            ]
            for name in per_channel[0]:
                point = np.stack([b[name].point for b in per_channel], axis=1)  # (H, C)
                q = np.stack([b[name].quantiles for b in per_channel], axis=1)  # (H, C, Q)
                scores = forecast_metrics(actual, point, q, model.levels, history, meta.season)
                fold.update({f"{name}.{key}": value for key, value in scores.items()})
            results.append(fold)
        summary = {key: float(np.mean([r[key] for r in results])) for key in results[0]}
        return {"folds": float(folds), "horizon": float(H), **summary}

    def load_examples(self, path: Path) -> list[BacktestRequest]:
        return [BacktestRequest(self.read(path, freq=self.meta().freq))]

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Validation loss on windows, or a backtest with baselines on :class:`BacktestRequest`."""
        items = list(batches)
        if items and all(isinstance(b, BacktestRequest) for b in items):
            assert isinstance(model, Forecaster)
            summaries = [self.backtest_series(model, b.series, b.folds, b.step) for b in items]
            return {k: float(np.mean([s[k] for s in summaries])) for k in summaries[0]}
        return super().evaluate(model, items)

    def predict(self, model: nn.Module, inputs: Sequence[str]) -> list[str]:
        """Each input is the path of a history file; the output is its forecast as CSV text."""
        assert isinstance(model, Forecaster)
        outputs = []
        for text in inputs:
            series = self.read(text.strip(), freq=self.meta().freq)
            outputs.append(self.forecast_from(model, series).to_frame().to_csv(index=False))
        return outputs


def _has_data(d: ForecastDataConfig) -> bool:
    return d.series is not None or (d.path is not None and Path(d.path).is_file())


# ============================================================================ public functions


def _load(run_dir: str | Path, weights: Weights) -> tuple[ForecastingTask, Forecaster]:
    from rnnkit.api import load_run

    run = load_run(Path(run_dir), weights)
    if not isinstance(run.task, ForecastingTask) or not isinstance(run.model, Forecaster):
        raise ValueError(f"{run_dir}: not a forecasting run (task '{run.config.task}')")
    return run.task, run.model


def forecast(
    run_dir: str | Path,
    history: str | Path | pd.DataFrame,
    horizon: int | None = None,
    *,
    output: str | Path | None = None,
    plot: str | Path | None = None,
    actuals: str | Path | pd.DataFrame | None = None,
    weights: Weights = "best",
) -> pd.DataFrame:
    """Forecast the ``horizon`` steps after the end of ``history`` with a trained run.

    Args:
        run_dir: the run folder.
        history: CSV/Parquet file or DataFrame with the run's time, target and covariate
            columns; it may be longer than the training data (the model reads its last
            ``data.lookback`` rows).
        horizon: steps to forecast, at most the trained ``data.horizon`` (the default).
        output: write the forecast table there as CSV (atomically).
        plot: write a PNG of history, forecast, intervals (and attention weights) there.
        actuals: optional table of true values to draw in the plot where they overlap.
        weights: ``best`` (on validation) or ``final``.

    Returns:
        The forecast table (see :meth:`ForecastResult.to_frame`); timestamps continue the
        history's frequency.
    """
    task, model = _load(run_dir, weights)
    series = task.read(history, freq=task.meta().freq)
    result = task.forecast_from(model, series, horizon)
    frame = result.to_frame()
    if output is not None:
        write_text_atomic(Path(output), frame.to_csv(index=False))
    if plot is not None:
        truth = task.read(actuals, freq=task.meta().freq) if actuals is not None else None
        plot_forecast(Path(plot), series, result, truth)
    return frame


def backtest(
    run_dir: str | Path,
    data: str | Path | pd.DataFrame,
    folds: int = 1,
    *,
    step: int | None = None,
    baselines: Sequence[str] | None = None,
    weights: Weights = "best",
) -> dict[str, float]:
    """Rolling-origin backtest of a trained run on a series, with the baselines side by side.

    See :meth:`ForecastingTask.backtest_series`; keys are ``folds``, ``horizon``, ``mae``,
    ``rmse``, ``smape``, ``mase``, ``pinball``, ``coverage_<p>`` and ``<baseline>.<metric>`` for
    ``naive``, ``seasonal_naive``, ``drift`` and ``ets`` (when statsmodels is installed).
    """
    task, model = _load(run_dir, weights)
    series = task.read(data, freq=task.meta().freq)
    return task.backtest_series(model, series, folds, step, baselines)


def plot_forecast(
    path: Path,
    history: TimeSeries,
    result: ForecastResult,
    actuals: TimeSeries | None = None,
    context: int | None = None,
) -> None:
    """Save a PNG: the last ``context`` history steps (default 4 horizons, at least the lookback),
    the forecast, its intervals as bands, actuals where known, and for the attention head a
    heatmap of the weights (H x L). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    C = len(result.targets)
    show = context or max(4 * len(result.time), len(result.lookback_time))
    rows = C + (result.attention is not None)
    fig, axes = plt.subplots(rows, 1, figsize=(10, 3.2 * rows), squeeze=False)
    pairs = interval_pairs(result.levels)
    for c, name in enumerate(result.targets):
        ax = axes[c, 0]
        ax.plot(history.time[-show:], history.values[-show:, c], color="black", label="history")
        for n, (percent, i, j) in enumerate(reversed(pairs)):
            ax.fill_between(
                result.time,
                result.quantiles[:, c, i],
                result.quantiles[:, c, j],
                color="tab:blue",
                alpha=0.15 + 0.15 * n,
                label=f"{percent} % interval",
            )
        ax.plot(result.time, result.point[:, c], color="tab:blue", label="forecast")
        if actuals is not None:
            known = actuals.time.isin(result.time)
            if known.any():
                ax.plot(
                    actuals.time[known],
                    actuals.values[known, c],
                    color="tab:red",
                    marker=".",
                    label="actual",
                )
        ax.set_title(name)
        ax.legend(loc="upper left")
    if result.attention is not None:
        ax = axes[C, 0]
        image = ax.imshow(result.attention, aspect="auto", cmap="viridis")
        ax.set_xlabel("lookback step (oldest to newest)")
        ax.set_ylabel("forecast step")
        ax.set_title("attention weights")
        fig.colorbar(image, ax=ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
