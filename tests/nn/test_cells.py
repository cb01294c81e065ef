"""RNNCell/LSTMCell/GRUCell modules: parity with torch.nn cells, state dicts, gradcheck, errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor

from rnnkit.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

B, E, H = 3, 4, 7
ATOL = RTOL = 1e-6

# name -> (rnnkit class, torch.nn class, extra constructor kwargs)
KINDS: dict[str, tuple[type[Any], type[torch.nn.RNNCellBase], dict[str, Any]]] = {
    "rnn_tanh": (RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (GRUCell, torch.nn.GRUCell, {}),
}


def make_pair(kind: str, bias: bool = True) -> tuple[Any, torch.nn.RNNCellBase]:
    ours_cls, ref_cls, kwargs = KINDS[kind]
    torch.manual_seed(0)
    ours = ours_cls(E, H, bias=bias, **kwargs)
    ref = ref_cls(E, H, bias=bias, **kwargs)
    ref.load_state_dict(ours.state_dict())
    return ours, ref


def random_state(kind: str, dtype: torch.dtype = torch.float32) -> Any:
    if kind == "lstm":
        return (torch.randn(B, H, dtype=dtype), torch.randn(B, H, dtype=dtype))
    return torch.randn(B, H, dtype=dtype)


def as_list(state: Any) -> list[Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_parity_with_torch_cells(kind: str, with_state: bool, bias: bool) -> None:
    ours, ref = make_pair(kind, bias)
    x = torch.randn(B, E, requires_grad=True)
    state = random_state(kind) if with_state else None
    if state is not None:
        for s in as_list(state):
            s.requires_grad_(True)
    got = ours(x, state)
    want = ref(x, state)
    torch.testing.assert_close(got, want, atol=ATOL, rtol=RTOL)

    weights = [torch.randn(B, H) for _ in as_list(got)]
    inputs = [x, *(as_list(state) if state is not None else [])]

    def grads(module: torch.nn.Module, out: Any) -> tuple[Tensor, ...]:
        loss = sum((o * w).sum() for o, w in zip(as_list(out), weights, strict=True))
        return torch.autograd.grad(loss, [*inputs, *module.parameters()])

    torch.testing.assert_close(grads(ours, got), grads(ref, want), atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("kind", list(KINDS))
def test_state_dict_and_init_match_torch(kind: str) -> None:
    ours_cls, ref_cls, kwargs = KINDS[kind]
    torch.manual_seed(5)
    ours = ours_cls(E, H, **kwargs)
    torch.manual_seed(5)
    ref = ref_cls(E, H, **kwargs)
    assert list(ours.state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    for (name, p), (ref_name, q) in zip(
        ours.state_dict().items(), ref.state_dict().items(), strict=True
    ):
        assert name == ref_name and p.shape == q.shape
        assert torch.equal(p, q), name  # same draws: uniform(-1/sqrt(H), 1/sqrt(H)) in order
    # both ways
    other = ours_cls(E, H, **kwargs)
    other.load_state_dict(ref.state_dict())
    ref.load_state_dict(other.state_dict())
    bound = 1.0 / H**0.5
    flat = torch.cat([p.detach().flatten() for p in ours.parameters()])
    assert bound * 0.95 < flat.abs().max() <= bound


def test_no_bias_has_no_bias_parameters() -> None:
    cell = LSTMCell(E, H, bias=False)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh"]
    assert cell.bias_ih is None


@pytest.mark.parametrize("kind", list(KINDS))
def test_gradcheck_float64(kind: str) -> None:
    ours, _ = make_pair(kind)
    ours.double()
    x = torch.randn(B, E, dtype=torch.float64, requires_grad=True)
    state = random_state(kind, torch.float64)
    for s in as_list(state):
        s.requires_grad_(True)
    if kind == "lstm":
        assert torch.autograd.gradcheck(lambda x, h, c: ours(x, (h, c)), (x, *state))
    else:
        assert torch.autograd.gradcheck(lambda x, h: ours(x, h), (x, state))


@pytest.mark.parametrize("kind", list(KINDS))
def test_zero_state_follows_input_dtype(kind: str) -> None:
    ours, ref = make_pair(kind)
    ours.double()
    ref.double()
    x = torch.randn(B, E, dtype=torch.float64)
    out = ours(x)
    assert all(o.dtype == torch.float64 for o in as_list(out))
    torch.testing.assert_close(out, ref(x))


@pytest.mark.parametrize("kind", list(KINDS))
def test_stepping_matches_layer(kind: str) -> None:
    """Cells stepped over T equal the layer with the same weights."""
    ours, _ = make_pair(kind)
    layer_cls = {"rnn_tanh": RNN, "rnn_relu": RNN, "lstm": LSTM, "gru": GRU}[kind]
    layer = layer_cls(E, H, **KINDS[kind][2])
    layer.load_state_dict({f"{k}_l0": v for k, v in ours.state_dict().items()})
    x = torch.randn(B, 5, E)
    out, _ = layer(x)
    state = None
    for t in range(5):
        state = ours(x[:, t], state)
        h = state[0] if isinstance(state, tuple) else state
        torch.testing.assert_close(h, out[:, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", list(KINDS))
def test_errors(kind: str) -> None:
    ours, _ = make_pair(kind)
    name = type(ours).__name__
    with pytest.raises(ValueError, match=rf"{name}: expected x of shape \(B, I\) with I = 4, got"):
        ours(torch.randn(B, 2, E))
    with pytest.raises(
        ValueError, match=r"expected x of shape \(B, I\) with I = 4, got shape \(3, 5\)"
    ):
        ours(torch.randn(B, E + 1))
    bad = torch.zeros(B, H + 1)
    with pytest.raises(
        ValueError, match=r"expected state of shape \(B, H\) = \(3, 7\), got \(3, 8\)"
    ):
        ours(torch.randn(B, E), (bad, bad) if kind == "lstm" else bad)


def test_lstm_cell_state_must_be_a_pair() -> None:
    with pytest.raises(ValueError, match=r"LSTMCell: state must be a tuple \(h, c\)"):
        LSTMCell(E, H)(torch.randn(B, E), torch.zeros(B, H))  # type: ignore[arg-type]


def test_bad_sizes_and_nonlinearity() -> None:
    with pytest.raises(ValueError, match="GRUCell: input_size and hidden_size must be positive"):
        GRUCell(0, H)
    with pytest.raises(ValueError, match="unknown nonlinearity 'elu'; valid: 'tanh', 'relu'"):
        RNNCell(E, H, nonlinearity="elu")  # type: ignore[arg-type]
