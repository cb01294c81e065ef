"""Tests for rnnkit.models.forecaster: the model's algebra (seasonal base, invariances, monotone
quantiles, distributions against torch/scipy, gradcheck), the forecasting task (scaling fitted on
the training part only, save -> load -> predict identical, timestamps, errors with exact messages)
and the public forecast/backtest functions."""

from __future__ import annotations

import importlib.util
from itertools import product
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError
from torch.testing import assert_close

from rnnkit import api
from rnnkit.cli.main import main as cli_main
from rnnkit.config import ConfigError, build_run_config
from rnnkit.data.timeseries import SeriesError, fit_scaler
from rnnkit.metrics.forecast import pinball
from rnnkit.models.forecaster import (
    Forecaster,
    ForecasterConfig,
    ForecastingTask,
    backtest,
    distribution_quantiles,
    forecast,
    forecast_loss,
    point_forecast,
    student_t_icdf,
)
from rnnkit.training import Trainer

B, L, H, C, P, K, D, M = (
    3,
    6,
    5,
    2,
    1,
    4,
    7,
    4,
)  # batch, lookback, horizon, targets, past, calendar, hidden, season
HEADS = ("direct", "autoregressive", "attention")
CELLS = ("rnn", "lstm", "gru")
LIKELIHOODS = ("quantile", "gaussian", "student_t")


def model(**overrides: Any) -> Forecaster:
    torch.manual_seed(0)
    options: dict[str, Any] = {"hidden_size": D, "dropout": 0.0}
    options.update(overrides)
    log = options.pop("log", False)
    return Forecaster(
        ForecasterConfig(**options),
        targets=C,
        past=P,
        calendar=K,
        lookback=L,
        horizon=H,
        season=M,
        log=log,
    ).eval()


