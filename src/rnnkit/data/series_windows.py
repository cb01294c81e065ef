"""Scaling, splits by time and windows of a checked series, and a run's series facts.

Scalers (:class:`ScalerStats`, :func:`fit_scaler`) are fitted on the training part only; a series
is split by time (:class:`TimeSplit`, :func:`split_by_time`) and cut into windows
(:func:`windows`, :func:`series_windows`; future covariates join the calendar block, those after
the end from the series' ``ahead`` rows, :func:`future_block`). Shapes as in
:mod:`rnnkit.data.timeseries`.

What a trained forecaster remembers of its series (frequency, season, calendar features, column
names, future covariates and the scalers fitted on the training part) is a :class:`SeriesMeta`,
saved as JSON in the run folder at training time so that a run forecasts without its training
data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from rnnkit.data.timeseries import (
    _FLOAT,
    CalendarFeature,
    ScalerKind,
    SeriesError,
    TimeSeries,
    Transform,
    calendar_features,
    future_times,
)

# ----------------------------------------------------------------------------- scaling


@dataclass(frozen=True)
class ScalerStats:
    """Per-column affine scaling ``z = (f(y) - loc) / scale`` with ``f`` = log or identity.

    Attributes:
        loc: (C,) centre. scale: (C,) positive spread. log: whether f is the natural log.
    """

    loc: np.ndarray
    scale: np.ndarray
    log: bool = False

    def transform(self, values: np.ndarray) -> np.ndarray:
        """(..., C) raw values -> (..., C) scaled values."""
        f = np.log(values) if self.log else values
        result: np.ndarray = (f - self.loc) / self.scale
        return result

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        """(..., C) scaled values -> (..., C) raw values."""
        f = scaled * self.scale + self.loc
        result: np.ndarray = np.exp(f) if self.log else f
        return result

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data: ``{"loc": [...], "scale": [...], "log": bool}`` (floats exact)."""
        return {"loc": self.loc.tolist(), "scale": self.scale.tolist(), "log": self.log}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ScalerStats:
        """The inverse of :meth:`to_dict`."""
        return cls(
            np.asarray(raw["loc"], dtype=_FLOAT),
            np.asarray(raw["scale"], dtype=_FLOAT),
            bool(raw["log"]),
        )


def fit_scaler(
    values: np.ndarray, kind: ScalerKind, transform: Transform = "none", name: str = "values"
) -> ScalerStats:
    """Fit per-column scaling on ``values`` (N, C), the *training part only*.

    ``standard``: mean and standard deviation; ``robust``: median and inter-quartile range;
    ``none``: 0 and 1. A zero spread becomes 1. ``transform="log"`` needs positive values.
    """
    if values.ndim != 2:
        raise ValueError(f"{name} must be (N, C), got shape {tuple(values.shape)}")
    C = values.shape[1]
    if transform == "log":
        if not (values > 0).all():
            raise SeriesError(f"transform 'log' needs positive {name}, found {values.min():g}")
        values = np.log(values)
    elif transform != "none":
        raise ValueError(f"unknown transform '{transform}'; valid: none, log")
    if kind == "standard":
        loc, scale = values.mean(axis=0), values.std(axis=0)
    elif kind == "robust":
        q25, loc, q75 = np.percentile(values, [25.0, 50.0, 75.0], axis=0)
        scale = q75 - q25
    elif kind == "none":
        loc, scale = np.zeros(C), np.ones(C)
    else:
        raise ValueError(f"unknown scaler '{kind}'; valid scalers: standard, robust, none")
    scale = np.where(scale > 1e-12, scale, 1.0)
    return ScalerStats(
        np.asarray(loc, dtype=_FLOAT), np.asarray(scale, dtype=_FLOAT), transform == "log"
    )


# ----------------------------------------------------------------------------- splits and windows


@dataclass(frozen=True)
class TimeSplit:
    """Index ranges of a split by time (never shuffled across it).

    The model trains on windows whose targets end at or before ``fit_end``; validation windows'
    targets end in ``(fit_end, valid_end]``; the test part is ``[valid_end, n)``. The scaler is
    fitted on ``[0, fit_end)``.

    Attributes:
        n: series length. fit_end: end of the training part. valid_end: end of validation.
        lookback: L. horizon: H.
    """

    n: int
    fit_end: int
    valid_end: int
    lookback: int
    horizon: int

    def train_origins(self) -> np.ndarray:
        """(W,) origins (index of the first target step) of the training windows."""
        return np.arange(self.lookback, self.fit_end - self.horizon + 1)

    def valid_origins(self) -> np.ndarray:
        """(W,) origins of validation windows: targets end inside the validation part."""
        first = max(self.lookback, self.fit_end - self.horizon + 1)
        return np.arange(first, self.valid_end - self.horizon + 1)

    def test_origins(self) -> np.ndarray:
        """(W,) origins of non-overlapping test forecasts from the test part's start."""
        return np.arange(self.valid_end, self.n - self.horizon + 1, self.horizon)


