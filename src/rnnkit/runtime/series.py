"""Time-series pieces both engines share, torch-free: tables, calendar features, the forecast table.

:mod:`rnnkit.data.timeseries`, :mod:`rnnkit.metrics.forecast` and
:mod:`rnnkit.tasks.forecasting_predict` use these, so that a run and its ONNX export read files,
encode calendars and lay out their forecasts with the same code. Shapes: N rows, H horizon,
C targets, Q quantile levels, K calendar features (2 columns each: a sine and a cosine),
L lookback.

Imports: numpy, pandas and the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

__all__ = [
    "BLANKS",
    "CALENDAR_FEATURES",
    "DAY_MONTH",
    "CalendarFeature",
    "ForecastResult",
    "SeriesError",
    "calendar_features",
    "future_times",
    "interval_pairs",
    "month_first",
    "read_table",
]

CalendarFeature = Literal["month", "quarter", "weekofyear", "dayofweek", "dayofyear", "hour"]
CALENDAR_FEATURES: tuple[CalendarFeature, ...] = get_args(CalendarFeature)

BLANKS = frozenset({"", "na", "nan", "null", "none", "n/a"})
"""Cell texts read as empty (lower-cased, stripped)."""
DAY_MONTH = r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})((?:[ T].*)?)$"
"""``A/B/Y[ time]`` (``/``, ``.`` or ``-``): A and B are a day and a month in some order."""


class SeriesError(ValueError):
    """A problem with a time series' data, phrased for the user (source and row included)."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.txt``, ``.tsv``; every cell as text) or Parquet (``.parquet``,
    ``.pq``) file.

    Parquet needs ``pyarrow`` (the extra ``rnnkit[parquet]``).

    Raises:
        SeriesError: a missing, empty or unreadable file, or an unknown suffix (naming it).
    """
    path = Path(path)
    if not path.is_file():
        raise SeriesError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise SeriesError(
                f"{path}: reading Parquet needs pyarrow; install it with: "
                "pip install 'rnnkit[parquet]'"
            ) from None
    if suffix not in (".csv", ".txt", ".tsv"):
        raise SeriesError(f"{path}: unknown file type '{suffix}'; use .csv or .parquet")
    try:
        return pd.read_csv(
            path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False
        )
    except pd.errors.EmptyDataError:
        raise SeriesError(f"{path}: empty file (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise SeriesError(f"{path}: cannot read CSV ({err})") from None


def month_first(month: np.ndarray, day: np.ndarray, year: pd.Series, rest: pd.Series) -> pd.Series:
    """(N,) ``M/D/Y rest`` strings of the fields ``month``, ``day`` (N,), ``year`` and ``rest``
    (month-first ``M/D/Y time`` reads the same in any version of pandas)."""
    index = year.index
    return (
        pd.Series(month, index=index).astype(str)
        + "/"
        + pd.Series(day, index=index).astype(str)
        + "/"
        + year.fillna("")
        + rest.fillna("")
    )


def calendar_features(time: pd.DatetimeIndex, names: Sequence[CalendarFeature]) -> np.ndarray:
    """Sine/cosine encodings of calendar positions: (N, 2K) float32, K = len(names).

    Each feature is a phase ``2 pi u`` with u in [0, 1): month (m-1)/12, quarter (q-1)/4, ISO week
    (w-1)/53, day of week d/7, day of year (d-1)/366, hour (h + minute/60)/24.
    """
    columns = []
    for name in names:
        if name == "month":
            u = (time.month - 1) / 12.0
        elif name == "quarter":
            u = (time.quarter - 1) / 4.0
        elif name == "weekofyear":
            u = (time.isocalendar().week.to_numpy() - 1) / 53.0
        elif name == "dayofweek":
            u = time.dayofweek / 7.0
        elif name == "dayofyear":
            u = (time.dayofyear - 1) / 366.0
        elif name == "hour":
            u = (time.hour + time.minute / 60.0) / 24.0
        else:
            raise ValueError(
                f"unknown calendar feature '{name}'; valid features: {', '.join(CALENDAR_FEATURES)}"
            )
        phase = 2.0 * np.pi * np.asarray(u, dtype=np.float64)
        columns += [np.sin(phase), np.cos(phase)]
    if not columns:
        return np.zeros((len(time), 0), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)  # (N, 2K)


def future_times(last: pd.Timestamp, freq: str, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` timestamps after ``last`` at frequency ``freq``."""
    return pd.date_range(last, periods=horizon + 1, freq=freq)[1:]


def interval_pairs(levels: Sequence[float]) -> list[tuple[int, int, int]]:
    """Central intervals formed by symmetric quantile levels (q, 1 - q), q < 0.5.

    Returns ``(percent, index of q, index of 1 - q)`` sorted by percent; e.g. levels
    (0.1, 0.5, 0.9) give ``[(80, 0, 2)]``.
    """
    pairs = []
    for i, lo in enumerate(levels):
        for j, hi in enumerate(levels):
            if lo < 0.5 and abs(lo + hi - 1.0) < 1e-9:
                pairs.append((round(100 * (hi - lo)), i, j))
    return sorted(pairs)


@dataclass(frozen=True)
class ForecastResult:
    """A forecast of C series over H steps.

    Attributes:
        time: (H,) forecast timestamps. point: (H, C) medians. quantiles: (H, C, Q) at ``levels``.
        targets: the C series' names. time_column: the name of the time column.
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

    def to_csv(self) -> str:
        """:meth:`to_frame` as CSV text: a header and H rows, no trailing newline (what
        ``rnnkit predict`` prints)."""
        text: str = self.to_frame().to_csv(index=False)
        return text.rstrip("\n")

    def to_columns(self) -> dict[str, list[Any]]:
        """:meth:`to_frame`'s columns as lists, timestamps as text (``rnnkit predict --json``)."""
        frame = self.to_frame()
        frame[self.time_column] = frame[self.time_column].astype(str)
        columns: dict[str, list[Any]] = frame.to_dict(orient="list")
        return columns