def window(seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    history = 5 + torch.rand(B, L, C, generator=g, dtype=dtype)  # (B, L, C), positive
    calendar = torch.randn(B, L + H, K, generator=g, dtype=dtype)  # (B, L + H, K)
    past = torch.randn(B, L, P, generator=g, dtype=dtype)  # (B, L, P)
    targets = 5 + torch.rand(B, H, C, generator=g, dtype=dtype)  # (B, H, C)
    return history, calendar, past, targets


# ---------------------------------------------------------------------------- the model


@pytest.mark.parametrize(("head", "cell", "likelihood"), list(product(HEADS, CELLS, LIKELIHOODS)))
def test_shapes_and_monotone_quantiles(head: str, cell: str, likelihood: str) -> None:
    m = model(head=head, cell=cell, likelihood=likelihood, ensemble=2)
    history, calendar, past, _ = window()
    out = m(history, calendar, past)
    n = {"quantile": 3, "gaussian": 2, "student_t": 3}[likelihood]
    assert out.params.shape == (2, B, H, C, n)
    assert out.level.shape == (B, 1, C)
    assert (out.attention is not None) == (head == "attention")
    point, q, attention = m.predict(history, calendar, past)
    assert point.shape == (B, H, C) and q.shape == (B, H, C, 3)
    assert (q[..., 1:] >= q[..., :-1]).all()
    if attention is not None:
        assert attention.shape == (B, H, L)
        assert_close(attention.sum(-1), torch.ones(B, H))


@pytest.mark.parametrize("head", HEADS)
def test_zero_output_layer_forecasts_the_seasonal_naive(head: str) -> None:
    m = model(head=head, residual="seasonal_naive")
    for member in m.members:
        torch.nn.init.zeros_(member.out.weight)
        torch.nn.init.zeros_(member.out.bias)
    history, calendar, past, _ = window()
    point, _, _ = m.predict(history, calendar, past)
    expected = history[:, [L - M + h % M for h in range(H)]]  # (B, H, C)
    assert_close(point, expected)


def test_log_window_model_is_equivariant_to_rescaling_the_series() -> None:
    m = model(log=True, normalize="window")
    history, calendar, past, _ = window()
    point, q, _ = m.predict(history, calendar, past)
    point10, q10, _ = m.predict(10 * history, calendar, past)
    assert_close(point10, 10 * point, rtol=1e-4, atol=1e-4)
    assert_close(q10, 10 * q, rtol=1e-4, atol=1e-4)


def test_teacher_forcing_changes_only_later_steps() -> None:
    m = model(head="autoregressive")
    history, calendar, past, targets = window()
    free = m(history, calendar, past).params
    forced = m(history, calendar, past, targets=targets).params
    assert_close(free[:, :, 0], forced[:, :, 0])
    assert not torch.allclose(free[:, :, 1:], forced[:, :, 1:])


def test_padding_free_batch_equals_single_examples() -> None:
    m = model(head="attention", cell="lstm")
    history, calendar, past, _ = window()
    batched = m(history, calendar, past).params
    for b in range(B):
        single = m(history[b : b + 1], calendar[b : b + 1], past[b : b + 1]).params
        assert_close(single[:, 0], batched[:, b])


@pytest.mark.parametrize("head", HEADS)
def test_gradcheck_float64(head: str) -> None:
    m = model(head=head, cell="gru", likelihood="student_t").double()
    history, calendar, past, targets = window(dtype=torch.float64)
    history.requires_grad_(True)

    def loss(h: torch.Tensor) -> torch.Tensor:
        out = m(h, calendar, past)
        return forecast_loss(out.params, m.normalize(targets, out.level), "student_t", (0.5,))

    assert torch.autograd.gradcheck(loss, (history,))


def test_losses_match_references() -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.randn(B, H, C, generator=g, dtype=torch.float64)
    quantiles = torch.sort(torch.randn(B, H, C, 3, generator=g, dtype=torch.float64), -1).values
    levels = (0.1, 0.5, 0.9)
    expected = pinball(target.numpy(), quantiles.numpy(), levels)
    assert forecast_loss(quantiles, target, "quantile", levels).item() == pytest.approx(expected)
    mu, sigma = (
        torch.randn(B, H, C, generator=g, dtype=torch.float64),
        torch.rand(B, H, C, dtype=torch.float64) + 0.5,
    )
    nu = 2.5 + torch.rand(B, H, C, dtype=torch.float64)
    normal = -torch.distributions.Normal(mu, sigma).log_prob(target).mean()
    assert_close(forecast_loss(torch.stack([mu, sigma], -1), target, "gaussian", levels), normal)
    student = -torch.distributions.StudentT(nu, mu, sigma).log_prob(target).mean()
    assert_close(
        forecast_loss(torch.stack([mu, sigma, nu], -1), target, "student_t", levels), student
    )


def test_gaussian_quantiles_and_point() -> None:
    params = torch.tensor([[[[1.0, 2.0]]]])  # (1, 1, 1, 2): mu 1, sigma 2
    q = distribution_quantiles(params, "gaussian", (0.5,), (0.1, 0.5, 0.9))
    expected = [1 + 2 * NormalDist().inv_cdf(p) for p in (0.1, 0.5, 0.9)]
    assert_close(q[0, 0, 0], torch.tensor(expected))
    assert point_forecast(params, "gaussian", (0.5,)).item() == 1.0
    with pytest.raises(
        ValueError, match=r"quantile level 0.25 was not trained; trained levels: \[0.1, 0.5, 0.9\]"
    ):
        distribution_quantiles(torch.zeros(1, 1, 1, 3), "quantile", (0.1, 0.5, 0.9), (0.25,))


@pytest.mark.skipif(importlib.util.find_spec("scipy") is None, reason="needs scipy")
def test_student_t_quantiles_match_scipy() -> None:
    from scipy import stats

    df = torch.tensor([2.05, 3.0, 5.0, 30.0], dtype=torch.float64)
    for q in (0.001, 0.05, 0.1, 0.9, 0.975):
        expected = torch.tensor(stats.t.ppf(q, df.numpy()))
        assert_close(student_t_icdf(q, df), expected, rtol=1e-5, atol=1e-5)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"quantiles must include 0.5 \(the point forecast\)"):
        ForecasterConfig(quantiles=(0.1, 0.9))
    with pytest.raises(ValidationError, match="quantiles must be increasing without repeats"):
        ForecasterConfig(quantiles=(0.9, 0.5, 0.1))
    with pytest.raises(
        ValueError,
        match=r"model.residual 'seasonal_naive' needs data.lookback >= the season, got lookback 6 and season 12",
    ):
        Forecaster(
            ForecasterConfig(), targets=1, past=0, calendar=0, lookback=6, horizon=2, season=12
        )


