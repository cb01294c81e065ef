"""The explicit backend: one layer and direction, step by step with the pure cells.

Private to :mod:`rnnkit.nn.recurrent`, whose module docstring describes the method (a masked
update on the running prefix of a length-sorted batch). Shapes: B batch, T time, I input features,
H hidden units, G gate rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.nn.functional import CellKind, Nonlinearity, State, cell_step


def explicit_direction(
    cell: CellKind,
    nonlinearity: Nonlinearity,
    x: Tensor,
    state: State,
    weights: Sequence[Tensor],
    lens: Sequence[int] | None,
    reverse: bool,
) -> tuple[Tensor, State]:
    """One layer and direction, step by step with the pure cells of :mod:`rnnkit.nn.functional`.

    The input projection of all T steps is one matmul before the loop. With lengths the state of a
    sequence is updated only at its real steps (a masked update): frozen after its end going
    forward, still the initial state before its last token going backward. The batch is sorted
    longest first, so the sequences running at step t are a prefix of the batch and the update
    computes on that prefix only.

    Args:
        cell: which cell.
        nonlinearity: for the Elman RNN.
        x: (B, T, I), sorted by length, longest first, when ``lens`` is given.
        state: initial (h,) or (h, c), each (B, H).
        weights: ``[weight_ih, weight_hh]`` plus ``[bias_ih, bias_hh]`` when the layer has biases.
        lens: the B lengths, non-increasing, in [1, T]; None when every position is real.
        reverse: run from t = T - 1 down to 0.

    Returns:
        out (B, T, H), zero at padded positions, and the final state, each (B, H).
    """
    B, T = x.shape[0], x.shape[1]
    weight_ih, weight_hh = weights[0], weights[1]
    bias_ih, bias_hh = (weights[2], weights[3]) if len(weights) == 4 else (None, None)
    if cell == "gru":  # b_hn sits inside the reset gate's product: keep b_hh in the cell
        gates_x = F.linear(x, weight_ih, bias_ih)  # (B, T, 3H)
        bias_rec = bias_hh
    else:  # b_ih + b_hh is a plain sum: fold it into the hoisted projection
        both = bias_ih + bias_hh if bias_ih is not None and bias_hh is not None else None
        gates_x = F.linear(x, weight_ih, both)  # (B, T, G)
        bias_rec = None

    steps = gates_x.unbind(1)  # T x (B, G); unbind, not x[:, t], keeps the backward linear in T
    running = [B] * T if lens is None else [sum(1 for n in lens if n > t) for t in range(T)]
    initial, done = state, []  # done: states of the sequences that have ended (going forward)
    rows = 0 if reverse else B  # the state holds rows [0, rows) of the batch
    state = tuple(s[:rows] for s in initial)
    hs: list[Tensor] = []
    for t in reversed(range(T)) if reverse else range(T):
        b = running[t]  # sequences with a real token at t: rows [0, b)
        if b < rows:  # going forward, rows [b, rows) have ended: keep their final state
            done.append(tuple(s[b:rows] for s in state))
            state = tuple(s[:b] for s in state)
        elif b > rows:  # going backward, rows [rows, b) start at their last token
            state = tuple(torch.cat([s, s0[rows:b]]) for s, s0 in zip(state, initial, strict=True))
        rows = b
        if b == 0:
            hs.append(x.new_zeros(B, weight_hh.shape[1]))
            continue
        gates_t = steps[t][:b] if b < B else steps[t]  # (b, G)
        state = cell_step(cell, gates_t, state, weight_hh, bias_rec, nonlinearity)
        hs.append(F.pad(state[0], (0, 0, 0, B - b)) if b < B else state[0])  # (B, H)
    if reverse:
        hs.reverse()
        final = state
    else:
        final = tuple(torch.cat([s, *(d[k] for d in reversed(done))]) for k, s in enumerate(state))
    return torch.stack(hs, dim=1), final  # (B, T, H)
