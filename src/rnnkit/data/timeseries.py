"""Time series for forecasting: reading, checking, calendar features, scaling, windows, splits.

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

Built-in offline series (``load_builtin``): ``airpassengers``, ``wineind``, ``lynx`` and ``taylor``
are read from the data modules of the ``pmdarima`` package (as source text: pmdarima itself is not
imported) and ``co2`` from the CSV file shipped inside ``statsmodels``. Both packages are the
optional extra ``rnnkit[datasets]``; nothing is downloaded.

What a trained forecaster remembers of its series (frequency, season, calendar features, column
names and the scalers fitted on the training part) is a :class:`SeriesMeta`, saved as JSON in the
run folder at training time so that a run forecasts without its training data.

This module is longer than 500 lines on purpose: it is the single definition of a checked series
(its format, its checks and their messages, its features, scaling, splits and windows), read top
to bottom in the order a series goes through them; its parts share the private parsing helpers
and the :class:`SeriesError` messages, and splitting them would scatter one contract.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, get_args

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

if TYPE_CHECKING:
    from rnnkit.data.corpora import BuiltinData, Loaded

logger = logging.getLogger(__name__)

FillGaps = Literal["none", "interpolate"]
ScalerKind = Literal["standard", "robust", "none"]
Transform = Literal["none", "log"]
CalendarFeature = Literal["month", "quarter", "weekofyear", "dayofweek", "dayofyear", "hour"]
CALENDAR_FEATURES: tuple[CalendarFeature, ...] = get_args(CalendarFeature)

_FLOAT = np.float64
_BLANKS = frozenset({"", "na", "nan", "null", "none", "n/a"})
_DAY_MONTH = r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})((?:[ T].*)?)$"
"""``A/B/Y[ time]`` (``/``, ``.`` or ``-``): A and B are a day and a month in some order."""
_FORMAT_HINT = "data.date_format (e.g. '%d/%m/%Y')"


class SeriesError(ValueError):
    """A problem with a time series' data, phrased for the user (source and row included)."""


# ----------------------------------------------------------------------------- built-in series


@dataclass(frozen=True)
class BuiltinSeries:
    """Where a built-in series lives and how its timestamps are laid out."""

    package: str
    module: str
    start: str
    freq: str
    description: str


BUILTIN_SERIES: dict[str, BuiltinSeries] = {
    "airpassengers": BuiltinSeries(
        "pmdarima",
        "datasets/airpassengers.py",
        "1949-01-01",
        "MS",
        "monthly international airline passengers (thousands), 1949-1960",
    ),
    "wineind": BuiltinSeries(
        "pmdarima",
        "datasets/wineind.py",
        "1980-01-01",
        "MS",
        "monthly Australian wine sales (bottles <= 1 litre), Jan 1980 - Aug 1994",
    ),
    "lynx": BuiltinSeries(
        "pmdarima",
        "datasets/lynx.py",
        "1821-01-01",
        "YS",
        "annual Canadian lynx trappings, 1821-1934",
    ),
    "taylor": BuiltinSeries(
        "pmdarima",
        "datasets/taylor.py",
        "2000-06-05 00:00",
        "30min",
        "half-hourly electricity demand of England and Wales (MW), 5 Jun - 27 Aug 2000",
    ),
    "co2": BuiltinSeries(
        "statsmodels",
        "datasets/co2/co2.csv",
        "1958-03-29",
        "W-SAT",
        "weekly atmospheric CO2 at Mauna Loa (ppm), 1958-2001, with gaps",
    ),
}
BUILTIN_NAMES: tuple[str, ...] = tuple(BUILTIN_SERIES)


