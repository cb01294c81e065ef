"""Tests for rnnkit.models.captioner: the equations, forward == step, the shared search, learning."""

from __future__ import annotations

import math
from itertools import product

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import Tensor
from torch.testing import assert_close

from rnnkit.decoding import SearchConfig, beam_search, greedy_search, sample
from rnnkit.models.captioner import (
    Captioner,
    CaptionerConfig,
    CaptionMemory,
    doubly_stochastic_penalty,
)
from rnnkit.nn.decoder import DecoderState, attend

PAD, BOS, EOS = 0, 1, 2
B, T, HG, WG, D, V = 3, 5, 2, 3, 5, 11  # a 2 x 3 grid: a transposed grid fails
CELLS = ("lstm", "gru")
ATTENTIONS = ("none", "soft")
COMBOS = [(c, a, g) for c, a, g in product(CELLS, ATTENTIONS, (True, False)) if a == "soft" or g]


def tiny(cell: str = "lstm", attention: str = "soft", **overrides: object) -> Captioner:
    """The shared tiny captioner: H = 7, E = 6, Ha = 4, D = 5, V = 11, no dropout, eval mode."""
    torch.manual_seed(0)
    fields: dict[str, object] = {
        "feature_size": D,
        "vocab_size": V,
        "embedding_size": 6,
        "hidden_size": 7,
        "attention_size": 4,
        "attention": attention,
        "cell": cell,
        "dropout": 0.0,
    }
    fields.update(overrides)
    return Captioner(CaptionerConfig.model_validate(fields)).eval()


def grids(n: int = B, seed: int = 0) -> Tensor:
    """(n, 2, 3, D) random grid features."""
    return torch.randn(n, HG, WG, D, generator=torch.Generator().manual_seed(seed))


def tokens(n: int = B, length: int = T, seed: int = 1) -> Tensor:
    """(n, length): bos then random words in [3, V)."""
    words = torch.randint(3, V, (n, length - 1), generator=torch.Generator().manual_seed(seed))
    return torch.cat([torch.full((n, 1), BOS), words], dim=1)