# ---------------------------------------------------------------------------- the task

N = 72  # months in the synthetic series


def monthly_csv(path: Path, n: int = N, start: str = "2000-01-01", scale: float = 1.0) -> Path:
    t = np.arange(n)
    rng = np.random.default_rng(0)
    value = scale * (50 + 0.8 * t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(size=n))
    time = pd.date_range(start, periods=n, freq="MS")
    pd.DataFrame({"month": time.strftime("%Y-%m-%d"), "sales": value}).to_csv(path, index=False)
    return path


def run_config(path: Path, **sections: dict[str, Any]) -> Any:
    raw: dict[str, Any] = {
        "task": "forecasting",
        "data": {
            "path": str(path),
            "time_column": "month",
            "target": "sales",
            "horizon": 6,
            "lookback": 12,
            "test_size": 12,
            "transform": "log",
        },
        "model": {"hidden_size": 8, "dropout": 0.1},
        "train": {
            "max_steps": 40,
            "batch_size": 64,
            "lr": 0.01,
            "eval_every": 40,
            "log_every": 20,
            "checkpoint_every": 40,
            "progress": False,
            "threads": 1,
        },
    }
    for name, values in sections.items():
        raw[name] = {**raw[name], **values}
    return build_run_config(raw)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Forecaster]:
    """A run trained on a synthetic monthly series, and its in-memory final model."""
    folder = tmp_path_factory.mktemp("forecast")
    data = monthly_csv(folder / "sales.csv")
    config = run_config(data, model={"head": "attention"})
    run = folder / "run"
    task = ForecastingTask(config, run)
    run.mkdir()
    api.write_config(config, run)
    trainer = Trainer(task, config.train, run)
    trainer.fit()
    return run, data, trainer.model  # type: ignore[return-value]


def test_scaler_is_fitted_on_the_training_part_only(tmp_path: Path) -> None:
    data = monthly_csv(tmp_path / "a.csv")
    task = ForecastingTask(run_config(data), None)
    values = task.series().values
    expected = fit_scaler(values[: N - 12], "robust", "log")
    m = task.build_model()
    assert_close(m.target_loc, torch.tensor(expected.loc, dtype=torch.float32))
    assert_close(m.target_scale, torch.tensor(expected.scale, dtype=torch.float32))
    table = pd.read_csv(data)
    table.loc[N - 12 :, "sales"] *= 1000  # the held-out part changes wildly
    table.to_csv(tmp_path / "b.csv", index=False)
    other = ForecastingTask(run_config(tmp_path / "b.csv"), None).build_model()
    assert_close(other.target_loc, m.target_loc)
    assert_close(other.target_scale, m.target_scale)


def test_training_windows_never_reach_the_held_out_part(tmp_path: Path) -> None:
    task = ForecastingTask(
        run_config(monthly_csv(tmp_path / "a.csv"), data={"valid_size": 6}), None
    )
    split = task.split()
    assert split.fit_end == N - 12 - 6
    train = np.concatenate([b.targets.numpy() for b in task.train_batches(0)])
    held = task.series().values[split.fit_end :, 0]
    assert not np.isin(train, held.astype(np.float32)).any()
    first = [b.history for b in task.train_batches(0)]
    again = [b.history for b in task.train_batches(0)]
    assert all(torch.equal(x, y) for x, y in zip(first, again, strict=True))


