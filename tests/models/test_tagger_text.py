"""Tests for rnnkit.models.tagger: the text tagger's config, character features, the invariant that
a padded batch gives each sentence what it gets alone, and the copy-memory task's tagger kept."""

from __future__ import annotations

import pytest
import torch

from rnnkit.models.classifier import SequenceClassifierConfig
from rnnkit.models.tagger import SequenceTagger, SequenceTaggerConfig

V, K, C = 11, 5, 9  # words, tags, characters (0 is padding everywhere)


def tagger(char_features: str = "none", **fields: object) -> SequenceTagger:
    torch.manual_seed(0)
    config = SequenceTaggerConfig(
        embedding_size=6,
        hidden_size=7,
        char_features=char_features,  # type: ignore[arg-type]
        char_embedding_size=4,
        char_hidden_size=3,
        **fields,  # type: ignore[arg-type]
    )
    return SequenceTagger(config, V, K, num_chars=C, pad_id=0).eval()


def sentence(T: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens (T,), chars (T, L)) with 1 to 4 real characters per word."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, V, (T,), generator=g)
    chars = torch.zeros(T, 4, dtype=torch.long)
    for t in range(T):
        n = int(torch.randint(1, 5, (1,), generator=g))
        chars[t, :n] = torch.randint(1, C, (n,), generator=g)
    return tokens, chars


def test_config_defaults_and_validation() -> None:
    config = SequenceTaggerConfig()
    assert config.bidirectional is True
    assert config.char_features == "none"
    with pytest.raises(ValueError, match="char_hidden_size must be positive, got 0"):
        SequenceTaggerConfig(char_hidden_size=0)
    with pytest.raises(ValueError, match="Input should be 'none', 'cnn' or 'lstm'"):
        SequenceTaggerConfig(char_features="gru")  # type: ignore[arg-type]


@pytest.mark.parametrize(("char_features", "size"), [("none", 6), ("cnn", 6 + 3), ("lstm", 6 + 6)])
def test_shapes(char_features: str, size: int) -> None:
    model = tagger(char_features)
    tokens, chars = sentence(5, 0)
    tokens, chars = tokens[None].repeat(3, 1), chars[None].repeat(3, 1, 1)  # B=3, T=5
    lengths = torch.tensor([5, 3, 1])
    features = model.features(tokens, lengths, None if char_features == "none" else chars)
    assert features.shape == (3, 5, size)
    logits = model(tokens, lengths, None if char_features == "none" else chars)
    assert logits.shape == (3, 5, K)


@pytest.mark.parametrize("char_features", ["none", "cnn", "lstm"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_padded_batch_equals_each_sentence_alone(char_features: str, cell: str) -> None:
    model = tagger(char_features, cell=cell, num_layers=2)
    use_chars = char_features != "none"
    sentences = [sentence(T, seed) for seed, T in enumerate((5, 2, 4))]
    tokens = torch.zeros(3, 5, dtype=torch.long)
    chars = torch.zeros(3, 5, 6, dtype=torch.long)  # more char padding than any word needs
    for b, (tok, ch) in enumerate(sentences):
        tokens[b, : len(tok)] = tok
        chars[b, : len(tok), : ch.shape[1]] = ch
    lengths = torch.tensor([len(t) for t, _ in sentences])
    with torch.no_grad():
        batch = model(tokens, lengths, chars if use_chars else None)
        for b, (tok, ch) in enumerate(sentences):
            alone = model(tok[None], None, ch[None] if use_chars else None)[0]
            torch.testing.assert_close(batch[b, : len(tok)], alone, rtol=1e-5, atol=1e-6)


def test_the_padding_embedding_is_zero_and_learns_nothing() -> None:
    model = tagger()
    assert torch.count_nonzero(model.embed.weight[0]) == 0
    model.train()
    model(torch.tensor([[3, 4, 0]]), torch.tensor([2])).sum().backward()
    assert model.embed.weight.grad is not None
    assert torch.count_nonzero(model.embed.weight.grad[0]) == 0


def test_char_feature_errors() -> None:
    tokens, chars = sentence(3, 0)
    with pytest.raises(ValueError, match=r"this tagger has char_features: pass chars \(B, T, L\)"):
        tagger("cnn")(tokens[None])
    with pytest.raises(ValueError, match="chars given to a tagger without char_features"):
        tagger()(tokens[None], None, chars[None])
    with pytest.raises(ValueError, match=r"chars must be \(1, 3, L\), got shape \(1, 2, 4\)"):
        tagger("lstm")(tokens[None], None, chars[None, :2])
    config = SequenceTaggerConfig(char_features="cnn")
    with pytest.raises(ValueError, match="char_features 'cnn' needs num_chars >= 2, got 0"):
        SequenceTagger(config, V, K)
    with pytest.raises(ValueError, match=r"pad_id=11 is not a token id \(vocab_size=11\)"):
        SequenceTagger(SequenceTaggerConfig(), V, K, pad_id=11)


def test_the_copy_memory_tagger_is_unchanged() -> None:
    """The classifier's config gives one direction, no char features, no input dropout, no
    padding id, and the parameter names copy-memory runs were saved with."""
    config = SequenceClassifierConfig(embedding_size=4, hidden_size=6, dropout=0.5)
    model = SequenceTagger(config, 10, 10)
    assert sorted(model.state_dict()) == [
        "embed.weight",
        "head.bias",
        "head.weight",
        "rnn.bias_hh_l0",
        "rnn.bias_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.weight_ih_l0",
    ]
    assert model.head.in_features == 6
    assert model.input_dropout.p == 0.0
    assert model.embed.padding_idx is None
    assert model.chars is None
