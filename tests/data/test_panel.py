"""Many series in one table (rnnkit.data.panel): long and wide layouts read to the same series as
per-series files, series of different spans, the file's rows in messages, one frequency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.data.panel import Panel, panel_from_series, read_panel
from rnnkit.data.timeseries import SeriesError, TimeSeries, read_series

MONTHS = pd.date_range("2001-01-01", periods=14, freq="MS")
SPANS = {"a": (0, 10), "b": (3, 10), "c": (0, 12)}  # months [start, end) with a value
TEMP_END = 12  # the past covariate is known up to month 12 (the last value of any series)
PRICE = 1.0 + 0.25 * np.arange(14)  # the future covariate, known for all 14 months
COVARIATES = {"past_covariates": ["temp"], "future_covariates": ["price"]}


def value(sid: str, i: int) -> float:
    return {"a": 100.0 + i, "b": 50.0 + 2 * i, "c": 10.0 * i + 1}[sid]


def cell(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def long_rows(sid: str) -> list[tuple[int, str]]:
    """(month, "ds,y,temp,price") of one series: its span, then its rows up to month 13 with
    the value blank (the future covariate given)."""
    start, end = SPANS[sid]
    return [
        (
            i,
            f"{MONTHS[i]:%Y-%m-%d},{cell(value(sid, i) if i < end else None)},"
            f"{cell(20.0 + i if i < TEMP_END else None)},{cell(PRICE[i])}",
        )
        for i in range(start, 14)
    ]


def write_long(path: Path) -> Path:
    """The three series interleaved by month: ids first appear in the order a, c, b."""
    rows = sorted((i, sid, line) for sid in SPANS for i, line in long_rows(sid))
    path.write_text(
        "unique_id,ds,y,temp,price\n" + "".join(f"{sid},{line}\n" for _, sid, line in rows),
        encoding="utf-8",
    )
    return path


def write_wide(path: Path) -> Path:
    lines = ["ds,a,b,temp,c,price"]
    for i, month in enumerate(MONTHS):
        a, b, c = (value(s, i) if SPANS[s][0] <= i < SPANS[s][1] else None for s in "abc")
        temp = 20.0 + i if i < TEMP_END else None
        lines.append(f"{month:%Y-%m-%d},{cell(a)},{cell(b)},{cell(temp)},{cell(c)},{PRICE[i]:g}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def assert_same_series(x: TimeSeries, y: TimeSeries) -> None:
    assert list(x.time) == list(y.time)
    assert (x.freq, x.targets, x.past_names, x.future_names) == (
        y.freq,
        y.targets,
        y.past_names,
        y.future_names,
    )
    for name in ("values", "past", "future", "ahead"):
        np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)


def test_long_and_wide_tables_and_per_series_files_read_the_same_series(tmp_path: Path) -> None:
    long = read_panel(
        write_long(tmp_path / "long.csv"), layout="long", time_column="ds", **COVARIATES
    )
    wide = read_panel(
        write_wide(tmp_path / "wide.csv"), layout="wide", time_column="ds", **COVARIATES
    )
    assert long.ids == ("a", "c", "b") and wide.ids == ("a", "b", "c")
    assert (long.layout, wide.layout, len(long), long.freq) == ("long", "wide", 3, "MS")
    for sid, (start, end) in SPANS.items():
        one_file = tmp_path / f"{sid}.csv"
        one_file.write_text(
            "ds,y,temp,price\n" + "".join(f"{line}\n" for _, line in long_rows(sid)),
            encoding="utf-8",
        )
        alone = read_series(one_file, time_column="ds", targets=["y"], **COVARIATES)
        for panel in (long, wide):
            assert_same_series(panel.get(sid), alone)
        s = long.get(sid)
        assert s.source == f"{tmp_path / 'long.csv'}[{sid}]"
        assert wide.get(sid).source == f"{tmp_path / 'wide.csv'}[{sid}]"
        assert s.time[0] == MONTHS[start] and len(s) == end - start and s.targets == ("y",)
        np.testing.assert_array_equal(s.values[:, 0], [value(sid, i) for i in range(start, end)])
        np.testing.assert_array_equal(s.past[:, 0], 20.0 + np.arange(start, end))
        np.testing.assert_array_equal(s.future[:, 0], PRICE[start:end])
        np.testing.assert_array_equal(s.ahead[:, 0], PRICE[end:])  # a, b: 4 rows; c: 2
    assert [len(s.ahead) for _, s in long] == [4, 2, 4]


def test_the_long_frame_reads_back_to_the_same_panel(tmp_path: Path) -> None:
    panel = read_panel(
        write_wide(tmp_path / "w.csv"), layout="wide", time_column="ds", **COVARIATES
    )
    frame = panel.to_long_frame()
    assert list(frame.columns) == ["unique_id", "ds", "y", "temp", "price"]
    assert len(frame) == (10 + 4) + (7 + 4) + (12 + 2)
    again = read_panel(frame, layout="long", time_column="ds", **COVARIATES, name="frame")
    assert again.ids == panel.ids
    for (sid, x), (other, y) in zip(panel, again, strict=True):
        assert sid == other
        assert_same_series(x, y)


def test_a_wide_table_trims_each_series_to_its_span(tmp_path: Path) -> None:
    """north: January to April (March blank, inside its span); south: March to May."""
    path = tmp_path / "w.csv"
    path.write_text(
        "month,north,south\n"
        "2001-03-01,,7\n2001-01-01,1,\n2001-02-01,2,\n2001-04-01,4,8\n2001-05-01,,9\n",
        encoding="utf-8",
    )
    panel = read_panel(path, layout="wide", time_column="month", fill_gaps="interpolate")
    north, south = panel.get("north"), panel.get("south")
    assert list(north.time) == list(pd.date_range("2001-01-01", periods=4, freq="MS"))
    assert list(south.time) == list(pd.date_range("2001-03-01", periods=3, freq="MS"))
    march = 2.0 + 2.0 * 28 / 59  # linear in time: 28 of the 59 days from February to April
    np.testing.assert_allclose(north.values[:, 0], [1.0, 2.0, march, 4.0], rtol=1e-15)
    np.testing.assert_array_equal(south.values[:, 0], [7.0, 8.0, 9.0])
    assert north.targets == south.targets == ("y",)
    assert north.ahead.shape == (0, 0)  # no future covariates: trailing blanks are trimmed
    with pytest.raises(SeriesError) as err:
        read_panel(path, layout="wide", time_column="month")
    assert str(err.value) == (
        f"{path}[north]: row 1: missing value in column 'north'; set data.fill_gaps: "
        "interpolate to fill gaps"
    )
    alone = read_panel(path, layout="wide", time_column="month", series_columns=["south"])
    assert alone.ids == ("south",)


LONG = "unique_id,ds,y\na,2001-01-01,1\na,2001-02-01,2\na,2001-03-01,3\nb,2001-01-01,5\n"


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (
            "a,2001-04-01,4\nb,2001-02-01,6\nb,2001-02-01,7\nb,2001-03-01,8\n",
            "[b]: row 7: duplicate timestamp 2001-02-01 00:00:00 (also at row 6)",
        ),
        (
            "a,2001-04-01,4\nb,2001-02-01,x\nb,2001-03-01,8\n",
            "[b]: row 6: non-numeric value 'x' in column 'y'",
        ),
        (
            "b,2001-02-01,6\na,2001-04-01,4\nb,2001-03-01,\n",
            "[b]: row 7: missing value in column 'y'; set data.fill_gaps: interpolate to fill gaps",
        ),
        (
            "b,2001-02-01,6\nb,2001-03-01,7\nb,2001-04-01,8\na,2001-04-01,4\nb,2001-05-01,9\n"
            "b,2001-08-01,10\n",
            "[b]: rows 9-10: gap of 2 missing timestamp(s) between 2001-05-01 00:00:00 and "
            "2001-08-01 00:00:00 at frequency 'MS'; set data.fill_gaps: interpolate to fill gaps",
        ),
        ("b,2001-02-31,6\n", ": row 5: cannot parse date '2001-02-31' in column 'ds'"),
        ("b,2001-02-01,6\n ,2001-03-01,8\n", ": row 6: empty id in column 'unique_id'"),
        (
            "a,2001-04-01,4\nb,2001-01-02,6\nb,2001-01-03,7\n",
            ": series 'a' has frequency 'MS' but series 'b' has 'D'; the series of a panel share "
            "one frequency (set freq to read them all at one)",
        ),
    ],
)
def test_long_table_errors_name_the_file_and_its_rows(
    tail: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "long.csv"
    path.write_text(LONG + tail, encoding="utf-8")
    with pytest.raises(SeriesError) as err:
        read_panel(path, layout="long", time_column="ds")
    assert str(err.value) == f"{path}{message}"


def test_a_given_frequency_reads_every_series_at_it(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(LONG + "b,2001-02-01,6\n", encoding="utf-8")  # b's 2 rows: too few to infer
    with pytest.raises(SeriesError) as err:
        read_panel(path, layout="long", time_column="ds")
    assert str(err.value) == f"{path}[b]: 2 rows are too few to infer a frequency"
    panel = read_panel(path, layout="long", time_column="ds", freq="MS")
    assert [len(s) for _, s in panel] == [3, 2] and panel.freq == "MS"


def test_an_empty_table_or_one_without_series_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("unique_id,ds,y\n", encoding="utf-8")
    with pytest.raises(SeriesError) as err:
        read_panel(path, layout="long", time_column="ds")
    assert str(err.value) == f"{path}: no rows, so no series"
    only_time = pd.DataFrame({"ds": ["2001-01-01"], "price": ["1"]})
    with pytest.raises(SeriesError) as err:
        read_panel(only_time, layout="wide", time_column="ds", future_covariates=["price"])
    assert str(err.value) == ("data: no series columns (every column is the time or a covariate)")
    with pytest.raises(SeriesError, match=r"^data: no column 'unique_id'; columns are: ds, price$"):
        read_panel(only_time, layout="long", time_column="ds")


def test_panel_lookup_iteration_and_construction() -> None:
    panel = read_panel(
        pd.DataFrame({"t": ["2001", "2002", "2003"], "p": [1, 2, 3], "q": [4, 5, 6]}),
        layout="wide",
        time_column="t",
        name="years",
    )
    assert [(sid, s.values[:, 0].tolist()) for sid, s in panel] == [
        ("p", [1.0, 2.0, 3.0]),
        ("q", [4.0, 5.0, 6.0]),
    ]
    with pytest.raises(SeriesError) as err:
        panel.get("r")
    assert str(err.value) == "years: no series 'r'; series are: p, q"
    again = panel_from_series(["q", "p"], [panel.get("q"), panel.get("p")])
    assert isinstance(again, Panel) and again.ids == ("q", "p") and again.source == "series"
    with pytest.raises(SeriesError, match=r"^series: no series$"):
        panel_from_series([], [])
    with pytest.raises(ValueError, match=r"^series: series id 'p' is used twice$"):
        panel_from_series(["p", "p"], [panel.get("p"), panel.get("q")])
