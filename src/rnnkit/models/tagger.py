r"""Many-to-many aligned models: one prediction per input position (tagging).

An embedding and an rnnkit recurrent layer read the tokens, and a Linear head maps every output
state to K logits::

    h_1 .. h_T = RNN(emb(x_1) .. emb(x_T), lengths)      (B, T, D*H), zero at padding
    y_t = W h_t + b                                      (B, T, K)

Used by the copy-memory task, where the answer at the end depends on tokens seen T steps earlier.
``forward`` returns logits; losses live in training code.
"""

from __future__ import annotations

from torch import Tensor, nn

from rnnkit.models.classifier import SequenceClassifierConfig
from rnnkit.nn import make_layer


class SequenceTagger(nn.Module):
    """Token sequences to per-position class logits.

    Args:
        config: the architecture (the classifier's config: cell, sizes, layers, direction, dropout).
        vocab_size: V, token ids are in ``[0, V)``.
        num_classes: K, logits per position.
    """

    def __init__(self, config: SequenceClassifierConfig, vocab_size: int, num_classes: int) -> None:
        super().__init__()
        if vocab_size <= 0 or num_classes <= 0:
            raise ValueError(
                f"vocab_size and num_classes must be positive, got {vocab_size}, {num_classes}"
            )
        self.embed = nn.Embedding(vocab_size, config.embedding_size)
        self.rnn = make_layer(
            config.cell,
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        D = 2 if config.bidirectional else 1
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(D * config.hidden_size, num_classes)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Per-position logits.

        Args:
            tokens: (B, T) token ids.
            lengths: (B,) real lengths, or None when all T positions are real.

        Returns:
            (B, T, K) logits.
        """
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (B, T), got shape {tuple(tokens.shape)}")
        out, _ = self.rnn(self.embed(tokens), lengths=lengths)  # (B, T, D*H)
        logits: Tensor = self.head(self.dropout(out))  # (B, T, K)
        return logits
