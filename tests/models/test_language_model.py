"""Tests for rnnkit.models.language_model: the state carried from window to window equals one
pass over the whole stream, tied weights are one tensor, locked dropout shares its mask over
time, and the Transformer is causal."""

from __future__ import annotations

import pytest
import torch

from rnnkit.config import ConfigError, build_section
from rnnkit.models.language_model import (
    LanguageModelConfig,
    LockedDropout,
    RecurrentLM,
    TransformerLM,
    build_language_model,
    sinusoidal_positions,
)

V, B, T = 11, 3, 12  # small, distinct sizes


def config(**kwargs: object) -> LanguageModelConfig:
    base: dict[str, object] = {
        "embedding_size": 6,
        "hidden_size": 7,
        "num_layers": 2,
        "dropout": 0.0,
        "num_heads": 2,
    }
    base.update(kwargs)
    return LanguageModelConfig.model_validate(base)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("tied", [False, True])
def test_carried_state_equals_the_whole_stream_at_once(cell: str, tied: bool) -> None:
    torch.manual_seed(0)
    model = RecurrentLM(config(cell=cell, tie_embeddings=tied), V).eval()
    x = torch.randint(0, V, (B, T))
    whole = model(x).logits  # (B, T, V)
    state, parts = None, []
    for start, size in [(0, 5), (5, 4), (9, 3)]:  # windows of different sizes
        out = model(x[:, start : start + size], state)
        parts.append(out.logits)
        state = out.state
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, rtol=1e-5, atol=1e-6)


def test_state_shapes_follow_the_layers_and_the_tied_last_layer() -> None:
    model = RecurrentLM(config(tie_embeddings=True), V)
    out = model(torch.randint(0, V, (B, T)))
    assert out.logits.shape == (B, T, V)
    assert [tuple(p.shape) for layer in out.state for p in layer] == [
        (1, B, 7),
        (1, B, 7),
        (1, B, 6),  # the last layer has E units so that W = E can be shared
        (1, B, 6),
    ]
    assert [tuple(p.shape) for layer in model.init_state(B) for p in layer] == [
        (1, B, 7),
        (1, B, 7),
        (1, B, 6),
        (1, B, 6),
    ]


@pytest.mark.parametrize("arch", ["rnn", "transformer"])
def test_tied_weights_are_one_tensor(arch: str) -> None:
    model = build_language_model(config(arch=arch, tie_embeddings=True), V)
    assert model.decoder.weight is model.embedding.weight
    untied = build_language_model(config(arch=arch, tie_embeddings=False), V)
    shared = sum(p.numel() for p in untied.parameters()) - sum(
        p.numel() for p in model.parameters()
    )
    assert shared >= V * 6  # the output matrix is gone (and, for rnn, a smaller last layer)
    # one gradient reaches the shared tensor from both ends
    out = model(torch.randint(0, V, (B, T))).logits
    out.sum().backward()
    assert model.embedding.weight.grad is not None


def test_the_transformer_is_causal() -> None:
    torch.manual_seed(1)
    model = TransformerLM(config(arch="transformer", embedding_size=8, hidden_size=16), V).eval()
    x = torch.randint(0, V, (B, T))
    changed = x.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % V  # the future after position 6
    a, b = model(x).logits, model(changed).logits
    torch.testing.assert_close(a[:, :7], b[:, :7], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(a[:, 7:], b[:, 7:])
    assert model(x).state is None


def test_locked_dropout_uses_one_mask_for_every_step() -> None:
    torch.manual_seed(2)
    drop = LockedDropout(0.5).train()
    out = drop(torch.ones(B, T, 5))  # (B, T, D)
    assert torch.equal(out, out[:, :1].expand(B, T, 5))
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(drop.eval()(torch.ones(B, T, 5)), torch.ones(B, T, 5))


def test_positions_are_sines_and_cosines() -> None:
    pe = sinusoidal_positions(4, 6)
    assert pe.shape == (4, 6)
    torch.testing.assert_close(pe[:, 0], torch.sin(torch.arange(4.0)))
    torch.testing.assert_close(pe[:, 1], torch.cos(torch.arange(4.0)))
    torch.testing.assert_close(pe[2, 4], torch.sin(torch.tensor(2.0 / 1e4 ** (4 / 6))))


def test_bad_configs_name_the_field() -> None:
    with pytest.raises(ConfigError, match="invalid value for 'model': num_heads=3 must divide"):
        build_section(
            LanguageModelConfig,
            {"arch": "transformer", "embedding_size": 8, "num_heads": 3},
            "model",
        )
    with pytest.raises(ConfigError, match=r"'model.dropout': dropout must be in \[0, 1\), got 1.0"):
        build_section(LanguageModelConfig, {"dropout": 1.0}, "model")
