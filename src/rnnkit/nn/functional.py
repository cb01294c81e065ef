"""The cell equations as pure functions, one time step each, in PyTorch's gate order.

Every cell comes in two forms:

- the *projected* form (``rnn_cell``, ``lstm_cell``, ``gru_cell``) takes the input projection
  ``gates_x = x_t @ W_ih^T + b_ih`` already computed, so that a layer can compute it for all T steps
  with one matmul before the time loop (see :func:`input_projection`);
- the *input* form (``rnn_cell_input``, ``lstm_cell_input``, ``gru_cell_input``) takes ``x_t`` and
  ``weight_ih`` and is the plain textbook step.

Shapes: B batch, I input features, H hidden units, G = k * H gate rows (k = 1 for the Elman RNN,
4 for the LSTM, 3 for the GRU). Weights use ``torch.nn``'s layout: ``weight_ih`` (G, I),
``weight_hh`` (G, H), ``bias_ih`` and ``bias_hh`` (G,).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Nonlinearity = Literal["tanh", "relu"]
NONLINEARITIES: tuple[Nonlinearity, ...] = ("tanh", "relu")

CellKind = Literal["gru", "lstm", "rnn"]
CELLS: tuple[CellKind, ...] = ("gru", "lstm", "rnn")
"""The cell kinds, sorted: what ``make_layer``/``make_cell`` and every model config accept."""

State = tuple[Tensor, ...]
"""A cell's state: (h,) for the RNN and GRU, (h, c) for the LSTM."""


def input_projection(x: Tensor, weight_ih: Tensor, bias_ih: Tensor | None = None) -> Tensor:
    """``W_ih x + b_ih`` for any number of leading dimensions.

    Args:
        x: inputs, (..., I); typically (B, T, I) so that all time steps are projected at once.
        weight_ih: (G, I).
        bias_ih: (G,) or None.

    Returns:
        (..., G), e.g. (B, T, G).
    """
    return F.linear(x, weight_ih, bias_ih)


def _recurrent_term(
    gates_x: Tensor, h: Tensor, weight_hh: Tensor, bias_hh: Tensor | None
) -> Tensor:
    """``gates_x + W_hh h + b_hh`` as one fused ``addmm``: (B, G)."""
    if bias_hh is not None:
        gates_x = gates_x + bias_hh  # (B, G)
    return torch.addmm(gates_x, h, weight_hh.t())  # (B, G)


def rnn_cell(
    gates_x: Tensor,
    h: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None = None,
    nonlinearity: Nonlinearity = "tanh",
) -> Tensor:
    """One step of the Elman RNN from a precomputed input projection.

    .. math::

        h_t = \\tanh(W_{hh} h_{t-1} + W_{ih} x_t + b)

    with ``b = b_ih + b_hh`` and ``tanh`` replaced by ``relu`` when ``nonlinearity="relu"``.

    Args:
        gates_x: ``W_ih x_t + b_ih``, (B, H).
        h: previous hidden state h_{t-1}, (B, H).
        weight_hh: W_hh, (H, H).
        bias_hh: b_hh, (H,) or None (it may also be folded into ``gates_x``).
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        h_t, (B, H).
    """
    pre = _recurrent_term(gates_x, h, weight_hh, bias_hh)  # (B, H), a fresh tensor
    if nonlinearity == "tanh":
        return pre.tanh_()
    if nonlinearity == "relu":
        return pre.relu_()
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}; valid: 'tanh', 'relu'")