def test_save_load_predict_is_identical(
    trained: tuple[Path, Path, Forecaster], tmp_path: Path
) -> None:
    run, data, memory = trained
    task = ForecastingTask(api.read_run_config(run), run)
    series = task.read(data)
    expected = task.forecast_from(memory, series)
    frame = forecast(run, data, weights="final", output=tmp_path / "f.csv")
    np.testing.assert_array_equal(frame["forecast"].to_numpy(), expected.point[:, 0])
    np.testing.assert_array_equal(frame["lower_80"].to_numpy(), expected.quantiles[:, 0, 0])
    again = pd.read_csv(tmp_path / "f.csv")
    assert list(again.columns) == [
        "month",
        "forecast",
        "lower_80",
        "upper_80",
        "q0.1",
        "q0.5",
        "q0.9",
    ]
    np.testing.assert_allclose(again["forecast"].to_numpy(), expected.point[:, 0], rtol=1e-12)


def test_forecast_continues_a_longer_history(
    trained: tuple[Path, Path, Forecaster], tmp_path: Path
) -> None:
    run, _, _ = trained
    longer = monthly_csv(tmp_path / "longer.csv", n=N + 30)
    frame = forecast(run, longer, horizon=4, plot=tmp_path / "f.png")
    expected = pd.date_range("2000-01-01", periods=N + 34, freq="MS")[-4:]
    np.testing.assert_array_equal(pd.to_datetime(frame["month"]).to_numpy(), expected.to_numpy())
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (frame["lower_80"] <= frame["forecast"]).all() and (
        frame["forecast"] <= frame["upper_80"]
    ).all()


def test_run_loads_without_its_training_data(
    trained: tuple[Path, Path, Forecaster], tmp_path: Path
) -> None:
    run, data, _ = trained
    copy = tmp_path / "history.csv"
    copy.write_bytes(data.read_bytes())
    moved = tmp_path / "run"
    moved.mkdir()
    for name in ("config.yaml", "series.json", "best.safetensors", "model.safetensors"):
        (moved / name).write_bytes((run / name).read_bytes())
    text = (moved / "config.yaml").read_text().replace(str(data), str(tmp_path / "gone.csv"))
    (moved / "config.yaml").write_text(text)
    pd.testing.assert_frame_equal(forecast(moved, copy), forecast(run, copy))


def test_forecast_errors(trained: tuple[Path, Path, Forecaster], tmp_path: Path) -> None:
    run, _, _ = trained
    history = monthly_csv(tmp_path / "h.csv", n=30)
    with pytest.raises(
        ValueError,
        match=r"^horizon 7 is longer than the model was trained for \(data.horizon = 6\)$",
    ):
        forecast(run, history, horizon=7)
    short = monthly_csv(tmp_path / "short.csv", n=8)
    with pytest.raises(
        SeriesError,
        match=r"short.csv: too few rows: 8 rows of history, the model reads lookback 12$",
    ):
        forecast(run, short)
    table = pd.read_csv(history).rename(columns={"sales": "units"})
    table.to_csv(tmp_path / "renamed.csv", index=False)
    with pytest.raises(
        SeriesError, match=r"renamed.csv: no column 'sales'; columns are: month, units$"
    ):
        forecast(run, tmp_path / "renamed.csv")
    daily = pd.DataFrame(
        {
            "month": pd.date_range("2001-01-01", periods=30, freq="D").strftime("%Y-%m-%d"),
            "sales": np.ones(30),
        }
    )
    daily.to_csv(tmp_path / "daily.csv", index=False)
    with pytest.raises(
        SeriesError,
        match=r"irregular timestamp 2001-01-02 00:00:00, off the series' frequency 'MS'",
    ):
        forecast(run, tmp_path / "daily.csv")
    negative = pd.read_csv(history)
    negative.loc[3, "sales"] = -1.0
    negative.to_csv(tmp_path / "negative.csv", index=False)
    with pytest.raises(
        SeriesError,
        match=r"transform 'log' needs positive values, found -1 in column 'sales' at 2000-04-01",
    ):
        forecast(run, tmp_path / "negative.csv")


