"""Time series for forecasting: reading, checking and calendar features.

A series is a table with a time column and one or more numeric target columns, optionally with
*past covariates* (extra numeric columns known only up to the present). Covariates known in the
future are the *calendar features* generated from the time column (month, day of week, ...), so
they exist for any future timestamp. Shapes: N time steps, C targets, P past covariates, K calendar
features (2 per named feature: its sine and cosine), L lookback, H horizon (also written T for
time in window tensors), W windows.

Checks (each a :class:`SeriesError` naming the source and the row; rows are numbered from 1, the
first data row after a CSV's header being row 1):

- a missing column, an unparseable date, a non-numeric value;
- dates written ``A/B/YYYY`` (or with ``.`` or ``-``) that read both day-first and month-first
  to different dates (set ``date_format`` or ``dayfirst``); where only one reading works (a field
  above 12) it is used. ISO dates (``YYYY-MM-DD``) are never ambiguous;
- a duplicate timestamp, a timestamp off the series' frequency (irregular);
- a gap: timestamps missing from the frequency's grid, or an empty value. Gaps are filled by
  linear interpolation in time when asked (``fill_gaps="interpolate"``); values missing at the
  very start or end take the nearest known value.

The frequency is inferred from the timestamps (or given) and the rows are sorted by time.

Built-in series are in :mod:`rnnkit.data.builtin_series`; scaling, splits by time, windows and
a run's series facts (:class:`~rnnkit.data.series_windows.SeriesMeta`) in
:mod:`rnnkit.data.series_windows`. Both build on this module (:class:`SeriesError`).
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

# Reading tables, calendar features and future timestamps are the ONNX runtime's (torch-free)
# code, so that a run and its export read and encode series alike.
from rnnkit.runtime.series import BLANKS, DAY_MONTH, month_first
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
_FORMAT_HINT = "data.date_format (e.g. '%d/%m/%Y')"


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
    """

    time: pd.DatetimeIndex
    values: np.ndarray
    past: np.ndarray
    freq: str
    targets: tuple[str, ...]
    past_names: tuple[str, ...]
    time_column: str
    source: str

    def __len__(self) -> int:
        return len(self.time)

    def head(self, n: int) -> TimeSeries:
        """The first ``n`` steps (a prefix, for backtesting)."""
        return TimeSeries(
            self.time[:n],
            self.values[:n],
            self.past[:n],
            self.freq,
            self.targets,
            self.past_names,
            self.time_column,
            self.source,
        )


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in BLANKS


def _parse_times(
    column: pd.Series,
    name: str,
    source: str,
    date_format: str | None = None,
    dayfirst: bool | None = None,
) -> pd.DatetimeIndex:
    """Timestamps of ``column`` (N,), in file order; errors name the first bad row.

    ``date_format`` (a strptime format) reads every value strictly. Otherwise 4-digit integers
    are years, ``A/B/Y`` dates are read day-first when ``dayfirst`` is true, month-first when it
    is false, and when it is None in the one order that reads every such value (a field above 12
    decides), refusing a column that reads both ways to different dates; anything else (ISO
    dates, month names) is left to pandas.
    """
    for row, value in enumerate(column, start=1):
        if _blank(value):
            raise SeriesError(f"{source}: row {row}: empty date in column '{name}'")
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.DatetimeIndex(column)
    text = column.astype(str).str.strip()
    if date_format is not None:
        return _parse_with_format(text, name, source, date_format)
    if text.str.fullmatch(r"-?\d+(\.0+)?").all():
        years = text.str.replace(r"\.0+$", "", regex=True)
        if years.str.fullmatch(r"\d{4}").all():
            return pd.DatetimeIndex(pd.to_datetime(years, format="%Y"))
        raise SeriesError(
            f"{source}: row 1: cannot parse date {text.iloc[0]!r} in column '{name}' "
            "(integers are read as 4-digit years only)"
        )
    fields = text.str.extract(DAY_MONTH)  # columns: A, separator, B, year, time
    slashed = fields[0].notna().to_numpy()
    if slashed.any():
        a = fields[0].where(slashed, "0").astype(int).to_numpy()  # (N,)
        b = fields[2].where(slashed, "0").astype(int).to_numpy()  # (N,)
        if dayfirst is None:
            dayfirst = _day_first(text, a, b, fields[3], slashed, name, source)
        else:
            month = b if dayfirst else a
            wrong = np.flatnonzero(slashed & (month > 12))
            if len(wrong):
                i = int(wrong[0])
                raise SeriesError(
                    f"{source}: row {i + 1}: date {text.iloc[i]!r} in column '{name}' is not "
                    f"{'day' if dayfirst else 'month'}-first (data.dayfirst: "
                    f"{str(dayfirst).lower()}): {month[i]} is no month"
                )
        day, month = (a, b) if dayfirst else (b, a)
        # month-first "M/D/Y time" reads the same in any version of pandas; ISO rows stay as
        # they are (pandas' dayfirst would turn 2020-01-02 into 1 February)
        text = text.where(
            ~slashed, month_first(month, day, fields[3], fields[4]).where(slashed, "")
        )
    parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    bad = np.flatnonzero(pd.isna(parsed).to_numpy())
    if len(bad):
        row = int(bad[0])
        raise SeriesError(
            f"{source}: row {row + 1}: cannot parse date "
            f"{column.astype(str).str.strip().iloc[row]!r} in column '{name}'"
        )
    return pd.DatetimeIndex(parsed)