def split_by_time(
    n: int, *, lookback: int, horizon: int, valid_size: int = 0, test_size: int = 0
) -> TimeSplit:
    """Split N steps into training, validation (last ``valid_size`` steps before the test part)
    and test (last ``test_size`` steps). Raises :class:`SeriesError` when too few rows remain."""
    for key, value in (("lookback", lookback), ("horizon", horizon)):
        if value < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")
    for key, value in (("valid_size", valid_size), ("test_size", test_size)):
        if value < 0:
            raise ValueError(f"{key} must be >= 0, got {value}")
    fit_end = n - valid_size - test_size
    need = lookback + horizon
    if fit_end < need:
        held = f" after test_size {test_size} and valid_size {valid_size}" if fit_end != n else ""
        raise SeriesError(
            f"too few rows: {n} rows leave {fit_end} for training{held}, fewer than "
            f"lookback {lookback} + horizon {horizon} = {need}"
        )
    return TimeSplit(n, fit_end, fit_end + valid_size, lookback, horizon)


def windows(values: np.ndarray, origins: np.ndarray, before: int, after: int) -> np.ndarray:
    """Slices ``values[o - before : o + after]`` for each origin o: (W, before + after, ...)."""
    if len(origins) == 0:
        return np.zeros((0, before + after, *values.shape[1:]), dtype=values.dtype)
    if origins.min() - before < 0 or origins.max() + after > len(values):
        raise ValueError(
            f"windows reach outside the series (N={len(values)}, origins "
            f"{origins.min()}..{origins.max()}, before={before}, after={after})"
        )
    index = origins[:, None] + np.arange(-before, after)[None, :]  # (W, before + after)
    return values[index]


class SeriesWindows(NamedTuple):
    """Windows of a series at W origins, raw (unscaled), float32.

    Attributes:
        history: (W, L, C) targets before each origin. past: (W, L, P) past covariates.
        calendar: (W, L + H, K + F) calendar features of the window and of the forecast steps,
            then the F future covariates (scaled when a scaler is given; F = 0 without them).
        targets: (W, H, C) true values from each origin on (NaN past the series' end).
    """

    history: np.ndarray
    past: np.ndarray
    calendar: np.ndarray
    targets: np.ndarray


def _stamp(time: pd.Timestamp) -> str:
    """``2001-06-01`` for a midnight, else the full timestamp."""
    return f"{time:%Y-%m-%d}" if time == time.normalize() else str(time)


def future_block(series: TimeSeries, extra: int, scaler: ScalerStats | None = None) -> np.ndarray:
    """The future covariates of ``series``'s N steps and of ``extra`` steps after its end, from
    :attr:`~rnnkit.data.timeseries.TimeSeries.ahead`: (N + extra, F) float64, scaled
    ``(x - loc) / scale`` with ``scaler`` when given.

    Raises:
        SeriesError: ``ahead`` holds fewer than ``extra`` rows (naming every future covariate).
        ValueError: a scaler of another width than F.
    """
    F, given = len(series.future_names), len(series.ahead)
    if scaler is not None and scaler.loc.shape != (F,):
        raise ValueError(f"future_scaler has {scaler.loc.size} columns for {F} future covariates")
    if F == 0:
        return np.zeros((len(series) + extra, 0), dtype=_FLOAT)
    if extra > given:
        names = ", ".join(f"'{name}'" for name in series.future_names)
        what = f"future covariate {names} is" if F == 1 else f"future covariates {names} are"
        raise SeriesError(
            f"{series.source}: {what} needed for {extra} steps after "
            f"{_stamp(series.time[-1])}, the input gives {given}; add rows after the last value "
            f"with {names} filled in"
        )
    block = np.concatenate([series.future, series.ahead[:extra]])  # (N + extra, F)
    return block if scaler is None else scaler.transform(block)


