"""Tests for rnnkit.models.baselines: forecasts by definition, interval growth, ETS, errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rnnkit.models.baselines import (
    drift,
    ets,
    naive,
    run_baselines,
    run_baselines_columns,
    seasonal_naive,
)

LEVELS = (0.1, 0.5, 0.9)
H, M = 7, 4


@pytest.fixture
def history() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(30)
    return 20 + 0.5 * t + 3 * np.sin(2 * np.pi * t / M) + rng.normal(size=30)


def test_naive_repeats_last_value_with_sqrt_h_intervals(history: np.ndarray) -> None:
    f = naive(history, H, LEVELS)
    np.testing.assert_array_equal(f.point, np.full(H, history[-1]))
    np.testing.assert_allclose(f.quantiles[:, 1], f.point)
    width = f.quantiles[:, 2] - f.quantiles[:, 0]
    np.testing.assert_allclose(width / width[0], np.sqrt(np.arange(1, H + 1)))
    sigma = np.sqrt(np.mean(np.diff(history) ** 2))
    assert width[0] == pytest.approx(2 * 1.2815515655446004 * sigma)


def test_seasonal_naive_repeats_last_season(history: np.ndarray) -> None:
    f = seasonal_naive(history, H, M, LEVELS)
    expected = [history[len(history) - M + (h % M)] for h in range(H)]
    np.testing.assert_array_equal(f.point, expected)
    width = f.quantiles[:, 2] - f.quantiles[:, 0]
    assert width[0] == pytest.approx(width[M - 1])  # k = 0 for the first season
    assert width[M] == pytest.approx(width[0] * np.sqrt(2))


def test_drift_extends_the_line_and_is_exact_on_a_line() -> None:
    line = 3.0 + 2.0 * np.arange(10)
    f = drift(line, H, LEVELS)
    np.testing.assert_allclose(f.point, 3.0 + 2.0 * np.arange(10, 10 + H))
    np.testing.assert_allclose(f.quantiles[:, 0], f.point)  # no residuals, no spread


def test_errors_name_the_problem(history: np.ndarray) -> None:
    with pytest.raises(ValueError, match="history has 4 points, this baseline needs at least 5"):
        seasonal_naive(history[:4], H, M, LEVELS)
    with pytest.raises(ValueError, match="season must be >= 1, got 0"):
        seasonal_naive(history, H, 0, LEVELS)
    with pytest.raises(ValueError, match=r"quantile levels must be in \(0, 1\)"):
        naive(history, H, (0.0, 0.5))
    with pytest.raises(ValueError, match="unknown baseline 'arima'; valid baselines: naive"):
        run_baselines(history, H, M, LEVELS, ["arima"])


def test_columns_are_forecast_one_by_one(history: np.ndarray) -> None:
    two = np.stack([history, 100 - 2 * history], axis=1)  # (N, C = 2)
    both = run_baselines_columns(two, H, M, LEVELS, ["naive", "seasonal_naive", "drift"])
    assert set(both) == {"naive", "seasonal_naive", "drift"}
    for c in range(2):
        alone = run_baselines(two[:, c], H, M, LEVELS, ["naive", "seasonal_naive", "drift"])
        for name, f in both.items():
            assert f.point.shape == (H, 2) and f.quantiles.shape == (H, 2, 3)
            np.testing.assert_array_equal(f.point[:, c], alone[name].point)
            np.testing.assert_array_equal(f.quantiles[:, c], alone[name].quantiles)
    with pytest.raises(ValueError, match=r"history must be \(N, C\), got shape \(30,\)"):
        run_baselines_columns(history, H, M, LEVELS)


needs_statsmodels = pytest.mark.skipif(
    importlib.util.find_spec("statsmodels") is None, reason="needs statsmodels"
)


@needs_statsmodels
def test_ets_beats_seasonal_naive_on_trend_plus_season(history: np.ndarray) -> None:
    t = np.arange(30, 30 + H)
    truth = 20 + 0.5 * t + 3 * np.sin(2 * np.pi * t / M)
    f = ets(history, H, M, LEVELS)
    assert (np.diff(f.quantiles, axis=1) > 0).all()
    error = np.mean(np.abs(f.point - truth))
    assert error < np.mean(np.abs(seasonal_naive(history, H, M, LEVELS).point - truth))
    assert set(run_baselines(history, H, M, LEVELS)) == {"naive", "seasonal_naive", "drift", "ets"}
