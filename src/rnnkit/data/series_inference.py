"""What a minimal forecasting config leaves open, chosen from the series.

- :func:`infer_frequency`, :func:`infer_season`, :func:`auto_calendar`: the frequency from the
  timestamps, and from it the season length and the calendar features that vary within it.
- :func:`infer_transform`: model log values when the series is positive and its seasonal
  amplitude grows with its level (a multiplicative season), plain values otherwise.
- :func:`default_lookback`: how many steps the encoder reads, from the season and the horizon.

The transform test is a regression of each seasonal cycle's spread on its level, the relation
behind Guerrero's choice of a Box-Cox parameter (spread ~ level^(1 - lambda)): a slope b near 1
means a multiplicative season (lambda near 0, the log), near 0 an additive one. No library offers
it for a seasonal series in a few lines without fitting a model (statsmodels' and scipy's Box-Cox
estimates maximise a normal likelihood of the whole series, which a trend dominates), so it is
written here. Shapes: N steps, C target columns, m the season.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from rnnkit.runtime.series import CalendarFeature

__all__ = [
    "LOG_SLOPE",
    "MIN_WINDOWS",
    "auto_calendar",
    "default_lookback",
    "infer_frequency",
    "infer_season",
    "infer_transform",
    "spread_slope",
]

LOG_SLOPE = 0.5
"""Slopes of log spread on log level at or above this choose the log (Box-Cox lambda <= 0.5)."""

MIN_WINDOWS = 12
"""Fewest training windows :func:`default_lookback` keeps its longer lookback for."""

MIN_LEVEL_RATIO = 1.25
"""Below this ratio of the highest cycle level to the lowest, spread cannot be told apart from
level and the values stay plain."""


def spread_slope(values: np.ndarray, season: int) -> float | None:
    """The slope of log(spread) on log(level) over the complete seasonal cycles of ``values``.

    Args:
        values: (N,) positive values of one series, oldest first.
        season: m >= 2.

    Returns:
        The least-squares slope over the N // m cycles counted back from the last value (level:
        the cycle's mean; spread: its standard deviation around a straight line fitted to the
        cycle, so that a trend inside one cycle does not count as season), or None when there are
        fewer than 3 cycles, a spread is zero, or the levels vary by less than
        :data:`MIN_LEVEL_RATIO`.
    """
    cycles = len(values) // season
    if season < 2 or cycles < 3:
        return None
    block = values[len(values) - cycles * season :].reshape(cycles, season)  # (cycles, m)
    level = block.mean(axis=1)
    t = np.arange(season) - (season - 1) / 2
    trend = ((block - level[:, None]) * t).sum(axis=1) / (t * t).sum()  # (cycles,)
    detrended = block - level[:, None] - trend[:, None] * t
    spread = detrended.std(axis=1)
    if (spread <= 0).any() or level.max() < MIN_LEVEL_RATIO * level.min():
        return None
    slope, _ = np.polyfit(np.log(level), np.log(spread), 1)
    return float(slope)


def infer_transform(values: np.ndarray, season: int) -> Literal["none", "log"]:
    """``log`` when every column of ``values`` (N, C) is positive with a multiplicative season
    (:func:`spread_slope` >= :data:`LOG_SLOPE`), else ``none``. Call on the training part only."""
    if values.size == 0 or not (values > 0).all() or not np.isfinite(values).all():
        return "none"
    for column in values.T:
        slope = spread_slope(column, season)
        if slope is None or slope < LOG_SLOPE:
            return "none"
    return "log"


def default_lookback(season: int, horizon: int, train_steps: int | None = None) -> int:
    """Steps the encoder reads when ``data.lookback`` is not set: two seasons (m >= 2; the
    seasonal naive base needs one whole season), else the horizon and at least 8; one season
    (or 8 steps) when a training part of ``train_steps`` would leave fewer than
    :data:`MIN_WINDOWS` training windows with the longer one.

    Args:
        season: m. horizon: H. train_steps: length of the training part (None: not known).
    """
    longer = 2 * season if season >= 2 else max(horizon, 8)
    shorter = season if season >= 2 else 8
    if train_steps is not None and train_steps - longer - horizon + 1 < MIN_WINDOWS:
        return min(longer, shorter)
    return longer


def _infer_freq(time: pd.DatetimeIndex) -> str | None:
    """pandas' infer_freq as a string (pandas 4 returns an offset object)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(time)
    return None if freq is None else str(getattr(freq, "freqstr", freq))


def infer_frequency(time: pd.DatetimeIndex) -> str | None:
    """The pandas frequency of sorted, unique ``time`` (N >= 3), tolerating gaps and a few
    irregular stamps by a vote over short runs; None when no frequency emerges."""
    if len(time) < 3:
        return None
    freq = _infer_freq(time)
    if freq is not None:
        return freq
    starts = np.unique(np.linspace(0, len(time) - 5, num=min(len(time) - 4, 200)).astype(int))
    votes: Counter[str] = Counter()
    for start in starts if len(time) >= 5 else []:
        guess = _infer_freq(time[start : start + 5])
        if guess is not None:
            votes[guess] += 1
    return votes.most_common(1)[0][0] if votes else None


def _step(freq: str) -> pd.Timedelta:
    """Nominal length of one step of ``freq`` (a month from 2000-01-01 is 31 days), measured
    between two steps on the grid (an anchored frequency such as ``W-SUN`` first rolls
    forward to its anchor)."""
    offset = pd.tseries.frequencies.to_offset(freq)
    first = pd.Timestamp("2000-01-01") + offset
    return (first + offset) - first


def infer_season(freq: str) -> int:
    """The natural season length of a frequency: 12 for monthly, 4 quarterly, 52 weekly, 7 daily,
    24 hourly, steps per day below an hour, 1 (no season) for yearly."""
    days = float(_step(freq) / pd.Timedelta(days=1))
    if days >= 360:
        return 1
    if days >= 85:
        return 4
    if days >= 28:
        return 12
    if days >= 7:
        return 52
    if days >= 1:
        return 7
    return max(1, round(1.0 / days))


def auto_calendar(freq: str) -> tuple[CalendarFeature, ...]:
    """Calendar features that vary within a season of ``freq`` (none for yearly data)."""
    days = float(_step(freq) / pd.Timedelta(days=1))
    if days >= 360:
        return ()
    if days >= 85:
        return ("quarter",)
    if days >= 28:
        return ("month",)
    if days >= 7:
        return ("weekofyear",)
    if days >= 1:
        return ("dayofweek", "dayofyear")
    return ("hour", "dayofweek")
