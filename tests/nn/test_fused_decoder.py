"""The fused Bahdanau LSTM loop against autograd and against the lecture's reference step.

Every test runs twice: with the native kernels (attention step and cell, :mod:`rnnkit.nn.native`)
and with PyTorch operators only.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close

from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.nn import native
from rnnkit.nn.decoder import bahdanau_step
from rnnkit.nn.fused_decoder import bahdanau_lstm_loop
from rnnkit.nn.padding import length_mask


@pytest.fixture(autouse=True, params=["native", "pytorch"])
def kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with the native kernels, then with them turned off."""
    if request.param == "native" and native.library() is None:
        pytest.skip("no C++ compiler: native kernels not built")
    monkeypatch.setattr(native, "enabled", request.param == "native")
    return str(request.param)


def loop_inputs(
    B: int = 3, T: int = 4, S: int = 5, H: int = 3, Ha: int = 4, De: int = 6
) -> tuple[Tensor, ...]:
    """Random float64 inputs of :func:`bahdanau_lstm_loop`, two rows padded."""
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    mask = length_mask(torch.tensor([S, S - 2, 1] + [S] * (B - 3)), S)
    return (
        rand(B, T, 4 * H),  # gates_x
        rand(B, H),  # h0
        rand(B, H),  # m0
        rand(B, S, Ha),  # keys
        rand(B, S, De),  # states
        mask,
        rand(Ha, H),  # w_query
        rand(1, Ha),  # v
        rand(4 * H, De + H),  # w_rec
    )


def test_gradcheck_every_input_and_output() -> None:
    """The hand-written backward is the derivative, of s, c and a, in every input."""
    assert torch.autograd.gradcheck(bahdanau_lstm_loop, loop_inputs(), atol=1e-6, rtol=1e-5)


def test_padded_positions_get_no_weight_and_no_key_gradient() -> None:
    inputs = loop_inputs()
    keys, states = inputs[3], inputs[4]
    s, c, a = bahdanau_lstm_loop(*inputs)
    assert a[2, :, 1:].abs().max().item() == 0.0
    assert_close(a.sum(dim=2), torch.ones(3, 4, dtype=torch.float64))
    (s.sum() + c.sum()).backward()
    assert keys.grad is not None and states.grad is not None
    assert keys.grad[2, 1:].abs().max().item() == 0.0
    assert states.grad[1, -2:].abs().max().item() == 0.0


def written_out(
    inputs: tuple[Tensor, ...],
) -> tuple[Tensor, Tensor, Tensor]:
    """The loop's equations one step at a time with plain tensor operations and torch.tanh."""
    gates_x, h, m, keys, states, mask, w_query, v, w_rec = inputs
    ss, cs, as_ = [], [], []
    for t in range(gates_x.shape[1]):
        e = (torch.tanh(keys + (h @ w_query.t())[:, None, :]) @ v.reshape(-1, 1)).squeeze(2)
        a = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=1)
        c = (a[:, :, None] * states).sum(1)
        gates = gates_x[:, t] + torch.cat([c, h], dim=1) @ w_rec.t()
        i, f, gg, o = gates.chunk(4, dim=1)
        m = torch.sigmoid(f) * m + torch.sigmoid(i) * torch.tanh(gg)
        h = torch.sigmoid(o) * torch.tanh(m)
        ss.append(h)
        cs.append(c)
        as_.append(a)
    return torch.stack(ss, 1), torch.stack(cs, 1), torch.stack(as_, 1)


