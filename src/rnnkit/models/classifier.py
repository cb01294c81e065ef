r"""Many-to-one sequence models: one prediction per sequence from the state at its real end.

An rnnkit recurrent layer (fused backend) reads the inputs, and a Linear head maps the final state
to K outputs::

    x_1 .. x_T                     (B, T, I) float features, or emb(tokens) (B, T, E)
    _, h_n = RNN(x, lengths)       h_n: (L*D, B, H), each sequence's state at its real end
    z = [h_n^fwd(top); h_n^bwd(top)]    (B, D*H); the backward state is the one at t = 1, which
                                         has read the whole sequence
    y = W z + b                    (B, K)

:class:`SequenceRegressor` takes float inputs (the adding problem: (B, T, 2) -> (B, 1));
:class:`SequenceClassifier` takes token ids and returns class logits. ``forward`` returns raw
outputs; losses live in training code.

:class:`TextClassifier` (the ``classification`` task's model) reads token ids the same way and
lets the config choose how the states h_1 .. h_T (B, T, D*H) become one vector z (B, D*H)::

    last       z = [h_n^fwd; h_n^bwd], the many-to-one of the lecture (as above)
    mean       z = (1 / n) sum_{t <= n} h_t          n = the sequence's length
    max        z_j = max_{t <= n} h_{t, j}
    attention  e_t = v^T tanh(W q + U h_t + b),  a = softmax(e) over t <= n,  z = sum_t a_t h_t

where ``q`` (D*H,) is a learned query (Yang et al., 2016, attention pooling), scored by
:class:`rnnkit.nn.Attention` (additive). The weights ``a`` (B, T), zero at padding, say which
words the prediction rests on; ``forward`` returns them with the logits.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

import torch
from pydantic import ValidationInfo, field_validator
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.nn.attention import Attention
from rnnkit.nn.factory import make_layer
from rnnkit.nn.functional import CellKind
from rnnkit.nn.padding import length_mask

Pooling = Literal["last", "mean", "max", "attention"]
POOLINGS: tuple[Pooling, ...] = get_args(Pooling)


class SequenceRegressorConfig(FrozenConfig):
    """Architecture of a :class:`SequenceRegressor`.

    Attributes:
        cell: recurrent unit.
        hidden_size: H, hidden units per layer and direction.
        num_layers: L, stacked layers.
        bidirectional: read the sequence both ways (the head sees D*H = 2H features).
        dropout: between layers and before the head.
    """

    cell: CellKind = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0

    @field_validator("hidden_size", "num_layers")
    @classmethod
    def _positive(cls, value: int, info: ValidationInfo) -> int:
        if value <= 0:
            raise ValueError(f"{info.field_name} must be positive, got {value}")
        return value

    @field_validator("dropout")
    @classmethod
    def _probability(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {value}")
        return value


class SequenceClassifierConfig(SequenceRegressorConfig):
    """Architecture of a :class:`SequenceClassifier`: a regressor's fields plus the embedding size.

    Attributes:
        embedding_size: E, size of the token embeddings.
    """

    embedding_size: int = 64

    @field_validator("embedding_size")
    @classmethod
    def _positive_embedding(cls, value: int, info: ValidationInfo) -> int:
        if value <= 0:
            raise ValueError(f"{info.field_name} must be positive, got {value}")
        return value


class _ManyToOne(nn.Module):
    """Recurrent layer + final state at each sequence's end + Linear head (shared body)."""

    def __init__(self, config: SequenceRegressorConfig, input_size: int, output_size: int) -> None:
        super().__init__()
        for name, size in (("input_size", input_size), ("output_size", output_size)):
            if size <= 0:
                raise ValueError(f"{name} must be positive, got {size}")
        self.config = config
        self.input_size = input_size
        self.output_size = output_size
        self.rnn = make_layer(
            config.cell,
            input_size,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,  # between layers only
            backend="fused",
        )
        D = 2 if config.bidirectional else 1
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(D * config.hidden_size, output_size)

    def _head(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        """x (B, T, I), lengths (B,) or None (all T real) -> (B, K)."""
        B, T = x.shape[:2]
        if lengths is not None:
            if lengths.shape != (B,):
                raise ValueError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
            if B > 0 and not bool(((lengths >= 1) & (lengths <= T)).all()):
                raise ValueError(f"lengths must be in [1, {T}], got {lengths.tolist()}")
        _, state = self.rnn(x, lengths=lengths)
        h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
        D = 2 if self.config.bidirectional else 1
        top = h_n[-D:]  # (D, B, H), the top layer's directions
        features = top.permute(1, 0, 2).reshape(B, -1)  # (B, D*H)
        out: Tensor = self.head(self.dropout(features))  # (B, K)
        return out


class SequenceRegressor(_ManyToOne):
    """Float sequences to K real outputs (e.g. the adding problem: (B, T, 2) -> (B, 1)).

    Args:
        config: the architecture.
        input_size: I, features per time step.
        output_size: K, outputs per sequence.
    """

    def __init__(
        self, config: SequenceRegressorConfig, input_size: int, output_size: int = 1
    ) -> None:
        super().__init__(config, input_size, output_size)

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Predict from each sequence's final state.

        Args:
            inputs: (B, T, I) float features, padded after each sequence's end.
            lengths: (B,) real lengths in ``[1, T]``; None means all T steps are real.

        Returns:
            (B, K) predictions.
        """
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise ValueError(
                f"inputs must be (B, T, {self.input_size}), got shape {tuple(inputs.shape)}"
            )
        return self._head(inputs, lengths)


class SequenceClassifier(_ManyToOne):
    """Token sequences to K class logits.

    Args:
        config: the architecture.
        vocab_size: V, token ids are in ``[0, V)``.
        num_classes: K, logits per sequence.
        pad_id: the padding id (its embedding is zero and receives no gradient).
    """

    def __init__(
        self, config: SequenceClassifierConfig, vocab_size: int, num_classes: int, pad_id: int = 0
    ) -> None:
        if vocab_size <= 0:
            raise ValueError(f"vocab_size must be positive, got {vocab_size}")
        if not 0 <= pad_id < vocab_size:
            raise ValueError(f"pad_id={pad_id} is not a token id (vocab_size={vocab_size})")
        super().__init__(config, config.embedding_size, num_classes)
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=pad_id)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Class logits from each sequence's final state.

        Args:
            tokens: (B, T) token ids, padded after each sequence's end.
            lengths: (B,) real lengths in ``[1, T]``; None means all T steps are real.

        Returns:
            (B, K) logits.
        """
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (B, T) token ids, got shape {tuple(tokens.shape)}")
        emb = self.dropout(self.embed(tokens))  # (B, T, E)
        return self._head(emb, lengths)


# ------------------------------------------------------------------------ text classification


class TextClassifierConfig(SequenceClassifierConfig):
    """Architecture of a :class:`TextClassifier`: a classifier's fields plus the pooling.

    Attributes:
        pooling: ``last`` (final states), ``mean`` or ``max`` over time, or ``attention``
            (a learned query attending over the states).
        attention_size: Ha, the hidden size of the attention score (default: D*H).
    """

    pooling: Pooling = "attention"
    attention_size: int | None = None

    @field_validator("attention_size")
    @classmethod
    def _positive_attention(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and value <= 0:
            raise ValueError(f"{info.field_name} must be positive, got {value}")
        return value


class ClassifierOutput(NamedTuple):
    """What :meth:`TextClassifier.forward` returns.

    Attributes:
        logits: (B, K) class scores.
        attention: (B, T) weights of the attention pooling (0 at padding), else None.
    """

    logits: Tensor
    attention: Tensor | None


class TextClassifier(nn.Module):
    """Token sequences to K class logits, through a chosen pooling of the recurrent states.

    Args:
        config: the architecture.
        vocab_size: V, token ids are in ``[0, V)``.
        num_classes: K.
        pad_id: the padding id (its embedding is zero and receives no gradient).
    """

    attention: Attention | None

    def __init__(
        self, config: TextClassifierConfig, vocab_size: int, num_classes: int, pad_id: int = 0
    ) -> None:
        super().__init__()
        for name, size in (("vocab_size", vocab_size), ("num_classes", num_classes)):
            if size <= 0:
                raise ValueError(f"{name} must be positive, got {size}")
        if not 0 <= pad_id < vocab_size:
            raise ValueError(f"pad_id={pad_id} is not a token id (vocab_size={vocab_size})")
        self.config = config
        self.num_classes = num_classes
        D = 2 if config.bidirectional else 1
        features = D * config.hidden_size
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=pad_id)
        self.rnn = make_layer(
            config.cell,
            config.embedding_size,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,  # between layers only
            backend="fused",
        )
        self.attention = None
        if config.pooling == "attention":
            self.query = nn.Parameter(torch.empty(features).normal_(0.0, features**-0.5))
            self.attention = Attention(
                features, features, "additive", hidden_size=config.attention_size
            )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(features, num_classes)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> ClassifierOutput:
        """Class logits of each sequence (and the attention weights over its tokens).

        Args:
            tokens: (B, T) token ids, padded after each sequence's end.
            lengths: (B,) real lengths in ``[1, T]``; None means all T steps are real.

        Returns:
            :class:`ClassifierOutput`: logits (B, K), attention (B, T) or None.
        """
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (B, T) token ids, got shape {tuple(tokens.shape)}")
        B, T = tokens.shape
        if lengths is not None:
            if lengths.shape != (B,):
                raise ValueError(f"lengths must have shape ({B},), got {tuple(lengths.shape)}")
            if B > 0 and not bool(((lengths >= 1) & (lengths <= T)).all()):
                raise ValueError(f"lengths must be in [1, {T}], got {lengths.tolist()}")
        emb = self.dropout(self.embed(tokens))  # (B, T, E)
        out, state = self.rnn(emb, lengths=lengths)  # out (B, T, D*H), 0 at padding
        z, weights = self.pool(out, state, lengths)  # (B, D*H), (B, T) | None
        logits: Tensor = self.head(self.dropout(z))  # (B, K)
        return ClassifierOutput(logits, weights)

    def pool(
        self, out: Tensor, state: Tensor | tuple[Tensor, Tensor], lengths: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """One vector per sequence from the states (the module docstring's formulas).

        Args:
            out: (B, T, D*H) top-layer states, zero at padding.
            state: the final h (L*D, B, H), or the LSTM's (h, c).
            lengths: (B,) or None (all T real).

        Returns:
            z (B, D*H) and the attention weights (B, T) (None unless ``pooling="attention"``).
        """
        B, T, _ = out.shape
        pooling = self.config.pooling
        if pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
            D = 2 if self.config.bidirectional else 1
            return h_n[-D:].permute(1, 0, 2).reshape(B, -1), None  # (B, D*H)
        mask = None if lengths is None else length_mask(lengths.to(out.device), T)  # (B, T)
        if pooling == "mean":
            if lengths is None:
                return out.mean(dim=1), None
            n = lengths.to(out.device, out.dtype).unsqueeze(1)  # (B, 1)
            return out.sum(dim=1) / n, None  # padding is zero
        if pooling == "max":
            if mask is not None:
                out = out.masked_fill(~mask.unsqueeze(-1), float("-inf"))  # (B, T, D*H)
            return out.max(dim=1).values, None
        assert self.attention is not None
        query = self.query.expand(B, -1)  # (B, D*H)
        z, weights = self.attention(query, out, mask=mask)  # (B, D*H), (B, T)
        return z, weights