def test_backtest_reports_baselines_side_by_side(trained: tuple[Path, Path, Forecaster]) -> None:
    run, data, _ = trained
    metrics = backtest(run, data, folds=3, baselines=["naive", "seasonal_naive", "drift"])
    assert metrics["folds"] == 3 and metrics["horizon"] == 6
    for name in ("", "naive.", "seasonal_naive.", "drift."):
        for metric in ("mae", "rmse", "smape", "mase", "pinball", "coverage_80"):
            assert np.isfinite(metrics[f"{name}{metric}"])
    single = backtest(run, data, folds=1, baselines=[])
    assert set(single) == {
        "folds",
        "horizon",
        "mae",
        "rmse",
        "smape",
        "mase",
        "pinball",
        "coverage_80",
    }
    with pytest.raises(
        SeriesError,
        match=r"too few rows for 20 fold\(s\) of horizon 6: the first origin would be row -47",
    ):
        backtest(run, data, folds=20)


def test_api_and_cli_verbs(
    trained: tuple[Path, Path, Forecaster], capsys: pytest.CaptureFixture[str]
) -> None:
    run, data, _ = trained
    metrics = api.evaluate(run, data)
    assert "seasonal_naive.mase" in metrics and "mase" in metrics
    (text,) = api.predict(run, [str(data)])
    assert text.splitlines()[0] == "month,forecast,lower_80,upper_80,q0.1,q0.5,q0.9"
    assert len(text.splitlines()) == 1 + 6
    assert cli_main(["evaluate", str(run), "--data", str(data), "--json"]) == 0
    assert "drift.mase" in capsys.readouterr().out


def test_data_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"set exactly one of data\.path and data\.series"):
        run_config(tmp_path / "x.csv", data={"series": "airpassengers"})
    with pytest.raises(
        ConfigError, match="unknown built-in series 'air'; valid series: airpassengers"
    ):
        build_run_config({"task": "forecasting", "data": {"series": "air"}})
    task = ForecastingTask(run_config(monthly_csv(tmp_path / "a.csv", n=25)), None)
    with pytest.raises(
        SeriesError,
        match=r"^too few rows: 25 rows leave 13 for training after test_size 12 and valid_size 0, fewer than lookback 12 \+ horizon 6 = 18$",
    ):
        task.build_model()


@pytest.mark.parametrize("head", HEADS)
def test_learns_trend_that_seasonal_naive_misses(head: str, tmp_path: Path) -> None:
    data = monthly_csv(tmp_path / "a.csv")
    config = run_config(data, model={"head": head}, train={"max_steps": 150, "eval_every": 150})
    run = tmp_path / "run"
    api.train(config, run)
    metrics = backtest(run, data, folds=2, baselines=["seasonal_naive"])
    assert metrics["mase"] < 0.5 * metrics["seasonal_naive.mase"]


def test_several_targets_and_past_covariates(tmp_path: Path) -> None:
    t = np.arange(N)
    time = pd.date_range("2000-01-01", periods=N, freq="MS")
    table = pd.DataFrame(
        {
            "month": time,
            "sales": 50 + t + 10 * np.sin(2 * np.pi * t / 12),
            "returns": 5 + 0.1 * t,
            "price": np.cos(t / 5.0),
        }
    )
    path = tmp_path / "multi.csv"
    table.to_csv(path, index=False)
    config = run_config(
        path,
        data={"target": ["sales", "returns"], "past_covariates": ["price"]},
        train={"max_steps": 5, "eval_every": 5},
    )
    run = tmp_path / "run"
    api.train(config, run)
    frame = forecast(run, path)
    assert list(frame.columns[:4]) == [
        "month",
        "sales_forecast",
        "sales_lower_80",
        "sales_upper_80",
    ]
    assert "returns_q0.9" in frame.columns and len(frame) == 6
    metrics = backtest(run, path, baselines=["naive"])
    assert np.isfinite(metrics["mase"]) and np.isfinite(metrics["naive.mase"])
