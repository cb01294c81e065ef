"""What a minimal forecasting config gets: the season from the frequency, the transform chosen on
the training part, a budget sized to the series, and intervals calibrated by split conformal
prediction on data the model never trained on (reaching their nominal coverage on held-out
folds of a series with known noise)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from rnnkit import api
from rnnkit.data.series_inference import default_lookback, infer_transform, spread_slope
from rnnkit.data.timeseries import SeriesError, infer_season
from rnnkit.tasks.forecasting import ForecastingTask, backtest, forecast
from rnnkit.tasks.forecasting_calibration import (
    CALIBRATION_FILE,
    Calibration,
    conformal_residuals,
)
from rnnkit.tasks.run import build_run_config


def seasonal(n: int, *, multiplicative: bool, season: int = 12, seed: int = 0) -> np.ndarray:
    """(n,) a trending seasonal series: amplitude growing with the level, or constant."""
    t = np.arange(n)
    level = 100.0 * np.exp(0.02 * t)  # from 100 to several hundred
    wave = np.sin(2 * np.pi * t / season)
    rng = np.random.default_rng(seed)
    if multiplicative:
        return level * (1 + 0.2 * wave) * np.exp(rng.normal(0, 0.01, n))
    return level + 20 * wave + rng.normal(0, 1, n)


def write_csv(path: Path, values: np.ndarray, freq: str = "MS") -> Path:
    time = pd.date_range("1990-01-01", periods=len(values), freq=freq)
    pd.DataFrame({"time": time.strftime("%Y-%m-%d"), "value": values}).to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------- inference


def test_spread_slope_tells_multiplicative_from_additive() -> None:
    assert spread_slope(seasonal(120, multiplicative=True), 12) == pytest.approx(1.0, abs=0.1)
    assert spread_slope(seasonal(120, multiplicative=False), 12) == pytest.approx(0.0, abs=0.15)


def test_transform_is_log_only_for_a_positive_multiplicative_season() -> None:
    mult = seasonal(120, multiplicative=True)[:, None]
    add = seasonal(120, multiplicative=False)[:, None]
    assert infer_transform(mult, 12) == "log"
    assert infer_transform(add, 12) == "none"
    with_zero = mult.copy()
    with_zero[5] = 0.0
    assert infer_transform(with_zero, 12) == "none"  # not positive
    flat = 100 * (1 + 0.2 * np.sin(2 * np.pi * np.arange(120) / 12))[:, None]
    assert infer_transform(flat, 12) == "none"  # one level: nothing to tell
    assert infer_transform(mult[:30], 12) == "none"  # fewer than 3 seasons
    assert infer_transform(np.concatenate([mult, add], axis=1), 12) == "none"  # every column


@pytest.mark.parametrize(
    ("freq", "season"), [("MS", 12), ("QS", 4), ("W-SUN", 52), ("D", 7), ("h", 24), ("YS", 1)]
)
def test_season_from_the_frequency(freq: str, season: int) -> None:
    assert infer_season(freq) == season


def test_default_lookback_reads_two_seasons() -> None:
    assert default_lookback(12, 24) == 24
    assert default_lookback(4, 8) == 8
    assert default_lookback(1, 5) == 8
    assert default_lookback(1, 20) == 20


# ---------------------------------------------------------------------------- a minimal config


def minimal(path: Path, **data: Any) -> dict[str, Any]:
    return {
        "task": "forecasting",
        "data": {"path": str(path), "time_column": "time", "target": "value", **data},
    }


def test_a_minimal_config_has_a_budget_sized_to_the_series(tmp_path: Path) -> None:
    config = build_run_config(minimal(tmp_path / "x.csv"))
    train = config.train
    assert (train.epochs, train.max_time_s, train.max_steps) == (400, 300.0, None)
    assert (train.batch_size, train.lr) == (128, 0.003)
    own = build_run_config({**minimal(tmp_path / "x.csv"), "train": {"max_steps": 50}})
    assert (own.train.max_steps, own.train.epochs, own.train.max_time_s) == (50, None, None)
    assert own.train.batch_size == 128  # the other defaults still apply
    assert config.model.ensemble == 4 and config.model.calibration == "conformal"


def test_prepare_resolves_season_lookback_and_transform(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "mult.csv", seasonal(120, multiplicative=True))
    raw = minimal(path, horizon=12)
    raw["model"] = {"calibration": "none"}
    task = ForecastingTask(build_run_config(raw), tmp_path / "run")
    task.prepare()
    meta = task.meta()
    assert (meta.season, task.lookback, task.transform) == (12, 24, "log")
    assert meta.target_scaler is not None and meta.target_scaler.log
    model = task.build_model()
    assert (model.L, model.season, model.log) == (24, 12, True)
    additive = write_csv(tmp_path / "add.csv", seasonal(120, multiplicative=False))
    raw = minimal(additive, horizon=12)
    raw["model"] = {"calibration": "none"}
    task = ForecastingTask(build_run_config(raw), tmp_path / "run2")
    task.prepare()
    assert task.transform == "none"


# ---------------------------------------------------------------------------- conformal


def test_conformal_residuals_are_the_rank_quantiles_of_the_errors() -> None:
    """Errors with a known spread around a median of 0 (the first model's interval [-1, 1] is
    too narrow): each step's errors are divided by their root mean square, pooled, and the
    80 % interval's half-width is the ceil((n + 1) 0.8)-th smallest standardised size times the
    step's spread; it covers 80 % of the errors."""
    rng = np.random.default_rng(0)
    W, H = 2000, 2
    y = rng.normal(0, 2.0, (W, H, 1))
    q = np.broadcast_to(np.array([-1.0, 0.0, 1.0]), (W, H, 1, 3)).copy()
    valid = np.ones((W, H), dtype=bool)
    valid[-1, 1] = False  # one step outside the calibration part
    residual, coverage = conformal_residuals(q, y, valid, (0.1, 0.5, 0.9))
    s0 = np.sqrt(np.mean(y[:, 0, 0] ** 2))
    s1 = max(s0, np.sqrt(np.mean(y[:-1, 1, 0] ** 2)))  # never narrower further ahead
    pooled = np.sort(np.concatenate([np.abs(y[:, 0, 0]) / s0, np.abs(y[:-1, 1, 0]) / s1]))
    size = pooled[int(np.ceil(4000 * 0.8)) - 1]  # n = 3999
    assert residual[0, 0, 2] == pytest.approx(s0 * size, rel=1e-12)
    assert residual[1, 0, 0] == pytest.approx(-s1 * size, rel=1e-12)
    assert residual[0, 0, 1] == 0.0
    assert residual[0, 0, 2] == pytest.approx(2.0 * 1.2816, abs=0.15)  # normal 90 % point
    assert coverage["80"]["before"] == pytest.approx(0.383, abs=0.03)  # P(|N(0, 2)| < 1)
    assert 0.8 <= coverage["80"]["after"] <= 0.801


