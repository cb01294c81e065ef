r"""One step of an RNN decoder with attention, written as in the lecture: the reference.

The letters are the lecture's (and :mod:`rnnkit.nn.attention`'s): y_{t-1} the previous target
token and ``x_t = emb(y_{t-1})`` its embedding (B, E); ``s_{t-1}`` the previous decoder state and
``s_t`` the new one (B, H); ``h_i`` the encoder states (B, S, De); ``e_t`` the scores, ``a_t`` the
attention weights (B, S); ``c_t`` the context (B, De); ``o_t`` the output vector (B, E); V the
target vocabulary.

Bahdanau (``"additive"``): the query is the previous state s_{t-1}::

    e_{t,i} = v^T tanh(W s_{t-1} + U h_i)              (B, S)
    a_t     = softmax(e_t)   over the real source positions
    c_t     = sum_i a_{t,i} h_i                        (B, De)
    s_t     = g([x_t; c_t], s_{t-1})                   (B, H)     i.e. s_t = g(y_{t-1}, s_{t-1}, c_t)
    o_t     = tanh(W_s s_t + W_c c_t + W_e x_t + b_o)  (B, E)
    logits  = W_out o_t + b_out                        (B, V)

Fixed context (``"none"``, Sutskever/Cho): ``c_t = c = h_T``, the encoder's final state, at every
step; the rest as above. Both are :func:`bahdanau_step`.

Luong (``"dot"``, ``"general"``) with input feeding, :func:`luong_step`: the query is the *new*
state s_t, and the previous output vector o_{t-1} (zeros at t = 1) is fed in next to x_t::

    s_t     = g([x_t; o_{t-1}], s_{t-1})
    e_{t,i} = s_t^T h_i    (dot)    or    s_t^T W_a h_i    (general)
    a_t, c_t, o_t, logits as above

``g`` is a stack of L cells (:class:`~rnnkit.nn.RNNCell`, :class:`~rnnkit.nn.LSTMCell`,
:class:`~rnnkit.nn.GRUCell`): layer 1 reads the fed input, layer l > 1 reads layer l - 1's new h
(with dropout in between), and s_t is the top layer's h.

These functions are the *reference*: plain and slow (``U h_i`` recomputed at every step, each cell
called on a concatenated input, the scores written out here rather than taken from
:class:`~rnnkit.nn.Attention`). A model's fast path (:class:`rnnkit.models.seq2seq.Seq2Seq`
hoists the projections of all steps out of the time loop and fuses the first cell's matmuls) is
tested equal to them, outputs and gradients. The modules (weights) belong to the model; they come
in as a :class:`DecoderLayers`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from rnnkit.nn.attention import Attention
from rnnkit.nn.cells import LSTMCell


class DecoderState(NamedTuple):
    """The decoder's recurrent state between steps (``s_{t-1}`` and what goes with it).

    Attributes:
        hidden: (L, B, H), each layer's h; ``hidden[-1]`` is s_t.
        cell: (L, B, H), each layer's LSTM memory c; None for RNN and GRU.
        feed: (B, E), the previous output vector o_{t-1} (Luong input feeding); else None.
    """

    hidden: Tensor
    cell: Tensor | None
    feed: Tensor | None

    def index_select(self, rows: Tensor) -> DecoderState:
        """The state of rows ``rows`` (N',) in that order (to reorder or repeat beams)."""
        return DecoderState(
            self.hidden.index_select(1, rows),
            None if self.cell is None else self.cell.index_select(1, rows),
            None if self.feed is None else self.feed.index_select(0, rows),
        )


class DecoderLayers(NamedTuple):
    """The decoder's modules, owned by the model (names as in the module docstring).

    Attributes:
        cells: g, L cells; the first reads (E + Df) features (Df the fed vector's size), the
            others H.
        attention: scores the encoder states; None for the fixed context.
        out_state: W_s, (E, H) without bias. out_context: W_c, (E, De) without bias.
        out_embed: W_e and b_o, (E, E). output: W_out and b_out, (V, E).
        dropout: between the cells' layers and on o_t.
    """

    cells: Sequence[nn.Module]
    attention: Attention | None
    out_state: nn.Module
    out_context: nn.Module
    out_embed: nn.Module
    output: nn.Module
    dropout: nn.Module


class DecoderStep(NamedTuple):
    """One reference step: logits (B, V), the new state, attention weights a_t (B, S) or None."""

    logits: Tensor
    state: DecoderState
    attention: Tensor | None


def scores(attention: Attention, s: Tensor, h: Tensor) -> Tensor:
    """The scores e_i = score(s, h_i) of one query against every encoder state.

    Args:
        attention: holds W, U, b, v (additive) or W_a (general).
        s: the query, (B, Dq).
        h: the encoder states, (B, S, Dk).

    Returns:
        e, (B, S).
    """
    if attention.score == "additive":
        assert attention.query_proj is not None and attention.key_proj is not None
        assert attention.v is not None
        W, U, v = attention.query_proj, attention.key_proj, attention.v
        e: Tensor = v(torch.tanh(W(s)[:, None, :] + U(h))).squeeze(2)  # v^T tanh(W s + U h_i + b)
        return e
    if attention.score == "general":
        assert attention.key_proj is not None
        W_a_h: Tensor = attention.key_proj(h)  # (B, S, Dq), W_a h_i
        return (W_a_h @ s[:, :, None]).squeeze(2)  # s^T W_a h_i
    e = (h @ s[:, :, None]).squeeze(2)  # s^T h_i
    return e / math.sqrt(h.shape[2]) if attention.score == "scaled_dot" else e


def attend(attention: Attention, s: Tensor, h: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``a = softmax(e)`` over the real positions and ``c = sum_i a_i h_i``.

    Args:
        attention: the score's parameters (see :func:`scores`).
        s: the query, (B, Dq).
        h: the encoder states, (B, S, De).
        mask: (B, S) bool, True at real positions.

    Returns:
        c (B, De) and a (B, S).
    """
    e = scores(attention, s, h).masked_fill(~mask, float("-inf"))  # (B, S)
    a = torch.softmax(e, dim=1)  # (B, S)
    c = (a[:, :, None] * h).sum(dim=1)  # (B, De)
    return c, a


def stacked_cells(
    cells: Sequence[nn.Module], dropout: nn.Module, x: Tensor, state: DecoderState
) -> DecoderState:
    """``g``: one step of L stacked cells, layer l reading layer l - 1's new h.

    Args:
        cells: the L cell modules.
        dropout: applied to each layer's h before the next layer reads it.
        x: the first layer's input, (B, E + Df).
        state: the previous state (``hidden`` and ``cell`` (L, B, H)); ``feed`` is not read.

    Returns:
        The new state, ``feed`` None.
    """
    hs, cs = [], []
    for layer, cell in enumerate(cells):
        if isinstance(cell, LSTMCell):
            assert state.cell is not None
            h, c = cell(x, (state.hidden[layer], state.cell[layer]))  # (B, H) each
            cs.append(c)
        else:
            h = cell(x, state.hidden[layer])  # (B, H)
        hs.append(h)
        x = dropout(h)
    return DecoderState(torch.stack(hs), torch.stack(cs) if cs else None, None)


def output_vector(layers: DecoderLayers, s: Tensor, c: Tensor, x: Tensor) -> Tensor:
    """``o = tanh(W_s s + W_c c + W_e x + b_o)``, with dropout: (B, E).

    ``s`` (B, H) the new state, ``c`` (B, De) the context, ``x`` (B, E) the embedded input.
    """
    o: Tensor = layers.dropout(
        torch.tanh(layers.out_state(s) + layers.out_context(c) + layers.out_embed(x))
    )
    return o


def bahdanau_step(
    layers: DecoderLayers,
    x_t: Tensor,
    state: DecoderState,
    h: Tensor,
    mask: Tensor,
    context: Tensor | None = None,
) -> DecoderStep:
    """One Bahdanau decoder step (or, with ``context``, a fixed-context step).

    Args:
        layers: the decoder's modules (``attention`` additive, or None with ``context``).
        x_t: emb(y_{t-1}), (B, E).
        state: s_{t-1} and the rest of the previous state.
        h: the encoder states, (B, S, De).
        mask: (B, S) bool, True at real source positions.
        context: the fixed context c = h_T (B, De) for ``attention="none"``; else None.

    Returns:
        logits (B, V), the new state and a_t (B, S) (None with a fixed context).
    """
    s_prev = state.hidden[-1]  # (B, H), s_{t-1}
    if context is None:
        assert layers.attention is not None
        c_t, a_t = attend(layers.attention, s_prev, h, mask)  # e, a, c from s_{t-1}
    else:
        c_t, a_t = context, None
    state = stacked_cells(layers.cells, layers.dropout, torch.cat([x_t, c_t], dim=1), state)
    s_t = state.hidden[-1]  # (B, H), s_t = g([x_t; c_t], s_{t-1})
    o_t = output_vector(layers, s_t, c_t, x_t)  # (B, E)
    return DecoderStep(layers.output(o_t), state, a_t)


def luong_step(
    layers: DecoderLayers, x_t: Tensor, state: DecoderState, h: Tensor, mask: Tensor
) -> DecoderStep:
    """One Luong decoder step with input feeding (dot or general score).

    Args:
        layers: the decoder's modules (``attention`` dot or general).
        x_t: emb(y_{t-1}), (B, E).
        state: s_{t-1} and, in ``feed``, o_{t-1} (B, E) (zeros at the first step).
        h: the encoder states, (B, S, De).
        mask: (B, S) bool, True at real source positions.

    Returns:
        logits (B, V), the new state (``feed`` = o_t) and a_t (B, S).
    """
    assert layers.attention is not None and state.feed is not None
    x = torch.cat([x_t, state.feed], dim=1)  # (B, 2E), [x_t; o_{t-1}]
    state = stacked_cells(layers.cells, layers.dropout, x, state)
    s_t = state.hidden[-1]  # (B, H)
    c_t, a_t = attend(layers.attention, s_t, h, mask)  # e, a, c from s_t
    o_t = output_vector(layers, s_t, c_t, x_t)  # (B, E)
    return DecoderStep(layers.output(o_t), state._replace(feed=o_t), a_t)