def _day_first(
    text: pd.Series,
    a: np.ndarray,
    b: np.ndarray,
    year: pd.Series,
    slashed: np.ndarray,
    name: str,
    source: str,
) -> bool:
    """Whether the ``A/B/Y`` values of ``text`` (rows ``slashed``, fields ``a``, ``b``, ``year``:
    (N,)) are day-first: the one reading that works for every one, month-first when the two agree.

    Raises:
        SeriesError: a value with no reading, rows that allow only opposite readings, or
            values that both readings accept but read to different dates (ambiguous).
    """

    def value(i: int) -> str:
        return f"{text.iloc[i]!r} (row {i + 1})"

    neither = np.flatnonzero(slashed & (a > 12) & (b > 12))
    if len(neither):
        i = int(neither[0])
        raise SeriesError(
            f"{source}: row {i + 1}: cannot parse date {text.iloc[i]!r} in column '{name}'"
        )
    day_only = np.flatnonzero(slashed & (a > 12))
    month_only = np.flatnonzero(slashed & (b > 12))
    if len(day_only) and len(month_only):
        raise SeriesError(
            f"{source}: column '{name}' mixes day-first and month-first dates: "
            f"{value(int(day_only[0]))} is day-first only, {value(int(month_only[0]))} "
            "month-first only; set data.date_format"
        )
    if len(day_only) or len(month_only):
        dayfirst = bool(len(day_only))
        example = int(day_only[0]) if dayfirst else int(month_only[0])
        logger.info(
            "%s: column '%s' read %s-first (%s)",
            source,
            name,
            "day" if dayfirst else "month",
            value(example),
        )
        return dayfirst
    differ = np.flatnonzero(slashed & (a != b))
    if len(differ):
        i = int(differ[0])
        readings = [
            pd.Timestamp(pd.to_datetime(f"{m}/{d}/{year.iloc[i]}", format="mixed"))
            for m, d in ((a[i], b[i]), (b[i], a[i]))
        ]
        raise SeriesError(
            f"{source}: ambiguous dates in column '{name}': {value(i)} reads as "
            f"{readings[0]:%Y-%m-%d} month-first or {readings[1]:%Y-%m-%d} day-first; set "
            f"data.dayfirst: true or false, or {_FORMAT_HINT}"
        )
    return False


def _parse_with_format(
    text: pd.Series, name: str, source: str, date_format: str
) -> pd.DatetimeIndex:
    """(N,) timestamps of ``text`` in the strptime format ``date_format``, every value strictly."""
    try:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
    except ValueError as err:
        raise SeriesError(f"{source}: invalid data.date_format {date_format!r} ({err})") from None
    bad = np.flatnonzero(pd.isna(parsed).to_numpy())
    if len(bad):
        row = int(bad[0])
        raise SeriesError(
            f"{source}: row {row + 1}: date {text.iloc[row]!r} in column '{name}' does not match "
            f"data.date_format {date_format!r}"
        )
    return pd.DatetimeIndex(parsed)


def _parse_numbers(column: pd.Series, name: str, source: str) -> np.ndarray:
    """(N,) floats of ``column``, NaN for empty cells; non-numeric text names its row."""
    if pd.api.types.is_bool_dtype(column):
        raise SeriesError(
            f"{source}: row 1: non-numeric value {column.iloc[0]!r} in column '{name}'"
        )
    if pd.api.types.is_numeric_dtype(column):
        plain: np.ndarray = column.to_numpy(dtype=_FLOAT, na_value=np.nan)
        return plain
    blank = column.map(_blank).to_numpy(dtype=bool)
    numbers: np.ndarray = pd.to_numeric(column.where(~blank, None), errors="coerce").to_numpy(
        dtype=_FLOAT, na_value=np.nan
    )
    bad = np.flatnonzero(np.isnan(numbers) & ~blank)
    if len(bad):
        row = int(bad[0])
        raise SeriesError(
            f"{source}: row {row + 1}: non-numeric value {column.iloc[row]!r} in column '{name}'"
        )
    if not np.isfinite(numbers[~np.isnan(numbers)]).all():
        row = int(np.flatnonzero(np.isinf(numbers))[0])
        raise SeriesError(f"{source}: row {row + 1}: infinite value in column '{name}'")
    return numbers


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
    """Nominal length of one step of ``freq`` (a month from 2000-01-01 is 31 days)."""
    origin = pd.Timestamp("2000-01-01")
    return (origin + pd.tseries.frequencies.to_offset(freq)) - origin


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


