"""Reading the cells of a series table: dates (in the one day/month order that works, or a
given format) and numbers, each problem a :class:`~rnnkit.runtime.series.SeriesError` naming
the source, the row (the file's row numbers, 1 being the first data row) and the column.
Shapes: N rows. :mod:`rnnkit.data.timeseries` checks whole series with these.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd  # type: ignore[import-untyped, unused-ignore]

from rnnkit.runtime.series import BLANKS, DAY_MONTH, SeriesError, month_first

__all__ = ["parse_numbers", "parse_times", "row_numbers"]

logger = logging.getLogger(__name__)

_FLOAT = np.float64
_FORMAT_HINT = "data.date_format (e.g. '%d/%m/%Y')"


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in BLANKS


def row_numbers(column: pd.Series, rows: np.ndarray | None) -> np.ndarray:
    """(N,) the row number of each cell of ``column``: ``rows``, or 1, 2, ... when None."""
    if rows is None:
        return np.arange(1, len(column) + 1)
    if len(rows) != len(column):
        raise ValueError(f"rows has {len(rows)} numbers for {len(column)} rows")
    return np.asarray(rows)


def parse_times(
    column: pd.Series,
    name: str,
    source: str,
    date_format: str | None = None,
    dayfirst: bool | None = None,
    rows: np.ndarray | None = None,
) -> pd.DatetimeIndex:
    """Timestamps of ``column`` (N,), in file order; errors name the first bad row.

    ``date_format`` (a strptime format) reads every value strictly. Otherwise 4-digit integers
    are years, ``A/B/Y`` dates are read day-first when ``dayfirst`` is true, month-first when it
    is false, and when it is None in the one order that reads every such value (a field above 12
    decides), refusing a column that reads both ways to different dates; anything else (ISO
    dates, month names) is left to pandas. ``rows`` (N,) numbers the cells in messages
    (1, 2, ... when None).
    """
    numbers = row_numbers(column, rows)
    for row, value in zip(numbers, column, strict=True):
        if _blank(value):
            raise SeriesError(f"{source}: row {row}: empty date in column '{name}'")
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.DatetimeIndex(column)
    text = column.astype(str).str.strip()
    if date_format is not None:
        return _parse_with_format(text, name, source, date_format, numbers)
    if text.str.fullmatch(r"-?\d+(\.0+)?").all():
        years = text.str.replace(r"\.0+$", "", regex=True)
        if years.str.fullmatch(r"\d{4}").all():
            return pd.DatetimeIndex(pd.to_datetime(years, format="%Y"))
        raise SeriesError(
            f"{source}: row {numbers[0]}: cannot parse date {text.iloc[0]!r} in column '{name}' "
            "(integers are read as 4-digit years only)"
        )
    fields = text.str.extract(DAY_MONTH)  # columns: A, separator, B, year, time
    slashed = fields[0].notna().to_numpy()
    if slashed.any():
        a = fields[0].where(slashed, "0").astype(int).to_numpy()  # (N,)
        b = fields[2].where(slashed, "0").astype(int).to_numpy()  # (N,)
        if dayfirst is None:
            dayfirst = _day_first(text, a, b, fields[3], slashed, name, source, numbers)
        else:
            month = b if dayfirst else a
            wrong = np.flatnonzero(slashed & (month > 12))
            if len(wrong):
                i = int(wrong[0])
                raise SeriesError(
                    f"{source}: row {numbers[i]}: date {text.iloc[i]!r} in column '{name}' is "
                    f"not {'day' if dayfirst else 'month'}-first (data.dayfirst: "
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
            f"{source}: row {numbers[row]}: cannot parse date "
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
    rows: np.ndarray,
) -> bool:
    """Whether the ``A/B/Y`` values of ``text`` (rows ``slashed``, fields ``a``, ``b``, ``year``:
    (N,); ``rows`` (N,) their numbers in messages) are day-first: the one reading that works for
    every one, month-first when the two agree.

    Raises:
        SeriesError: a value with no reading, rows that allow only opposite readings, or
            values that both readings accept but read to different dates (ambiguous).
    """

    def value(i: int) -> str:
        return f"{text.iloc[i]!r} (row {rows[i]})"

    neither = np.flatnonzero(slashed & (a > 12) & (b > 12))
    if len(neither):
        i = int(neither[0])
        raise SeriesError(
            f"{source}: row {rows[i]}: cannot parse date {text.iloc[i]!r} in column '{name}'"
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
    text: pd.Series, name: str, source: str, date_format: str, rows: np.ndarray
) -> pd.DatetimeIndex:
    """(N,) timestamps of ``text`` in the strptime format ``date_format``, every value strictly
    (``rows`` (N,) number the cells in messages)."""
    try:
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
    except ValueError as err:
        raise SeriesError(f"{source}: invalid data.date_format {date_format!r} ({err})") from None
    bad = np.flatnonzero(pd.isna(parsed).to_numpy())
    if len(bad):
        row = int(bad[0])
        raise SeriesError(
            f"{source}: row {rows[row]}: date {text.iloc[row]!r} in column '{name}' does not "
            f"match data.date_format {date_format!r}"
        )
    return pd.DatetimeIndex(parsed)


def parse_numbers(
    column: pd.Series, name: str, source: str, rows: np.ndarray | None = None
) -> np.ndarray:
    """(N,) floats of ``column``, NaN for empty cells; non-numeric text names its row
    (``rows`` (N,) number the cells in messages, 1, 2, ... when None)."""
    numbering = row_numbers(column, rows)
    if pd.api.types.is_bool_dtype(column):
        raise SeriesError(
            f"{source}: row {numbering[0]}: non-numeric value {column.iloc[0]!r} in column '{name}'"
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
            f"{source}: row {numbering[row]}: non-numeric value {column.iloc[row]!r} in column "
            f"'{name}'"
        )
    if not np.isfinite(numbers[~np.isnan(numbers)]).all():
        row = int(np.flatnonzero(np.isinf(numbers))[0])
        raise SeriesError(f"{source}: row {numbering[row]}: infinite value in column '{name}'")
    return numbers
