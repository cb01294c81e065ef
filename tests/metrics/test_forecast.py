"""Tests for rnnkit.metrics.forecast: each metric against its definition, invariants, errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.metrics.forecast import (
    coverage,
    forecast_metrics,
    interval_pairs,
    mae,
    mase,
    pinball,
    rmse,
    seasonal_naive_scale,
    smape,
)

H, C, N, M = 7, 3, 29, 4  # horizon, series, in-sample length, season


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    actual = rng.uniform(1, 10, size=(H, C))
    forecast = actual + rng.normal(size=(H, C))
    insample = rng.uniform(1, 10, size=(N, C))
    return actual, forecast, insample


def test_point_metrics_match_their_definitions(data: tuple[np.ndarray, ...]) -> None:
    a, f, _ = (x[:, 0] for x in data)
    pairs = list(zip(a.tolist(), f.tolist(), strict=True))
    assert mae(a, f) == pytest.approx(sum(abs(x - y) for x, y in pairs) / H)
    assert rmse(a, f) == pytest.approx((sum((x - y) ** 2 for x, y in pairs) / H) ** 0.5)
    expected = 100 / H * sum(2 * abs(x - y) / (abs(x) + abs(y)) for x, y in pairs)
    assert smape(a, f) == pytest.approx(expected)


def test_smape_bounds_and_zero_over_zero() -> None:
    assert smape(np.zeros(3), np.zeros(3)) == 0.0
    assert smape(np.array([1.0, 0.0]), np.array([-1.0, 0.0])) == pytest.approx(100.0)
    assert smape(np.array([2.0]), np.array([2.0])) == 0.0


def test_mase_is_scaled_by_in_sample_seasonal_naive(data: tuple[np.ndarray, ...]) -> None:
    a, f, x = (v[:, 0] for v in data)
    scale = np.mean([abs(x[t] - x[t - M]) for t in range(M, N)])
    assert seasonal_naive_scale(x, M) == pytest.approx(scale)
    assert mase(a, f, x, M) == pytest.approx(mae(a, f) / scale)
    assert mase(10 * a, 10 * f, 10 * x, M) == pytest.approx(mase(a, f, x, M))  # unit free
    assert mase(a, a, x, M) == 0.0
    with pytest.raises(ValueError, match="MASE is undefined: the in-sample seasonal naive"):
        mase(a, f, np.ones(N), M)
    with pytest.raises(
        ValueError, match=r"MASE needs more than season = 4 in-sample points, got 4"
    ):
        mase(a, f, x[:4], M)


def test_coverage_counts_points_inside() -> None:
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    assert coverage(actual, actual - 1, actual + 1) == 1.0
    assert coverage(actual, np.full(4, 1.5), np.full(4, 3.0)) == 0.5


def test_pinball_at_median_is_half_mae_and_penalises_asymmetrically(
    data: tuple[np.ndarray, ...],
) -> None:
    a, f, _ = (v[:, 0] for v in data)
    assert pinball(a, f[:, None], [0.5]) == pytest.approx(mae(a, f) / 2)
    # an under-forecast of 1 costs q, an over-forecast costs 1 - q
    assert pinball(np.array([1.0]), np.array([[0.0]]), [0.9]) == pytest.approx(0.9)
    assert pinball(np.array([0.0]), np.array([[1.0]]), [0.9]) == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"quantiles must have shape \(7, 2\)"):
        pinball(a, f[:, None], [0.1, 0.9])


def test_interval_pairs() -> None:
    assert interval_pairs([0.1, 0.5, 0.9]) == [(80, 0, 2)]
    assert interval_pairs([0.025, 0.1, 0.5, 0.9, 0.975]) == [(80, 1, 3), (95, 0, 4)]
    assert interval_pairs([0.5]) == []


def test_forecast_metrics_average_over_series(data: tuple[np.ndarray, ...]) -> None:
    a, f, x = data
    q = np.stack([f - 1, f, f + 1], axis=-1)  # (H, C, 3)
    out = forecast_metrics(a, f, q, [0.1, 0.5, 0.9], x, M)
    assert set(out) == {"mae", "rmse", "smape", "mase", "pinball", "coverage_80"}
    assert out["mase"] == pytest.approx(
        np.mean([mase(a[:, c], f[:, c], x[:, c], M) for c in range(C)])
    )
    assert out["coverage_80"] == coverage(a, f - 1, f + 1)
    with pytest.raises(
        ValueError, match=r"actual and forecast shapes differ: \(7, 3\) vs \(7, 2\)"
    ):
        forecast_metrics(a, f[:, :2], None, [0.5], x, M)