def test_residuals_bound_a_central_interval_around_the_median() -> None:
    y = np.full((30, 1, 1), 5.0) + np.linspace(0, 1, 30)[:, None, None]  # all above the median
    q = np.zeros((30, 1, 1, 3))
    residual, _ = conformal_residuals(q, y, np.ones((30, 1), dtype=bool), (0.1, 0.5, 0.9))
    assert residual[0, 0, 0] == -residual[0, 0, 2] and residual[0, 0, 2] > 5.0


def noisy_monthly(n: int, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 50 + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 2.0, n)


def train_run(tmp_path: Path, calibration: str, name: str) -> Path:
    """150 steps on 480 noisy months (normal noise, sd 2), the last 120 held out."""
    path = write_csv(tmp_path / "noisy.csv", noisy_monthly(480))
    raw = minimal(path, horizon=12, test_size=120)
    raw["model"] = {"hidden_size": 8, "ensemble": 1, "calibration": calibration}
    raw["train"] = {"max_steps": 150, "lr": 0.01, "progress": False, "threads": 1}
    run = tmp_path / name
    api.train(build_run_config(raw), run)
    return run


@pytest.mark.slow
def test_conformal_calibration_reaches_its_nominal_coverage_on_held_out_folds(
    tmp_path: Path,
) -> None:
    """The 80 % interval of a calibrated run covers 70-90 % of 120 held-out months: a binomial
    standard error of 3.7 points around 80 %, plus the spread of an interval estimated from
    24 calibration steps (2H) of one first model."""
    series = pd.read_csv(write_csv(tmp_path / "noisy.csv", noisy_monthly(480)))
    run = train_run(tmp_path, "conformal", "calibrated")
    calibrated = backtest(run, series, folds=10)
    assert 0.70 <= calibrated["coverage_80"] <= 0.90, calibrated["coverage_80"]
    saved = Calibration.from_json((run / CALIBRATION_FILE).read_text())
    assert saved.residual is not None and saved.residual.shape == (12, 1, 3)
    assert saved.origins == 24 and saved.size == 24
    assert (saved.residual[1:, 0, 2] >= saved.residual[:-1, 0, 2]).all()  # wider further ahead
    assert (run / "calibration" / "model.safetensors").is_file()
    # the intervals are the calibrated ones: median +- the saved residuals (in log or plain
    # units, scaled back), not the network's quantile heads
    plain = backtest(train_run(tmp_path, "none", "plain"), series, folds=10)
    assert calibrated["coverage_80"] != plain["coverage_80"]
    assert calibrated["mase"] == plain["mase"]  # same seed, same first steps: same medians


