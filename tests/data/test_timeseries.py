"""Tests for rnnkit.data.timeseries: reading, checks with exact messages, frequency, calendar,
scaling fitted on the training part, splits by time and windows, and a run's series facts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.data.builtin_series import BUILTIN_NAMES, load_builtin
from rnnkit.data.series_windows import (
    SeriesMeta,
    fit_scaler,
    series_windows,
    split_by_time,
    windows,
)
from rnnkit.data.timeseries import (
    SeriesError,
    auto_calendar,
    calendar_features,
    future_times,
    infer_frequency,
    infer_season,
    read_series,
    read_table,
    to_series,
)

N = 30


def frame(n: int = N, freq: str = "MS", start: str = "2001-01-01") -> pd.DataFrame:
    """A small monthly table with one target and one covariate, as strings (like a CSV)."""
    time = pd.date_range(start, periods=n, freq=freq)
    return pd.DataFrame(
        {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "sales": [str(10.0 + i) for i in range(n)],
            "price": [str(1.0 + 0.5 * i) for i in range(n)],
        }
    )


def series_of(table: pd.DataFrame, **kwargs: object) -> object:
    options: dict[str, object] = {"time_column": "date", "targets": ["sales"], "source": "f.csv"}
    options.update(kwargs)
    return to_series(table, **options)  # type: ignore[arg-type]


def test_reads_columns_in_order_with_frequency() -> None:
    s = to_series(
        frame(), time_column="date", targets=["sales"], past_covariates=["price"], source="f.csv"
    )
    assert s.freq == "MS"
    assert s.values.shape == (N, 1) and s.past.shape == (N, 1)
    np.testing.assert_array_equal(s.values[:, 0], 10.0 + np.arange(N))
    np.testing.assert_array_equal(s.past[:, 0], 1.0 + 0.5 * np.arange(N))
    assert s.time[0] == pd.Timestamp("2001-01-01") and s.time[-1] == pd.Timestamp("2003-06-01")


def test_rows_are_sorted_by_time() -> None:
    table = frame().iloc[::-1].reset_index(drop=True)
    s = to_series(table, time_column="date", targets=["sales"])
    assert s.time.is_monotonic_increasing
    np.testing.assert_array_equal(s.values[:, 0], 10.0 + np.arange(N))


def test_missing_column_is_named() -> None:
    with pytest.raises(
        SeriesError, match=r"^f.csv: no column 'units'; columns are: date, sales, price$"
    ):
        series_of(frame(), targets=["units"])


def test_non_numeric_value_names_row_and_column() -> None:
    table = frame()
    table.loc[6, "sales"] = "12,5"
    with pytest.raises(
        SeriesError, match=r"^f.csv: row 7: non-numeric value '12,5' in column 'sales'$"
    ):
        series_of(table)


def test_unparseable_date_names_row() -> None:
    table = frame()
    table.loc[3, "date"] = "2001-13-45"
    with pytest.raises(
        SeriesError, match=r"^f.csv: row 4: cannot parse date '2001-13-45' in column 'date'$"
    ):
        series_of(table)


def test_duplicate_timestamp_names_both_rows() -> None:
    table = frame()
    table.loc[5, "date"] = table.loc[4, "date"]
    with pytest.raises(
        SeriesError,
        match=r"^f.csv: row 6: duplicate timestamp 2001-05-01 00:00:00 \(also at row 5\)$",
    ):
        series_of(table)


def test_irregular_timestamp_is_reported() -> None:
    table = frame()
    table.loc[8, "date"] = "2001-09-15"
    with pytest.raises(
        SeriesError,
        match=r"^f.csv: row 9: irregular timestamp 2001-09-15 00:00:00, off the series' "
        r"frequency 'MS'$",
    ):
        series_of(table)


def test_gap_is_reported_unless_interpolated() -> None:
    table = frame().drop(index=[10, 11]).reset_index(drop=True)
    with pytest.raises(
        SeriesError,
        match=r"^f.csv: rows 10-11: gap of 2 missing timestamp\(s\) between 2001-10-01 00:00:00 "
        r"and 2002-01-01 00:00:00 at frequency 'MS'; set data.fill_gaps: interpolate",
    ):
        series_of(table)
    filled = series_of(table, fill_gaps="interpolate")
    assert len(filled) == N
    assert filled.freq == "MS"


def test_empty_value_is_reported_and_interpolated_linearly_in_time() -> None:
    table = frame(freq="D")
    table.loc[4, "sales"] = ""
    with pytest.raises(
        SeriesError, match=r"^f.csv: row 5: missing value in column 'sales'; set data.fill_gaps"
    ):
        series_of(table)
    filled = series_of(table, fill_gaps="interpolate")
    assert filled.values[4, 0] == pytest.approx((filled.values[3, 0] + filled.values[5, 0]) / 2)


def test_four_digit_integers_are_years() -> None:
    table = pd.DataFrame({"year": np.arange(1900, 1920), "count": np.arange(20.0)})
    s = to_series(table, time_column="year", targets=["count"])
    assert infer_season(s.freq) == 1
    assert s.time[0] == pd.Timestamp("1900-01-01")
    assert auto_calendar(s.freq) == ()


@pytest.mark.parametrize(
    ("freq", "season"), [("MS", 12), ("QS", 4), ("W-SAT", 52), ("D", 7), ("h", 24), ("30min", 48)]
)
def test_frequency_inferred_and_season(freq: str, season: int) -> None:
    time = pd.date_range("2020-01-04", periods=40, freq=freq)
    inferred = infer_frequency(time)
    assert inferred is not None
    assert pd.tseries.frequencies.to_offset(inferred) == pd.tseries.frequencies.to_offset(freq)
    assert infer_season(freq) == season


def test_frequency_inferred_despite_a_gap() -> None:
    time = pd.date_range("2020-01-01", periods=40, freq="MS").delete([7, 20])
    assert pd.infer_freq(time) is None
    assert infer_frequency(time) == "MS"


@pytest.mark.parametrize("freq", ["MS", "W-SAT", "30min", "YS"])
def test_future_times_continue_the_frequency(freq: str) -> None:
    time = pd.date_range("2000-01-01", periods=12, freq=freq)
    future = future_times(time[-1], freq, 5)
    np.testing.assert_array_equal(future, pd.date_range("2000-01-01", periods=17, freq=freq)[12:])


def test_calendar_features_are_unit_circle_and_periodic() -> None:
    time = pd.date_range("2000-01-01", periods=36, freq="MS")
    features = calendar_features(time, ["month", "quarter"])  # (36, 4)
    assert features.shape == (36, 4)
    np.testing.assert_allclose(features[:, 0] ** 2 + features[:, 1] ** 2, 1.0, rtol=1e-6)
    np.testing.assert_array_equal(features[:12], features[12:24])
    assert len({tuple(row) for row in features[:12, :2]}) == 12  # every month distinct
    hourly = calendar_features(pd.date_range("2000-01-01", periods=96, freq="30min"), ["hour"])
    np.testing.assert_array_equal(hourly[:48], hourly[48:])
    with pytest.raises(ValueError, match="unknown calendar feature 'week'; valid features:"):
        calendar_features(time, ["week"])  # type: ignore[list-item]


def test_robust_and_standard_scalers_and_log_round_trip() -> None:
    rng = np.random.default_rng(0)
    values = rng.lognormal(size=(50, 3))
    robust = fit_scaler(values, "robust")
    np.testing.assert_allclose(robust.loc, np.median(values, axis=0))
    q75, q25 = np.percentile(values, [75, 25], axis=0)
    np.testing.assert_allclose(robust.scale, q75 - q25)
    standard = fit_scaler(values, "standard", "log")
    z = standard.transform(values)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0)
    np.testing.assert_allclose(standard.inverse(z), values)
    constant = fit_scaler(np.full((5, 1), 3.0), "standard")
    assert constant.scale[0] == 1.0
    with pytest.raises(SeriesError, match="transform 'log' needs positive values, found -1"):
        fit_scaler(np.array([[1.0], [-1.0]]), "robust", "log")


def test_split_by_time_keeps_parts_in_order() -> None:
    split = split_by_time(40, lookback=6, horizon=4, valid_size=5, test_size=8)
    assert (split.fit_end, split.valid_end) == (27, 32)
    train, valid, test = split.train_origins(), split.valid_origins(), split.test_origins()
    assert train.min() == 6 and train.max() + 4 == split.fit_end
    assert (valid + 4 > split.fit_end).all() and (valid + 4 <= split.valid_end).all()
    assert len(valid) == 5
    np.testing.assert_array_equal(test, [32, 36])


def test_too_few_rows_for_lookback_plus_horizon() -> None:
    with pytest.raises(
        SeriesError,
        match=r"^too few rows: 30 rows leave 18 for training after test_size 12 and "
        r"valid_size 0, fewer than lookback 12 \+ horizon 12 = 24$",
    ):
        split_by_time(30, lookback=12, horizon=12, test_size=12)
    with pytest.raises(
        SeriesError, match=r"^too few rows: 20 rows leave 20 for training, fewer than lookback"
    ):
        split_by_time(20, lookback=12, horizon=12)


def test_windows_are_slices_at_origins() -> None:
    values = np.arange(20.0).reshape(10, 2)
    w = windows(values, np.array([3, 5]), 3, 2)  # (2, 5, 2)
    np.testing.assert_array_equal(w[0], values[0:5])
    np.testing.assert_array_equal(w[1], values[2:7])
    with pytest.raises(ValueError, match="windows reach outside the series"):
        windows(values, np.array([9]), 3, 2)


def test_read_csv_and_parquet(tmp_path: Path) -> None:
    table = frame()
    table.to_csv(tmp_path / "s.csv", index=False)
    read = read_table(tmp_path / "s.csv")
    pd.testing.assert_frame_equal(read, table)
    with pytest.raises(SeriesError, match=r"no such file"):
        read_table(tmp_path / "missing.csv")
    with pytest.raises(SeriesError, match=r"unknown file type '.xlsx'; use .csv or .parquet"):
        (tmp_path / "s.xlsx").write_text("x")
        read_table(tmp_path / "s.xlsx")
    pytest.importorskip("pyarrow")
    numeric = pd.DataFrame(
        {"date": pd.date_range("2001-01-01", periods=N, freq="MS"), "sales": np.arange(N) * 1.5}
    )
    numeric.to_parquet(tmp_path / "s.parquet")
    s = to_series(read_table(tmp_path / "s.parquet"), time_column="date", targets=["sales"])
    np.testing.assert_array_equal(s.values[:, 0], numeric["sales"].to_numpy())
    assert s.freq == "MS"


needs_pmdarima = pytest.mark.skipif(
    importlib.util.find_spec("pmdarima") is None, reason="needs rnnkit[datasets] (pmdarima)"
)
needs_statsmodels = pytest.mark.skipif(
    importlib.util.find_spec("statsmodels") is None, reason="needs rnnkit[datasets] (statsmodels)"
)


@needs_pmdarima
@pytest.mark.parametrize(
    ("name", "length", "freq"),
    [
        ("airpassengers", 144, "MS"),
        ("wineind", 176, "MS"),
        ("lynx", 114, "YS-JAN"),
        ("taylor", 4032, "30min"),
    ],
)
def test_builtin_pmdarima_series(name: str, length: int, freq: str) -> None:
    s = to_series(load_builtin(name), time_column="time", targets=["value"], source=name)
    assert len(s) == length
    assert pd.tseries.frequencies.to_offset(s.freq) == pd.tseries.frequencies.to_offset(freq)
    assert (s.values > 0).all()


@needs_pmdarima
def test_airpassengers_is_box_jenkins_series_g() -> None:
    values = load_builtin("airpassengers")["value"].to_numpy()
    assert (values[0], values[-1], values.max()) == (112.0, 432.0, 622.0)


@needs_statsmodels
def test_builtin_co2_matches_statsmodels_and_has_gaps() -> None:
    import statsmodels.api as sm

    reference = sm.datasets.co2.load_pandas().data["co2"]
    table = load_builtin("co2")
    np.testing.assert_array_equal(table["value"].to_numpy(), reference.to_numpy())
    np.testing.assert_array_equal(table["time"].to_numpy(), reference.index.to_numpy())
    with pytest.raises(SeriesError, match=r"^co2: row 7: missing value in column 'value'"):
        to_series(table, time_column="time", targets=["value"], source="co2")
    filled = to_series(
        table, time_column="time", targets=["value"], source="co2", fill_gaps="interpolate"
    )
    assert not np.isnan(filled.values).any()


def test_unknown_builtin_lists_valid_names() -> None:
    with pytest.raises(SeriesError, match="unknown built-in series 'sunspots'; valid series: "):
        load_builtin("sunspots")
    assert "airpassengers" in BUILTIN_NAMES


def test_read_series_reads_files_and_tables_and_checks_log_positivity(tmp_path: Path) -> None:
    table = frame()
    table.to_csv(tmp_path / "a.csv", index=False)
    options = {"time_column": "date", "targets": ["sales"], "past_covariates": ["price"]}
    from_file = read_series(tmp_path / "a.csv", **options, transform="log")
    from_table = read_series(table, **options, name="mine")
    np.testing.assert_array_equal(from_file.values, from_table.values)
    assert (from_file.source, from_table.source) == (str(tmp_path / "a.csv"), "mine")
    table.loc[4, "sales"] = "0"
    with pytest.raises(
        SeriesError,
        match=r"^mine: transform 'log' needs positive values, found 0 in column 'sales' at "
        r"2001-05-01 00:00:00$",
    ):
        read_series(table, **options, transform="log", name="mine")


def test_series_windows_extend_past_the_end_with_calendar_and_nan_targets() -> None:
    series = to_series(frame(), time_column="date", targets=["sales"], past_covariates=["price"])
    w = series_windows(series, np.array([6, N - 2, N]), 6, 4, ("month",))
    assert w.history.shape == (3, 6, 1) and w.past.shape == (3, 6, 1)
    assert w.calendar.shape == (3, 10, 2) and w.targets.shape == (3, 4, 1)
    assert all(a.dtype == np.float32 for a in w)
    np.testing.assert_array_equal(w.history[0, :, 0], series.values[:6, 0])
    np.testing.assert_array_equal(w.targets[0, :, 0], series.values[6:10, 0])
    np.testing.assert_array_equal(w.targets[1, :2, 0], series.values[N - 2 :, 0])
    assert np.isnan(w.targets[1, 2:]).all() and np.isnan(w.targets[2]).all()  # not yet known
    np.testing.assert_array_equal(w.history[2, :, 0], series.values[-6:, 0])
    expected = calendar_features(future_times(series.time[-1], "MS", 4), ("month",))  # (4, 2)
    np.testing.assert_array_equal(w.calendar[2, 6:], expected)


def test_series_meta_round_trips_with_and_without_scalers() -> None:
    scaler = fit_scaler(np.array([[1.0, 10.0], [2.0, 30.0], [4.0, 20.0]]), "robust", "log")
    meta = SeriesMeta("MS", 12, ("month",), ("a", "b"), (), "2000-12-01", scaler, None)
    again = SeriesMeta.from_json(meta.to_json())
    assert again.target_scaler is not None and again.past_scaler is None
    np.testing.assert_array_equal(again.target_scaler.loc, scaler.loc)  # floats exact
    np.testing.assert_array_equal(again.target_scaler.scale, scaler.scale)
    assert again.target_scaler.log and again.freq == "MS" and again.targets == ("a", "b")
    old = SeriesMeta("MS", 12, ("month",), ("a",), (), "2000-12-01")  # as rnnkit wrote before
    assert SeriesMeta.from_json(old.to_json()) == old
    with pytest.raises(
        SeriesError, match=r"^run/series.json: not a valid series file \(KeyError: 'season'\)$"
    ):
        SeriesMeta.from_json('{"freq": "MS"}', "run/series.json")
