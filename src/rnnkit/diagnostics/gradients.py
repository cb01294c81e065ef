r"""Vanishing and exploding gradients, measured.

Backpropagation through time multiplies one Jacobian per step: for a loss at the last step,

.. math::

    \frac{\partial L}{\partial h_t} = \frac{\partial L}{\partial h_T}
        \prod_{k=t+1}^{T} \frac{\partial h_k}{\partial h_{k-1}},
    \qquad \frac{\partial h_k}{\partial h_{k-1}} = \mathrm{diag}(1 - h_k^2)\, W_{hh}
    \ \text{(Elman, tanh)}.

When the factors are contractions the product shrinks geometrically (vanishing gradients: the
spectral radius of ``W_hh`` below 1 and saturating tanh); when they expand it grows (exploding
gradients, tamed by clipping). The LSTM's cell state adds a path ``c_t = f * c_{t-1} + ...`` whose
Jacobian is ``diag(f)``, close to the identity when the forget gate is open, and the GRU's update
gate gives ``h_t = (1 - z) * n + z * h_{t-1}`` the same kind of path.

:func:`gradient_flow` runs a layer's cell equations step by step (the explicit path: every
``h_t`` is a node of the graph) and returns ``||dL/dh_t||`` for every t.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rnnkit.nn import functional as RF
from rnnkit.nn.recurrent import GRU, LSTM, RNN

GATES: dict[RF.CellKind, tuple[str, ...]] = {
    "rnn": ("h",),
    "lstm": ("i", "f", "g", "o"),
    "gru": ("r", "z", "n"),
}
"""The gate blocks of each cell's ``W_hh``, in PyTorch's order."""


def _cell_kind(layer: RNN | LSTM | GRU) -> RF.CellKind:
    if isinstance(layer, LSTM):
        return "lstm"
    return "gru" if isinstance(layer, GRU) else "rnn"


def _check_single(layer: RNN | LSTM | GRU) -> None:
    if layer.num_layers != 1 or layer.bidirectional:
        raise ValueError(
            "gradient_flow needs a single-layer unidirectional layer, got "
            f"num_layers={layer.num_layers}, bidirectional={layer.bidirectional}"
        )


def _param(layer: RNN | LSTM | GRU, name: str) -> Tensor:
    value = getattr(layer, name)
    assert isinstance(value, Tensor)
    return value


def hidden_states(layer: RNN | LSTM | GRU, x: Tensor) -> list[Tensor]:
    """Run ``layer``'s cell equations step by step and return every hidden state.

    Args:
        layer: a single-layer, unidirectional :class:`RNN`, :class:`LSTM` or :class:`GRU`.
        x: (B, T, I) inputs (all positions real), starting from the zero state.

    Returns:
        T tensors h_1 .. h_T, each (B, H), all nodes of the autograd graph.
    """
    _check_single(layer)
    B, H = x.shape[0], layer.hidden_size
    w_ih, w_hh = _param(layer, "weight_ih_l0"), _param(layer, "weight_hh_l0")
    b_ih = _param(layer, "bias_ih_l0") if layer.bias else None
    b_hh = _param(layer, "bias_hh_l0") if layer.bias else None
    cell = _cell_kind(layer)
    nonlinearity: RF.Nonlinearity = "relu" if layer.mode == "RNN_RELU" else "tanh"
    gates_x = RF.input_projection(x, w_ih, b_ih)  # (B, T, G), hoisted out of the loop
    zeros = x.new_zeros(B, H)
    state: RF.State = (zeros, zeros) if cell == "lstm" else (zeros,)  # (h_0,) or (h_0, c_0)
    hs = []
    for g in gates_x.unbind(1):  # (B, G) each
        state = RF.cell_step(cell, g, state, w_hh, b_hh, nonlinearity)
        hs.append(state[0])  # h_t, (B, H)
    return hs


def gradient_flow(
    layer: RNN | LSTM | GRU, x: Tensor, loss_fn: Callable[[Tensor], Tensor] | None = None
) -> Tensor:
    """How much of a last-step loss's gradient reaches each earlier hidden state.

    Args:
        layer: a single-layer, unidirectional recurrent layer.
        x: (B, T, I) inputs.
        loss_fn: maps the last hidden state h_T (B, H) to a scalar loss; default ``h_T.sum()``.

    Returns:
        (T,) float tensor: entry t is the batch mean of ``||dL/dh_t||_2`` (t = 0 is the first step).
    """
    with torch.enable_grad():
        hs = hidden_states(layer, x)
        loss = loss_fn(hs[-1]) if loss_fn is not None else hs[-1].sum()
        grads = torch.autograd.grad(loss, hs)
    return torch.stack([g.norm(dim=-1).mean() for g in grads]).detach()


def spectral_radius(layer: RNN | LSTM | GRU) -> dict[str, float]:
    """Largest absolute eigenvalue of each gate's block of layer 0's ``W_hh`` (H x H each).

    For the Elman RNN this is the radius of ``W_hh`` itself ("h"): below 1 the linearised recurrence
    contracts; LSTM blocks are named i, f, g, o and GRU blocks r, z, n.
    """
    names = GATES[_cell_kind(layer)]
    H = layer.hidden_size
    w_hh = _param(layer, "weight_hh_l0").detach().double()  # (G*H, H)
    return {
        name: float(torch.linalg.eigvals(w_hh[k * H : (k + 1) * H]).abs().max())
        for k, name in enumerate(names)
    }