def test_calibration_never_reads_the_held_out_part(tmp_path: Path) -> None:
    """Changing the held-out months changes nothing in the calibration (nor the scaler)."""
    values = noisy_monthly(200)
    runs = []
    for k, factor in enumerate((1.0, 50.0)):
        changed = values.copy()
        changed[-24:] *= factor
        path = write_csv(tmp_path / f"s{k}.csv", changed)
        raw = minimal(path, horizon=12, test_size=24)
        raw["model"] = {"hidden_size": 4, "ensemble": 1}
        raw["train"] = {"max_steps": 5, "progress": False, "threads": 1}
        run = tmp_path / f"run{k}"
        api.train(build_run_config(raw), run)
        runs.append(run)
    first, second = (json.loads((r / CALIBRATION_FILE).read_text()) for r in runs)
    assert first == second and first["skipped"] is None
    assert (runs[0] / "series.json").read_text() == (runs[1] / "series.json").read_text()


def test_a_series_too_short_for_a_first_model_calibrates_on_its_base_forecast(
    tmp_path: Path,
) -> None:
    """60 months, horizon 12: no room for a first model (lookback + H + 2H > 48 training
    months), so the residuals come from the seasonal naive forecast's errors over the training
    part, which fits nothing."""
    values = noisy_monthly(60)
    path = write_csv(tmp_path / "short.csv", values)
    raw = minimal(path, horizon=12)
    raw["model"] = {"hidden_size": 4, "ensemble": 1}
    raw["train"] = {"max_steps": 3, "progress": False, "threads": 1}
    run = tmp_path / "run"
    api.train(build_run_config(raw), run)
    saved = json.loads((run / CALIBRATION_FILE).read_text())
    assert saved["errors_of"] == "base forecast" and saved["skipped"] is None
    assert saved["note"].startswith("the series is too short to calibrate on 24 steps (")
    assert not (run / "calibration").exists()
    loaded = api.load_run(run)
    assert isinstance(loaded.task, ForecastingTask) and loaded.model.calibrated
    scaler = loaded.task.meta().target_scaler
    assert scaler is not None and not scaler.log and loaded.task.lookback == 24
    # by hand: the lag-12 forecast from origins 24..47 (the lookback on) of the 48 training months
    z = (values[:48] - scaler.loc[0]) / scaler.scale[0]
    origins, h = np.arange(24, 48), np.arange(12)
    ahead = origins[:, None] + h
    base = z[origins[:, None] - 12 + h]  # (24, 12)
    y = z[np.minimum(ahead, 47)]
    q = np.repeat(base[..., None, None], 3, axis=-1)  # (24, 12, 1, 3)
    expected, _ = conformal_residuals(q, y[..., None], ahead < 48, (0.1, 0.5, 0.9))
    np.testing.assert_allclose(np.array(saved["residual"]), expected, rtol=1e-12)
    assert 0.8 <= saved["coverage"]["80"]["after"] <= 0.85


# ---------------------------------------------------------------------------- future covariates


def promo_csv(path: Path, n: int, ahead: int = 0) -> Path:
    """Sales that jump by 30 in promotion months (known in advance), ``ahead`` rows after the
    last value carrying only the promotion plan."""
    rng = np.random.default_rng(0)
    t = np.arange(n + ahead)
    promo = (rng.random(n + ahead) < 0.3).astype(float)
    sales = 100 + 5 * np.sin(2 * np.pi * t / 12) + 30 * promo + rng.normal(0, 1, n + ahead)
    time = pd.date_range("2000-01-01", periods=n + ahead, freq="MS").strftime("%Y-%m-%d")
    frame = pd.DataFrame({"time": time, "value": sales, "promo": promo})
    frame.loc[n:, "value"] = np.nan
    frame.to_csv(path, index=False)
    return path


def test_future_covariates_are_learnt_and_required_in_the_forecast_input(tmp_path: Path) -> None:
    path = promo_csv(tmp_path / "sales.csv", 240)
    raw = minimal(path, horizon=6, future_covariates=["promo"], transform="none")
    raw["model"] = {"hidden_size": 16, "ensemble": 1, "calibration": "none", "dropout": 0.0}
    raw["train"] = {"max_steps": 300, "lr": 0.01, "progress": False, "threads": 1}
    run = tmp_path / "run"
    api.train(build_run_config(raw), run)
    with_plan = promo_csv(tmp_path / "plan.csv", 240, ahead=6)
    table = api.load_run(run)
    task = table.task
    assert isinstance(task, ForecastingTask)
    assert task.meta().future_covariates == ("promo",)
    frame = pd.read_csv(with_plan)
    forecast_table = forecast(run, with_plan)
    promo = frame["promo"].to_numpy()[240:]
    point = forecast_table["forecast"].to_numpy()
    # promotion months are forecast about 30 higher than the others
    assert point[promo == 1].mean() - point[promo == 0].mean() > 20
    with pytest.raises(
        SeriesError,
        match=(
            r"^.*sales\.csv: future covariate 'promo' is needed for 6 steps after 2019-12-01, "
            r"the input gives 0; add rows after the last value with 'promo' filled in$"
        ),
    ):
        forecast(run, path)
