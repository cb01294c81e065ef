"""Many series in one table: a :class:`Panel` of checked :class:`TimeSeries`, one per id.

Two layouts are read (:func:`read_panel`), from a CSV/Parquet file or a DataFrame:

- ``long`` (Nixtla's layout): one row per (series, time), an id column (``unique_id``), a time
  column (``ds``), a value column (``y``) and each series' own covariates::

      unique_id,ds,y,price
      north,2001-01-01,112,1.5
      south,2001-03-01,87,1.5
      north,2001-02-01,118,1.6

  Rows of a series need not be adjacent nor sorted; the series keep the order in which their
  ids first appear.
- ``wide``: one time column and one column per series (its name is the series' id); covariate
  columns are shared by all the series::

      ds,north,south,price
      2001-01-01,112,,1.5
      2001-02-01,118,,1.6
      2001-03-01,132,87,1.5

  A series' blank cells before its first and after its last value are trimmed (series span
  different times); blanks inside follow ``fill_gaps``.

Each series goes through :func:`~rnnkit.data.timeseries.to_series` with the one target column
named ``value_column`` (``y``), so the series' own rows, gaps, future-covariate rows after its last
value (:attr:`~rnnkit.data.timeseries.TimeSeries.ahead`) and dates are checked as for one series;
its ``source`` is ``file[id]`` and its messages name the *file's* rows (1-based data rows). The
dates are read once for the whole file (one day-first or month-first reading for every series)
and all series share one frequency.

Shapes: S series; series s has N_s steps (the values (N_s, 1)), P past covariates (N_s, P),
F future covariates (N_s, F) and X_s rows known ahead (X_s, F); N_s, their start and end differ.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from rnnkit.data.timeseries import (
    FillGaps,
    SeriesError,
    TimeSeries,
    check_columns,
    future_times,
    parse_numbers,
    parse_times,
    read_table,
    to_series,
)
from rnnkit.runtime.series import BLANKS

Layout = Literal["long", "wide"]
LAYOUTS: tuple[Layout, ...] = ("long", "wide")


@dataclass(frozen=True)
class Panel:
    """S checked series of one frequency, each with one target column.

    Attributes:
        ids: the S series' ids (long: the id column's values; wide: the column names), unique.
        series: the S series, in the order of ``ids``.
        layout: the layout the table had (``"long"`` or ``"wide"``).
        source: what the panel was read from, used in messages.
    """

    ids: tuple[str, ...]
    series: tuple[TimeSeries, ...]
    layout: Layout
    source: str

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.series):
            raise ValueError(f"{self.source}: {len(self.ids)} ids for {len(self.series)} series")
        if not self.ids:
            raise SeriesError(f"{self.source}: no series")
        repeated = [i for i in dict.fromkeys(self.ids) if self.ids.count(i) > 1]
        if repeated:
            raise ValueError(f"{self.source}: series id '{repeated[0]}' is used twice")
        for i, series in zip(self.ids, self.series, strict=True):
            if len(series.targets) != 1:
                raise ValueError(
                    f"{self.source}: series '{i}' has {len(series.targets)} targets; a panel's "
                    "series have one each"
                )

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[tuple[str, TimeSeries]]:
        return iter(zip(self.ids, self.series, strict=True))

    @property
    def freq(self) -> str:
        """The frequency every series shares."""
        return self.series[0].freq

    def get(self, id: str) -> TimeSeries:
        """The series of ``id``; an unknown id is a :class:`SeriesError` listing some ids."""
        if id in self.ids:
            return self.series[self.ids.index(id)]
        listed = ", ".join(self.ids[:10])
        if len(self) > 10:
            listed += f", ... ({len(self)} in all)"
        raise SeriesError(f"{self.source}: no series '{id}'; series are: {listed}")

    def to_long_frame(self, id_column: str = "unique_id") -> pd.DataFrame:
        """The panel as a long table: ``id_column``, the time column, the value column, the past
        and the future covariates; sum over s of N_s + X_s rows (X_s > 0 only with future
        covariates: the rows after a series' last value, value and past covariates NaN), each
        series' rows together and in time order. Reading it back with ``layout="long"`` gives
        the same panel."""
        names = _column_names(self.series[0])
        for i, series in self:
            if _column_names(series) != names:
                raise ValueError(
                    f"{self.source}: series '{i}' has other columns than '{self.ids[0]}'"
                )
        return pd.concat([_long_rows(i, s, id_column) for i, s in self], ignore_index=True)


def _column_names(series: TimeSeries) -> tuple[str, ...]:
    """The column names of a series' rows in a long table (time, value, covariates)."""
    return (series.time_column, *series.targets, *series.past_names, *series.future_names)


def _long_rows(id: str, series: TimeSeries, id_column: str) -> pd.DataFrame:
    """One series' rows of :meth:`Panel.to_long_frame`: (N + X) rows."""
    N, X = len(series), len(series.ahead) if series.future_names else 0
    time = series.time.append(future_times(series.time[-1], series.freq, X)) if X else series.time
    blank = np.full(X, np.nan)
    columns: dict[str, object] = {
        id_column: [id] * (N + X),
        series.time_column: time,
        series.targets[0]: np.concatenate([series.values[:, 0], blank]),
    }
    for p, name in enumerate(series.past_names):
        columns[name] = np.concatenate([series.past[:, p], blank])
    for f, name in enumerate(series.future_names):
        columns[name] = np.concatenate([series.future[:, f], series.ahead[:X, f]])
    return pd.DataFrame(columns)


def panel_from_series(
    ids: Sequence[str],
    series: Sequence[TimeSeries],
    *,
    layout: Layout = "long",
    source: str = "series",
) -> Panel:
    """A :class:`Panel` of series already checked (S ids, S series with one target each)."""
    return Panel(tuple(ids), tuple(series), layout, source)


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Reader:
    """The column options every series of a panel is read with."""

    time_column: str
    past_covariates: tuple[str, ...]
    future_covariates: tuple[str, ...]
    freq: str | None
    fill_gaps: FillGaps

    def with_times(
        self, frame: pd.DataFrame, date_format: str | None, dayfirst: bool | None, source: str
    ) -> pd.DataFrame:
        """``frame`` with its time column parsed once for the whole table (N rows)."""
        times = parse_times(
            frame[self.time_column], self.time_column, source, date_format, dayfirst
        )
        parsed = frame.copy()
        parsed[self.time_column] = pd.Series(times, index=frame.index)
        return parsed

    def series(self, frame: pd.DataFrame, target: str, source: str, rows: np.ndarray) -> TimeSeries:
        """One series of the panel: ``frame``'s rows (their file numbers ``rows`` (N,))."""
        return to_series(
            frame,
            time_column=self.time_column,
            targets=(target,),
            past_covariates=self.past_covariates,
            future_covariates=self.future_covariates,
            freq=self.freq,
            fill_gaps=self.fill_gaps,
            source=source,
            rows=rows,
        )


def _ids(column: pd.Series, name: str, source: str) -> np.ndarray:
    """(N,) the ids of ``column`` as stripped text; a blank id names its row."""
    text = column.astype(str).str.strip()
    blank = np.flatnonzero(text.str.lower().isin(BLANKS).to_numpy() | column.isna().to_numpy())
    if len(blank):
        raise SeriesError(f"{source}: row {int(blank[0]) + 1}: empty id in column '{name}'")
    ids: np.ndarray = text.to_numpy(dtype=object)
    return ids


def _read_long(
    frame: pd.DataFrame, reader: _Reader, id_column: str, value_column: str, source: str
) -> tuple[list[str], list[TimeSeries]]:
    """The series of a long table: one per id, in the order the ids first appear."""
    covariates = [*reader.past_covariates, *reader.future_covariates]
    check_columns(frame, [reader.time_column, id_column, value_column, *covariates], source)
    ids = _ids(frame[id_column], id_column, source)  # (N,)
    codes, uniques = pd.factorize(ids)  # codes in first-appearance order
    groups = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes))[:-1])
    series = [
        reader.series(frame.iloc[rows], value_column, f"{source}[{i}]", rows + 1)
        for i, rows in zip(uniques, groups, strict=True)
    ]
    return [str(i) for i in uniques], series


