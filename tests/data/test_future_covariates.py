"""Future covariates (rnnkit.data.timeseries, rnnkit.data.series_windows): the rows after the last
value become ``ahead``, windows carry the covariates after the calendar features (scaled), a
window reaching past ``ahead`` names what is missing, ``head()`` keeps them, and ``series.json``
keeps their names and scaler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rnnkit.data.series_windows import ScalerStats, SeriesMeta, fit_scaler, series_windows
from rnnkit.data.timeseries import SeriesError, TimeSeries, calendar_features, read_series

MONTHS = pd.date_range("2001-01-01", periods=8, freq="MS")
PRICE = 1.5 + 0.25 * np.arange(8)  # known for all 8 months
HOLIDAY = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0])


def write(path: Path, n_values: int = 6, edit: dict[tuple[int, str], str] | None = None) -> Path:
    """8 monthly rows: sales and temp for the first ``n_values``, price and holiday for all;
    ``edit`` sets cells by (0-based row, column)."""
    rows = [
        {
            "date": f"{month:%Y-%m-%d}",
            "sales": f"{10 + i}" if i < n_values else "",
            "temp": f"{20 + i}" if i < n_values else "",
            "price": f"{PRICE[i]:g}",
            "holiday": f"{HOLIDAY[i]:g}",
        }
        for i, month in enumerate(MONTHS)
    ]
    for (i, column), text in (edit or {}).items():
        rows[i][column] = text
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def read(path: Path, **options: Any) -> TimeSeries:
    return read_series(
        path,
        time_column="date",
        targets=["sales"],
        past_covariates=["temp"],
        future_covariates=options.pop("future", ["price"]),
        **options,
    )


def test_trailing_rows_with_future_covariates_become_ahead(tmp_path: Path) -> None:
    s = read(write(tmp_path / "s.csv"), future=["price", "holiday"])
    assert len(s) == 6 and s.time[-1] == pd.Timestamp("2001-06-01")
    np.testing.assert_array_equal(s.values[:, 0], 10.0 + np.arange(6))
    np.testing.assert_array_equal(s.past[:, 0], 20.0 + np.arange(6))  # blank temp ahead is fine
    assert s.future_names == ("price", "holiday")
    np.testing.assert_array_equal(s.future, np.stack([PRICE[:6], HOLIDAY[:6]], axis=1))
    np.testing.assert_array_equal(s.ahead, np.stack([PRICE[6:], HOLIDAY[6:]], axis=1))


def test_without_future_covariates_the_blank_rows_stay_missing_values(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv")
    with pytest.raises(SeriesError) as err:
        read_series(path, time_column="date", targets=["sales"])
    assert str(err.value) == (
        f"{path}: row 7: missing value in column 'sales'; set data.fill_gaps: interpolate to "
        "fill gaps"
    )
    s = read_series(write(tmp_path / "full.csv", 8), time_column="date", targets=["sales"])
    assert s.future.shape == (8, 0) and s.ahead.shape == (0, 0) and s.future_names == ()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (  # a blank target before the last value is still a gap
            {(3, "sales"): ""},
            "row 4: missing value in column 'sales'; set data.fill_gaps: interpolate to fill gaps",
        ),
        (  # a blank future covariate in the history
            {(2, "price"): ""},
            "row 3: missing value in column 'price'; set data.fill_gaps: interpolate to fill gaps",
        ),
        (  # and after the last value
            {(7, "price"): ""},
            "row 8: missing value in future covariate 'price' after the last value; fill it in, "
            "or drop the row",
        ),
        (  # the rows after the last value skip a month
            {(6, "date"): "2001-09-01", (7, "date"): "2001-10-01"},
            "row 7: timestamp 2001-09-01 00:00:00 skips 2001-07-01 00:00:00; the rows after the "
            "last value (2001-06-01 00:00:00) must continue the frequency 'MS' step by step",
        ),
    ],
)
def test_bad_future_rows_name_the_row(
    edit: dict[tuple[int, str], str], message: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "s.csv", edit=edit)
    with pytest.raises(SeriesError) as err:
        read(path, freq="MS")
    assert str(err.value) == f"{path}: {message}"


def test_interpolation_fills_history_and_keeps_the_rows_ahead(tmp_path: Path) -> None:
    s = read(write(tmp_path / "s.csv", edit={(2, "price"): ""}), fill_gaps="interpolate")
    known = [0, 1, 3, 4, 5]
    np.testing.assert_array_equal(s.future[known, 0], PRICE[known])
    assert s.future[2, 0] == pytest.approx(1.75 + 0.5 * 28 / 59)  # linear in time: Feb to Apr
    np.testing.assert_array_equal(s.ahead[:, 0], PRICE[6:])
    assert len(s) == 6


def test_a_window_needing_more_steps_than_given_names_the_covariates(tmp_path: Path) -> None:
    path = write(tmp_path / "s.csv")
    s = read(path)
    series_windows(s, np.array([6]), 4, 2, ("month",))  # 2 steps ahead: given
    with pytest.raises(SeriesError) as err:
        series_windows(s, np.array([6]), 4, 3, ("month",))
    assert str(err.value) == (
        f"{path}: future covariate 'price' is needed for 3 steps after 2001-06-01, the input "
        "gives 2; add rows after the last value with 'price' filled in"
    )
    both = read(path, future=["price", "holiday"])
    with pytest.raises(SeriesError) as err:
        series_windows(both.head(5), np.array([4, 5]), 4, 5, ())
    assert str(err.value) == (
        f"{path}: future covariates 'price', 'holiday' are needed for 5 steps after 2001-05-01, "
        "the input gives 3; add rows after the last value with 'price', 'holiday' filled in"
    )


def test_future_covariates_follow_the_calendar_features_scaled(tmp_path: Path) -> None:
    s = read(write(tmp_path / "s.csv"), future=["price", "holiday"])
    scaler = ScalerStats(np.array([2.0, 0.5]), np.array([0.5, 0.25]))
    w = series_windows(s, np.array([4, 6]), 4, 2, ("month",), future_scaler=scaler)
    assert w.calendar.shape == (2, 6, 2 + 2) and w.calendar.dtype == np.float32
    months = calendar_features(MONTHS, ("month",))  # (8, 2)
    np.testing.assert_array_equal(w.calendar[0, :, :2], months[0:6])
    np.testing.assert_array_equal(w.calendar[1, :, :2], months[2:8])
    price, holiday = (PRICE - 2.0) / 0.5, (HOLIDAY - 0.5) / 0.25
    np.testing.assert_array_equal(w.calendar[0, :, 2], price[0:6].astype(np.float32))
    np.testing.assert_array_equal(w.calendar[1, :, 2], price[2:8].astype(np.float32))  # 2 ahead
    np.testing.assert_array_equal(w.calendar[1, :, 3], holiday[2:8].astype(np.float32))
    assert np.isnan(w.targets[1]).all()
    raw = series_windows(s, np.array([6]), 4, 2, ("month",))
    np.testing.assert_array_equal(raw.calendar[0, :, 2:], np.stack([PRICE, HOLIDAY], 1)[2:8])
    with pytest.raises(ValueError, match=r"^future_scaler has 1 columns for 2 future covariates$"):
        series_windows(
            s, np.array([6]), 4, 2, (), future_scaler=ScalerStats(np.zeros(1), np.ones(1))
        )


def test_head_moves_the_future_covariates_it_leaves_out_into_ahead(tmp_path: Path) -> None:
    s = read(write(tmp_path / "s.csv"))
    prefix = s.head(4)
    assert len(prefix) == 4 and prefix.future_names == ("price",)
    np.testing.assert_array_equal(prefix.future[:, 0], PRICE[:4])
    np.testing.assert_array_equal(prefix.ahead[:, 0], PRICE[4:])  # 2 of the history, 2 ahead
    full = series_windows(s, np.array([4]), 4, 4, ("month",))
    backtest = series_windows(prefix, np.array([4]), 4, 4, ("month",))
    np.testing.assert_array_equal(backtest.calendar, full.calendar)
    np.testing.assert_array_equal(backtest.history, full.history)


def test_a_series_built_without_future_fields_has_empty_ones() -> None:
    time = pd.date_range("2001-01-01", periods=3, freq="MS")
    s = TimeSeries(time, np.ones((3, 1)), np.zeros((3, 0)), "MS", ("y",), (), "ds", "x")
    assert s.future.shape == (3, 0) and s.ahead.shape == (0, 0) and s.head(2).ahead.shape == (1, 0)
    with pytest.raises(ValueError, match=r"^x: future must be \(N, F\) = \(3, 1\) and ahead"):
        TimeSeries(
            time,
            np.ones((3, 1)),
            np.zeros((3, 0)),
            "MS",
            ("y",),
            (),
            "ds",
            "x",
            future=np.zeros((2, 1)),
            future_names=("p",),
        )


def test_series_meta_keeps_future_covariates_and_their_scaler() -> None:
    scaler = fit_scaler(np.array([[1.0, 0.0], [2.0, 1.0], [4.0, 0.0]]), "standard")
    meta = SeriesMeta(
        "MS",
        12,
        ("month",),
        ("y",),
        ("temp",),
        "2001-06-01",
        future_covariates=("price", "holiday"),
        future_scaler=scaler,
    )
    raw = json.loads(meta.to_json())
    assert raw["future_covariates"] == ["price", "holiday"]
    again = SeriesMeta.from_json(meta.to_json())
    assert again.future_covariates == ("price", "holiday") and again.future_scaler is not None
    np.testing.assert_array_equal(again.future_scaler.loc, scaler.loc)  # floats exact
    np.testing.assert_array_equal(again.future_scaler.scale, scaler.scale)
    plain = SeriesMeta("MS", 12, ("month",), ("y",), (), "2001-06-01")
    assert "future_covariates" not in plain.to_json() and "future_scaler" not in plain.to_json()
    assert SeriesMeta.from_json(plain.to_json()) == plain
    old = (  # a series.json written before future covariates
        '{"freq": "MS", "season": 12, "calendar": ["month"], "targets": ["y"], '
        '"past_covariates": [], "train_end": "2001-06-01"}'
    )
    loaded = SeriesMeta.from_json(old)
    assert loaded.future_covariates == () and loaded.future_scaler is None and loaded == plain