def lstm_cell(
    gates_x: Tensor,
    h: Tensor,
    c: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step from a precomputed input projection (gate order i, f, g, o, as torch).

    .. math::

        i &= \\sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\\\
        f &= \\sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\\\
        g &= \\tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\\\
        o &= \\sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\\\
        c_t &= f \\odot c_{t-1} + i \\odot g \\\\
        h_t &= o \\odot \\tanh(c_t)

    Args:
        gates_x: ``W_ih x_t + b_ih``, (B, 4H), rows ordered i, f, g, o.
        h: h_{t-1}, (B, H).
        c: c_{t-1}, (B, H).
        weight_hh: W_hh, (4H, H).
        bias_hh: b_hh, (4H,) or None (it may also be folded into ``gates_x``).

    Returns:
        (h_t, c_t), each (B, H).
    """
    gates = _recurrent_term(gates_x, h, weight_hh, bias_hh)  # (B, 4H)
    i, f, g, o = gates.chunk(4, dim=1)  # 4 x (B, H)
    i = torch.sigmoid(i)
    f = torch.sigmoid(f)
    g = torch.tanh(g)
    o = torch.sigmoid(o)
    c = torch.addcmul(f * c, i, g)  # f * c + i * g, (B, H)
    h = o * torch.tanh(c)  # (B, H)
    return h, c


def gru_cell(
    gates_x: Tensor,
    h: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None = None,
) -> Tensor:
    """One GRU step from a precomputed input projection (gate order r, z, n, as torch).

    .. math::

        r &= \\sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\\\
        z &= \\sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\\\
        n &= \\tanh(W_{in} x_t + b_{in} + r \\odot (W_{hn} h_{t-1} + b_{hn})) \\\\
        h_t &= (1 - z) \\odot n + z \\odot h_{t-1}

    ``b_hn`` sits inside the reset gate's product, so ``bias_hh`` cannot be folded into ``gates_x``.

    Args:
        gates_x: ``W_ih x_t + b_ih``, (B, 3H), rows ordered r, z, n.
        h: h_{t-1}, (B, H).
        weight_hh: W_hh, (3H, H).
        bias_hh: b_hh, (3H,) or None.

    Returns:
        h_t, (B, H).
    """
    gates_h = F.linear(h, weight_hh, bias_hh)  # (B, 3H)
    x_r, x_z, x_n = gates_x.chunk(3, dim=1)  # 3 x (B, H)
    h_r, h_z, h_n = gates_h.chunk(3, dim=1)  # 3 x (B, H)
    # in-place activations on fresh temporaries: fewer allocations, same autograd graph
    r = (x_r + h_r).sigmoid_()
    z = (x_z + h_z).sigmoid_()
    n = torch.addcmul(x_n, r, h_n).tanh_()  # tanh(x_n + r * h_n), (B, H)
    return torch.lerp(n, h, z)  # (1 - z) * n + z * h, (B, H)


def cell_step(
    cell: CellKind,
    gates_x: Tensor,
    state: State,
    weight_hh: Tensor,
    bias_hh: Tensor | None = None,
    nonlinearity: Nonlinearity = "tanh",
) -> State:
    """One step of any cell kind from a precomputed input projection (the one cell dispatch).

    Calls :func:`rnn_cell`, :func:`lstm_cell` or :func:`gru_cell` on a state tuple, so a loop over
    time or layers is written once for all three cells.

    Args:
        cell: ``"rnn"``, ``"lstm"`` or ``"gru"``.
        gates_x: ``W_ih x_t + b_ih``, (B, G).
        state: (h_{t-1},) or, for the LSTM, (h_{t-1}, c_{t-1}), each (B, H).
        weight_hh: (G, H). bias_hh: (G,) or None.
        nonlinearity: for the Elman RNN, ``"tanh"`` or ``"relu"``.

    Returns:
        (h_t,) or (h_t, c_t), each (B, H).
    """
    if cell == "lstm":
        return lstm_cell(gates_x, state[0], state[1], weight_hh, bias_hh)
    if cell == "gru":
        return (gru_cell(gates_x, state[0], weight_hh, bias_hh),)
    if cell == "rnn":
        return (rnn_cell(gates_x, state[0], weight_hh, bias_hh, nonlinearity),)
    raise unknown_cell(cell)


def unknown_cell(cell: str) -> ValueError:
    """The error for a cell name that is not one of :data:`CELLS`."""
    return ValueError(f"unknown cell {cell!r}; valid cells: {', '.join(CELLS)}")


def rnn_cell_input(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
    nonlinearity: Nonlinearity = "tanh",
) -> Tensor:
    """One Elman RNN step from the input: ``h_t = tanh(W_hh h_{t-1} + W_ih x_t + b)``.

    Args:
        x: x_t, (B, I).
        h: h_{t-1}, (B, H).
        weight_ih: (H, I). weight_hh: (H, H). bias_ih, bias_hh: (H,) or None.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        h_t, (B, H).
    """
    return rnn_cell(input_projection(x, weight_ih, bias_ih), h, weight_hh, bias_hh, nonlinearity)


def lstm_cell_input(
    x: Tensor,
    h: Tensor,
    c: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """One LSTM step from the input (equations in :func:`lstm_cell`).

    Args:
        x: x_t, (B, I).
        h, c: h_{t-1} and c_{t-1}, (B, H).
        weight_ih: (4H, I). weight_hh: (4H, H). bias_ih, bias_hh: (4H,) or None.

    Returns:
        (h_t, c_t), each (B, H).
    """
    return lstm_cell(input_projection(x, weight_ih, bias_ih), h, c, weight_hh, bias_hh)


def gru_cell_input(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor | None = None,
    bias_hh: Tensor | None = None,
) -> Tensor:
    """One GRU step from the input (equations in :func:`gru_cell`).

    Args:
        x: x_t, (B, I).
        h: h_{t-1}, (B, H).
        weight_ih: (3H, I). weight_hh: (3H, H). bias_ih, bias_hh: (3H,) or None.

    Returns:
        h_t, (B, H).
    """
    return gru_cell(input_projection(x, weight_ih, bias_ih), h, weight_hh, bias_hh)