def _package_file(package: str, relative: str, name: str) -> Path:
    """The path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SeriesError(
            f"built-in series '{name}' needs the package '{package}'; install the extra "
            f"with: pip install 'rnnkit[datasets]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise SeriesError(f"built-in series '{name}': {path} is missing from '{package}'")
    return path


def _array_in_source(path: Path) -> list[float]:
    """The longest list of numbers written in a Python source file (a pmdarima data module)."""
    best: list[float] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.List) and len(node.elts) > len(best):
            try:
                values = ast.literal_eval(node)
            except ValueError:
                continue
            if all(isinstance(v, int | float) for v in values):
                best = [float(v) for v in values]
    if not best:
        raise SeriesError(f"{path}: found no data array")
    return best


def load_builtin(name: str) -> pd.DataFrame:
    """A built-in series as a DataFrame with columns ``time`` and ``value`` (N rows).

    ``co2`` keeps its gaps (empty values); read it with ``fill_gaps="interpolate"``.
    """
    if name not in BUILTIN_SERIES:
        raise SeriesError(
            f"unknown built-in series '{name}'; valid series: {', '.join(BUILTIN_NAMES)}"
        )
    info = BUILTIN_SERIES[name]
    path = _package_file(info.package, info.module, name)
    if path.suffix == ".csv":
        raw = pd.read_csv(path)
        values = raw["co2"].to_numpy(dtype=_FLOAT)
    else:
        values = np.asarray(_array_in_source(path), dtype=_FLOAT)
    time = pd.date_range(info.start, periods=len(values), freq=info.freq)
    return pd.DataFrame({"time": time, "value": values})


def _loaded_builtin(name: str, split: str | None) -> Loaded:
    """A built-in series read whole, ready to write as CSV (``time,value``; gaps left empty)."""
    from rnnkit.data.corpora import Loaded
    from rnnkit.io import write_text_atomic  # torch: imported when a series is exported only

    assert split is None, "a built-in series has no fixed splits"
    frame = load_builtin(name)
    values = frame["value"].to_numpy()
    if np.isfinite(values).all() and (values == np.round(values)).all():
        frame["value"] = values.astype(np.int64)  # counts: 112, not 112.0
    text: str = frame.to_csv(index=False, lineterminator="\n")
    rows = text.count("\n") - 1
    return Loaded(rows, "rows", lambda path: write_text_atomic(path, text))


def exports() -> list[BuiltinData]:
    """The built-in series as data sets ``rnnkit corpus NAME --out FILE.csv`` writes: a CSV
    with the header ``time,value``, the columns ``data.time_column`` and ``data.target`` default
    to, so the file trains and evaluates as it is (``data.path``)."""
    from functools import partial

    from rnnkit.data.corpora import BuiltinData

    return [
        BuiltinData(
            name=name,
            group="time series",
            layout="CSV with the header time,value",
            description=info.description,
            package=info.package,
            install='pip install "rnnkit[datasets]"',
            splits=(),
            split_rule="none: the forecasting task splits a series by time (data.test_size)",
            suffix=".csv",
            load=partial(_loaded_builtin, name),
        )
        for name, info in BUILTIN_SERIES.items()
    ]


# ----------------------------------------------------------------------------- reading


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV (``.csv``, ``.txt``, ``.tsv``) or Parquet (``.parquet``, ``.pq``) file.

    Parquet needs ``pyarrow`` (the extra ``rnnkit[parquet]``).
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
    return isinstance(value, str) and value.strip().lower() in _BLANKS


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
    fields = text.str.extract(_DAY_MONTH)  # columns: A, separator, B, year, time
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
            ~slashed, _month_first(month, day, fields[3], fields[4]).where(slashed, "")
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


def _month_first(month: np.ndarray, day: np.ndarray, year: pd.Series, rest: pd.Series) -> pd.Series:
    """(N,) ``M/D/Y rest`` strings of the fields ``month``, ``day`` (N,), ``year`` and ``rest``."""
    index = year.index
    return (
        pd.Series(month, index=index).astype(str)
        + "/"
        + pd.Series(day, index=index).astype(str)
        + "/"
        + year.fillna("")
        + rest.fillna("")
    )


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
        phase = 2.0 * np.pi * np.asarray(u, dtype=_FLOAT)
        columns += [np.sin(phase), np.cos(phase)]
    if not columns:
        return np.zeros((len(time), 0), dtype=np.float32)
    return np.stack(columns, axis=1).astype(np.float32)  # (N, 2K)


def future_times(last: pd.Timestamp, freq: str, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` timestamps after ``last`` at frequency ``freq``."""
    return pd.date_range(last, periods=horizon + 1, freq=freq)[1:]


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
        calendar: (W, L + H, K) calendar features of the window and of the forecast steps.
        targets: (W, H, C) true values from each origin on (NaN past the series' end).
    """

    history: np.ndarray
    past: np.ndarray
    calendar: np.ndarray
    targets: np.ndarray


def series_windows(
    series: TimeSeries,
    origins: np.ndarray,
    lookback: int,
    horizon: int,
    calendar: Sequence[CalendarFeature],
) -> SeriesWindows:
    """Windows of ``series`` at ``origins`` (W,) (the index of each window's first forecast
    step): L = ``lookback`` steps before, H = ``horizon`` after. Steps past the series' end get
    their timestamps (and calendar features) from the series' frequency and NaN targets, so the
    last window may forecast the future."""
    L, H = lookback, horizon
    extra = max(0, int(origins.max()) + H - len(series)) if len(origins) else 0
    time = (
        series.time.append(future_times(series.time[-1], series.freq, extra))
        if extra
        else series.time
    )
    values = np.concatenate([series.values, np.full((extra, series.values.shape[1]), np.nan)])
    features = calendar_features(time, calendar)  # (N + extra, K)
    return SeriesWindows(
        history=windows(values, origins, L, 0).astype(np.float32),  # (W, L, C)
        past=windows(series.past, origins, L, 0).astype(np.float32),  # (W, L, P)
        calendar=windows(features, origins, L, H).astype(np.float32),  # (W, L + H, K)
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
    """

    freq: str
    season: int
    calendar: tuple[CalendarFeature, ...]
    targets: tuple[str, ...]
    past_covariates: tuple[str, ...]
    train_end: str
    target_scaler: ScalerStats | None = None
    past_scaler: ScalerStats | None = None

    def to_json(self) -> str:
        """The JSON text of ``series.json``."""
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
        return json.dumps(raw, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "series.json") -> SeriesMeta:
        """Parse ``series.json`` text; a missing key or bad value is a :class:`SeriesError`."""
        try:
            raw = json.loads(text)
            scalers = [
                ScalerStats.from_dict(raw[key]) if key in raw else None
                for key in ("target_scaler", "past_scaler")
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
            )
        except (ValueError, KeyError, TypeError) as err:
            raise SeriesError(
                f"{source}: not a valid series file ({type(err).__name__}: {err})"
            ) from None
