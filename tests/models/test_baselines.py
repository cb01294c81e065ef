"""Tests for rnnkit.models.baselines: forecasts by definition, interval growth, automatic ETS,
errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from rnnkit.models.baselines import (
    drift,
    ets,
    ets_candidates,
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


def _monthly(multiplicative: bool, n: int = 120) -> np.ndarray:
    """A monthly series with a linear trend: a season 30 % of the level wide (multiplicative) or
    none, and 2 % multiplicative noise."""
    rng = np.random.default_rng(1)
    t = np.arange(n)
    season = 1 + 0.3 * np.sin(2 * np.pi * t / 12) if multiplicative else np.ones(n)
    return (100 + 2.0 * t) * season * np.exp(0.02 * rng.normal(size=n))


def test_ets_candidates_follow_the_series() -> None:
    positive = _monthly(True)
    names = [spec.name for spec in ets_candidates(positive, 12)]
    assert len(names) == 15  # R's restrict: no additive error with a multiplicative season
    assert {"ETS(A,N,N)", "ETS(A,Ad,A)", "ETS(M,A,M)", "ETS(M,Ad,N)"} <= set(names)
    assert "ETS(A,A,M)" not in names
    negative = positive - 200.0  # not strictly positive: additive parts only
    assert [s.name for s in ets_candidates(negative, 12)] == [
        "ETS(A,N,N)",
        "ETS(A,N,A)",
        "ETS(A,A,N)",
        "ETS(A,A,A)",
        "ETS(A,Ad,N)",
        "ETS(A,Ad,A)",
    ]
    short = positive[: 2 * 12 + 1]  # under two seasons plus two points: no season
    assert {s.seasonal for s in ets_candidates(short, 12)} == {None}
    assert {s.seasonal for s in ets_candidates(positive, 1)} == {None}


@needs_statsmodels
def test_ets_chooses_a_multiplicative_season_when_the_season_scales_with_the_level() -> None:
    y = _monthly(True)
    f = ets(y, 24, 12, LEVELS)
    assert f.model.endswith(",M)"), f.model
    assert np.isfinite(f.point).all() and np.isfinite(f.quantiles).all()
    assert (np.diff(f.quantiles, axis=1) > 0).all()
    t = np.arange(120, 144)
    truth = (100 + 2.0 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
    snaive = seasonal_naive(y, 24, 12, LEVELS).point
    assert np.mean(np.abs(f.point - truth)) < 0.5 * np.mean(np.abs(snaive - truth))
    again = ets(y, 24, 12, LEVELS)  # simulated intervals are seeded
    np.testing.assert_array_equal(again.quantiles, f.quantiles)


@needs_statsmodels
def test_ets_chooses_no_season_for_a_series_without_one() -> None:
    y = _monthly(False)
    f = ets(y, 12, 12, LEVELS)
    assert f.model.endswith(",N)"), f.model
    assert np.isfinite(f.point).all() and (np.diff(f.quantiles, axis=1) > 0).all()
    assert f.levels == LEVELS


@needs_statsmodels
def test_ets_on_a_series_with_negative_values_uses_additive_parts() -> None:
    y = _monthly(True) - 250.0
    f = ets(y, 12, 12, LEVELS)
    assert f.model.startswith("ETS(A,") and not f.model.endswith(",M)")
    assert (np.diff(f.quantiles, axis=1) > 0).all()
