"""Tests for rnnkit.models.seq2seq: shapes, invariants, a textbook reference, learning, errors."""

from __future__ import annotations

import math
from itertools import product

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import Tensor
from torch.testing import assert_close

from rnnkit.config import ConfigError, build_section
from rnnkit.decoding import greedy_search
from rnnkit.models.seq2seq import DecoderState, EncoderOutput, Seq2Seq, Seq2SeqConfig
from rnnkit.nn.decoder import bahdanau_step, luong_step
from rnnkit.nn.padding import reverse_padded

PAD, BOS, EOS = 0, 1, 2
V, S, B = 11, 7, 3
CELLS = ("rnn", "lstm", "gru")
ATTENTIONS = ("none", "additive", "dot", "general")
COMBOS = list(product(CELLS, ATTENTIONS))


def tiny(cell: str = "lstm", attention: str = "additive", **overrides: object) -> Seq2Seq:
    """The shared tiny model: hidden 32, embedding 16, vocab 11 (dot: unidirectional encoder)."""
    torch.manual_seed(0)
    fields: dict[str, object] = {
        "cell": cell,
        "attention": attention,
        "hidden_size": 32,
        "embedding_size": 16,
        "bidirectional_encoder": attention != "dot",
    }
    fields.update(overrides)
    return Seq2Seq(Seq2SeqConfig.model_validate(fields), V, V).eval()


def batch(sources: list[list[int]], targets: list[list[int]]) -> tuple[Tensor, ...]:
    """Pad token lists into (src (B, S), src_lengths (B,), tgt_in (B, T), tgt_out (B, T))."""
    n = len(sources)
    src = torch.full((n, max(map(len, sources))), PAD)
    T = max(map(len, targets)) + 1
    tgt_in, tgt_out = torch.full((n, T), PAD), torch.full((n, T), PAD)
    for b, (s, t) in enumerate(zip(sources, targets, strict=True)):
        src[b, : len(s)] = torch.tensor(s)
        tgt_in[b, : len(t) + 1] = torch.tensor([BOS, *t])
        tgt_out[b, : len(t) + 1] = torch.tensor([*t, EOS])
    return src, torch.tensor([len(s) for s in sources]), tgt_in, tgt_out


