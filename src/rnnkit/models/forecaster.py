r"""A probabilistic forecaster: an RNN, LSTM or GRU encoder and a direct, autoregressive or
attention head, on raw values, with its scaling inside.

Shapes: B batch, L lookback, H horizon, C target series, P past covariates, K calendar feature
columns, D hidden units (``hidden_size``), n distribution parameters per value, Q quantile
levels, E ensemble members.

All the scaling lives in the model, as buffers fitted on the training part only (see
:meth:`Forecaster.set_scaling`), so a saved model forecasts on its own::

    z = (f(y) - loc) / scale                 (B, L, C)  f = log or identity, loc/scale per series
    level = mean(z over the last season)     (B, 1, C)  (normalize: window; else 0)
    u = z - level                            the window seen relative to its own level
    base_h = u at the same season position   (B, H, C)  (residual: seasonal_naive;
                                             naive repeats u_L; none is 0)
    x_t = [u_t, past covariates_t, calendar_t]          (B, L, C + P + K)
    e, s = Encoder(x)                        e (B, L, D), s the final state

    direct:         theta = W dropout(e_L) -> (B, H, C, n), all steps at once
    autoregressive: a decoder cell started from s, d_h = Cell([y_{h-1}, calendar_h], d_{h-1}),
                    fed the true previous value in training (teacher forcing) and its own point
                    forecast otherwise; theta_h = W dropout(d_h)
    attention:      as autoregressive, plus c_h = Attention(d_h, e) and
                    theta_h = W dropout([d_h; c_h]); the weights (B, H, L) are returned

The network's location is added to base_h (:func:`~rnnkit.nn.distributions.distribution_params`),
so it learns what the seasonal naive forecast misses. The distributions, their quantiles and
their scores are in :mod:`rnnkit.nn.distributions`; the median is the point forecast. With
``ensemble`` = E, E independently initialised :class:`ForecastNetwork` members share the
scaling and are trained side by side on the same batches; their quantiles are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import torch
from pydantic import ConfigDict, Field, field_validator
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.data.series_windows import ScalerStats
from rnnkit.nn.attention import Attention
from rnnkit.nn.distributions import (
    Likelihood,
    distribution_params,
    distribution_quantiles,
    num_params,
    point_forecast,
)
from rnnkit.nn.factory import make_cell, make_layer
from rnnkit.nn.functional import CellKind

__all__ = [
    "ForecastNetwork",
    "ForecastOutput",
    "Forecaster",
    "ForecasterConfig",
    "Head",
    "Normalize",
    "Residual",
    "SeriesForecasters",
    "interpolate_levels",
]

Head = Literal["direct", "autoregressive", "attention"]
Residual = Literal["none", "naive", "seasonal_naive"]
Normalize = Literal["none", "window"]


class ForecasterConfig(FrozenConfig):
    """Architecture of a :class:`Forecaster` (the ``model`` section; no optimiser settings).

    Attributes:
        cell: the recurrent unit of encoder and decoder: ``rnn``, ``lstm`` or ``gru``.
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
        calibration: ``conformal`` sets each prediction interval from the errors of forecasts
            of data a first model never trained on, per horizon step (see
            :mod:`rnnkit.tasks.forecasting_calibration`); ``none`` keeps the network's quantiles.
        global (``global_model`` in Python): for a panel of many series, one model trained on
            the windows of all of them, each series scaled on its own (true), or one model per
            series (false, :class:`SeriesForecasters`). A single series ignores it.
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
    model_config = ConfigDict(
        **FrozenConfig.model_config,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    ensemble: int = Field(4, ge=1)
    calibration: Literal["conformal", "none"] = "conformal"
    global_model: bool = Field(True, alias="global")

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
        self.n = num_params(config.likelihood, self.levels)
        D = config.hidden_size
        self.encoder = make_layer(
            config.cell,
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
            self.decoder = make_cell(config.cell, targets + calendar, D)
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
        likelihood = self.config.likelihood
        e, state = self.encoder(x)  # (B, L, D), final state
        if self.decoder is None:
            raw = self.out(self.dropout(e[:, -1])).view(B, self.H, self.C, self.n)
            return distribution_params(raw, base, likelihood, self.levels), None
        lstm = self.config.cell == "lstm"
        d_state: Any = (state[0][-1], state[1][-1]) if lstm else state[-1]  # top layer, (B, D)
        keys = self.attention.project_keys(e) if self.attention is not None else None
        previous = x[:, -1, : self.C]  # (B, C), the last value seen
        steps, weights = [], []
        for h in range(self.H):
            d_state = self.decoder(torch.cat([previous, future[:, h]], dim=-1), d_state)
            d = d_state[0] if lstm else d_state  # (B, D)
            features = d
            if self.attention is not None:
                c, a = self.attention(d, e, projected_keys=keys)  # (B, D), (B, L)
                features = torch.cat([d, c], dim=-1)  # (B, 2D)
                weights.append(a)
            raw = self.out(self.dropout(features)).view(B, self.C, self.n)
            theta = distribution_params(raw, base[:, h], likelihood, self.levels)  # (B, C, n)
            steps.append(theta)
            previous = (
                teacher[:, h]
                if teacher is not None
                else point_forecast(theta, likelihood, self.levels)
            )  # (B, C)
        attention = torch.stack(weights, dim=1) if weights else None  # (B, H, L)
        return torch.stack(steps, dim=1), attention  # (B, H, C, n)


class Forecaster(nn.Module):
    """Scaling plus ``ensemble`` independent :class:`ForecastNetwork` members, on raw values
    (see the module docstring for the equations).

    Args:
        config: the architecture.
        targets: C. past: P. calendar: K (calendar feature columns, 2 per feature).
        lookback: L. horizon: H. season: m (for ``normalize`` and ``residual``).
        log: whether values are modelled in log space.

    Buffers (saved with the weights, set by :meth:`set_scaling`): ``target_loc``,
    ``target_scale`` (C,), ``past_loc``, ``past_scale`` (P,). ``interval_residual`` (H, C, Q), in
    normalised units, is each calibrated quantile's distance from the median (zero at the
    median), used by :meth:`predict` once set; it is not saved with the weights: the task sets
    it from the run's calibration file (:meth:`set_interval_residual`).
    """

    target_loc: Tensor
    target_scale: Tensor
    past_loc: Tensor
    past_scale: Tensor
    interval_residual: Tensor

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
        Q = len(self.levels)
        self.register_buffer(
            "interval_residual", torch.zeros(horizon, targets, Q), persistent=False
        )
        self.calibrated = False  # True once set_interval_residual() was called

    def set_scaling(self, target: ScalerStats, past: ScalerStats | None = None) -> None:
        """Copy fitted scaler statistics (loc, scale: (C,) and (P,)) into the buffers."""
        if target.log != self.log:
            raise ValueError(f"scaler log={target.log} but the model has log={self.log}")
        with torch.no_grad():
            self.target_loc.copy_(torch.as_tensor(target.loc))
            self.target_scale.copy_(torch.as_tensor(target.scale))
            if past is not None:
                self.past_loc.copy_(torch.as_tensor(past.loc))
                self.past_scale.copy_(torch.as_tensor(past.scale))

    def set_interval_residual(self, residual: Tensor) -> None:
        """Calibrate :meth:`predict`'s quantiles: the median plus ``residual`` (H, C, Q), in
        normalised units (non-positive below the median, non-negative above)."""
        if residual.shape != self.interval_residual.shape:
            raise ValueError(
                f"interval residual must be {tuple(self.interval_residual.shape)}, "
                f"got {tuple(residual.shape)}"
            )
        with torch.no_grad():
            self.interval_residual.copy_(residual)
        self.calibrated = True

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
        point forecast the members' medians averaged. A calibrated model's quantiles are the
        point forecast plus ``interval_residual`` (interpolated between the trained levels for
        other ``levels``).

        Returns:
            point (B, H, C), quantiles (B, H, C, Q) at ``levels`` (default: the trained ones),
            and the members' mean attention weights (B, H, L) or None.
        """
        levels = self.levels if levels is None else tuple(levels)
        out = self(history, calendar, past)
        likelihood = self.config.likelihood
        point = point_forecast(out.params, likelihood, self.levels).mean(0)  # (B, H, C)
        if self.calibrated:
            residual = self.interval_residual  # (H, C, Q)
            if levels != self.levels:
                residual = interpolate_levels(residual, self.levels, levels)
            q = point[..., None] + residual  # (B, H, C, Q)
        else:
            q = distribution_quantiles(out.params, likelihood, self.levels, levels).mean(0)
        attention = None if out.attention is None else out.attention.mean(0)  # (B, H, L)
        return (
            self.denormalize(point[..., None], out.level)[..., 0],
            self.denormalize(q, out.level),  # (B, H, C, Q)
            attention,
        )


def interpolate_levels(q: Tensor, have: Sequence[float], want: Sequence[float]) -> Tensor:
    """Values (..., Q) at levels ``have`` -> (..., Q') at ``want``, linear in the level between
    neighbours and held at the end values outside ``have``'s range."""
    columns = []
    for level in want:
        j = min(max(sum(h <= level for h in have) - 1, 0), len(have) - 2)
        lo, hi = have[j], have[j + 1]
        w = min(max((level - lo) / (hi - lo), 0.0), 1.0)
        columns.append(q[..., j] * (1 - w) + q[..., j + 1] * w)
    return torch.stack(columns, dim=-1)


class SeriesForecasters(nn.Module):
    """One :class:`Forecaster` per series of a panel (``model.global: false``), trained side by
    side on the same batches: each window goes to its own series' model, so the models share
    nothing but the optimiser's step (and ``train.clip_grad_norm``, taken over all of them).

    Args:
        models: S forecasters of one architecture, in the panel's series order.

    ``forward`` and ``predict`` take the forecaster's arguments plus ``series`` (B,), each
    window's series index, and return what :class:`Forecaster` returns for the whole batch.
    """

    def __init__(self, models: Sequence[Forecaster]) -> None:
        super().__init__()
        if not models:
            raise ValueError("SeriesForecasters needs at least one model")
        self.models = nn.ModuleList(models)
        first = models[0]
        self.config, self.levels = first.config, first.levels
        self.C, self.P, self.K, self.L, self.H = first.C, first.P, first.K, first.L, first.H
        self.season, self.log = first.season, first.log

    def _each(self, series: Tensor) -> list[tuple[int, Tensor]]:
        """(series index, positions (b,)) of every series present in ``series`` (B,)."""
        return [(int(s), (series == s).nonzero()[:, 0]) for s in torch.unique(series)]

    def model(self, index: int) -> Forecaster:
        """The forecaster of series ``index``."""
        model = self.models[index]
        assert isinstance(model, Forecaster)
        return model

    def normalize(self, values: Tensor, level: Tensor) -> Tensor:
        """As :meth:`Forecaster.normalize` (the panel's models share their scaling)."""
        return self.model(0).normalize(values, level)

    def forward(
        self,
        history: Tensor,
        calendar: Tensor,
        past: Tensor | None = None,
        targets: Tensor | None = None,
        series: Tensor | None = None,
    ) -> ForecastOutput:
        """:meth:`Forecaster.forward` of each window's own model; ``series`` (B,) is required."""
        if series is None:
            raise ValueError("SeriesForecasters needs each window's series index")
        params: Tensor | None = None
        level = history.new_zeros(history.size(0), 1, self.C)
        attention: Tensor | None = None
        for s, at in self._each(series):
            out = self.model(s)(
                history[at],
                calendar[at],
                None if past is None else past[at],
                None if targets is None else targets[at],
            )
            if params is None:
                params = out.params.new_zeros(
                    out.params.size(0), history.size(0), *out.params.shape[2:]
                )
            params[:, at] = out.params
            level[at] = out.level
            if out.attention is not None:
                if attention is None:
                    shape = (out.attention.size(0), history.size(0), *out.attention.shape[2:])
                    attention = out.attention.new_zeros(shape)
                attention[:, at] = out.attention
        assert params is not None
        return ForecastOutput(params, level, attention)

    def predict(
        self,
        history: Tensor,
        calendar: Tensor,
        past: Tensor | None = None,
        levels: Sequence[float] | None = None,
        series: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """:meth:`Forecaster.predict` of each window's own model; ``series`` (B,) is required."""
        if series is None:
            raise ValueError("SeriesForecasters needs each window's series index")
        results = []
        for s, at in self._each(series):
            part = None if past is None else past[at]
            results.append((at, self.model(s).predict(history[at], calendar[at], part, levels)))
        B = history.size(0)
        first = results[0][1]
        point = first[0].new_zeros(B, *first[0].shape[1:])
        q = first[1].new_zeros(B, *first[1].shape[1:])
        attention = None if first[2] is None else first[2].new_zeros(B, *first[2].shape[1:])
        for at, (p, quantiles, a) in results:
            point[at], q[at] = p, quantiles
            if attention is not None and a is not None:
                attention[at] = a
        return point, q, attention