def test_equals_the_equations_written_out(kernels: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    for name in ("attention_forward", "attention_backward", "lstm_cell_forward"):
        kernel = getattr(native, name)
        monkeypatch.setattr(native, name, lambda *a, k=kernel, n=name: calls.append(n) or k(*a))
    inputs = loop_inputs(B=4, T=6, S=7, H=5, Ha=6, De=8)
    fused = bahdanau_lstm_loop(*inputs)
    plain = written_out(inputs)
    assert_close(fused, plain, atol=1e-12, rtol=1e-12)
    leaves = [x for x in inputs if x.requires_grad]
    probes = [torch.randn_like(x) for x in plain]
    grads_fused = torch.autograd.grad(fused, leaves, probes)
    grads_plain = torch.autograd.grad(plain, leaves, probes)
    assert_close(grads_fused, grads_plain, atol=1e-12, rtol=1e-12)
    want = {"attention_forward": 6, "attention_backward": 6, "lstm_cell_forward": 6}
    assert {n: calls.count(n) for n in want} == (
        want if kernels == "native" else dict.fromkeys(want, 0)
    )


def bahdanau(dropout: float = 0.0) -> Seq2Seq:
    """One LSTM layer, additive attention, bidirectional encoder: the loop's model, float32."""
    torch.manual_seed(0)
    config = Seq2SeqConfig(
        cell="lstm",
        attention="additive",
        embedding_size=24,
        hidden_size=40,
        encoder_hidden_size=16,
        dropout=dropout,
    )
    return Seq2Seq(config, 30, 30)


def batch() -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    src = torch.randint(3, 30, (5, 9), generator=g)
    lengths = torch.tensor([9, 7, 7, 3, 1])
    src = src.masked_fill(~length_mask(lengths, 9), 0)
    return src, lengths, torch.randint(3, 30, (5, 8), generator=g)


def reference(model: Seq2Seq, src: Tensor, lengths: Tensor, tgt_in: Tensor) -> tuple[Tensor, ...]:
    """Logits and attention from nn.decoder's lecture step, once per position."""
    memory = model.encode(src, lengths)
    layers, state, logits, weights = model.decoder_layers, memory.init_state, [], []
    for t in range(tgt_in.shape[1]):
        x_t = model.dropout(model.tgt_embed(tgt_in[:, t]))
        step = bahdanau_step(layers, x_t, state, memory.states, memory.mask)
        logits.append(step.logits)
        assert step.attention is not None
        weights.append(step.attention)
        state = step.state
    return torch.stack(logits, 1), torch.stack(weights, 1)


@pytest.mark.parametrize("fused", [True, False], ids=["fused-loop", "step-by-step"])
def test_model_fast_paths_equal_the_reference_step_float32(fused: bool) -> None:
    """Seq2Seq.forward, fused loop or not, is the lecture's step within 1e-5, outputs and grads."""
    model = bahdanau()
    model.fused_loop = fused
    src, lengths, tgt_in = batch()
    ref_logits, ref_attention = reference(model, src, lengths, tgt_in)
    out = model(src, lengths, tgt_in)
    assert out.attention is not None
    assert ("_BahdanauLSTMLoopBackward" in repr(out.attention.grad_fn)) == fused
    assert_close(out.logits, ref_logits, atol=1e-5, rtol=1e-5)
    assert_close(out.attention, ref_attention, atol=1e-5, rtol=1e-5)
    params = list(model.parameters())
    probe = torch.randn_like(ref_logits)
    probe_a = torch.randn_like(ref_attention)
    want = torch.autograd.grad(
        (ref_logits * probe).sum() + (ref_attention * probe_a).sum(), params, allow_unused=True
    )
    got = torch.autograd.grad(
        (out.logits * probe).sum() + (out.attention * probe_a).sum(), params, allow_unused=True
    )
    for name, w, g in zip([n for n, _ in model.named_parameters()], want, got, strict=True):
        if w is None:
            assert g is None or g.abs().max().item() == 0.0, name
        else:
            assert g is not None, name
            assert_close(g, w, atol=1e-5, rtol=1e-5, msg=name)


def test_dropout_masks_are_drawn_as_in_the_step_by_step_path() -> None:
    """With dropout, the same seed gives the same logits with the fused loop and without."""
    model = bahdanau(dropout=0.3).train()
    src, lengths, tgt_in = batch()
    torch.manual_seed(5)
    fused = model(src, lengths, tgt_in).logits
    model.fused_loop = False
    torch.manual_seed(5)
    plain = model(src, lengths, tgt_in).logits
    assert_close(fused, plain, atol=1e-5, rtol=1e-5)