def random_batch(seed: int = 0, lengths: tuple[int, ...] = (7, 4, 2)) -> tuple[Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    sources = [torch.randint(3, V, (n,), generator=g).tolist() for n in lengths]
    return batch(sources, [s[::-1] for s in sources])


# ------------------------------------------------------------------- the reference step (nn.decoder)


def reference_logits(model: Seq2Seq, memory: EncoderOutput, tgt_in: Tensor) -> Tensor:
    """The lecture's step of :mod:`rnnkit.nn.decoder`, called once per position: (B, T, V)."""
    layers, state, logits = model.decoder_layers, memory.init_state, []
    for t in range(tgt_in.shape[1]):
        x_t = model.dropout(model.tgt_embed(tgt_in[:, t]))  # (B, E)
        if model.luong:
            step = luong_step(layers, x_t, state, memory.states, memory.mask)
        else:
            step = bahdanau_step(layers, x_t, state, memory.states, memory.mask, memory.context)
        logits.append(step.logits)
        state = step.state
    return torch.stack(logits, dim=1)


def textbook_init_state(model: Seq2Seq, src: Tensor, lengths: Tensor) -> list[Tensor]:
    """s_0 (and the LSTM's c_0) per layer, from the encoder's final state and the bridge."""
    cfg = model.config
    _, final = model.encoder(model.src_embed(src), lengths=lengths)
    parts = final if isinstance(final, tuple) else (final,)  # each (L*D, B, He)
    D = 2 if cfg.bidirectional_encoder else 1
    out = []
    for part, bridge in zip(parts, (model.bridge, model.bridge_cell), strict=False):
        for layer in range(cfg.num_layers):
            h = torch.cat([part[D * layer + d] for d in range(D)], dim=-1)  # (B, De), fwd; bwd
            out.append(torch.tanh(bridge(h)) if bridge is not None else h)
    return out


@pytest.mark.parametrize("bidirectional", [True, False], ids=["bi", "uni"])
@pytest.mark.parametrize("cell", CELLS)
def test_encode_init_state_is_the_bridged_final_state(cell: str, bidirectional: bool) -> None:
    model = tiny(cell, "additive", num_layers=2, bidirectional_encoder=bidirectional)
    src, lengths, _, _ = random_batch()
    init = model.encode(src, lengths).init_state
    layers = [*init.hidden, *(() if init.cell is None else init.cell)]
    assert_close(layers, textbook_init_state(model, src, lengths))


def gradients(model: Seq2Seq, output: Tensor, probe: Tensor) -> list[Tensor]:
    params = [p for p in model.parameters() if p.requires_grad]
    return list(torch.autograd.grad((output * probe).sum(), params, retain_graph=True))


@pytest.mark.parametrize(("cell", "attention"), COMBOS)
def test_fast_path_equals_the_reference_step(cell: str, attention: str) -> None:
    """forward (hoisted, fused) and step equal nn.decoder's lecture step: outputs and gradients."""
    model = tiny(cell, attention, num_layers=2).double()
    src, lengths, tgt_in, _ = random_batch()
    reference = reference_logits(model, model.encode(src, lengths), tgt_in)  # (B, T, V)
    probe = torch.randn_like(reference)
    reference_grads = gradients(model, reference, probe)

    fast = model(src, lengths, tgt_in)
    assert_close(fast.logits, reference, atol=1e-5, rtol=1e-5)
    assert_close(gradients(model, fast.logits, probe), reference_grads, atol=1e-5, rtol=1e-5)

    memory = model.encode(src, lengths)
    state, log_probs = memory.init_state, []
    for t in range(tgt_in.shape[1]):
        step = model.step(tgt_in[:, t], state, memory)
        log_probs.append(step.log_probs)
        state = step.state
    stepped = torch.stack(log_probs, dim=1)  # (B, T, V)
    assert_close(stepped, torch.log_softmax(reference, -1), atol=1e-5, rtol=1e-5)
    reference_grads = gradients(model, torch.log_softmax(reference, -1), probe)
    assert_close(gradients(model, stepped, probe), reference_grads, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(("cell", "attention"), COMBOS)
def test_shapes(cell: str, attention: str) -> None:
    model = tiny(cell, attention)
    src, lengths, tgt_in, _ = random_batch()
    out = model(src, lengths, tgt_in)
    assert out.logits.shape == (B, tgt_in.shape[1], V)
    if attention == "none":
        assert out.attention is None
    else:
        assert out.attention is not None
        assert out.attention.shape == (B, tgt_in.shape[1], S)
    enc = model.encode(src, lengths)
    De = 32 if attention == "dot" else 64
    assert enc.states.shape == (B, S, De)
    assert enc.mask.tolist() == (torch.arange(S)[None] < lengths[:, None]).tolist()
    assert enc.init_state.hidden.shape == (1, B, 32)
    assert (enc.init_state.cell is not None) == (cell == "lstm")
    assert (enc.context is None) == (attention != "none")


def test_first_loss_is_about_log_v() -> None:
    src, lengths, tgt_in, tgt_out = random_batch(seed=3, lengths=(7, 6, 5, 4, 3, 2, 7, 5))
    for attention, tie in product(ATTENTIONS, (False, True)):
        model = tiny("lstm", attention, tie_embeddings=tie)
        with torch.no_grad():
            logits = model(src, lengths, tgt_in).logits
        loss = F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD)
        assert abs(float(loss) - math.log(V)) < 0.25, (attention, tie, float(loss))


# ------------------------------------------------------------------------------------ invariants


@pytest.mark.parametrize(("cell", "attention"), COMBOS)
def test_padded_batch_equals_each_example_alone(cell: str, attention: str) -> None:
    model = tiny(cell, attention, num_layers=2, reverse_source=True)
    src, lengths, tgt_in, tgt_out = random_batch(seed=1)
    out = model(src, lengths, tgt_in)
    for b in range(B):
        n, m = int(lengths[b]), int((tgt_out[b] != PAD).sum())
        alone = model(src[b : b + 1, :n], lengths[b : b + 1], tgt_in[b : b + 1, :m])
        assert_close(alone.logits[0], out.logits[b, :m])
        if out.attention is not None:
            assert alone.attention is not None
            assert_close(alone.attention[0], out.attention[b, :m, :n])


@pytest.mark.parametrize(("cell", "attention"), COMBOS)
def test_forward_equals_step_calls(cell: str, attention: str) -> None:
    model = tiny(cell, attention, num_layers=2)
    src, lengths, tgt_in, _ = random_batch(seed=2)
    out = model(src, lengths, tgt_in)
    enc = model.encode(src, lengths)
    state = enc.init_state
    for t in range(tgt_in.shape[1]):
        step = model.step(tgt_in[:, t], state, enc)
        assert_close(step.log_probs, torch.log_softmax(out.logits[:, t], -1))
        if out.attention is None:
            assert step.attention is None
        else:
            assert step.attention is not None
            assert_close(step.attention, out.attention[:, t])
        state = step.state


@pytest.mark.parametrize("attention", ["additive", "dot", "general"])
def test_attention_rows_sum_to_one_with_zero_weight_on_padding(attention: str) -> None:
    model = tiny("gru", attention)
    src, lengths, tgt_in, _ = random_batch(seed=4)
    weights = model(src, lengths, tgt_in).attention  # (B, T, S)
    assert weights is not None
    assert_close(weights.sum(-1), torch.ones(B, tgt_in.shape[1]))
    padding = (torch.arange(S)[None] >= lengths[:, None])[:, None, :].expand_as(weights)
    assert torch.equal(weights[padding], torch.zeros(int(padding.sum())))
    assert bool((weights[~padding] > 0).all())


def test_reverse_source_reads_the_source_backwards() -> None:
    model = tiny("lstm", "additive", reverse_source=True)
    plain = Seq2Seq(model.config.model_copy(update={"reverse_source": False}), V, V).eval()
    plain.load_state_dict(model.state_dict())
    src, lengths, tgt_in, _ = random_batch(seed=5)
    flipped = reverse_padded(src[:, :, None], lengths)[:, :, 0]  # (B, S)
    assert flipped[1].tolist() == [*src[1, :4].flip(0).tolist(), PAD, PAD, PAD]
    ours = model(src, lengths, tgt_in)
    theirs = plain(flipped, lengths, tgt_in)
    assert_close(ours.logits, theirs.logits)
    assert ours.attention is not None and theirs.attention is not None
    # Attention weights stay in the given source order.
    assert_close(ours.attention, reverse_padded(theirs.attention.transpose(1, 2), lengths).mT)


def test_index_select_reorders_encoding_and_state() -> None:
    for attention in ("none", "general"):
        model = tiny("lstm", attention, bidirectional_encoder=False)
        src, lengths, tgt_in, _ = random_batch(seed=6)
        enc = model.encode(src, lengths)
        index = torch.tensor([2, 0, 0, 1])
        picked = enc.index_select(index)
        assert isinstance(picked, EncoderOutput)
        for field, tensor in zip(enc._fields, enc, strict=True):
            if isinstance(tensor, Tensor):
                assert_close(getattr(picked, field), tensor[index], msg=field)
        assert picked.lengths.tolist() == [2, 7, 7, 4]
        first = model.step(tgt_in[:, 0], enc.init_state, enc)
        first_picked = model.step(tgt_in[index, 0], picked.init_state, picked)
        assert_close(first_picked.log_probs, first.log_probs[index])
        state = first.state.index_select(index)
        assert isinstance(state, DecoderState)
        second = model.step(tgt_in[:, 1], first.state, enc)
        second_picked = model.step(tgt_in[index, 1], state, picked)
        assert_close(second_picked.log_probs, second.log_probs[index])


def test_tied_embeddings_share_the_matrix() -> None:
    tied, untied = tiny(tie_embeddings=True), tiny()
    assert tied.output.weight is tied.tgt_embed.weight
    count = sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
    assert count == V * 16


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_every_parameter_gets_a_gradient(attention: str) -> None:
    model = tiny("lstm", attention, num_layers=2).train()
    src, lengths, tgt_in, tgt_out = random_batch()
    logits = model(src, lengths, tgt_in).logits
    F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_dropout_only_in_training() -> None:
    model = tiny(dropout=0.5)
    src, lengths, tgt_in, _ = random_batch()
    assert_close(model(src, lengths, tgt_in).logits, model(src, lengths, tgt_in).logits)
    model.train()
    torch.manual_seed(1)
    a = model(src, lengths, tgt_in).logits
    b = model(src, lengths, tgt_in).logits
    assert not torch.allclose(a, b)


# -------------------------------------------------------------------------------------- learning


def train_reverse(model: Seq2Seq, steps: int) -> tuple[float, tuple[Tensor, ...]]:
    """Adam on six fixed reverse pairs until every target token is right; returns the accuracy."""
    g = torch.Generator().manual_seed(7)
    sources = [torch.randint(3, V, (n,), generator=g).tolist() for n in (7, 6, 5, 4, 3, 7)]
    data = batch(sources, [s[::-1] for s in sources])
    src, lengths, tgt_in, tgt_out = data
    real = tgt_out != PAD
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    accuracy = 0.0
    model.train()
    for step in range(steps):
        logits = model(src, lengths, tgt_in).logits
        loss = F.cross_entropy(logits.reshape(-1, V), tgt_out.reshape(-1), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 10 == 9:
            correct = (logits.argmax(-1) == tgt_out) & real
            accuracy = float(correct.sum()) / float(real.sum())
            if accuracy == 1.0:
                break
    model.eval()
    with torch.no_grad():
        logits = model(src, lengths, tgt_in).logits
    accuracy = float(((logits.argmax(-1) == tgt_out) & real).sum()) / float(real.sum())
    return accuracy, data


@pytest.mark.parametrize(
    ("cell", "attention"),
    [("lstm", a) for a in ATTENTIONS] + [("rnn", "additive"), ("gru", "additive")],
)
def test_overfits_a_few_pairs_and_greedy_search_reproduces_them(cell: str, attention: str) -> None:
    model = tiny(cell, attention)
    accuracy, (src, lengths, _, tgt_out) = train_reverse(model, steps=400)
    assert accuracy == 1.0
    hypotheses = greedy_search(model, model.encode(src, lengths), max_len_a=0.0, max_len_b=S + 3)
    for b, (best,) in enumerate(hypotheses):
        target = tgt_out[b][tgt_out[b] != PAD].tolist()  # the target, then eos
        assert best.ended and best.tokens == target[:-1]
        if attention == "none":
            assert best.attention is None
        else:
            assert best.attention is not None
            assert best.attention.shape == (len(target), int(lengths[b]))
            assert_close(best.attention.sum(-1), torch.ones(len(target)))


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_greedy_search_matches_argmax_of_teacher_forcing_on_its_own_output(attention: str) -> None:
    model = tiny("gru", attention)
    src, lengths, _, _ = random_batch(seed=8)
    hypotheses = greedy_search(model, model.encode(src, lengths), max_len_a=0.0, max_len_b=9)
    for b, (best,) in enumerate(hypotheses):
        produced = [*best.tokens, EOS] if best.ended else best.tokens
        assert 1 <= len(produced) <= 9
        n = int(lengths[b])
        tgt_in = torch.tensor([[BOS, *produced[:-1]]])  # (1, T')
        out = model(src[b : b + 1, :n], lengths[b : b + 1], tgt_in)
        logits = out.logits[0].index_fill(1, torch.tensor([PAD, BOS]), float("-inf"))  # never made
        assert logits.argmax(-1).tolist() == produced
        if best.attention is not None:
            assert out.attention is not None
            assert_close(best.attention, out.attention[0])


# ----------------------------------------------------- encoder size and scheduled sampling


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_half_size_bidirectional_encoder_needs_no_bridge(attention: str) -> None:
    model = tiny("lstm", attention, encoder_hidden_size=16, bidirectional_encoder=True)
    assert model.bridge is None and model.bridge_cell is None
    assert model.encoder.hidden_size == 16
    src, lengths, tgt_in, _ = random_batch()
    enc = model.encode(src, lengths)
    assert enc.states.shape == (3, S, 32)
    assert enc.init_state.hidden.shape == (1, 3, 32)
    assert_close(
        model(src, lengths, tgt_in).logits,
        reference_logits(model, model.encode(src, lengths), tgt_in),
    )


def test_sampling_rate_zero_is_teacher_forcing_and_one_feeds_back_samples() -> None:
    model = tiny("gru", "additive")
    src, lengths, tgt_in, _ = random_batch()
    forced = model(src, lengths, tgt_in).logits
    # the step-by-step path with p = 0 must give the teacher-forced logits
    assert_close(model._forward_sampled(model.encode(src, lengths), tgt_in, 0.0).logits, forced)
    torch.manual_seed(1)
    sampled = model(src, lengths, tgt_in, sampling_rate=1.0).logits
    torch.manual_seed(1)
    again = model(src, lengths, tgt_in, sampling_rate=1.0).logits
    assert_close(sampled, again)  # reproducible under the same RNG state
    assert_close(sampled[:, 0], forced[:, 0])  # the first input is always bos
    assert not torch.allclose(sampled[:, 1:], forced[:, 1:])
    model.train()
    model(src, lengths, tgt_in, sampling_rate=0.5).logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match=r"sampling_rate must be in \[0, 1\], got 1.5"):
        model(src, lengths, tgt_in, sampling_rate=1.5)


def test_scheduled_sampling_never_feeds_pad_or_bos() -> None:
    """Decoding never produces pad or bos, so scheduled sampling must not feed them either."""
    model = tiny("gru", "additive")
    with torch.no_grad():  # make pad and bos by far the model's likeliest tokens
        model.output.bias[PAD] += 20.0
        model.output.bias[BOS] += 20.0
    fed: list[Tensor] = []
    model.tgt_embed.register_forward_hook(lambda _m, inputs, _out: fed.append(inputs[0]))
    src, lengths, tgt_in, _ = random_batch()
    torch.manual_seed(0)
    model(src, lengths, tgt_in, sampling_rate=1.0)
    assert len(fed) == tgt_in.shape[1]  # one embedding call per step
    sampled = torch.stack(fed[1:])  # (T - 1, B), every input after bos was sampled
    assert not bool(torch.isin(sampled, torch.tensor([PAD, BOS])).any())


# ---------------------------------------------------------------------------------------- errors


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"hidden_size must be positive, got 0"):
        Seq2SeqConfig(hidden_size=0)
    with pytest.raises(ValidationError, match=r"num_layers must be positive, got -1"):
        Seq2SeqConfig(num_layers=-1)
    with pytest.raises(ValidationError, match=r"embedding_size must be positive, got 0"):
        Seq2SeqConfig(embedding_size=0)
    with pytest.raises(ValidationError, match=r"dropout must be in \[0, 1\), got 1.0"):
        Seq2SeqConfig(dropout=1.0)
    with pytest.raises(ValidationError, match=r"attention='dot' needs encoder states of the"):
        Seq2SeqConfig(attention="dot")
    with pytest.raises(ConfigError, match=r"invalid value for 'model.hidden_size': .*positive"):
        build_section(Seq2SeqConfig, {"hidden_size": 0}, "model")
    with pytest.raises(ConfigError, match=r"unknown config key 'model.atention' \(did you mean"):
        build_section(Seq2SeqConfig, {"atention": "dot"}, "model")
    with pytest.raises(ValidationError, match=r"frozen"):
        Seq2SeqConfig().hidden_size = 3  # type: ignore[misc]


