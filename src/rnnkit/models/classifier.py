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
"""

from __future__ import annotations

from pydantic import ValidationInfo, field_validator
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.nn.factory import make_layer
from rnnkit.nn.functional import CellKind


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
