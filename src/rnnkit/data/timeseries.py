"""Time series for forecasting: reading, checking and calendar features.

A series is a table with a time column and one or more numeric target columns, optionally with
*past covariates* (extra numeric columns known only up to the present) and *future covariates*
(columns known ahead of time too: a planned price, a holiday flag). The calendar features
generated from the time column (month, day of week, ...) are known in the future as well, so they
exist for any future timestamp; a future covariate's values after the last target value come from
the file itself: its trailing rows whose target cells are all blank but whose future covariates
are filled in (the forecast window's rows, :attr:`TimeSeries.ahead`). Shapes: N time steps,
C targets, P past covariates, F future covariates, X rows known ahead, K calendar features
(2 per named feature: its sine and cosine), L lookback, H horizon (also written T for time in
window tensors), W windows.

Checks (each a :class:`SeriesError` naming the source and the row; rows are numbered from 1, the
first data row after a CSV's header being row 1, or as the caller numbers them with ``rows``):

- a missing column, an unparseable date, a non-numeric value;
- dates written ``A/B/YYYY`` (or with ``.`` or ``-``) that read both day-first and month-first
  to different dates (set ``date_format`` or ``dayfirst``); where only one reading works (a field
  above 12) it is used. ISO dates (``YYYY-MM-DD``) are never ambiguous;
- a duplicate timestamp, a timestamp off the series' frequency (irregular);
- a gap: timestamps missing from the frequency's grid, or an empty value (a target, a past or a
  future covariate). Gaps are filled by linear interpolation in time when asked
  (``fill_gaps="interpolate"``); values missing at the very start or end take the nearest known
  value;
- rows after the last value (with future covariates only) that skip a step of the frequency or
  leave a future covariate blank.

The frequency is inferred from the timestamps (or given) and the rows are sorted by time.

Built-in series are in :mod:`rnnkit.data.builtin_series`; scaling, splits by time, windows and
a run's series facts (:class:`~rnnkit.data.series_windows.SeriesMeta`) in
:mod:`rnnkit.data.series_windows`; many series in one table in :mod:`rnnkit.data.panel`. All
build on this module (:class:`SeriesError`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

# Cells, and what is inferred from the timestamps, live beside this module; re-exported here.
from rnnkit.data.series_inference import auto_calendar as auto_calendar
from rnnkit.data.series_inference import infer_frequency as infer_frequency
from rnnkit.data.series_inference import infer_season as infer_season
from rnnkit.data.series_parsing import parse_numbers as parse_numbers
from rnnkit.data.series_parsing import parse_times as parse_times
from rnnkit.data.series_parsing import row_numbers

# Reading tables, calendar features and future timestamps are the ONNX runtime's (torch-free)
# code, so that a run and its export read and encode series alike.
from rnnkit.runtime.series import CALENDAR_FEATURES as CALENDAR_FEATURES
from rnnkit.runtime.series import CalendarFeature as CalendarFeature
from rnnkit.runtime.series import SeriesError as SeriesError
from rnnkit.runtime.series import calendar_features as calendar_features
from rnnkit.runtime.series import future_times as future_times
from rnnkit.runtime.series import read_table as read_table

logger = logging.getLogger(__name__)

FillGaps = Literal["none", "interpolate"]
ScalerKind = Literal["standard", "robust", "none"]
Transform = Literal["none", "log"]

_FLOAT = np.float64


def _no_columns() -> np.ndarray:
    return np.zeros((0, 0), dtype=_FLOAT)


# ----------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class TimeSeries:
    """A checked, regular series.

    Attributes:
        time: (N,) timestamps, increasing, on the grid of ``freq``.
        values: (N, C) float64 targets.
        past: (N, P) float64 past covariates (P may be 0).
        freq: pandas frequency string ("MS", "W-SAT", "30min", ...).
        targets: the C target column names.
        past_names: the P covariate column names.
        time_column: name of the time column.
        source: what the series was read from (file name or built-in name), used in messages.
        future: (N, F) float64 future covariates at the N steps (F may be 0; left out, (N, 0)).
        future_names: the F future covariate column names.
        ahead: (X, F) float64 future covariates of the X steps after ``time[-1]`` (their
            timestamps continue the grid: ``future_times(time[-1], freq, X)``); left out, (0, F).
    """

    time: pd.DatetimeIndex
    values: np.ndarray
    past: np.ndarray
    freq: str
    targets: tuple[str, ...]
    past_names: tuple[str, ...]
    time_column: str
    source: str
    future: np.ndarray = field(default_factory=_no_columns)
    future_names: tuple[str, ...] = ()
    ahead: np.ndarray = field(default_factory=_no_columns)

    def __post_init__(self) -> None:
        N, F = len(self.time), len(self.future_names)
        if self.future.shape == (0, 0) and (N, F) != (0, 0):
            object.__setattr__(self, "future", np.zeros((N, F), dtype=_FLOAT))
        if self.ahead.shape == (0, 0) and self.future.shape[1] != 0:
            object.__setattr__(self, "ahead", np.zeros((0, self.future.shape[1]), dtype=_FLOAT))
        if self.future.shape != (N, F) or self.ahead.ndim != 2 or self.ahead.shape[1] != F:
            raise ValueError(
                f"{self.source}: future must be (N, F) = ({N}, {F}) and ahead (X, {F}), got "
                f"{tuple(self.future.shape)} and {tuple(self.ahead.shape)}"
            )

    def __len__(self) -> int:
        return len(self.time)

    def head(self, n: int) -> TimeSeries:
        """The first ``n`` steps (a prefix, for backtesting); the future covariates of the steps
        left out move to the front of :attr:`ahead`, so the prefix still knows them."""
        return TimeSeries(
            self.time[:n],
            self.values[:n],
            self.past[:n],
            self.freq,
            self.targets,
            self.past_names,
            self.time_column,
            self.source,
            future=self.future[:n],
            future_names=self.future_names,
            ahead=np.concatenate([self.future[n:], self.ahead]),  # (N - n + X, F)
        )


def check_columns(frame: pd.DataFrame, needed: Sequence[str], source: str) -> None:
    """Every column of ``needed`` named once and present in ``frame`` (a :class:`SeriesError`
    naming the first that is not)."""
    repeated = [c for c, count in Counter(needed).items() if count > 1]
    if repeated:
        raise SeriesError(f"{source}: column '{repeated[0]}' is used twice")
    for name in needed:
        if name not in frame.columns:
            raise SeriesError(
                f"{source}: no column '{name}'; columns are: "
                + ", ".join(str(c) for c in frame.columns)
            )


def _sort_unique(
    time: pd.DatetimeIndex, numbers: np.ndarray, rows: np.ndarray, source: str
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """``time`` (N,), ``numbers`` (N, D) and their ``rows`` (N,) sorted by time (stable);
    a duplicate timestamp names both rows."""
    order = np.argsort(time.asi8, kind="stable")
    time, numbers, rows = time[order], numbers[order], rows[order]
    duplicated = np.flatnonzero(time[1:] == time[:-1])
    if len(duplicated):
        i = int(duplicated[0]) + 1
        raise SeriesError(
            f"{source}: row {rows[i]}: duplicate timestamp {time[i]} (also at row {rows[i - 1]})"
        )
    return time, numbers, rows


def _frequency(time: pd.DatetimeIndex, freq: str | None, rows: np.ndarray, source: str) -> str:
    """The frequency of sorted, unique ``time`` (N,): ``freq`` or inferred; every timestamp
    must lie on its grid (``rows`` (N,) name an irregular one)."""
    if len(time) < 3 and freq is None:
        raise SeriesError(f"{source}: {len(time)} rows are too few to infer a frequency")
    if freq is None:
        freq = infer_frequency(time)
        if freq is None:
            raise SeriesError(
                f"{source}: cannot infer a frequency from the timestamps; set data.freq"
            )
    try:
        grid = pd.date_range(time[0], time[-1], freq=freq)
    except ValueError as err:
        raise SeriesError(f"{source}: invalid frequency '{freq}' ({err})") from None
    on_grid = time.isin(grid)
    if not on_grid.all():
        i = int(np.flatnonzero(~on_grid)[0])
        raise SeriesError(
            f"{source}: row {rows[i]}: irregular timestamp {time[i]}, off the series' frequency "
            f"'{freq}'"
        )
    return str(freq)


def _history_length(
    values: np.ndarray, has_future: bool, targets: Sequence[str], source: str
) -> int:
    """How many of the sorted rows are history: all N without future covariates, else up to the
    last row with a target value (the rows after it, all targets blank, are known ahead);
    ``values`` (N, C)."""
    if not has_future:
        return len(values)
    given = np.flatnonzero(~np.isnan(values).all(axis=1))
    if len(given) == 0:
        raise SeriesError(f"{source}: column '{targets[0]}' has no values")
    return int(given[-1]) + 1


def _check_ahead(
    time: pd.DatetimeIndex,
    ahead: np.ndarray,
    rows: np.ndarray,
    freq: str,
    names: Sequence[str],
    source: str,
) -> None:
    """The X rows after the last value: ``time`` (N + X,) ends with them, ``ahead`` (X, F) their
    future covariates, ``rows`` (N + X,); they must continue the grid step by step, with every
    future covariate filled in."""
    X = len(ahead)
    if X == 0:
        return
    n = len(time) - X
    expected = future_times(time[n - 1], freq, X)
    skipped = np.flatnonzero(time[n:] != expected)
    if len(skipped):
        j = int(skipped[0])
        raise SeriesError(
            f"{source}: row {rows[n + j]}: timestamp {time[n + j]} skips {expected[j]}; the rows "
            f"after the last value ({time[n - 1]}) must continue the frequency '{freq}' step by "
            "step"
        )
    blank = np.argwhere(np.isnan(ahead))
    if len(blank):
        j, f = (int(k) for k in blank[0])
        raise SeriesError(
            f"{source}: row {rows[n + j]}: missing value in future covariate '{names[f]}' after "
            "the last value; fill it in, or drop the row"
        )


def _fill(
    time: pd.DatetimeIndex,
    numbers: np.ndarray,
    rows: np.ndarray,
    freq: str,
    fill_gaps: FillGaps,
    columns: Sequence[str],
    source: str,
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Sorted history ``time`` (N,) and ``numbers`` (N, D) of ``columns`` on the full grid of
    ``freq`` (N', D): interpolated in time, or unchanged with the first gap or empty value an
    error (``fill_gaps="none"``, ``rows`` (N,) naming it)."""
    grid = pd.date_range(time[0], time[-1], freq=freq)
    if fill_gaps == "none":
        if len(grid) != len(time):
            position = grid.get_indexer(time)
            i = int(np.flatnonzero(np.diff(position) > 1)[0])
            missing = int(position[i + 1] - position[i] - 1)
            first, last = sorted((int(rows[i]), int(rows[i + 1])))
            where = f"{first}-{last}" if last == first + 1 else f"{first} and {last}"
            raise SeriesError(
                f"{source}: rows {where}: gap of {missing} missing timestamp(s) "
                f"between {time[i]} and {time[i + 1]} at frequency '{freq}'; "
                "set data.fill_gaps: interpolate to fill gaps"
            )
        empty = np.isnan(numbers)
        if empty.any():
            i, j = (int(k) for k in np.argwhere(empty)[0])
            raise SeriesError(
                f"{source}: row {rows[i]}: missing value in column '{columns[j]}'; "
                "set data.fill_gaps: interpolate to fill gaps"
            )
        return time, numbers
    if fill_gaps == "interpolate":
        table = pd.DataFrame(numbers, index=time)
        table = table.reindex(grid).interpolate(method="time", limit_direction="both")
        if table.isna().to_numpy().any():
            j = int(np.flatnonzero(table.isna().all().to_numpy())[0])
            raise SeriesError(f"{source}: column '{columns[j]}' has no values")
        return grid, table.to_numpy(dtype=_FLOAT)
    raise ValueError(f"unknown fill_gaps '{fill_gaps}'; valid: none, interpolate")


