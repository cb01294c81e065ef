"""Pure cell equations: parity with torch's cell kernels, both forms, gradcheck in float64."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from rnnkit.nn import functional as RF

B, E, H = 3, 4, 7
ATOL = RTOL = 1e-6

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


def params(kind: str, dtype: torch.dtype = torch.float32) -> list[Tensor]:
    """x, h, c, weight_ih, weight_hh, bias_ih, bias_hh for one step, requiring grad."""
    g = GATES[kind] * H
    shapes = [(B, E), (B, H), (B, H), (g, E), (g, H), (g,), (g,)]
    return [torch.randn(s, dtype=dtype, requires_grad=True) for s in shapes]


def ours_input_form(kind: str, p: list[Tensor]) -> tuple[Tensor, ...]:
    x, h, c, w_ih, w_hh, b_ih, b_hh = p
    if kind == "lstm":
        return RF.lstm_cell_input(x, h, c, w_ih, w_hh, b_ih, b_hh)
    if kind == "gru":
        return (RF.gru_cell_input(x, h, w_ih, w_hh, b_ih, b_hh),)
    nonlinearity = "relu" if kind == "rnn_relu" else "tanh"
    return (RF.rnn_cell_input(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity),)


def ours_projected_form(kind: str, p: list[Tensor]) -> tuple[Tensor, ...]:
    x, h, c, w_ih, w_hh, b_ih, b_hh = p
    gates_x = RF.input_projection(x, w_ih, b_ih)  # (B, G)
    if kind == "lstm":
        return RF.lstm_cell(gates_x, h, c, w_hh, b_hh)
    if kind == "gru":
        return (RF.gru_cell(gates_x, h, w_hh, b_hh),)
    nonlinearity = "relu" if kind == "rnn_relu" else "tanh"
    return (RF.rnn_cell(gates_x, h, w_hh, b_hh, nonlinearity),)


def torch_reference(kind: str, p: list[Tensor]) -> tuple[Tensor, ...]:
    x, h, c, w_ih, w_hh, b_ih, b_hh = p
    if kind == "lstm":
        return tuple(torch.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh))
    if kind == "gru":
        return (torch.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh),)
    cell = torch.rnn_relu_cell if kind == "rnn_relu" else torch.rnn_tanh_cell
    return (cell(x, h, w_ih, w_hh, b_ih, b_hh),)


def grads(outputs: tuple[Tensor, ...], inputs: list[Tensor], seed: int = 0) -> tuple[Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=gen)).sum() for o in outputs)
    return torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)


@pytest.mark.parametrize("form", [ours_input_form, ours_projected_form], ids=["input", "projected"])
@pytest.mark.parametrize("kind", list(GATES))
def test_parity_with_torch_cell_kernels(kind: str, form: object) -> None:
    torch.manual_seed(0)
    p = params(kind)
    ours = form(kind, p)  # type: ignore[operator]
    ref = torch_reference(kind, p)
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(grads(ours, p), grads(ref, p), atol=ATOL, rtol=RTOL)


def test_rnn_equation_written_out() -> None:
    """h_t = tanh(W_hh h_{t-1} + W_ih x_t + b), and relu for the relu variant."""
    torch.manual_seed(0)
    x, h, _, w_ih, w_hh, b_ih, b_hh = params("rnn_tanh")
    pre = h @ w_hh.T + x @ w_ih.T + b_ih + b_hh  # (B, H)
    torch.testing.assert_close(RF.rnn_cell_input(x, h, w_ih, w_hh, b_ih, b_hh), torch.tanh(pre))
    torch.testing.assert_close(
        RF.rnn_cell_input(x, h, w_ih, w_hh, b_ih, b_hh, "relu"), torch.relu(pre)
    )


def test_gru_reset_gate_multiplies_recurrent_bias() -> None:
    """n = tanh(W_in x + b_in + r * (W_hn h + b_hn)): b_hn is inside the product, b_hr, b_hz not."""
    torch.manual_seed(0)
    x, h, _, w_ih, w_hh, b_ih, b_hh = params("gru")
    gates_x = RF.input_projection(x, w_ih, b_ih)  # (B, 3H)
    want = RF.gru_cell(gates_x, h, w_hh, b_hh)
    zeros = torch.zeros(H)
    b_rz, b_n = b_hh[: 2 * H], b_hh[2 * H :]
    folded_rz = RF.gru_cell(gates_x + torch.cat([b_rz, zeros]), h, w_hh, torch.cat([0 * b_rz, b_n]))
    torch.testing.assert_close(folded_rz, want)
    folded_n = RF.gru_cell(gates_x + torch.cat([0 * b_rz, b_n]), h, w_hh, torch.cat([b_rz, zeros]))
    assert (folded_n - want).abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm"])
def test_recurrent_bias_can_be_folded_into_projection(kind: str) -> None:
    torch.manual_seed(0)
    x, h, c, w_ih, w_hh, b_ih, b_hh = params(kind)
    folded = RF.input_projection(x, w_ih, b_ih + b_hh)
    if kind == "lstm":
        got = RF.lstm_cell(folded, h, c, w_hh)
        want = RF.lstm_cell(RF.input_projection(x, w_ih, b_ih), h, c, w_hh, b_hh)
    else:
        got = (RF.rnn_cell(folded, h, w_hh),)
        want = (RF.rnn_cell(RF.input_projection(x, w_ih, b_ih), h, w_hh, b_hh),)
    torch.testing.assert_close(got, want)


def test_input_projection_hoists_all_steps() -> None:
    torch.manual_seed(0)
    T = 5
    x = torch.randn(B, T, E)
    w, b = torch.randn(4 * H, E), torch.randn(4 * H)
    all_steps = RF.input_projection(x, w, b)  # (B, T, 4H)
    assert all_steps.shape == (B, T, 4 * H)
    for t, g in enumerate(all_steps.unbind(1)):
        torch.testing.assert_close(g, RF.input_projection(x[:, t], w, b))


@pytest.mark.parametrize("form", [ours_input_form, ours_projected_form], ids=["input", "projected"])
@pytest.mark.parametrize("kind", list(GATES))
def test_gradcheck_float64(kind: str, form: object) -> None:
    torch.manual_seed(0)
    p = params(kind, torch.float64)
    assert torch.autograd.gradcheck(lambda *q: form(kind, list(q)), tuple(p))  # type: ignore[operator]


def test_unknown_nonlinearity() -> None:
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'; valid: 'tanh', 'relu'"):
        RF.rnn_cell(torch.zeros(B, H), torch.zeros(B, H), torch.zeros(H, H), None, "gelu")  # type: ignore[arg-type]
