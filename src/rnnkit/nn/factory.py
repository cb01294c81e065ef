"""One cell factory: a cell name (``"rnn"``, ``"lstm"``, ``"gru"``) to a layer or a cell module.

Every model config names its recurrent unit with :data:`~rnnkit.nn.functional.CellKind`; these two
functions are the only place that turns that name into a class, so an unknown name fails the same
way everywhere: ``ValueError("unknown cell 'x'; valid cells: gru, lstm, rnn")``.

Shapes: I input features, H hidden units.
"""

from __future__ import annotations

from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnkit.nn.functional import CELLS, CellKind, Nonlinearity, unknown_cell
from rnnkit.nn.recurrent import GRU, LSTM, RNN, Backend


def check_cell(cell: str) -> CellKind:
    """``cell`` as a :data:`~rnnkit.nn.functional.CellKind`, or the ``ValueError`` listing them."""
    for valid in CELLS:
        if cell == valid:
            return valid
    raise unknown_cell(cell)


def make_layer(
    cell: str,
    input_size: int,
    hidden_size: int,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    dropout: float = 0.0,
    backend: Backend = "fused",
    nonlinearity: Nonlinearity | None = None,
    bias: bool = True,
) -> RNN | LSTM | GRU:
    """A recurrent layer: ``RNN``, ``LSTM`` or ``GRU`` of :mod:`rnnkit.nn.recurrent`.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        input_size: I. hidden_size: H.
        num_layers: L. bidirectional: D = 2 when True.
        dropout: on the outputs of every layer but the last (training only).
        backend: ``"fused"`` or ``"explicit"``.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``; only for ``cell="rnn"``.
        bias: use ``bias_ih`` and ``bias_hh``.

    Returns:
        The layer: x (B, T, I) -> out (B, T, D*H) and the final state h (L*D, B, H) (the LSTM:
        (h, c)).

    Raises:
        ValueError: for an unknown cell, or a nonlinearity given for the LSTM or GRU.
    """
    kind = check_cell(cell)
    if kind == "rnn":
        return RNN(
            input_size,
            hidden_size,
            num_layers,
            bidirectional,
            dropout,
            backend,
            nonlinearity or "tanh",
            bias=bias,
        )
    _no_nonlinearity(kind, nonlinearity)
    layer_cls = LSTM if kind == "lstm" else GRU
    return layer_cls(
        input_size, hidden_size, num_layers, bidirectional, dropout, backend, bias=bias
    )


def make_cell(
    cell: str,
    input_size: int,
    hidden_size: int,
    *,
    nonlinearity: Nonlinearity | None = None,
    bias: bool = True,
) -> RNNCell | LSTMCell | GRUCell:
    """A single-step cell: ``RNNCell``, ``LSTMCell`` or ``GRUCell`` of :mod:`rnnkit.nn.cells`.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        input_size: I. hidden_size: H.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``; only for ``cell="rnn"``.
        bias: use ``bias_ih`` and ``bias_hh``.

    Returns:
        The cell: x (B, I) and h (B, H) (the LSTM: (h, c)) -> the next state.

    Raises:
        ValueError: for an unknown cell, or a nonlinearity given for the LSTM or GRU.
    """
    kind = check_cell(cell)
    if kind == "rnn":
        return RNNCell(input_size, hidden_size, bias, nonlinearity or "tanh")
    _no_nonlinearity(kind, nonlinearity)
    cell_cls = LSTMCell if kind == "lstm" else GRUCell
    return cell_cls(input_size, hidden_size, bias)


def _no_nonlinearity(kind: CellKind, nonlinearity: Nonlinearity | None) -> None:
    if nonlinearity is not None:
        raise ValueError(f"nonlinearity is only used by cell='rnn', not cell={kind!r}")