def to_series(
    frame: pd.DataFrame,
    *,
    time_column: str,
    targets: Sequence[str],
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    freq: str | None = None,
    fill_gaps: FillGaps = "none",
    source: str = "data",
    date_format: str | None = None,
    dayfirst: bool | None = None,
    rows: np.ndarray | None = None,
) -> TimeSeries:
    """Check a table and turn it into a regular :class:`TimeSeries`.

    Args:
        frame: the table (N rows).
        time_column: column of timestamps (or 4-digit years).
        targets: the C target columns.
        past_covariates: the P covariate columns, known only up to the present.
        future_covariates: the F covariate columns known in the future too. Trailing rows whose
            targets are all blank are then the X rows after the last value
            (:attr:`TimeSeries.ahead`): they must continue the grid and fill every future
            covariate in (a blank past covariate there is fine).
        freq: the pandas frequency; inferred from the timestamps when None.
        fill_gaps: ``"interpolate"`` fills missing timestamps and empty values linearly in time;
            ``"none"`` reports the first gap as an error.
        source: named in error messages (a file name).
        date_format: a strptime format (``"%d/%m/%Y"``) every date must match.
        dayfirst: read ``A/B/Y`` dates day-first (True) or month-first (False); None infers the
            order and refuses dates that read both ways (see the module docstring).
        rows: (N,) the number messages give each row of ``frame`` (its row in a larger file);
            1, 2, ... when None.

    Raises:
        SeriesError: naming the problem and its row (see the module docstring).
    """
    if date_format is not None and dayfirst is not None:
        raise SeriesError(f"{source}: give date_format or dayfirst, not both")
    if not targets:
        raise SeriesError(f"{source}: no target column given")
    columns = [*targets, *past_covariates, *future_covariates]
    check_columns(frame, [time_column, *columns], source)
    if len(frame) == 0:
        raise SeriesError(f"{source}: no rows")
    numbering = row_numbers(frame[time_column], rows)
    time = parse_times(frame[time_column], time_column, source, date_format, dayfirst, numbering)
    numbers = np.stack(
        [parse_numbers(frame[name], name, source, numbering) for name in columns], axis=1
    )  # (N, C + P + F)
    time, numbers, numbering = _sort_unique(time, numbers, numbering, source)
    freq = _frequency(time, freq, numbering, source)
    C, P = len(targets), len(past_covariates)
    n = _history_length(numbers[:, :C], bool(future_covariates), targets, source)
    ahead = numbers[n:, C + P :]  # (X, F)
    _check_ahead(time, ahead, numbering, freq, future_covariates, source)
    time, numbers = _fill(time[:n], numbers[:n], numbering[:n], freq, fill_gaps, columns, source)
    return TimeSeries(
        time=pd.DatetimeIndex(time),
        values=np.ascontiguousarray(numbers[:, :C], dtype=_FLOAT),
        past=np.ascontiguousarray(numbers[:, C : C + P], dtype=_FLOAT),
        freq=freq,
        targets=tuple(targets),
        past_names=tuple(past_covariates),
        time_column=time_column,
        source=source,
        future=np.ascontiguousarray(numbers[:, C + P :], dtype=_FLOAT),
        future_names=tuple(future_covariates),
        ahead=np.ascontiguousarray(ahead, dtype=_FLOAT),
    )