def test_from_config_accepts_a_mapping() -> None:
    model = Seq2Seq.from_config({"hidden_size": 8, "embedding_size": 4, "attention": "none"}, 5, 6)
    assert model.config == Seq2SeqConfig(hidden_size=8, embedding_size=4, attention="none")
    assert model.output.out_features == 6
    assert model.src_embed.num_embeddings == 5


def test_model_errors() -> None:
    model = tiny()
    src, lengths, tgt_in, _ = random_batch()
    with pytest.raises(ValueError, match=r"src must be \(B, S\) token ids, got shape \(7,\)"):
        model(src[0], lengths, tgt_in)
    with pytest.raises(ValueError, match=r"src_lengths must have shape \(3,\), got \(2,\)"):
        model(src, lengths[:2], tgt_in)
    with pytest.raises(ValueError, match=r"src_lengths must be in \[1, 7\], got \[8, 4, 2\]"):
        model(src, torch.tensor([8, 4, 2]), tgt_in)
    with pytest.raises(ValueError, match=r"src_lengths must be in \[1, 7\], got \[7, 0, 2\]"):
        model(src, torch.tensor([7, 0, 2]), tgt_in)
    with pytest.raises(
        ValueError, match=r"tgt_in must be \(B, T\) with the source.s B=3 and T >= 1"
    ):
        model(src, lengths, tgt_in[:2])
    enc = model.encode(src, lengths)
    with pytest.raises(ValueError, match=r"tokens must have shape \(3,\), got \(3, 1\)"):
        model.step(tgt_in[:, :1], enc.init_state, enc)
    config = Seq2SeqConfig(hidden_size=8)
    with pytest.raises(ValueError, match=r"eos_id=11 is not a target token id"):
        Seq2Seq(config, V, V, eos_id=11)
    with pytest.raises(ValueError, match=r"pad_id, bos_id and eos_id must differ, got 0, 1, 1"):
        Seq2Seq(config, V, V, eos_id=1)
    with pytest.raises(ValueError, match=r"target_vocab_size must be positive, got 0"):
        Seq2Seq(config, V, 0)