def gradients(model: Captioner, output: Tensor, probe: Tensor) -> list[Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    return list(torch.autograd.grad((output * probe).sum(), params, retain_graph=True))


# --------------------------------------------------------------------------- the plain equations


def textbook_logits(model: Captioner, grid: Tensor, tokens_in: Tensor) -> tuple[Tensor, Tensor]:
    """The module docstring's equations, one step at a time, written plainly.

    U h_{i,j} is recomputed at every step (nn.decoder.attend on the grid read row by row), the
    cell module is called on the concatenated input [x_t; z_t]. Returns logits (B, T, V) and the
    attention (B, T, Hg, Wg) (zeros without attention).
    """
    Bn, Hg, Wg, Dn = grid.shape
    h = grid.reshape(Bn, Hg * Wg, Dn)  # (B, S, D), cell (i, j) at position i * Wg + j
    mask = torch.ones(Bn, Hg * Wg, dtype=torch.bool)
    hbar = h.mean(dim=1)  # (B, D)
    s = torch.tanh(model.init_hidden(hbar))  # (B, H)
    m = None if model.init_cell is None else torch.tanh(model.init_cell(hbar))
    logits, weights = [], []
    for t in range(tokens_in.shape[1]):
        x_t = model.embed(tokens_in[:, t])  # (B, E)
        if model.attention is not None:
            c_t, a_t = attend(model.attention, s, h, mask)  # (B, D), (B, S)
            beta = torch.ones(Bn, 1) if model.gate is None else torch.sigmoid(model.gate(s))
            z_t = beta * c_t
            cell_in = torch.cat([x_t, z_t], dim=1)
        else:
            a_t, z_t, cell_in = torch.zeros(Bn, Hg * Wg), None, x_t
        if m is not None:
            s, m = model.cell(cell_in, (s, m))
        else:
            s = model.cell(cell_in, s)
        pre = model.out_state(s) + model.out_embed(x_t)
        if z_t is not None:
            assert model.out_context is not None
            pre = pre + model.out_context(z_t)
        logits.append(model.output(model.dropout(torch.tanh(pre))))
        weights.append(a_t.reshape(Bn, Hg, Wg))
    return torch.stack(logits, dim=1), torch.stack(weights, dim=1)


@pytest.mark.parametrize(("cell", "attention", "gate"), COMBOS)
def test_forward_and_step_equal_the_textbook_equations(
    cell: str, attention: str, gate: bool
) -> None:
    """The hoisted, fused forward and the protocol's step: outputs and gradients."""
    model = tiny(cell, attention, gate=gate).double()
    grid, tokens_in = grids().double(), tokens()
    reference, reference_attention = textbook_logits(model, grid, tokens_in)
    probe = torch.randn_like(reference)
    reference_grads = gradients(model, reference, probe)

    out = model(grid, tokens_in)
    assert_close(out.logits, reference, atol=1e-10, rtol=1e-8)
    assert_close(gradients(model, out.logits, probe), reference_grads, atol=1e-10, rtol=1e-8)
    if attention == "soft":
        assert out.attention is not None
        assert_close(out.attention, reference_attention, atol=1e-12, rtol=1e-10)
    else:
        assert out.attention is None

    memory = model.encode(grid)
    state, stepped = memory.init_state, []
    for t in range(T):
        step = model.step(tokens_in[:, t], state, memory)
        assert_close(step.log_probs, torch.log_softmax(step.logits, dim=-1))
        stepped.append(step.logits)
        state = step.state
    steps = torch.stack(stepped, dim=1)  # (B, T, V)
    assert_close(steps, reference, atol=1e-10, rtol=1e-8)
    assert_close(gradients(model, steps, probe), reference_grads, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize(("cell", "attention"), list(product(CELLS, ATTENTIONS)))
def test_forward_equals_stepping_token_by_token_in_float32_with_dropout_off(
    cell: str, attention: str
) -> None:
    model = tiny(cell, attention, dropout=0.3).eval()
    grid, tokens_in = grids(seed=4), tokens(seed=5)
    out = model(grid, tokens_in)
    probe = torch.randn_like(out.logits)
    memory = model.encode(grid)
    state, logits = memory.init_state, []
    for t in range(T):
        step = model.step(tokens_in[:, t], state, memory)
        if out.attention is None:
            assert step.attention is None
        else:
            assert step.attention is not None
            assert_close(step.attention, out.attention[:, t])
        logits.append(step.logits)
        state = step.state
    stepped = torch.stack(logits, dim=1)
    assert_close(stepped, out.logits)
    assert_close(gradients(model, stepped, probe), gradients(model, out.logits, probe))


def test_init_state_is_tanh_of_the_projected_mean_feature() -> None:
    model = tiny("lstm", "soft")
    grid = grids()
    memory = model.encode(grid)
    hbar = grid.mean(dim=(1, 2))  # (B, D)
    assert memory.init_state.hidden.shape == (1, B, 7)
    assert_close(memory.init_state.hidden[0], torch.tanh(model.init_hidden(hbar)))
    assert memory.init_state.cell is not None and model.init_cell is not None
    assert_close(memory.init_state.cell[0], torch.tanh(model.init_cell(hbar)))
    assert memory.lengths.tolist() == [HG * WG] * B
    assert model.attention is not None and memory.keys is not None
    assert memory.keys.shape == (B, HG, WG, 4)
    assert_close(memory.keys, model.attention.project_keys(grid))
    assert tiny("gru", "none").encode(grid).init_state.cell is None
    assert tiny("gru", "none").encode(grid).keys is None


def test_the_keys_are_projected_once_per_image_not_per_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = tiny("lstm", "soft")
    assert model.attention is not None
    calls = []
    project = model.attention.project_keys
    monkeypatch.setattr(model.attention, "project_keys", lambda k: calls.append(1) or project(k))
    model(grids(), tokens())
    assert len(calls) == 1
    greedy_search(model, model.encode(grids()), max_len_a=0.0, max_len_b=6)
    assert len(calls) == 2


# ----------------------------------------------------------------------------- attention, penalty


@pytest.mark.parametrize("cell", CELLS)
def test_attention_sums_to_one_over_the_grid_at_every_step(cell: str) -> None:
    model = tiny(cell, "soft")
    out = model(grids(), tokens())
    assert out.attention is not None
    assert out.attention.shape == (B, T, HG, WG)
    assert_close(out.attention.sum(dim=(2, 3)), torch.ones(B, T))
    assert bool((out.attention > 0).all())


def test_doubly_stochastic_penalty_equals_a_hand_computation() -> None:
    # B = 2 captions, T = 3 steps, a 1 x 2 grid; caption 1 has 2 real steps.
    attention = torch.tensor(
        [
            [[[0.5, 0.5]], [[0.25, 0.75]], [[1.0, 0.0]]],
            [[[0.1, 0.9]], [[0.3, 0.7]], [[0.6, 0.4]]],
        ]
    )
    mask = torch.tensor([[True, True, True], [True, True, False]])
    # caption 0: cell sums 1.75, 1.25 -> 0.75^2 + 0.25^2 = 0.625
    # caption 1: cell sums 0.4, 1.6 (step 3 masked) -> 0.6^2 + 0.6^2 = 0.72
    assert_close(doubly_stochastic_penalty(attention, mask), torch.tensor([0.625, 0.72]))


def test_doubly_stochastic_penalty_rejects_bad_shapes() -> None:
    with pytest.raises(
        ValueError, match=r"^attention must be \(B, T, Hg, Wg\), got shape \(2, 3\)$"
    ):
        doubly_stochastic_penalty(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(
        ValueError,
        match=r"^mask must be bool of shape \(2, 3\) \(B, T\), got torch.float32 \(2, 3\)$",
    ):
        doubly_stochastic_penalty(torch.zeros(2, 3, 1, 2), torch.ones(2, 3))


# ------------------------------------------------------------------------------ the shared search


def same_hypotheses(left: list, right: list) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert a.tokens == b.tokens and a.ended == b.ended
        assert a.score == pytest.approx(b.score, rel=1e-9, abs=1e-9)
        if a.attention is None:
            assert b.attention is None
        else:
            assert b.attention is not None
            assert a.attention.shape == b.attention.shape
            assert_close(a.attention, b.attention, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize(("cell", "attention"), list(product(CELLS, ATTENTIONS)))
def test_beam_search_with_one_beam_is_greedy_search(cell: str, attention: str) -> None:
    model = tiny(cell, attention).double()
    memory = model.encode(grids(n=4, seed=6).double())
    greedy = greedy_search(model, memory, max_len_a=0.0, max_len_b=8)
    config = SearchConfig(beam_size=1, max_len_a=0.0, max_len_b=8, length_penalty=0.0)
    beam = beam_search(model, memory, config)
    for g, b in zip(greedy, beam, strict=True):
        same_hypotheses(g, b)
        (best,) = g
        if attention == "soft":
            assert best.attention is not None
            assert best.attention.shape == (len(best.tokens) + best.ended, HG, WG)
            assert_close(
                best.attention.sum(dim=(1, 2)), torch.ones(best.attention.shape[0]).double()
            )


@pytest.mark.parametrize(("cell", "attention"), list(product(CELLS, ATTENTIONS)))
def test_batched_beam_search_equals_searching_each_image_alone(cell: str, attention: str) -> None:
    model = tiny(cell, attention).double()
    grid = grids(n=4, seed=7).double()
    config = SearchConfig(beam_size=3, n_best=3, max_len_a=0.0, max_len_b=7, length_penalty=1.0)
    batched = beam_search(model, model.encode(grid), config)
    assert [len(h) for h in batched] == [3, 3, 3, 3]
    for b in range(grid.shape[0]):
        (alone,) = beam_search(model, model.encode(grid[b : b + 1]), config)
        same_hypotheses(batched[b], alone)
        for hyp in alone:
            if attention == "soft":
                assert hyp.attention is not None
                assert hyp.attention.shape == (len(hyp.tokens) + hyp.ended, HG, WG)


def test_a_hypothesis_attention_is_teacher_forcing_on_its_own_words() -> None:
    model = tiny("lstm", "soft").double()
    grid = grids(n=3, seed=8).double()
    config = SearchConfig(beam_size=3, n_best=2, max_len_a=0.0, max_len_b=6)
    for b, hyps in enumerate(beam_search(model, model.encode(grid), config)):
        for hyp in hyps:
            produced = [*hyp.tokens, EOS] if hyp.ended else hyp.tokens
            out = model(grid[b : b + 1], torch.tensor([[BOS, *produced[:-1]]]))
            assert out.attention is not None and hyp.attention is not None
            assert_close(hyp.attention, out.attention[0], atol=1e-10, rtol=1e-8)
            log_p = torch.log_softmax(out.logits[0], -1).gather(1, torch.tensor(produced)[:, None])
            lp = ((5 + len(produced)) / 6) ** config.length_penalty
            assert hyp.score == pytest.approx(float(log_p.sum().detach()) / lp, rel=1e-9)


def test_sampling_decodes_a_captioner_with_its_attention() -> None:
    model = tiny("gru", "soft")
    memory = model.encode(grids())
    g = torch.Generator().manual_seed(0)
    first = sample(model, memory, generator=g, num_samples=2, max_len_a=0.0, max_len_b=6)
    again = sample(
        model,
        memory,
        generator=torch.Generator().manual_seed(0),
        num_samples=2,
        max_len_a=0.0,
        max_len_b=6,
    )
    assert [[h.tokens for h in hs] for hs in first] == [[h.tokens for h in hs] for hs in again]
    for hyps in first:
        assert len(hyps) == 2
        for hyp in hyps:
            assert hyp.attention is not None
            assert hyp.attention.shape == (len(hyp.tokens) + hyp.ended, HG, WG)
            assert PAD not in hyp.tokens and BOS not in hyp.tokens


def test_memory_index_select_repeats_and_reorders_rows() -> None:
    model = tiny("lstm", "soft")
    memory = model.encode(grids())
    rows = torch.tensor([2, 0, 2])
    picked = memory.index_select(rows)
    assert isinstance(picked, CaptionMemory)
    assert_close(picked.features, memory.features[rows])
    assert memory.keys is not None and picked.keys is not None
    assert_close(picked.keys, memory.keys[rows])
    assert picked.lengths.tolist() == [6, 6, 6]
    assert isinstance(picked.init_state, DecoderState)
    assert_close(picked.init_state.hidden, memory.init_state.hidden[:, rows])


# ------------------------------------------------------------------------------ teacher forcing


def test_padding_after_a_caption_does_not_change_the_logits_before_it() -> None:
    model = tiny("lstm", "soft")
    grid, tokens_in = grids(), tokens()
    padded = tokens_in.clone()
    padded[0, 3:] = PAD
    assert_close(model(grid, padded).logits[0, :3], model(grid, tokens_in).logits[0, :3])


def test_scheduled_sampling() -> None:
    model = tiny("lstm", "soft")
    grid, tokens_in = grids(), tokens()
    forced = model(grid, tokens_in)
    # a rate that never fires runs the step-by-step path: the teacher-forced result
    never = model(grid, tokens_in, sampling_rate=1e-12, generator=torch.Generator().manual_seed(0))
    assert_close(never.logits, forced.logits)
    # rate 1 feeds the model's own draws; replayed here with the documented draw order
    sampled = model(grid, tokens_in, sampling_rate=1.0, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    memory = model.encode(grid)
    step = model.step(tokens_in[:, 0], memory.init_state, memory)
    replay = [step.logits]
    for _ in range(1, T):
        probs = torch.softmax(step.logits.index_fill(1, torch.tensor([PAD, BOS]), -math.inf), -1)
        words = torch.multinomial(probs, 1, generator=g)[:, 0]
        torch.rand(B, generator=g)
        step = model.step(words, step.state, memory)
        replay.append(step.logits)
    assert_close(sampled.logits, torch.stack(replay, dim=1))
    assert not torch.allclose(sampled.logits, forced.logits)


def test_first_loss_is_about_log_v() -> None:
    grid, tokens_in = grids(n=16, seed=9), tokens(n=16, length=8, seed=10)
    targets = torch.cat([tokens_in[:, 1:], torch.full((16, 1), EOS)], dim=1)
    for attention, tie, cell in product(ATTENTIONS, (False, True), CELLS):
        model = tiny(cell, attention, tie_embeddings=tie)
        with torch.no_grad():
            logits = model(grid, tokens_in).logits
        loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
        assert abs(float(loss) - math.log(V)) < 0.25, (attention, tie, cell, float(loss))


def test_tied_embeddings_share_one_matrix() -> None:
    model = tiny("lstm", "soft", tie_embeddings=True)
    assert model.output.weight is model.embed.weight
    assert float(model.embed.weight[PAD].detach().abs().sum()) == 0.0


@pytest.mark.parametrize(("cell", "attention"), list(product(CELLS, ATTENTIONS)))
def test_overfits_ten_grids_to_their_exact_captions(cell: str, attention: str) -> None:
    """Ten random grids, each with its own caption of 2 to 5 words: learnt in a few seconds."""
    g = torch.Generator().manual_seed(11)
    n = 10
    grid = torch.randn(n, HG, WG, 8, generator=g)
    captions = [torch.randint(3, 13, (int(k),), generator=g).tolist() for k in range(2, 6)]
    captions = [[*captions[i % 4][i % 3 :], 3 + i] for i in range(n)]  # distinct, 1..5 words
    L = max(map(len, captions)) + 1
    tokens_in = torch.full((n, L), PAD)
    targets = torch.full((n, L), PAD)
    for i, c in enumerate(captions):
        tokens_in[i, : len(c) + 1] = torch.tensor([BOS, *c])
        targets[i, : len(c) + 1] = torch.tensor([*c, EOS])
    torch.manual_seed(0)
    config = CaptionerConfig(
        feature_size=8,
        vocab_size=16,
        embedding_size=16,
        hidden_size=32,
        attention=attention,
        cell=cell,
        dropout=0.0,
    )
    model = Captioner(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        logits = model(grid, tokens_in).logits
        loss = F.cross_entropy(logits.reshape(-1, 16), targets.reshape(-1), ignore_index=PAD)
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first is not None and abs(first - math.log(16)) < 0.3
    model.eval()
    found = greedy_search(model, model.encode(grid), max_len_a=0.0, max_len_b=L + 2)
    assert [h[0].tokens for h in found] == captions
    assert all(h[0].ended for h in found)


# ----------------------------------------------------------------------------------------- errors


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"dropout must be in \[0, 1\), got 1.0"):
        CaptionerConfig(feature_size=5, vocab_size=11, dropout=1.0)
    with pytest.raises(ValidationError, match="hidden_size must be positive, got 0"):
        CaptionerConfig(feature_size=5, vocab_size=11, hidden_size=0)
    with pytest.raises(ValidationError, match=r"eos_id=11 is not a token id \(vocab_size=11\)"):
        CaptionerConfig(feature_size=5, vocab_size=11, eos_id=11)
    with pytest.raises(ValidationError, match="pad_id, bos_id and eos_id must differ, got 0, 1, 1"):
        CaptionerConfig(feature_size=5, vocab_size=11, eos_id=1)
    with pytest.raises(ValidationError, match="attention"):
        CaptionerConfig(feature_size=5, vocab_size=11, attention="hard")  # type: ignore[arg-type]
    assert Captioner.from_config({"feature_size": 5, "vocab_size": 11}).config.hidden_size == 512


def test_bad_inputs_get_one_line_errors() -> None:
    model = tiny("lstm", "soft")
    with pytest.raises(
        ValueError,
        match=r"^grid must be \(B, Hg, Wg, D\) with D=5 and at least one cell, got shape \(3, 2, 3, 4\)$",
    ):
        model.encode(torch.zeros(3, 2, 3, 4))
    with pytest.raises(ValueError, match=r"^tokens_in must be \(B, T\) with the grid's B=3"):
        model(grids(), tokens(n=2))
    with pytest.raises(ValueError, match=r"^sampling_rate must be in \[0, 1\], got 1.5$"):
        model(grids(), tokens(), sampling_rate=1.5)
    memory = model.encode(grids())
    with pytest.raises(ValueError, match=r"^tokens must have shape \(3,\), got \(2,\)$"):
        model.step(torch.tensor([BOS, BOS]), memory.init_state, memory)


def test_grid_positions_tell_the_attention_where_a_cell_is() -> None:
    # Without positions, attention reads a set of cells: moving the cells moves the weights
    # with them. With positions it is not: the same cells at other places are another image.
    flip = torch.tensor([5, 4, 3, 2, 1, 0])  # reverse the 6 cells of the 2 x 3 grid
    grid = grids(1)
    moved = grid.reshape(1, 6, D)[:, flip].reshape(1, HG, WG, D)
    start = torch.full((1,), BOS)
    for positions, equivariant in ((None, True), ((HG, WG), False)):
        model = tiny(grid_positions=positions)
        a = model.step(start, model.encode(grid).init_state, model.encode(grid)).attention
        b = model.step(start, model.encode(moved).init_state, model.encode(moved)).attention
        assert a is not None and b is not None
        same = torch.allclose(a.reshape(6)[flip], b.reshape(6), atol=1e-6)
        assert same is equivariant
    model = tiny(grid_positions=(HG, WG))
    assert model.grid_position is not None and model.grid_position.shape == (HG, WG, D)
    torch.testing.assert_close(
        model.encode(grid).init_state.hidden, tiny().encode(grid).init_state.hidden
    )
    with pytest.raises(
        ValueError, match=r"grid must be \(2, 3\) cells \(grid_positions\), got \(3, 2\)"
    ):
        model.encode(torch.randn(1, WG, HG, D))
    assert tiny("lstm", "none", grid_positions=(HG, WG)).grid_position is None