def read_series(
    source: str | Path | pd.DataFrame,
    *,
    time_column: str,
    targets: Sequence[str],
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    freq: str | None = None,
    fill_gaps: FillGaps = "none",
    transform: Transform = "none",
    name: str = "data",
    date_format: str | None = None,
    dayfirst: bool | None = None,
) -> TimeSeries:
    """Read a CSV/Parquet file (:func:`read_table`) or take a DataFrame, and check it into a
    :class:`TimeSeries` (:func:`to_series`).

    Args:
        source: the file, or a table (then ``name`` is its name in messages).
        time_column, targets, past_covariates, future_covariates, freq, fill_gaps, date_format,
            dayfirst: as for :func:`to_series`.
        transform: ``"log"`` also checks that every target value is positive.

    Raises:
        SeriesError: naming the file and the row, or the first non-positive value for ``log``.
    """
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        frame, name = read_table(source), str(source)
    series = to_series(
        frame,
        time_column=time_column,
        targets=targets,
        past_covariates=past_covariates,
        future_covariates=future_covariates,
        freq=freq,
        fill_gaps=fill_gaps,
        source=name,
        date_format=date_format,
        dayfirst=dayfirst,
    )
    check_log_positive(series, transform, name)
    return series


def check_log_positive(series: TimeSeries, transform: Transform, name: str) -> None:
    """For ``transform="log"``, every target value of ``series`` must be positive."""
    if transform == "log":
        bad = np.argwhere(series.values <= 0)
        if len(bad):
            i, c = (int(k) for k in bad[0])
            raise SeriesError(
                f"{name}: transform 'log' needs positive values, found "
                f"{series.values[i, c]:g} in column '{series.targets[c]}' at {series.time[i]}"
            )
