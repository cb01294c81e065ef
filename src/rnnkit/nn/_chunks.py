"""The fused backend over exact variable lengths: torch's kernels on a few chunks of time.

Private to :mod:`rnnkit.nn.recurrent`, whose module docstring describes the method. Here:

- :func:`fused_kernel`: one call of ``torch.lstm`` / ``torch.gru`` / ``torch.rnn_tanh`` /
  ``torch.rnn_relu``, batch first.
- :func:`plan_chunks`: where to cut the time axis (a dynamic programme trading padding against
  the fixed cost of a kernel call).
- :func:`fused_direction`: one layer and direction, one fused call per chunk on the sequences
  still running at its start, the state carried from chunk to chunk.

Shapes: B batch, T time, I input features, H hidden units, L layers, D directions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.nn.functional import State

Mode = Literal["LSTM", "GRU", "RNN_TANH", "RNN_RELU"]
_FREEZE = 1e4  # saturates sigmoid to exactly 0 and 1 (float16 still holds it)


def fused_kernel(
    mode: Mode,
    x: Tensor,
    state: State,
    weights: list[Tensor],
    has_bias: bool,
    num_layers: int,
    dropout: float,
    train: bool,
    bidirectional: bool,
) -> tuple[Tensor, State]:
    """One call of torch's fused kernel, batch first: x (B, T, I) -> out (B, T, D*H), state.

    ``train`` is the kernel's training flag: it applies ``dropout`` between layers and, on cuDNN,
    keeps what the backward pass needs (cuDNN refuses a backward through a call made without it).
    ``state`` is (h,) or (h, c), each (L*D, B, H).
    """
    if mode == "LSTM":
        out, h, c = torch.lstm(
            x, state, weights, has_bias, num_layers, dropout, train, bidirectional, True
        )
        return out, (h, c)
    kernel = {"GRU": torch.gru, "RNN_TANH": torch.rnn_tanh, "RNN_RELU": torch.rnn_relu}[mode]
    out, h = kernel(x, state[0], weights, has_bias, num_layers, dropout, train, bidirectional, True)
    return out, (h,)


def plan_chunks(lens: Sequence[int], call_cost: float = 64.0) -> list[int]:
    """Where to cut the time axis of a length-sorted batch: the ends of the fused calls.

    A call over steps [s, e) processes the sequences still running at s (length > s), so it costs
    ``active(s) * (e - s)`` token steps, plus ``call_cost`` token steps of fixed cost (weight
    reorders and kernel start-up). Cutting at every distinct length skips all padding but makes
    many short calls; one cut at max(lens) is the plain padded run. This dynamic programme over the
    distinct lengths minimises the total cost. Every end is a length, the last is max(lens).

    Args:
        lens: the B lengths, in any order.
        call_cost: fixed cost of one fused call, in token steps.

    Returns:
        The chunk ends, strictly increasing.
    """
    cuts = [0, *sorted(set(lens))]
    running = [sum(1 for n in lens if n > c) for c in cuts]  # active(cut)
    best = [0.0] + [float("inf")] * (len(cuts) - 1)
    back = [0] * len(cuts)
    for j in range(1, len(cuts)):
        for i in range(j):
            cost = best[i] + call_cost + running[i] * (cuts[j] - cuts[i])
            if cost < best[j]:
                best[j], back[j] = cost, i
    ends = []
    j = len(cuts) - 1
    while j > 0:
        ends.append(cuts[j])
        j = back[j]
    return ends[::-1]


def _freeze_weights(weights: list[Tensor]) -> list[Tensor]:
    """LSTM weights with one more input column that pins i = 0 and f = 1 (see fused_direction).

    A ``_FREEZE`` in that column saturates sigmoid exactly (0 and 1 in float32 and float64), so at
    a position whose extra input is 1 the cell keeps c_t = c_{t-1} bit for bit and passes no
    gradient to any gate but o, and o only feeds the h of that position, which is masked out. The
    padded inputs are zero (the layer zeroes them), so nothing can outweigh the column.
    """
    weight_ih = weights[0]  # (4H, I)
    H = weight_ih.shape[0] // 4
    column = weight_ih.new_zeros(4 * H, 1)  # (4H, 1)
    column[:H] = -_FREEZE  # i
    column[H : 2 * H] = _FREEZE  # f
    return [torch.cat([weight_ih, column], dim=1), *weights[1:]]  # (4H, I + 1), ...


def fused_direction(
    mode: Mode,
    weights: list[Tensor],
    has_bias: bool,
    x: Tensor,
    lengths: Tensor,
    lens: Sequence[int],
    state: State,
    ends: Sequence[int],
    train: bool,
) -> tuple[Tensor, State]:
    """One layer and direction of the fused kernel over exact variable lengths.

    The batch is sorted longest first. Each chunk [start, end) of ``ends`` runs one fused call on
    the sequences still running at ``start`` (a prefix of the batch); sequences whose length is
    ``end`` or more carry their state into the next chunk, the others end inside the chunk: their
    outputs past their end are zeroed, their final h is gathered from the chunk's outputs at their
    last real step and, for the LSTM, their c is kept frozen past their end by an extra input
    feature (``_freeze_weights``) and read at the end of the chunk.

    Args:
        mode: which kernel.
        weights: weight_ih, weight_hh[, bias_ih, bias_hh] of this layer and direction.
        has_bias: whether ``weights`` holds the biases.
        x: (B, T, I), sorted by length, longest first, exactly zero at padded positions.
        lengths: (B,) the same lengths as ``lens``, on x's device.
        lens: the B lengths, non-increasing, in [1, T].
        state: initial (h,) or (h, c), each (B, H).
        ends: chunk ends from :func:`plan_chunks`.
        train: the kernel's training flag (:func:`fused_kernel`); True when gradients are needed.

    Returns:
        out (B, T, H), exactly zero at padded positions, and the state of each sequence at its own
        last step, each (B, H).
    """
    state = tuple(s.unsqueeze(0) for s in state)  # (1, B, H) as the kernels want it
    B, T = x.shape[0], x.shape[1]
    H = weights[1].shape[1]
    frozen: list[Tensor] | None = None
    outs: list[Tensor] = []
    final: list[State] = []
    start, b = 0, B
    for end in ends:
        still = b
        while still > 0 and lens[still - 1] <= end:
            still -= 1  # rows [still, b) end in this chunk
        chunk_x, chunk_weights = x[:b, start:end], weights  # (b, t, I)
        ragged = lens[b - 1] < end  # someone ends before the chunk does
        if ragged:
            steps = torch.arange(start, end, device=x.device)  # (t,)
            real = steps < lengths[:b].unsqueeze(1)  # (b, t)
            if mode == "LSTM":
                frozen = _freeze_weights(weights) if frozen is None else frozen
                past = (~real).unsqueeze(2).to(x.dtype)  # (b, t, 1)
                chunk_x, chunk_weights = torch.cat([chunk_x, past], dim=2), frozen  # (b, t, I+1)
        out, state = fused_kernel(
            mode, chunk_x, state, chunk_weights, has_bias, 1, 0.0, train, False
        )
        if ragged:
            out = out.masked_fill(~real.unsqueeze(2), 0.0)  # (b, t, H)
        if still < b:
            last = (lengths[still:b] - 1 - start).view(-1, 1, 1).expand(-1, 1, H)  # (n, 1, H)
            h = out[still:b].gather(1, last).transpose(0, 1)  # (1, n, H)
            final.append((h, *(s[:, still:b] for s in state[1:])))
        outs.append(F.pad(out, (0, 0, 0, 0, 0, B - b)))  # (B, t, H)
        state = tuple(s[:, :still] for s in state)
        start, b = end, still
    out = torch.cat(outs, dim=1)  # (B, max(lens), H)
    if start < T:
        out = F.pad(out, (0, 0, 0, T - start))  # (B, T, H)
    return out, tuple(
        torch.cat([f[k] for f in reversed(final)], dim=1)[0] for k in range(len(state))
    )
