"""Tests for rnnkit.models.classifier: torch.nn parity, padding invariance, learning, errors."""

from __future__ import annotations

from itertools import product

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import Tensor
from torch.testing import assert_close

from rnnkit.models.classifier import (
    SequenceClassifier,
    SequenceClassifierConfig,
    SequenceRegressor,
    SequenceRegressorConfig,
)

B, T, H, K = 3, 5, 7, 4
IN = 2  # I, input features per step
CELLS = ("rnn", "lstm", "gru")
TORCH_LAYERS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def regressor(cell: str, bidirectional: bool, num_layers: int = 2) -> SequenceRegressor:
    torch.manual_seed(0)
    config = SequenceRegressorConfig(
        cell=cell,
        hidden_size=H,
        num_layers=num_layers,
        bidirectional=bidirectional,
    )
    return SequenceRegressor(config, input_size=IN, output_size=K).eval()


def inputs(seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([5, 3, 1])
    x = torch.randn(B, T, IN, generator=g)  # (B, T, I)
    x[torch.arange(T)[None] >= lengths[:, None]] = 0.0
    return x, lengths


@pytest.mark.parametrize(("cell", "bidirectional"), list(product(CELLS, (False, True))))
def test_matches_torch_layer_on_each_unpadded_sequence(cell: str, bidirectional: bool) -> None:
    model = regressor(cell, bidirectional)
    reference = TORCH_LAYERS[cell](
        IN, H, num_layers=2, bidirectional=bidirectional, batch_first=True
    )
    reference.load_state_dict(model.rnn.state_dict())
    x, lengths = inputs()
    out = model(x, lengths)  # (B, K)
    assert out.shape == (B, K)
    D = 2 if bidirectional else 1
    for b in range(B):
        _, state = reference(x[b : b + 1, : int(lengths[b])])
        h_n = state[0] if isinstance(state, tuple) else state  # (L*D, 1, H)
        features = torch.cat(list(h_n[-D:, 0]), dim=-1)  # (D*H,)
        assert_close(out[b], model.head(features))


@pytest.mark.parametrize(("cell", "bidirectional"), list(product(CELLS, (False, True))))
def test_padded_batch_equals_each_example_alone(cell: str, bidirectional: bool) -> None:
    model = regressor(cell, bidirectional)
    x, lengths = inputs(seed=1)
    out = model(x, lengths)
    noisy = x.clone()
    noisy[torch.arange(T)[None] >= lengths[:, None]] = 5.0  # padding values must not matter
    assert_close(model(noisy, lengths), out)
    for b in range(B):
        n = int(lengths[b])
        assert_close(model(x[b : b + 1, :n], lengths[b : b + 1])[0], out[b])


def test_no_lengths_means_every_step_is_real() -> None:
    model = regressor("lstm", True)
    x, _ = inputs()
    assert_close(model(x), model(x, torch.full((B,), T)))


def test_adding_regressor_overfits_a_small_batch() -> None:
    torch.manual_seed(0)
    model = SequenceRegressor(SequenceRegressorConfig(hidden_size=32), input_size=2)
    g = torch.Generator().manual_seed(3)
    n, steps = 16, 10
    values = torch.rand(n, steps, generator=g)  # (B, T)
    markers = torch.zeros(n, steps)
    for b in range(n):
        markers[b, torch.randperm(steps, generator=g)[:2]] = 1.0
    x = torch.stack([values, markers], dim=-1)  # (B, T, 2)
    y = (values * markers).sum(1, keepdim=True)  # (B, 1)
    lengths = torch.full((n,), steps)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch.no_grad():
        initial = float(F.mse_loss(model(x, lengths), y))
    for _ in range(300):
        loss = F.mse_loss(model(x, lengths), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        final = float(F.mse_loss(model(x, lengths), y))
    assert initial > 0.1
    assert final < 1e-3, final


def test_classifier_learns_which_token_came_first() -> None:
    torch.manual_seed(0)
    config = SequenceClassifierConfig(hidden_size=16, embedding_size=8, cell="gru")
    model = SequenceClassifier(config, vocab_size=7, num_classes=K)
    g = torch.Generator().manual_seed(4)
    n = 24
    tokens = torch.randint(1, 7, (n, 6), generator=g)  # (B, T), ids 1..6
    lengths = torch.randint(2, 7, (n,), generator=g)
    tokens[torch.arange(6)[None] >= lengths[:, None]] = 0
    labels = tokens[:, 0] % K  # the class is set by the first token, far from the end
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(200):
        logits = model(tokens, lengths)  # (B, K)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        logits = model(tokens, lengths)
    assert logits.shape == (n, K)
    assert torch.equal(logits.argmax(-1), labels)
    assert model.embed.weight[0].abs().sum() == 0  # the pad embedding stays zero


def test_config_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"hidden_size must be positive, got 0"):
        SequenceRegressorConfig(hidden_size=0)
    with pytest.raises(ValidationError, match=r"num_layers must be positive, got 0"):
        SequenceRegressorConfig(num_layers=0)
    with pytest.raises(ValidationError, match=r"dropout must be in \[0, 1\), got -0.1"):
        SequenceRegressorConfig(dropout=-0.1)
    with pytest.raises(ValidationError, match=r"embedding_size must be positive, got 0"):
        SequenceClassifierConfig(embedding_size=0)
    with pytest.raises(ValidationError, match=r"Extra inputs are not permitted"):
        SequenceRegressorConfig(embedding_size=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"Input should be 'gru', 'lstm' or 'rnn'"):
        SequenceRegressorConfig(cell="transformer")


def test_model_errors() -> None:
    model = regressor("lstm", False)
    x, lengths = inputs()
    with pytest.raises(ValueError, match=r"inputs must be \(B, T, 2\), got shape \(3, 5, 3\)"):
        model(torch.zeros(B, T, 3), lengths)
    with pytest.raises(ValueError, match=r"lengths must have shape \(3,\), got \(2,\)"):
        model(x, lengths[:2])
    with pytest.raises(ValueError, match=r"lengths must be in \[1, 5\], got \[6, 3, 1\]"):
        model(x, torch.tensor([6, 3, 1]))
    with pytest.raises(ValueError, match=r"input_size must be positive, got 0"):
        SequenceRegressor(SequenceRegressorConfig(), input_size=0)
    config = SequenceClassifierConfig(hidden_size=4, embedding_size=3)
    with pytest.raises(ValueError, match=r"pad_id=9 is not a token id \(vocab_size=5\)"):
        SequenceClassifier(config, vocab_size=5, num_classes=2, pad_id=9)
    with pytest.raises(ValueError, match=r"tokens must be \(B, T\) token ids, got shape \(3,\)"):
        SequenceClassifier(config, vocab_size=5, num_classes=2)(torch.zeros(3, dtype=torch.long))
