"""hidden_states against the layers' own outputs, gradient_flow against hand-written BPTT, and
spectral_radius against numpy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from rnnkit.diagnostics.gradients import gradient_flow, hidden_states, spectral_radius
from rnnkit.nn import GRU, LSTM, RNN, make_layer

B, T, I, H = 3, 5, 4, 7  # noqa: E741 (I: input features)


def layer_of(kind: str, **kwargs: Any) -> RNN | LSTM | GRU:
    """``"rnn_tanh"``, ``"rnn_relu"``, ``"lstm"`` or ``"gru"``, seeded, (B, T, I) -> (B, T, H)."""
    torch.manual_seed(0)
    cell, _, nonlinearity = kind.partition("_")
    return make_layer(cell, I, H, nonlinearity=nonlinearity or None, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("backend", ["fused", "explicit"])
def test_hidden_states_equal_the_layer_output(kind: str, backend: str) -> None:
    layer = layer_of(kind, backend=backend)
    x = torch.randn(B, T, I)
    out, _ = layer(x)  # (B, T, H)
    hs = hidden_states(layer, x)
    assert len(hs) == T
    torch.testing.assert_close(torch.stack(hs, dim=1), out)


def test_hidden_states_without_bias() -> None:
    layer = LSTM(I, H, bias=False)
    x = torch.randn(B, T, I)
    torch.testing.assert_close(torch.stack(hidden_states(layer, x), dim=1), layer(x)[0])


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_last_step_gradient_of_the_default_loss_is_all_ones(kind: str) -> None:
    # L = h_T.sum(): dL/dh_T is a vector of ones, so its norm is sqrt(H) for every example.
    norms = gradient_flow(layer_of(kind), torch.randn(B, T, I))
    assert norms.shape == (T,)
    assert float(norms[-1]) == pytest.approx(math.sqrt(H), rel=1e-6)


def test_gradient_flow_matches_hand_written_bptt_for_the_elman_rnn() -> None:
    """dL/dh_{t-1} = W_hh^T (dL/dh_t * (1 - h_t^2)) for h_t = tanh(W_hh h_{t-1} + W_ih x_t + b)."""
    layer = layer_of("rnn_tanh").double()
    x = torch.randn(B, T, I, dtype=torch.float64)
    w = torch.randn(H, dtype=torch.float64)
    norms = gradient_flow(layer, x, lambda h_last: (h_last * w).sum())
    with torch.no_grad():
        hs = torch.stack(hidden_states(layer, x), dim=1)  # (B, T, H)
        w_hh = layer.weight_hh_l0
        grad = w.expand(B, H)  # dL/dh_T, (B, H)
        expected = [grad.norm(dim=-1).mean()]
        for t in range(T - 1, 0, -1):
            grad = (grad * (1 - hs[:, t] ** 2)) @ w_hh  # (B, H)
            expected.append(grad.norm(dim=-1).mean())
    torch.testing.assert_close(norms, torch.stack(expected[::-1]))


def test_gradient_flow_needs_a_single_layer() -> None:
    layer = LSTM(I, H, num_layers=2)
    with pytest.raises(
        ValueError, match="single-layer unidirectional layer, got num_layers=2, bidirectional=False"
    ):
        gradient_flow(layer, torch.randn(B, T, I))


@pytest.mark.parametrize(("kind", "gates"), [("rnn_tanh", "h"), ("lstm", "ifgo"), ("gru", "rzn")])
def test_spectral_radius_matches_numpy_per_gate(kind: str, gates: str) -> None:
    layer = layer_of(kind)
    radius = spectral_radius(layer)
    assert list(radius) == list(gates)
    w_hh = layer.weight_hh_l0.detach().double().numpy()  # (G*H, H)
    for k, gate in enumerate(gates):
        block = w_hh[k * H : (k + 1) * H]  # (H, H)
        assert radius[gate] == pytest.approx(float(np.abs(np.linalg.eigvals(block)).max()))