def _read_wide(
    frame: pd.DataFrame,
    reader: _Reader,
    series_columns: Sequence[str] | None,
    value_column: str,
    source: str,
) -> tuple[list[str], list[TimeSeries]]:
    """The series of a wide table: one per series column, trimmed to its span (and the rows
    after it that give the future covariates), its target renamed ``value_column``."""
    time, covariates = reader.time_column, [*reader.past_covariates, *reader.future_covariates]
    if value_column in (time, *covariates):
        raise SeriesError(f"{source}: column '{value_column}' is used twice")
    columns = (
        [c for c in frame.columns if c != time and c not in covariates]
        if series_columns is None
        else list(series_columns)
    )
    if not columns:
        raise SeriesError(f"{source}: no series columns (every column is the time or a covariate)")
    check_columns(frame, [time, *columns, *covariates], source)
    order = np.argsort(pd.DatetimeIndex(frame[time]).asi8, kind="stable")  # (N,) by time
    ids, series = [], []
    for column in columns:
        name = str(column)
        values = parse_numbers(frame[column], name, source)[order]  # (N,) in time order
        given = np.flatnonzero(~np.isnan(values))
        if len(given) == 0:
            raise SeriesError(f"{source}: column '{name}' has no values")
        end = len(order) if reader.future_covariates else int(given[-1]) + 1
        rows = np.sort(order[int(given[0]) : end])  # (N_s + X_s,) positions in file order
        one = reader.series(frame.iloc[rows], column, f"{source}[{name}]", rows + 1)
        ids.append(name)
        series.append(replace(one, targets=(value_column,)))
    return ids, series


