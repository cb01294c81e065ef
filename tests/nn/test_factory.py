"""make_layer / make_cell / cell_step: each cell kind, its options, and the exact error messages."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from rnnkit.nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell, check_cell, make_cell, make_layer
from rnnkit.nn.functional import CELLS, cell_step, gru_cell, input_projection, lstm_cell, rnn_cell

B, T, I, H = 3, 5, 4, 7  # noqa: E741 (I: input features)
LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
CELL_MODULES = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


def test_cells_are_sorted() -> None:
    assert CELLS == ("gru", "lstm", "rnn")


@pytest.mark.parametrize("cell", CELLS)
def test_make_layer_builds_each_kind_with_its_options(cell: str) -> None:
    layer = make_layer(
        cell, I, H, num_layers=2, bidirectional=True, dropout=0.25, backend="explicit"
    )
    assert type(layer) is LAYERS[cell]
    assert (layer.input_size, layer.hidden_size, layer.num_layers) == (I, H, 2)
    assert layer.bidirectional and layer.dropout == 0.25 and layer.backend == "explicit"
    assert layer.batch_first
    out, _ = layer(torch.randn(B, T, I), torch.tensor([5, 2, 3]))
    assert out.shape == (B, T, 2 * H)
    assert not make_layer(cell, I, H, bias=False).bias


def test_make_layer_rnn_nonlinearity() -> None:
    assert make_layer("rnn", I, H).mode == "RNN_TANH"
    assert make_layer("rnn", I, H, nonlinearity="relu").mode == "RNN_RELU"


@pytest.mark.parametrize("cell", CELLS)
def test_make_cell_builds_each_kind(cell: str) -> None:
    module = make_cell(cell, I, H)
    assert type(module) is CELL_MODULES[cell]
    assert (module.input_size, module.hidden_size) == (I, H)
    relu = make_cell("rnn", I, H, nonlinearity="relu")
    assert isinstance(relu, RNNCell) and relu.nonlinearity == "relu"


@pytest.mark.parametrize("cell", CELLS)
def test_cell_step_dispatches_to_the_cell(cell: str) -> None:
    module = make_cell(cell, I, H)
    x, h, c = torch.randn(B, I), torch.randn(B, H), torch.randn(B, H)
    gates_x = input_projection(x, module.weight_ih, module.bias_ih)
    state = (h, c) if cell == "lstm" else (h,)
    kind = check_cell(cell)
    got = cell_step(kind, gates_x, state, module.weight_hh, module.bias_hh)
    if cell == "lstm":
        want: tuple[torch.Tensor, ...] = lstm_cell(gates_x, h, c, module.weight_hh, module.bias_hh)
    elif cell == "gru":
        want = (gru_cell(gates_x, h, module.weight_hh, module.bias_hh),)
    else:
        want = (rnn_cell(gates_x, h, module.weight_hh, module.bias_hh),)
    assert_close(got, want)
    assert_close(got, module(x, (h, c)) if cell == "lstm" else (module(x, h),))


def test_unknown_cell_lists_the_valid_cells() -> None:
    message = r"^unknown cell 'x'; valid cells: gru, lstm, rnn$"
    with pytest.raises(ValueError, match=message):
        make_layer("x", I, H)
    with pytest.raises(ValueError, match=message):
        make_cell("x", I, H)
    with pytest.raises(ValueError, match=message):
        check_cell("x")
    with pytest.raises(ValueError, match=r"^unknown cell 'LSTM'; valid cells: gru, lstm, rnn$"):
        make_layer("LSTM", I, H)
    with pytest.raises(ValueError, match=message):
        h = torch.zeros(B, H)
        cell_step("x", h, (h,), torch.zeros(H, H))  # type: ignore[arg-type]


def test_nonlinearity_only_for_rnn() -> None:
    with pytest.raises(
        ValueError, match=r"nonlinearity is only used by cell='rnn', not cell='gru'"
    ):
        make_layer("gru", I, H, nonlinearity="relu")
    with pytest.raises(
        ValueError, match=r"nonlinearity is only used by cell='rnn', not cell='lstm'"
    ):
        make_cell("lstm", I, H, nonlinearity="tanh")
