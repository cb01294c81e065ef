"""Tests for rnnkit.tasks.forecasting_panel: one model trained on many series (long and wide
files), per-series scaling fitted on each series' training part, one model per series, and
predict and evaluate per series."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from rnnkit import api
from rnnkit.config import RunConfig
from rnnkit.data.series_windows import fit_scaler
from rnnkit.models.forecaster import Forecaster, SeriesForecasters
from rnnkit.tasks.base import TaskError
from rnnkit.tasks.forecasting import ForecastingTask
from rnnkit.tasks.forecasting_panel import PANEL_FILE, PanelFacts, PanelRun, panel_of
from rnnkit.tasks.run import build_run_config, load_predictor, load_run

H = 6
LENGTHS = {"small": 48, "mid": 60, "big": 72}
SCALES = {"small": 10.0, "mid": 100.0, "big": 10000.0}


def panel_frame() -> pd.DataFrame:
    """A long table of 3 monthly series of different lengths, starts and scales."""
    rng = np.random.default_rng(0)
    frames = []
    for k, (name, n) in enumerate(LENGTHS.items()):
        t = np.arange(n)
        value = SCALES[name] * (1 + 0.01 * t + 0.2 * np.sin(2 * np.pi * t / 12 + k))
        value = value * (1 + 0.02 * rng.normal(size=n))
        start = pd.Timestamp("2000-01-01") + pd.DateOffset(months=72 - n)  # common end
        time = pd.date_range(start, periods=n, freq="MS")
        frames.append(
            pd.DataFrame({"unique_id": name, "ds": time.strftime("%Y-%m-%d"), "y": value})
        )
    return pd.concat(frames, ignore_index=True)


def long_csv(path: Path, frame: pd.DataFrame | None = None) -> Path:
    (panel_frame() if frame is None else frame).to_csv(path, index=False)
    return path


def wide_csv(path: Path) -> Path:
    wide = panel_frame().pivot(index="ds", columns="unique_id", values="y")
    wide[list(LENGTHS)].reset_index().to_csv(path, index=False)
    return path


def raw_config(path: Path, data: dict[str, Any] | None = None, **model: Any) -> dict[str, Any]:
    return {
        "task": "forecasting",
        "data": {"path": str(path), "horizon": H, "lookback": 12, **(data or {})},
        "model": {"hidden_size": 4, "dropout": 0.0, "ensemble": 1, "calibration": "none", **model},
        "train": {
            "max_steps": 20,
            "batch_size": 32,
            "lr": 0.01,
            "eval_every": 20,
            "log_every": 20,
            "checkpoint_every": 20,
            "progress": False,
            "threads": 1,
            "seed": 0,
        },
    }


def config(path: Path, data: dict[str, Any] | None = None, **model: Any) -> RunConfig:
    return build_run_config(raw_config(path, data, **model))


def train(cfg: RunConfig, run: Path) -> tuple[ForecastingTask, Any]:
    api.train(cfg, run)
    loaded = load_run(run, "final")
    assert isinstance(loaded.task, ForecastingTask)
    return loaded.task, loaded.model


def predict(run: Path, path: Path) -> pd.DataFrame:
    predictor = load_predictor(run, "final")
    (out,) = predictor.predict([path], {})
    frame: pd.DataFrame = out.result.to_frame()
    return frame


def panel(task: ForecastingTask) -> PanelRun:
    run = panel_of(task)
    assert run is not None
    return run


@pytest.fixture(scope="module")
def long_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("panel")
    data = long_csv(folder / "panel.csv")
    train(config(data), folder / "run")
    return folder / "run", data


def test_long_and_wide_files_train_the_same_model(
    long_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, data = long_run
    wide = wide_csv(tmp_path / "wide.csv")
    _, model = train(config(wide, {"layout": "wide", "time_column": "ds"}), tmp_path / "w")
    long_model = load_run(run, "final").model
    assert isinstance(model, Forecaster) and isinstance(long_model, Forecaster)
    for key, value in long_model.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key
    facts = json.loads((run / PANEL_FILE).read_text())
    assert (facts["layout"], facts["time_column"], facts["value_column"]) == ("long", "ds", "y")
    assert facts["ids"] == list(LENGTHS)
    long_table = predict(run, data)
    wide_table = predict(tmp_path / "w", wide)
    assert list(long_table.columns[:3]) == ["unique_id", "ds", "forecast"]
    assert long_table["unique_id"].value_counts().to_dict() == {k: H for k in LENGTHS}
    np.testing.assert_array_equal(
        long_table.drop(columns="unique_id").to_numpy(),
        wide_table.drop(columns="unique_id").to_numpy(),
    )
    assert str(long_table["ds"].iloc[0])[:10] == "2006-01-01"


def test_forecasts_are_per_series_and_in_each_series_scale(
    long_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, data = long_run
    table = predict(run, data)
    frame = panel_frame()
    for name, scale in SCALES.items():
        mean = table.loc[table["unique_id"] == name, "forecast"].mean()
        assert 0.5 * scale < mean < 2.5 * scale, (name, mean)
        last = frame.loc[frame["unique_id"] == name, "y"].to_numpy()[-12:].mean()
        assert abs(mean / last - 1) < 0.5
        # batching invariance: the series alone gives the same forecast
        alone = long_csv(tmp_path / f"{name}.csv", frame[frame["unique_id"] == name])
        single = predict(run, alone)
        np.testing.assert_array_equal(
            single.drop(columns="unique_id").to_numpy(),
            table[table["unique_id"] == name].drop(columns="unique_id").to_numpy(),
        )
    lower, upper = table["lower_80"].to_numpy(), table["upper_80"].to_numpy()
    assert (lower <= table["forecast"].to_numpy()).all()
    assert (table["forecast"].to_numpy() <= upper).all()


def test_scalers_are_fitted_on_each_training_part_only(
    long_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, _ = long_run
    frame = panel_frame()
    big = np.flatnonzero(frame["unique_id"] == "big")
    frame.loc[big[-H:], "y"] = 1e6  # the held-out (test) part of one series
    changed = long_csv(tmp_path / "changed.csv", frame)
    other = ForecastingTask(config(changed), tmp_path / "other")
    other.prepare()
    before = PanelFacts.from_json((run / PANEL_FILE).read_text())
    after = PanelFacts.from_json((tmp_path / "other" / PANEL_FILE).read_text())
    for a, b in zip(before.scalers, after.scalers, strict=True):
        np.testing.assert_array_equal(a.loc, b.loc)
        np.testing.assert_array_equal(a.scale, b.scale)
    original = panel_frame()
    values = original.loc[original["unique_id"] == "mid", "y"].to_numpy()[:-H, None]
    expected = fit_scaler(values, "robust", before.transform)
    np.testing.assert_allclose(before.scalers[1].loc, expected.loc)
    np.testing.assert_allclose(before.scalers[1].scale, expected.scale)
    windows = panel(other).windows("train")
    assert windows.series is not None and windows.series.dtype == torch.int64
    # windows of series k are (N_k - H) - L - H + 1 per series, pooled in order
    counts = torch.bincount(windows.series).tolist()
    assert counts == [n - H - 12 - H + 1 for n in LENGTHS.values()]
    assert float(windows.targets.abs().max()) < 100  # scaled units, not the 1e6 test values


def test_evaluate_reports_each_series_and_the_overall_geometric_mean(
    long_run: tuple[Path, Path],
) -> None:
    run, data = long_run
    loaded = load_run(run, "final")
    report = loaded.task.evaluate_file(loaded.model, data, {"folds": 2})
    metrics = json.loads(json.dumps(report.metrics))
    assert sorted(metrics) == ["overall", "series"]
    assert sorted(metrics["series"]) == sorted(LENGTHS)
    mase = [metrics["series"][k]["mase"] for k in LENGTHS]
    overall = metrics["overall"]
    assert overall["mase_geometric_mean"] == pytest.approx(float(np.exp(np.mean(np.log(mase)))))
    assert overall["mase"] == pytest.approx(float(np.mean(mase)))
    assert (overall["series"], overall["folds"], overall["horizon"]) == (3, 2, H)
    assert "seasonal_naive.mase" in metrics["series"]["big"]
    assert report.text is not None and "overall.mase_geometric_mean\t" in report.text


def test_one_model_per_series(tmp_path: Path) -> None:
    data = long_csv(tmp_path / "panel.csv")
    task, model = train(config(data, None, **{"global": False}), tmp_path / "run")
    assert isinstance(model, SeriesForecasters) and len(model.models) == 3
    run = panel(task)
    table = predict(tmp_path / "run", data)
    source = run.read(data, str(data))
    for k, (name, series) in enumerate(source):
        result = run.forecast(model.model(k), run.facts.scalers[k], series)
        np.testing.assert_allclose(
            table.loc[table["unique_id"] == name, "forecast"].to_numpy(), result.point[:, 0]
        )
    unknown = panel_frame()
    unknown["unique_id"] = unknown["unique_id"].replace("mid", "new")
    path = long_csv(tmp_path / "unknown.csv", unknown)
    with pytest.raises(TaskError) as err:
        predict(tmp_path / "run", path)
    assert str(err.value) == (
        f"{path}: series 'new' was not in training; with model.global false each series has "
        "its own model, so only these can be forecast: small, mid, big"
    )


def test_an_unknown_id_is_forecast_by_the_global_model_on_its_own_scale(
    long_run: tuple[Path, Path], tmp_path: Path
) -> None:
    run, _ = long_run
    frame = panel_frame()
    new = frame[frame["unique_id"] == "mid"].assign(unique_id="new", y=lambda f: f["y"] * 50)
    table = predict(run, long_csv(tmp_path / "new.csv", new))
    known = predict(run, long_csv(tmp_path / "mid.csv", frame[frame["unique_id"] == "mid"]))
    assert list(table["unique_id"]) == ["new"] * H
    assert 20 * known["forecast"].mean() < table["forecast"].mean() < 80 * known["forecast"].mean()


def test_bad_panels(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("unique_id,ds,y\n")
    with pytest.raises(TaskError, match=rf"^{empty}: no rows, so no series$"):
        ForecastingTask(config(empty), None).prepare()
    frame = panel_frame()
    short = long_csv(tmp_path / "short.csv", frame.drop(frame.index[:30]))
    with pytest.raises(TaskError) as err:
        ForecastingTask(config(short), None).prepare()
    assert str(err.value) == (
        f"{short}: series 'small' has 18 steps, fewer than lookback 12 + horizon 6 + "
        "test_size 6 + valid_size 0 = 24"
    )
    prices = tmp_path / "p.csv"
    with pytest.raises(
        TaskError, match=rf"^{prices}: no column 'price'; columns are: unique_id, ds, y$"
    ):
        ForecastingTask(config(long_csv(prices), {"future_covariates": ["price"]}), None).prepare()


def test_cli_train_predict_evaluate_on_a_long_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rnnkit.cli.main import main as cli_main

    data = long_csv(tmp_path / "panel.csv")
    path = tmp_path / "config.yaml"
    raw = raw_config(data)
    del raw["model"]["calibration"]  # conformal: skipped on panels, the network's intervals
    path.write_text(yaml.safe_dump(raw))
    run = tmp_path / "run"
    assert cli_main(["train", str(path), "--out", str(run)]) == 0
    capsys.readouterr()
    calibration = json.loads((run / "calibration.json").read_text())
    assert (calibration["skipped"], calibration["errors_of"]) == (None, "base forecast")
    # origins max(L, m) .. fit_end - 1 of each series' training part, pooled
    assert calibration["origins"] == sum(n - H - 12 for n in LENGTHS.values())
    residual = np.asarray(calibration["residual"])  # (H, 1, Q)
    assert residual.shape == (H, 1, 3) and (residual[:, 0, 2] > 0).all()
    assert cli_main(["predict", str(run), str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("unique_id,ds,forecast,lower_80,upper_80")
    assert len(lines) == 1 + 3 * H
    table = pd.read_csv(io.StringIO("\n".join(lines)))
    facts = PanelFacts.from_json((run / PANEL_FILE).read_text())
    for k, name in enumerate(LENGTHS):
        rows, scaler = table[table["unique_id"] == name], facts.scalers[k]
        z = scaler.transform(rows[["forecast"]].to_numpy())[:, 0]  # (H,) scaled median
        upper = scaler.inverse((z + residual[:, 0, 2])[:, None])[:, 0]
        np.testing.assert_allclose(rows["upper_80"].to_numpy(), upper, rtol=1e-5)
    assert cli_main(["evaluate", str(run), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert sorted(metrics["overall"]) == sorted(
        [*metrics["series"]["small"], "series", "mase_geometric_mean"]
    )
    assert cli_main(["predict", str(run), str(data), "--plot", str(tmp_path / "f.png")]) == 2
    assert "--plot draws one series" in capsys.readouterr().err


def test_what_does_not_take_a_panel_yet_says_so(long_run: tuple[Path, Path]) -> None:
    from rnnkit.tasks.forecasting import backtest, forecast

    run, path = long_run
    message = "does not take a panel run yet; use rnnkit predict RUN FILE or rnnkit evaluate RUN"
    with pytest.raises(
        TaskError, match=r"^rnnkit\.tasks\.forecasting\.forecast\(\) / backtest\(\) " + message
    ):
        forecast(run, path)
    with pytest.raises(TaskError, match=message):
        backtest(run, path)
    loaded = load_predictor(run)
    with pytest.raises(TaskError, match=r"^JSON input " + message):
        loaded.from_json("unique_id,ds,y\n", "inputs[0]")
    with pytest.raises(TaskError, match=r"^rnnkit export " + message):
        loaded.export_onnx(run / "onnx")


def test_a_layout_needs_a_file(tmp_path: Path) -> None:
    raw = {"task": "forecasting", "data": {"series": "airpassengers", "layout": "long"}}
    task = ForecastingTask(build_run_config(raw), tmp_path / "run")
    with pytest.raises(
        TaskError,
        match=r"^data\.layout 'long' reads a table of many series from data\.path; the built-in series 'airpassengers' is one series \(drop data\.layout\)$",
    ):
        task.prepare()
