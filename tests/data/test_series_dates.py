"""How a series' dates are read: day-first and month-first dates (inferred where only one
reading works, refused where both do and disagree, or as ``data.date_format`` /
``data.dayfirst`` say), ISO dates, rows named in file order, and an empty file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rnnkit.config import ConfigError
from rnnkit.data.timeseries import SeriesError, TimeSeries, read_series, to_series
from rnnkit.tasks.run import build_run_config


def write_csv(path: Path, dates: list[str]) -> Path:
    """A CSV of ``dates`` and the values 0, 1, 2, ... (one per date, in file order)."""
    values = [str(i) for i in range(len(dates))]
    path.write_text(
        "date,sales\n" + "".join(f"{d},{v}\n" for d, v in zip(dates, values, strict=True)),
        encoding="utf-8",
    )
    return path


def read(path: Path, **options: Any) -> TimeSeries:
    return read_series(path, time_column="date", targets=["sales"], **options)


def test_a_day_first_daily_file_is_read_day_first(tmp_path: Path) -> None:
    """400 daily DD/MM/YYYY rows: the days above 12 say day-first, so no gap, 400 days."""
    days = pd.date_range("2020-01-01", periods=400, freq="D")
    path = write_csv(tmp_path / "daily.csv", list(days.strftime("%d/%m/%Y")))
    s = read(path)
    assert s.freq == "D" and len(s) == 400
    assert s.time[0] == pd.Timestamp("2020-01-01") and s.time[-1] == pd.Timestamp("2021-02-03")
    np.testing.assert_array_equal(s.values[:, 0], np.arange(400.0))


def test_a_month_first_file_is_read_month_first(tmp_path: Path) -> None:
    days = pd.date_range("2020-01-01", periods=40, freq="D")
    s = read(write_csv(tmp_path / "us.csv", list(days.strftime("%m/%d/%Y"))))
    assert s.freq == "D" and list(s.time) == list(days)


def test_ambiguous_dates_are_refused_naming_file_column_value_and_keys(tmp_path: Path) -> None:
    """01/02/2020, 01/03/2020, ...: the 1st of each month, or 2, 3, ... January."""
    months = pd.date_range("2020-01-01", periods=12, freq="MS")
    path = write_csv(tmp_path / "m.csv", list(months.strftime("%d/%m/%Y")))
    message = (
        f"{path}: ambiguous dates in column 'date': '01/02/2020' (row 2) reads as 2020-01-02 "
        "month-first or 2020-02-01 day-first; set data.dayfirst: true or false, or "
        "data.date_format (e.g. '%d/%m/%Y')"
    )
    with pytest.raises(SeriesError) as err:
        read(path)
    assert str(err.value) == message


def test_dates_reading_the_same_both_ways_are_not_ambiguous() -> None:
    table = pd.DataFrame({"date": ["01/01/2020", "02/02/2020", "03/03/2020"], "sales": [1, 2, 3]})
    s = to_series(table, time_column="date", targets=["sales"], freq="D", fill_gaps="interpolate")
    assert s.time[0] == pd.Timestamp("2020-01-01") and s.time[-1] == pd.Timestamp("2020-03-03")


@pytest.mark.parametrize(
    ("options", "freq", "last"),
    [
        ({"date_format": "%d/%m/%Y"}, "MS", "2020-12-01"),
        ({"dayfirst": True}, "MS", "2020-12-01"),
        ({"date_format": "%m/%d/%Y"}, "D", "2020-01-12"),
        ({"dayfirst": False}, "D", "2020-01-12"),
    ],
)
def test_date_format_and_dayfirst_settle_ambiguous_dates(
    options: dict[str, Any], freq: str, last: str, tmp_path: Path
) -> None:
    months = pd.date_range("2020-01-01", periods=12, freq="MS")
    s = read(write_csv(tmp_path / "m.csv", list(months.strftime("%d/%m/%Y"))), **options)
    assert s.freq == freq and len(s) == 12 and s.time[-1] == pd.Timestamp(last)


def test_a_date_off_the_explicit_format_names_row_and_value(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", ["31/01/2020", "01/02/2020", "2020-03-01"])
    with pytest.raises(SeriesError) as err:
        read(path, date_format="%d/%m/%Y")
    assert str(err.value) == (
        f"{path}: row 3: date '2020-03-01' in column 'date' does not match "
        "data.date_format '%d/%m/%Y'"
    )


def test_a_date_that_cannot_be_day_first_is_refused_under_dayfirst(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", ["01/01/2020", "01/02/2020", "01/13/2020"])
    with pytest.raises(SeriesError) as err:
        read(path, dayfirst=True)
    assert str(err.value) == (
        f"{path}: row 3: date '01/13/2020' in column 'date' is not day-first "
        "(data.dayfirst: true): 13 is no month"
    )


def test_day_first_and_month_first_rows_in_one_column_are_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", ["01/01/2020", "25/01/2020", "01/26/2020"])
    with pytest.raises(SeriesError) as err:
        read(path)
    assert str(err.value) == (
        f"{path}: column 'date' mixes day-first and month-first dates: '25/01/2020' (row 2) "
        "is day-first only, '01/26/2020' (row 3) month-first only; set data.date_format"
    )


def test_iso_dates_are_never_ambiguous_nor_turned_by_dayfirst(tmp_path: Path) -> None:
    days = pd.date_range("2020-01-01", periods=12, freq="D")
    path = write_csv(tmp_path / "iso.csv", list(days.strftime("%Y-%m-%d")))
    for options in ({}, {"dayfirst": True}, {"dayfirst": False}):
        s = read(path, **options)
        assert s.freq == "D" and list(s.time) == list(days)


def test_a_gap_names_its_rows_in_ascending_order(tmp_path: Path) -> None:
    """Rows out of time order: the gap lies between row 5 (March) and row 3 (June)."""
    path = write_csv(
        tmp_path / "g.csv", ["2001-01-01", "2001-02-01", "2001-06-01", "2001-07-01", "2001-03-01"]
    )
    with pytest.raises(SeriesError) as err:
        read(path, freq="MS")
    assert str(err.value) == (
        f"{path}: rows 3 and 5: gap of 2 missing timestamp(s) between 2001-03-01 00:00:00 and "
        "2001-06-01 00:00:00 at frequency 'MS'; set data.fill_gaps: interpolate to fill gaps"
    )


def test_an_empty_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(SeriesError) as err:
        read(path)
    assert str(err.value) == f"{path}: empty file (no header, no rows)"


def test_the_forecasting_config_takes_date_format_or_dayfirst() -> None:
    data = {"path": "x.csv", "date_format": "%d/%m/%Y"}
    train = {"max_steps": 1}
    config = build_run_config({"task": "forecasting", "data": data, "train": train})
    assert config.data.date_format == "%d/%m/%Y"  # type: ignore[attr-defined]
    assert config.data.dayfirst is None  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"set data\.date_format or data\.dayfirst, not both"):
        build_run_config(
            {"task": "forecasting", "data": {**data, "dayfirst": True}, "train": train}
        )
