"""Tests for rnnkit.models.forecaster, the module alone: shapes and monotone quantiles for every
head, cell and likelihood, the seasonal naive base, invariances (rescaling, teacher forcing,
batching), gradcheck in float64, and config errors with exact messages.

The forecasting task (data, training, loading, backtests) is tested in
tests/tasks/test_forecasting.py and the distributions in tests/nn/test_distributions.py."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest
import torch
from pydantic import ValidationError
from torch.testing import assert_close

from rnnkit.data.series_windows import ScalerStats
from rnnkit.models.forecaster import Forecaster, ForecasterConfig, SeriesForecasters
from rnnkit.nn.distributions import forecast_loss, point_forecast

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


def test_scaling_buffers_map_raw_values_and_back() -> None:
    m = model(log=True)
    loc, scale = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 3.0])
    m.set_scaling(ScalerStats(loc.numpy(), scale.numpy(), log=True))
    assert_close(m.target_loc, loc)
    assert_close(m.target_scale, scale)
    history = window()[0]
    level = torch.randn(B, 1, C)
    z = m.normalize(history, level)  # (B, L, C)
    assert_close(z, (torch.log(history) - loc) / scale - level)
    assert_close(m.denormalize(z[..., None], level)[..., 0], history)
    with pytest.raises(ValueError, match="scaler log=False but the model has log=True"):
        m.set_scaling(ScalerStats(loc.numpy(), scale.numpy(), log=False))


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


def test_shape_errors_name_the_expected_shape() -> None:
    m = model()
    history, calendar, past, _ = window()
    with pytest.raises(ValueError, match=r"history must be \(B, 6, 2\), got \(3, 5, 2\)"):
        m(history[:, 1:], calendar, past)
    with pytest.raises(
        ValueError, match=r"calendar must be \(B, L \+ H, K\) = \(3, 11, 4\), got \(3, 10, 4\)"
    ):
        m(history, calendar[:, 1:], past)
    with pytest.raises(ValueError, match=r"past covariates must be \(B, 6, 1\)"):
        m(history, calendar, None)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"quantiles must include 0.5 \(the point forecast\)"):
        ForecasterConfig(quantiles=(0.1, 0.9))
    with pytest.raises(ValidationError, match="quantiles must be increasing without repeats"):
        ForecasterConfig(quantiles=(0.9, 0.5, 0.1))
    with pytest.raises(ValidationError, match=r"dropout must be in \[0, 1\), got 1.0"):
        ForecasterConfig(dropout=1.0)
    with pytest.raises(ValidationError, match="cell"):
        ForecasterConfig(cell="transformer")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError,
        match=r"model.residual 'seasonal_naive' needs data.lookback >= the season, got lookback 6 and season 12",
    ):
        Forecaster(
            ForecasterConfig(), targets=1, past=0, calendar=0, lookback=6, horizon=2, season=12
        )


@pytest.mark.parametrize("head", ["direct", "attention"])
def test_series_forecasters_send_each_window_to_its_own_model(head: str) -> None:
    """A panel's per-series models: the batch's answer equals each model on its own windows."""
    first, second = model(head=head), model(head=head, hidden_size=D + 1)
    both = SeriesForecasters([first, second]).eval()
    history, calendar, past, _ = window()
    series = torch.tensor([1, 0, 1])
    with torch.no_grad():
        out = both(history, calendar, past, series=series)
        point, q, attention = both.predict(history, calendar, past, series=series)
        for s, m in ((0, first), (1, second)):
            at = (series == s).nonzero()[:, 0]
            alone = m(history[at], calendar[at], past[at])
            assert_close(out.params[:, at], alone.params)
            assert_close(out.level[at], alone.level)
            p, qq, a = m.predict(history[at], calendar[at], past[at])
            assert_close(point[at], p)
            assert_close(q[at], qq)
            if head == "attention":
                assert attention is not None and a is not None
                assert_close(attention[at], a)
    with pytest.raises(ValueError, match="needs each window's series index"):
        both(history, calendar, past)


def test_calibrated_quantiles_are_the_median_plus_the_residuals() -> None:
    m = model(likelihood="gaussian", ensemble=2)
    history, calendar, past, _ = window()
    with torch.no_grad():
        point, plain, _ = m.predict(history, calendar, past)
        residual = torch.zeros(H, C, 3)
        residual[..., 0], residual[..., 2] = -0.5, 0.25  # normalised units
        m.set_interval_residual(residual)
        same, q, _ = m.predict(history, calendar, past)
        out = m(history, calendar, past)
        z = point_forecast(out.params, "gaussian", m.levels).mean(0)  # (B, H, C) normalised
        expected = m.denormalize(z[..., None] + residual[None], out.level)
        assert_close(same, point)
        assert_close(q, expected)
        assert not torch.equal(q, plain)
        # another level: the residual interpolated between the trained levels (0.3: -0.25)
        _, q3, _ = m.predict(history, calendar, past, levels=(0.3, 0.5))
        assert_close(q3[..., 0], m.denormalize(z[..., None] - 0.25, out.level)[..., 0])
    with pytest.raises(ValueError, match=r"interval residual must be \(5, 2, 3\), got \(5, 2\)"):
        m.set_interval_residual(torch.zeros(H, C))