def to_series(
    frame: pd.DataFrame,
    *,
    time_column: str,
    targets: Sequence[str],
    past_covariates: Sequence[str] = (),
    freq: str | None = None,
    fill_gaps: FillGaps = "none",
    source: str = "data",
    date_format: str | None = None,
    dayfirst: bool | None = None,
) -> TimeSeries:
    """Check a table and turn it into a regular :class:`TimeSeries`.

    Args:
        frame: the table (N rows).
        time_column: column of timestamps (or 4-digit years).
        targets: the C target columns.
        past_covariates: the P covariate columns, known only up to the present.
        freq: the pandas frequency; inferred from the timestamps when None.
        fill_gaps: ``"interpolate"`` fills missing timestamps and empty values linearly in time;
            ``"none"`` reports the first gap as an error.
        source: named in error messages (a file name).
        date_format: a strptime format (``"%d/%m/%Y"``) every date must match.
        dayfirst: read ``A/B/Y`` dates day-first (True) or month-first (False); None infers the
            order and refuses dates that read both ways (see the module docstring).

    Raises:
        SeriesError: naming the problem and its row (see the module docstring).
    """
    if date_format is not None and dayfirst is not None:
        raise SeriesError(f"{source}: give date_format or dayfirst, not both")
    if not targets:
        raise SeriesError(f"{source}: no target column given")
    needed = [time_column, *targets, *past_covariates]
    repeated = [c for c, count in Counter(needed).items() if count > 1]
    if repeated:
        raise SeriesError(f"{source}: column '{repeated[0]}' is used twice")
    for name in needed:
        if name not in frame.columns:
            raise SeriesError(
                f"{source}: no column '{name}'; columns are: "
                + ", ".join(str(c) for c in frame.columns)
            )
    if len(frame) == 0:
        raise SeriesError(f"{source}: no rows")
    time = _parse_times(frame[time_column], time_column, source, date_format, dayfirst)
    numbers = {name: _parse_numbers(frame[name], name, source) for name in needed[1:]}

    rows = np.arange(1, len(frame) + 1)
    order = np.argsort(time.asi8, kind="stable")
    time, rows = time[order], rows[order]
    numbers = {name: v[order] for name, v in numbers.items()}
    duplicated = np.flatnonzero(time[1:] == time[:-1])
    if len(duplicated):
        i = int(duplicated[0]) + 1
        raise SeriesError(
            f"{source}: row {rows[i]}: duplicate timestamp {time[i]} (also at row {rows[i - 1]})"
        )
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
    values = np.stack([numbers[name] for name in targets], axis=1)  # (N, C)
    past = (
        np.stack([numbers[name] for name in past_covariates], axis=1)
        if past_covariates
        else np.zeros((len(time), 0))
    )  # (N, P)
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
        empty = np.isnan(np.concatenate([values, past], axis=1))
        if empty.any():
            i, j = (int(k) for k in np.argwhere(empty)[0])
            raise SeriesError(
                f"{source}: row {rows[i]}: missing value in column '{needed[1 + j]}'; "
                "set data.fill_gaps: interpolate to fill gaps"
            )
    elif fill_gaps == "interpolate":
        table = pd.DataFrame(np.concatenate([values, past], axis=1), index=time)
        table = table.reindex(grid).interpolate(method="time", limit_direction="both")
        if table.isna().to_numpy().any():
            j = int(np.flatnonzero(table.isna().all().to_numpy())[0])
            raise SeriesError(f"{source}: column '{needed[1 + j]}' has no values")
        filled = table.to_numpy(dtype=_FLOAT)
        time, values, past = grid, filled[:, : len(targets)], filled[:, len(targets) :]
    else:
        raise ValueError(f"unknown fill_gaps '{fill_gaps}'; valid: none, interpolate")
    return TimeSeries(
        time=pd.DatetimeIndex(time),
        values=np.ascontiguousarray(values, dtype=_FLOAT),
        past=np.ascontiguousarray(past, dtype=_FLOAT),
        freq=str(freq),
        targets=tuple(targets),
        past_names=tuple(past_covariates),
        time_column=time_column,
        source=source,
    )


def read_series(
    source: str | Path | pd.DataFrame,
    *,
    time_column: str,
    targets: Sequence[str],
    past_covariates: Sequence[str] = (),
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
        time_column, targets, past_covariates, freq, fill_gaps, date_format, dayfirst: as for
            :func:`to_series`.
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
        freq=freq,
        fill_gaps=fill_gaps,
        source=name,
        date_format=date_format,
        dayfirst=dayfirst,
    )
    if transform == "log":
        bad = np.argwhere(series.values <= 0)
        if len(bad):
            i, c = (int(k) for k in bad[0])
            raise SeriesError(
                f"{name}: transform 'log' needs positive values, found "
                f"{series.values[i, c]:g} in column '{series.targets[c]}' at {series.time[i]}"
            )
    return series
