"""rnnkit.nn.decoder, the lecture's decoder step: its pieces against the modules they mirror."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from rnnkit.nn import Attention, make_cell
from rnnkit.nn.decoder import DecoderLayers, DecoderState, attend, bahdanau_step, stacked_cells

B, S, H, E, V = 3, 5, 7, 4, 11
SCORES = ("additive", "dot", "general", "scaled_dot")


@pytest.mark.parametrize("score", SCORES)
def test_attend_equals_the_attention_module(score: str) -> None:
    """The written-out scores, softmax and weighted sum equal Attention.forward (float64)."""
    torch.manual_seed(0)
    attention = Attention(H, H, score=score).double()  # type: ignore[arg-type]
    s = torch.randn(B, H, dtype=torch.float64)  # (B, Dq)
    h = torch.randn(B, S, H, dtype=torch.float64)  # (B, S, Dk)
    mask = torch.arange(S)[None] < torch.tensor([5, 3, 1])[:, None]  # (B, S)
    c, a = attend(attention, s, h, mask)
    c_ref, a_ref = attention(s, h, mask=mask)
    assert_close(c, c_ref)
    assert_close(a, a_ref)
    assert torch.all(a[~mask] == 0)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_stacked_cells_feed_each_layer_the_new_h_below(cell: str) -> None:
    torch.manual_seed(0)
    cells = [make_cell(cell, E, H), make_cell(cell, H, H)]
    hidden = torch.randn(2, B, H)
    memory = torch.randn(2, B, H) if cell == "lstm" else None
    x = torch.randn(B, E)
    new = stacked_cells(cells, nn.Identity(), x, DecoderState(hidden, memory, None))
    first = cells[0](x, (hidden[0], memory[0])) if memory is not None else cells[0](x, hidden[0])
    below = first[0] if isinstance(first, tuple) else first
    second = (
        cells[1](below, (hidden[1], memory[1]))
        if memory is not None
        else cells[1](below, hidden[1])
    )
    top = second[0] if isinstance(second, tuple) else second
    assert_close(new.hidden, torch.stack([below, top]))
    assert (new.cell is None) == (cell != "lstm")


def test_fixed_context_step_ignores_the_attention_and_returns_no_weights() -> None:
    torch.manual_seed(0)
    De = 6
    layers = DecoderLayers(
        cells=[make_cell("gru", E + De, H)],
        attention=None,
        out_state=nn.Linear(H, E, bias=False),
        out_context=nn.Linear(De, E, bias=False),
        out_embed=nn.Linear(E, E),
        output=nn.Linear(E, V),
        dropout=nn.Identity(),
    )
    state = DecoderState(torch.randn(1, B, H), None, None)
    context = torch.randn(B, De)
    h = torch.randn(B, S, De)
    mask = torch.ones(B, S, dtype=torch.bool)
    x_t = torch.randn(B, E)
    step = bahdanau_step(layers, x_t, state, h, mask, context)
    assert step.logits.shape == (B, V)
    assert step.attention is None
    assert step.state.hidden.shape == (1, B, H)
    other_states = bahdanau_step(layers, x_t, state, torch.full_like(h, 1e3), mask, context)
    assert_close(other_states.logits, step.logits)  # only c is read, never the states h


def test_decoder_state_index_select_reorders_rows() -> None:
    state = DecoderState(torch.randn(2, B, H), torch.randn(2, B, H), torch.randn(B, E))
    rows = torch.tensor([2, 0, 0])
    picked = state.index_select(rows)
    assert picked.cell is not None and picked.feed is not None and state.cell is not None
    assert_close(picked.hidden, state.hidden[:, rows])
    assert_close(picked.cell, state.cell[:, rows])
    assert_close(picked.feed, state.feed[rows])  # type: ignore[index]
