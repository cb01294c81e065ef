"""Tests for rnnkit.nn.distributions: scores against torch.distributions and the NumPy pinball,
quantiles against NormalDist and scipy, the link's monotone quantiles, gradients in float64."""

from __future__ import annotations

import importlib.util
from statistics import NormalDist

import pytest
import torch
from torch.testing import assert_close

from rnnkit.metrics.forecast import pinball
from rnnkit.nn.distributions import (
    distribution_params,
    distribution_quantiles,
    forecast_loss,
    num_params,
    point_forecast,
    student_t_icdf,
)

B, H, C = 3, 5, 2  # batch, horizon, targets
LEVELS = (0.1, 0.5, 0.9)


def test_losses_match_references() -> None:
    g = torch.Generator().manual_seed(1)
    target = torch.randn(B, H, C, generator=g, dtype=torch.float64)
    quantiles = torch.sort(torch.randn(B, H, C, 3, generator=g, dtype=torch.float64), -1).values
    expected = pinball(target.numpy(), quantiles.numpy(), LEVELS)
    assert forecast_loss(quantiles, target, "quantile", LEVELS).item() == pytest.approx(expected)
    mu, sigma = (
        torch.randn(B, H, C, generator=g, dtype=torch.float64),
        torch.rand(B, H, C, dtype=torch.float64) + 0.5,
    )
    nu = 2.5 + torch.rand(B, H, C, dtype=torch.float64)
    normal = -torch.distributions.Normal(mu, sigma).log_prob(target).mean()
    assert_close(forecast_loss(torch.stack([mu, sigma], -1), target, "gaussian", LEVELS), normal)
    student = -torch.distributions.StudentT(nu, mu, sigma).log_prob(target).mean()
    assert_close(
        forecast_loss(torch.stack([mu, sigma, nu], -1), target, "student_t", LEVELS), student
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


def test_student_t_icdf_is_symmetric_and_checks_its_level() -> None:
    df = torch.tensor([2.5, 7.0])
    assert_close(student_t_icdf(0.2, df), -student_t_icdf(0.8, df))
    assert torch.equal(student_t_icdf(0.5, df), torch.zeros(2))
    with pytest.raises(ValueError, match=r"quantile level must be in \(0, 1\), got 1.0"):
        student_t_icdf(1.0, df)


def test_num_params() -> None:
    assert num_params("quantile", (0.05, 0.1, 0.5, 0.9, 0.95)) == 5
    assert num_params("gaussian", LEVELS) == 2
    assert num_params("student_t", LEVELS) == 3
    with pytest.raises(
        ValueError, match="unknown likelihood 'laplace'; valid: quantile, gaussian, student_t"
    ):
        num_params("laplace", LEVELS)  # type: ignore[arg-type]


def test_link_gives_monotone_quantiles_around_the_shifted_median() -> None:
    g = torch.Generator().manual_seed(2)
    levels = (0.05, 0.1, 0.5, 0.9, 0.95)
    raw = 3 * torch.randn(B, H, C, 5, generator=g)  # (B, H, C, n)
    base = torch.randn(B, H, C, generator=g)  # (B, H, C)
    q = distribution_params(raw, base, "quantile", levels)
    assert q.shape == (B, H, C, 5)
    assert (q[..., 1:] > q[..., :-1]).all()
    assert_close(q[..., 2], raw[..., 2] + base)
    assert_close(point_forecast(q, "quantile", levels), raw[..., 2] + base)
    theta = distribution_params(raw[..., :3], base, "student_t", levels)
    assert_close(theta[..., 0], raw[..., 0] + base)
    assert (theta[..., 1] > 0).all() and (theta[..., 2] > 2).all()
    assert distribution_params(raw[..., :2], base, "gaussian", levels).shape == (B, H, C, 2)


@pytest.mark.parametrize("likelihood", ["quantile", "gaussian", "student_t"])
def test_loss_of_the_link_gradcheck_float64(likelihood: str) -> None:
    g = torch.Generator().manual_seed(3)
    n = num_params(likelihood, LEVELS)  # type: ignore[arg-type]
    raw = torch.randn(B, H, C, n, generator=g, dtype=torch.float64, requires_grad=True)
    base = torch.randn(B, H, C, generator=g, dtype=torch.float64)
    target = torch.randn(B, H, C, generator=g, dtype=torch.float64)

    def loss(r: torch.Tensor) -> torch.Tensor:
        params = distribution_params(r, base, likelihood, LEVELS)  # type: ignore[arg-type]
        return forecast_loss(params, target, likelihood, LEVELS)  # type: ignore[arg-type]

    assert torch.autograd.gradcheck(loss, (raw,))