def _check_one_frequency(ids: Sequence[str], series: Sequence[TimeSeries], source: str) -> None:
    """The S series share the first one's frequency; another names both ids."""
    freq = series[0].freq
    for i, one in zip(ids[1:], series[1:], strict=True):
        if one.freq != freq:
            raise SeriesError(
                f"{source}: series '{ids[0]}' has frequency '{freq}' but series '{i}' has "
                f"'{one.freq}'; the series of a panel share one frequency (set freq to read "
                "them all at one)"
            )


def read_panel(
    source: str | Path | pd.DataFrame,
    *,
    layout: Layout,
    time_column: str,
    value_column: str = "y",
    id_column: str = "unique_id",
    series_columns: Sequence[str] | None = None,
    past_covariates: Sequence[str] = (),
    future_covariates: Sequence[str] = (),
    freq: str | None = None,
    fill_gaps: FillGaps = "none",
    date_format: str | None = None,
    dayfirst: bool | None = None,
    name: str = "data",
) -> Panel:
    """Read many series from one long or wide table (see the module docstring).

    Args:
        source: a CSV/Parquet file, or a table (then ``name`` is its name in messages).
        layout: ``"long"`` (id, time, value rows) or ``"wide"`` (a column per series).
        time_column: the time column.
        value_column: long: the values' column; both: the name of each series' target.
        id_column: long: the series' ids.
        series_columns: wide: the series' columns (default: every column but the time column
            and the covariates).
        past_covariates, future_covariates, freq, fill_gaps, date_format, dayfirst: as for
            :func:`~rnnkit.data.timeseries.to_series`; a wide table's covariates are shared by
            all its series. Without ``freq``, each series' frequency is inferred and they must
            agree.

    Raises:
        SeriesError: naming the file (and the series, ``file[id]``) and the file's row: a
            missing column, a blank id, an empty table, a series' own problem, or two series of
            different frequencies.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout '{layout}'; valid: {', '.join(LAYOUTS)}")
    if isinstance(source, pd.DataFrame):
        frame = source
    else:
        frame, name = read_table(source), str(source)
    if date_format is not None and dayfirst is not None:
        raise SeriesError(f"{name}: give date_format or dayfirst, not both")
    reader = _Reader(time_column, tuple(past_covariates), tuple(future_covariates), freq, fill_gaps)
    check_columns(frame, [time_column], name)
    if len(frame) == 0:
        raise SeriesError(f"{name}: no rows, so no series")
    frame = reader.with_times(frame, date_format, dayfirst, name)
    if layout == "long":
        ids, series = _read_long(frame, reader, id_column, value_column, name)
    else:
        ids, series = _read_wide(frame, reader, series_columns, value_column, name)
    _check_one_frequency(ids, series, name)
    return Panel(tuple(ids), tuple(series), layout, name)