def series_windows(
    series: TimeSeries,
    origins: np.ndarray,
    lookback: int,
    horizon: int,
    calendar: Sequence[CalendarFeature],
    future_scaler: ScalerStats | None = None,
) -> SeriesWindows:
    """Windows of ``series`` at ``origins`` (W,) (the index of each window's first forecast
    step): L = ``lookback`` steps before, H = ``horizon`` after. Steps past the series' end get
    their timestamps (and calendar features) from the series' frequency, their F future
    covariates from ``series.ahead`` and NaN targets, so the last window may forecast the
    future. The calendar block is (W, L + H, K + F): the K calendar features, then the future
    covariates, scaled with ``future_scaler`` when given.

    Raises:
        SeriesError: with future covariates, a window reaching further past the end than
            ``series.ahead`` goes (the message names the columns and the steps missing).
    """
    L, H = lookback, horizon
    extra = max(0, int(origins.max()) + H - len(series)) if len(origins) else 0
    time = (
        series.time.append(future_times(series.time[-1], series.freq, extra))
        if extra
        else series.time
    )
    values = np.concatenate([series.values, np.full((extra, series.values.shape[1]), np.nan)])
    features = np.concatenate(
        [calendar_features(time, calendar), future_block(series, extra, future_scaler)], axis=1
    )  # (N + extra, K + F)
    return SeriesWindows(
        history=windows(values, origins, L, 0).astype(np.float32),  # (W, L, C)
        past=windows(series.past, origins, L, 0).astype(np.float32),  # (W, L, P)
        calendar=windows(features, origins, L, H).astype(np.float32),  # (W, L + H, K + F)
        targets=windows(values, origins, 0, H).astype(np.float32),  # (W, H, C)
    )


# ----------------------------------------------------------------------------- a run's series facts


@dataclass(frozen=True)
class SeriesMeta:
    """What a trained forecaster remembers about its series (``series.json`` in its run folder).

    Attributes:
        freq: pandas frequency. season: m. calendar: calendar feature names.
        targets / past_covariates: column names. train_end: last timestamp of the training part.
        target_scaler / past_scaler: the scalers fitted on the training part (None in files
            written before rnnkit saved them; the weights carry them too).
        future_covariates: the future covariates' column names (() in files without them).
        future_scaler: the scaler of the future covariates, fitted on the training part (None
            when the file has none).
        lookback: L as resolved at training time (None in files written before rnnkit chose a
            default lookback: their config sets it).
    """

    freq: str
    season: int
    calendar: tuple[CalendarFeature, ...]
    targets: tuple[str, ...]
    past_covariates: tuple[str, ...]
    train_end: str
    target_scaler: ScalerStats | None = None
    past_scaler: ScalerStats | None = None
    future_covariates: tuple[str, ...] = ()
    future_scaler: ScalerStats | None = None
    lookback: int | None = None

    def to_json(self) -> str:
        """The JSON text of ``series.json`` (the optional keys only when set)."""
        raw: dict[str, Any] = {
            "freq": self.freq,
            "season": self.season,
            "calendar": list(self.calendar),
            "targets": list(self.targets),
            "past_covariates": list(self.past_covariates),
            "train_end": self.train_end,
        }
        if self.target_scaler is not None:
            raw["target_scaler"] = self.target_scaler.to_dict()
        if self.past_scaler is not None:
            raw["past_scaler"] = self.past_scaler.to_dict()
        if self.future_covariates:
            raw["future_covariates"] = list(self.future_covariates)
        if self.future_scaler is not None:
            raw["future_scaler"] = self.future_scaler.to_dict()
        if self.lookback is not None:
            raw["lookback"] = self.lookback
        return json.dumps(raw, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "series.json") -> SeriesMeta:
        """Parse ``series.json`` text; a missing key or bad value is a :class:`SeriesError`."""
        try:
            raw = json.loads(text)
            scalers = [
                ScalerStats.from_dict(raw[key]) if key in raw else None
                for key in ("target_scaler", "past_scaler", "future_scaler")
            ]
            return cls(
                freq=str(raw["freq"]),
                season=int(raw["season"]),
                calendar=tuple(raw["calendar"]),
                targets=tuple(raw["targets"]),
                past_covariates=tuple(raw["past_covariates"]),
                train_end=str(raw["train_end"]),
                target_scaler=scalers[0],
                past_scaler=scalers[1],
                future_covariates=tuple(str(c) for c in raw.get("future_covariates", ())),
                future_scaler=scalers[2],
                lookback=None if raw.get("lookback") is None else int(raw["lookback"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise SeriesError(
                f"{source}: not a valid series file ({type(err).__name__}: {err})"
            ) from None
