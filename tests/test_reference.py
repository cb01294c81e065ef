"""Hand-written BPTT in :mod:`rnnkit.reference` against torch autograd, finite differences and the
Jacobian identities its docstring teaches."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch

from rnnkit import reference as ref

B, T, I, H = 3, 6, 4, 5  # noqa: E741  (I: input features, as in the module's docstrings)
ATOL = 1e-8

# The cells under test; "rnn_tanh" / "rnn_relu" are the Elman RNN with either nonlinearity.
CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


def _torch_layer(cell: str, seed: int) -> torch.nn.RNNBase:
    """A single-layer batch-first torch layer in float64 with N(0, 0.5^2) weights.

    The default init (uniform ±1/sqrt(H)) leaves every unit nearly linear; a wider spread puts some
    gates into saturation so that every derivative term matters.
    """
    torch.manual_seed(seed)
    layer: torch.nn.RNNBase
    if cell == "lstm":
        layer = torch.nn.LSTM(I, H, batch_first=True)
    elif cell == "gru":
        layer = torch.nn.GRU(I, H, batch_first=True)
    else:
        layer = torch.nn.RNN(I, H, batch_first=True, nonlinearity=cell.removeprefix("rnn_"))
    layer = layer.double()
    with torch.no_grad():
        for param in layer.parameters():
            param.normal_(0.0, 0.5)
    return layer


def _ref_forward(cell: str, params: ref.Params, x: Any, h0: Any, c0: Any) -> tuple[Any, Any, Any]:
    """Dispatch to the reference forward; returns (outputs, final state, cache)."""
    if cell == "lstm":
        return ref.lstm_forward(params, x, h0, c0)
    if cell == "gru":
        return ref.gru_forward(params, x, h0)
    return ref.rnn_forward(params, x, h0, nonlinearity="relu" if cell == "rnn_relu" else "tanh")


def _ref_backward(
    cell: str, params: ref.Params, cache: Any, d_y: Any, d_h: Any, d_c: Any
) -> dict[str, np.ndarray]:
    """Dispatch to the reference backward."""
    if cell == "lstm":
        return ref.lstm_backward(params, cache, d_y, (d_h, d_c))
    if cell == "gru":
        return ref.gru_backward(params, cache, d_y, d_h)
    return ref.rnn_backward(params, cache, d_y, d_h)


def _close(actual: np.ndarray, expected: Any) -> None:
    """Assert equality to ATOL; ``expected`` may be a torch tensor."""
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    np.testing.assert_allclose(actual, expected, rtol=0.0, atol=ATOL)


@pytest.mark.parametrize("with_initial_state", [True, False], ids=["h0", "no_h0"])
@pytest.mark.parametrize("cell", CELLS)
def test_reference_matches_torch_autograd(cell: str, with_initial_state: bool) -> None:
    layer = _torch_layer(cell, seed=CELLS.index(cell))
    params = ref.params_from_torch(layer)
    gen = torch.Generator().manual_seed(100 + CELLS.index(cell))

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.float64, generator=gen)

    x = randn(B, T, I).requires_grad_()
    h0 = randn(1, B, H).requires_grad_()
    c0 = randn(1, B, H).requires_grad_()
    d_y, d_h, d_c = randn(B, T, H), randn(B, H), randn(B, H)  # upstream gradients

    # torch: the loss L = <y, d_y> + <h_n, d_h> (+ <c_n, d_c>) has exactly these upstream grads.
    state: Any = None
    if with_initial_state:
        state = (h0, c0) if cell == "lstm" else h0
    y, final = layer(x, state)
    h_n, c_n = final if cell == "lstm" else (final, None)
    loss = (y * d_y).sum() + (h_n[0] * d_h).sum()
    if c_n is not None:
        loss = loss + (c_n[0] * d_c).sum()
    loss.backward()

    np_h0 = h0[0].detach().numpy() if with_initial_state else None
    np_c0 = c0[0].detach().numpy() if with_initial_state else None
    out, final_ref, cache = _ref_forward(cell, params, x.detach().numpy(), np_h0, np_c0)
    _close(out, y)
    if cell == "lstm":
        _close(final_ref[0], h_n[0])
        _close(final_ref[1], c_n[0])
    else:
        _close(final_ref, h_n[0])

    grads = _ref_backward(cell, params, cache, d_y.numpy(), d_h.numpy(), d_c.numpy())
    expected_keys = {*ref.PARAM_NAMES, "x", "h0"} | ({"c0"} if cell == "lstm" else set())
    assert set(grads) == expected_keys
    _close(grads["weight_ih"], layer.weight_ih_l0.grad)
    _close(grads["weight_hh"], layer.weight_hh_l0.grad)
    _close(grads["bias_ih"], layer.bias_ih_l0.grad)
    _close(grads["bias_hh"], layer.bias_hh_l0.grad)
    _close(grads["x"], x.grad)
    if with_initial_state:
        _close(grads["h0"], h0.grad[0])
        if cell == "lstm":
            _close(grads["c0"], c0.grad[0])
    # The comparison is not vacuous: the gradients are far from zero.
    assert np.abs(grads["weight_hh"]).max() > 1e-2


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_of_zero_initial_state_matches_torch(cell: str) -> None:
    # Without h0 the forward starts from zeros, and "h0" is dL/dh0 at h0 = 0.
    layer = _torch_layer(cell, seed=7)
    params = ref.params_from_torch(layer)
    rng = np.random.default_rng(7)
    x, d_y = rng.standard_normal((B, T, I)), rng.standard_normal((B, T, H))
    zeros = torch.zeros(1, B, H, dtype=torch.float64, requires_grad=True)
    zeros_c = torch.zeros(1, B, H, dtype=torch.float64, requires_grad=True)
    y, _ = layer(torch.from_numpy(x), (zeros, zeros_c) if cell == "lstm" else zeros)
    (y * torch.from_numpy(d_y)).sum().backward()
    _, _, cache = _ref_forward(cell, params, x, None, None)
    grads = _ref_backward(cell, params, cache, d_y, None, None)
    assert zeros.grad is not None
    _close(grads["h0"], zeros.grad[0])
    if cell == "lstm":
        assert zeros_c.grad is not None
        _close(grads["c0"], zeros_c.grad[0])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(("name", "index"), [("weight_hh", (2, 3)), ("bias_ih", (1,))])
def test_one_weight_entry_against_central_difference(
    cell: str, name: str, index: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(11)
    gates = {"lstm": 4, "gru": 3}.get(cell, 1)
    params = {
        "weight_ih": 0.5 * rng.standard_normal((gates * H, I)),
        "weight_hh": 0.5 * rng.standard_normal((gates * H, H)),
        "bias_ih": 0.5 * rng.standard_normal(gates * H),
        "bias_hh": 0.5 * rng.standard_normal(gates * H),
    }
    x, h0, c0 = (
        rng.standard_normal((B, T, I)),
        rng.standard_normal((B, H)),
        rng.standard_normal((B, H)),
    )
    d_y, d_h, d_c = (
        rng.standard_normal((B, T, H)),
        rng.standard_normal((B, H)),
        rng.standard_normal((B, H)),
    )

    def loss(p: ref.Params) -> float:
        y, final, _ = _ref_forward(cell, p, x, h0, c0)
        h_n, c_n = final if cell == "lstm" else (final, np.zeros((B, H)))
        return float((y * d_y).sum() + (h_n * d_h).sum() + (c_n * d_c).sum())

    _, _, cache = _ref_forward(cell, params, x, h0, c0)
    analytic = _ref_backward(cell, params, cache, d_y, d_h, d_c)[name][index]
    eps = 1e-6
    plus = {k: v.copy() for k, v in params.items()}
    minus = {k: v.copy() for k, v in params.items()}
    plus[name][index] += eps
    minus[name][index] -= eps
    numeric = (loss(plus) - loss(minus)) / (2 * eps)
    assert abs(analytic) > 1e-3
    assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-8)


def test_rnn_dh0_is_the_product_of_step_jacobians() -> None:
    # Section 4: dL/dh_0 = dL/dh_T · Π_t diag(1 - h_t^2) W_hh when only the final state is read.
    rng = np.random.default_rng(3)
    params = {
        "weight_ih": rng.standard_normal((H, I)),
        "weight_hh": rng.standard_normal((H, H)),
        "bias_ih": rng.standard_normal(H),
        "bias_hh": rng.standard_normal(H),
    }
    x, h0, d_h = (
        rng.standard_normal((B, T, I)),
        rng.standard_normal((B, H)),
        rng.standard_normal((B, H)),
    )
    y, _, cache = ref.rnn_forward(params, x, h0)
    grads = ref.rnn_backward(params, cache, np.zeros((B, T, H)), d_h)
    for b in range(B):
        product = np.eye(H)  # ∂h_T/∂h_T
        for t in reversed(range(T)):
            jacobian = np.diag(1.0 - y[b, t] ** 2) @ params["weight_hh"]  # ∂h_t/∂h_{t-1}, (H, H)
            product = product @ jacobian
        np.testing.assert_allclose(grads["h0"][b], d_h[b] @ product, rtol=1e-10, atol=1e-12)


def test_rnn_gradient_vanishes_geometrically_with_a_contracting_w_hh() -> None:
    # ||∂h_t/∂h_{t-1}|| <= ||W_hh|| max tanh' <= ||W_hh||_2, so with ||W_hh||_2 = 0.5 the gradient
    # from the final state shrinks at least by 0.5 per step, whatever the inputs.
    rng = np.random.default_rng(5)
    w_hh = rng.standard_normal((H, H))
    w_hh *= 0.5 / np.linalg.norm(w_hh, ord=2)
    params = {
        "weight_ih": rng.standard_normal((H, I)),
        "weight_hh": w_hh,
        "bias_ih": rng.standard_normal(H),
        "bias_hh": rng.standard_normal(H),
    }
    x, d_h = rng.standard_normal((B, T, I)), rng.standard_normal((B, H))
    _, _, cache = ref.rnn_forward(params, x)
    grads = ref.rnn_backward(params, cache, np.zeros((B, T, H)), d_h)
    ratio = np.linalg.norm(grads["h0"], axis=1) / np.linalg.norm(d_h, axis=1)  # (B,)
    assert np.all(ratio <= 0.5**T)
    assert np.all(ratio > 0.0)


def test_lstm_cell_path_carries_the_gradient_times_the_forget_gates() -> None:
    # Section 5: with W_hh = 0 only the additive cell path links steps, so
    # dL/dc_0 = dL/dc_T · Π_t f_t exactly, and nothing reaches h_0.
    rng = np.random.default_rng(8)
    params = {
        "weight_ih": rng.standard_normal((4 * H, I)),
        "weight_hh": np.zeros((4 * H, H)),
        "bias_ih": rng.standard_normal(4 * H),
        "bias_hh": rng.standard_normal(4 * H),
    }
    x, c0, d_c = (
        rng.standard_normal((B, T, I)),
        rng.standard_normal((B, H)),
        rng.standard_normal((B, H)),
    )
    _, _, cache = ref.lstm_forward(params, x, None, c0)
    grads = ref.lstm_backward(params, cache, np.zeros((B, T, H)), (None, d_c))
    np.testing.assert_allclose(grads["c0"], d_c * cache.f.prod(axis=1), rtol=1e-12, atol=0.0)
    np.testing.assert_array_equal(grads["h0"], np.zeros((B, H)))


def test_gru_direct_path_carries_the_gradient_times_the_update_gates() -> None:
    # h_t = (1 - z_t) n_t + z_t h_{t-1}; with W_hh = 0 the only link is the z_t h_{t-1} term.
    rng = np.random.default_rng(9)
    params = {
        "weight_ih": rng.standard_normal((3 * H, I)),
        "weight_hh": np.zeros((3 * H, H)),
        "bias_ih": rng.standard_normal(3 * H),
        "bias_hh": rng.standard_normal(3 * H),
    }
    x, h0, d_h = (
        rng.standard_normal((B, T, I)),
        rng.standard_normal((B, H)),
        rng.standard_normal((B, H)),
    )
    _, _, cache = ref.gru_forward(params, x, h0)
    grads = ref.gru_backward(params, cache, np.zeros((B, T, H)), d_h)
    np.testing.assert_allclose(grads["h0"], d_h * cache.z.prod(axis=1), rtol=1e-12, atol=0.0)


def test_params_from_torch_reads_layers_cells_and_prefixed_modules() -> None:
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(I, H, num_layers=2, batch_first=True)
    params = ref.params_from_torch(lstm)
    assert {k: v.shape for k, v in params.items()} == {
        "weight_ih": (4 * H, I),
        "weight_hh": (4 * H, H),
        "bias_ih": (4 * H,),
        "bias_hh": (4 * H,),
    }
    assert all(v.dtype == np.float64 for v in params.values())
    _close(params["weight_hh"], lstm.weight_hh_l0.double())  # layer 0, not layer 1

    cell = torch.nn.GRUCell(I, H, bias=False)
    cell_params = ref.params_from_torch(cell)
    _close(cell_params["weight_ih"], cell.weight_ih.double())
    np.testing.assert_array_equal(cell_params["bias_hh"], np.zeros(3 * H))

    wrapped = torch.nn.Sequential(torch.nn.RNN(I, H, batch_first=True))
    _close(ref.params_from_torch(wrapped)["bias_ih"], wrapped[0].bias_ih_l0.double())


def test_params_from_torch_rejects_unsupported_modules() -> None:
    with pytest.raises(
        ValueError, match="module Linear has no weight_ih_l0 or weight_ih parameter"
    ):
        ref.params_from_torch(torch.nn.Linear(I, H))
    with pytest.raises(ValueError, match=r"proj_size > 0 \(weight_hr_l0\) is not supported"):
        ref.params_from_torch(torch.nn.LSTM(I, H, proj_size=2))
    two = torch.nn.ModuleDict({"a": torch.nn.GRU(I, H), "b": torch.nn.GRU(I, H)})
    with pytest.raises(ValueError, match="several candidates for weight_ih"):
        ref.params_from_torch(two)


def test_module_does_not_import_torch() -> None:
    code = "import sys, rnnkit.reference; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_float32_input_is_computed_in_float64() -> None:
    rng = np.random.default_rng(1)
    params = {
        "weight_ih": rng.standard_normal((H, I)).astype(np.float32),
        "weight_hh": rng.standard_normal((H, H)).astype(np.float32),
        "bias_ih": np.zeros(H, dtype=np.float32),
        "bias_hh": np.zeros(H, dtype=np.float32),
    }
    y, h_n, cache = ref.rnn_forward(params, rng.standard_normal((B, T, I)).astype(np.float32))
    assert y.dtype == h_n.dtype == cache.h.dtype == np.float64
    assert ref.rnn_backward(params, cache, np.ones((B, T, H)))["weight_hh"].dtype == np.float64


def _rnn_params(gates: int = 1, hidden: int = H) -> ref.Params:
    return {
        "weight_ih": np.zeros((gates * hidden, I)),
        "weight_hh": np.zeros((gates * hidden, hidden)),
        "bias_ih": np.zeros(gates * hidden),
        "bias_hh": np.zeros(gates * hidden),
    }


def test_bad_inputs_raise_clear_errors() -> None:
    params = _rnn_params()
    x = np.zeros((B, T, I))
    with pytest.raises(ValueError, match=r"x must have shape \(B, T, I\), got 2 dimensions"):
        ref.rnn_forward(params, np.zeros((T, I)))
    with pytest.raises(ValueError, match="x has 3 input features but weight_ih expects I = 4"):
        ref.rnn_forward(params, np.zeros((B, T, 3)))
    with pytest.raises(ValueError, match=r"at least one time step \(T >= 1\), got T = 0"):
        ref.rnn_forward(params, np.zeros((B, 0, I)))
    with pytest.raises(ValueError, match=r"RNN params are missing \['bias_hh'\]"):
        ref.rnn_forward({k: v for k, v in params.items() if k != "bias_hh"}, x)
    with pytest.raises(
        ValueError, match=r"LSTM weight_hh must have shape \(4\*H, H\), got \(5, 5\)"
    ):
        ref.lstm_forward(params, x)
    bad = {**params, "weight_ih": np.zeros((H + 1, I))}
    with pytest.raises(ValueError, match=r"RNN weight_ih must have shape \(1\*H, I\) = \(5, I\)"):
        ref.rnn_forward(bad, x)
    bad = {**_rnn_params(gates=3), "bias_ih": np.zeros(H)}
    with pytest.raises(
        ValueError, match=r"GRU bias_ih must have shape \(3\*H,\) = \(15,\), got \(5,\)"
    ):
        ref.gru_forward(bad, x)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        ref.rnn_forward(params, x, nonlinearity="sigmoid")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"h0 must have shape \(B, H\) = \(3, 5\), got \(1, 3, 5\)"
    ):
        ref.rnn_forward(params, x, np.zeros((1, B, H)))
    with pytest.raises(ValueError, match=r"c0 must have shape \(B, H\)"):
        ref.lstm_forward(_rnn_params(gates=4), x, None, np.zeros((B, H + 1)))
    with pytest.raises(ValueError, match="x must be convertible to a float64 array"):
        ref.rnn_forward(params, "not numbers")


def test_bad_backward_inputs_raise_clear_errors() -> None:
    params = _rnn_params()
    _, _, cache = ref.rnn_forward(params, np.zeros((B, T, I)))
    with pytest.raises(ValueError, match=r"d_outputs must have shape \(B, T, H\) = \(3, 6, 5\)"):
        ref.rnn_backward(params, cache, np.zeros((B, T - 1, H)))
    with pytest.raises(ValueError, match=r"d_final_state must have shape \(B, H\) = \(3, 5\)"):
        ref.rnn_backward(params, cache, np.zeros((B, T, H)), np.zeros((1, B, H)))
    with pytest.raises(ValueError, match="RNN cache has I = 4, H = 5 but params have I = 4, H = 6"):
        ref.rnn_backward(_rnn_params(hidden=H + 1), cache, np.zeros((B, T, H)))
    lstm_params = _rnn_params(gates=4)
    _, _, lstm_cache = ref.lstm_forward(lstm_params, np.zeros((B, T, I)))
    d_y = np.zeros((B, T, H))
    with pytest.raises(ValueError, match=r"must be a pair \(dL/dh_n, dL/dc_n\), got 3 items"):
        ref.lstm_backward(lstm_params, lstm_cache, d_y, (None, None, None))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"d_final_state\[1\] \(dL/dc_n\) must have shape"):
        ref.lstm_backward(lstm_params, lstm_cache, d_y, (None, np.zeros(H)))
