r"""Language models: a recurrent stack or a causal Transformer, one next-token interface.

Both read token ids x (B, T) and return logits (B, T, V) of the next token at every position,
with a state to carry into the next window of the same streams (truncated BPTT)::

    out = model(x, state)         # out.logits (B, T, V), out.state for the next window

Recurrent (``arch: rnn``; Zaremba et al. 2014, PyTorch's word_language_model, char-rnn)::

    e_t = drop_e(E[x_t])                                    (B, T, E)
    h^l_t = cell(h^{l-1}_t, h^l_{t-1})   l = 1 .. L         rnnkit.nn layers, fused kernels
    h^l  -> drop_h between layers,  drop_o on the last      (B, T, H)
    logits_t = W h^L_t + b                                  (B, T, V)

Each layer is one single-layer :func:`rnnkit.nn.make_layer` layer (``rnns.<l>``), so dropout
between layers can be *locked* (variational; Gal and Ghahramani 2016, AWD-LSTM): one mask per
sequence and feature, the same at every time step, instead of a new mask per position. With
``tie_embeddings`` the output matrix W is the embedding matrix E (one tensor; Press and Wolf 2017,
Inan et al. 2017); it needs the last layer's size to be E, so the last layer has E hidden units
when ``hidden_size`` differs (as in AWD-LSTM). The state is a tuple with one entry per layer: (h, c)
for the LSTM, (h,) otherwise, each (1, B, H_l).

Transformer (``arch: transformer``; PyTorch's word_language_model's ``TransformerModel``)::

    z_0 = drop_e(s E[x] + PE)                               (B, T, E), sinusoidal PE
    z   = TransformerEncoder(z_0, causal mask)              num_layers layers, num_heads heads,
                                                            feed-forward hidden_size, pre-norm
    logits = W drop_o(LayerNorm(z)) + b                     (B, T, V)

The embeddings are scaled by s = sqrt(E) as in word_language_model, except with tied weights
(s = 1, as GPT-2): scaled embeddings that are also the output matrix pass through the residual
stream and make the untrained model predict its own input token (an initial loss far above
log V). Position t attends to positions <= t of its own window only: nothing is carried between windows
(the returned state is None), so the Transformer sees at most one window of context while the
recurrent model's state reaches back to the start of the stream.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import ValidationInfo, field_validator, model_validator
from torch import Tensor, nn

from rnnkit.config import FrozenConfig
from rnnkit.nn.factory import make_layer
from rnnkit.nn.functional import CellKind

Arch = Literal["rnn", "transformer"]

__all__ = [
    "Arch",
    "LMOutput",
    "LanguageModel",
    "LanguageModelConfig",
    "LockedDropout",
    "RecurrentLM",
    "TransformerLM",
    "build_language_model",
    "sinusoidal_positions",
]


class LanguageModelConfig(FrozenConfig):
    """Architecture of a language model (no optimiser settings).

    Attributes:
        arch: ``rnn`` (a recurrent stack) or ``transformer`` (a causal Transformer encoder).
        cell: the recurrent unit (``rnn`` only): ``lstm``, ``gru`` or ``rnn``.
        embedding_size: E, the token embeddings (the Transformer's model width).
        hidden_size: H, the units of each recurrent layer; the Transformer's feed-forward size.
        num_layers: L, recurrent or Transformer layers.
        num_heads: attention heads (``transformer`` only); must divide E.
        dropout: on the output of the last layer; also the default of the two below.
        embedding_dropout: on the embeddings (None: ``dropout``).
        hidden_dropout: between recurrent layers, and inside the Transformer's layers (None:
            ``dropout``).
        locked_dropout: one dropout mask per sequence, the same at every step (variational).
        tie_embeddings: the output matrix is the embedding matrix.
    """

    arch: Arch = "rnn"
    cell: CellKind = "lstm"
    embedding_size: int = 200
    hidden_size: int = 200
    num_layers: int = 2
    num_heads: int = 2
    dropout: float = 0.2
    embedding_dropout: float | None = None
    hidden_dropout: float | None = None
    locked_dropout: bool = False
    tie_embeddings: bool = False

    @field_validator("embedding_size", "hidden_size", "num_layers", "num_heads")
    @classmethod
    def _positive(cls, value: int, info: ValidationInfo) -> int:
        if value <= 0:
            raise ValueError(f"{info.field_name} must be positive, got {value}")
        return value

    @field_validator("dropout", "embedding_dropout", "hidden_dropout")
    @classmethod
    def _probability(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f"{info.field_name} must be in [0, 1), got {value}")
        return value

    @model_validator(mode="after")
    def _heads_divide_width(self) -> LanguageModelConfig:
        if self.arch == "transformer" and self.embedding_size % self.num_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must divide embedding_size={self.embedding_size}"
            )
        return self

    @property
    def p_embedding(self) -> float:
        """The embeddings' dropout rate."""
        return self.dropout if self.embedding_dropout is None else self.embedding_dropout

    @property
    def p_hidden(self) -> float:
        """The dropout rate between (and inside) layers."""
        return self.dropout if self.hidden_dropout is None else self.hidden_dropout


class LMOutput(NamedTuple):
    """What a language model returns for one window.

    Attributes:
        logits: (B, T, V) unnormalised next-token scores.
        state: the state to carry into the next window (None for the Transformer).
    """

    logits: Tensor
    state: Any


class LockedDropout(nn.Module):
    """Dropout with one mask per sequence and feature, shared by all T steps (variational).

    (B, T, D) -> (B, T, D); identity in eval mode or at p = 0.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1.0 - self.p)  # (B, 1, D)
        return x * keep / (1.0 - self.p)


def _dropout(p: float, locked: bool) -> nn.Module:
    return LockedDropout(p) if locked else nn.Dropout(p)


class RecurrentLM(nn.Module):
    """Embedding, a stack of rnnkit recurrent layers, dropout, the output layer (module docstring).

    Args:
        config: the architecture (``arch: rnn``).
        vocab_size: V.
    """

    def __init__(self, config: LanguageModelConfig, vocab_size: int) -> None:
        super().__init__()
        c = config
        self.config = config
        self.vocab_size = vocab_size
        E, H, L = c.embedding_size, c.hidden_size, c.num_layers
        sizes = [H] * (L - 1) + [E if c.tie_embeddings else H]  # the last layer feeds W
        self.sizes = tuple(sizes)
        self.embedding = nn.Embedding(vocab_size, E)
        self.rnns = nn.ModuleList(
            make_layer(c.cell, n_in, n_out)
            for n_in, n_out in zip([E, *sizes[:-1]], sizes, strict=True)
        )
        self.drop_e = _dropout(c.p_embedding, c.locked_dropout)
        self.drop_h = _dropout(c.p_hidden, c.locked_dropout)
        self.drop_o = _dropout(c.dropout, c.locked_dropout)
        self.decoder = nn.Linear(sizes[-1], vocab_size)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)  # as word_language_model
        nn.init.zeros_(self.decoder.bias)
        if c.tie_embeddings:
            self.decoder.weight = self.embedding.weight
        else:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def init_state(self, batch_size: int) -> tuple[tuple[Tensor, ...], ...]:
        """The zero state of ``batch_size`` streams, in the weights' dtype and device."""
        w = self.embedding.weight
        parts = 2 if self.config.cell == "lstm" else 1
        return tuple(tuple(w.new_zeros(1, batch_size, h) for _ in range(parts)) for h in self.sizes)

    def forward(self, x: Tensor, state: Any = None) -> LMOutput:
        """Logits of the next token at every position, and the state after the window.

        Args:
            x: (B, T) token ids.
            state: the state after the previous window (a tuple per layer, each part
                (1, B, H_l)), or None for the zero state.

        Returns:
            :class:`LMOutput`: logits (B, T, V) and the new state.
        """
        z = self.drop_e(self.embedding(x))  # (B, T, E)
        new_state = []
        for layer, rnn in enumerate(self.rnns):
            parts = None if state is None else tuple(state[layer])
            if parts is None or self.config.cell == "lstm":
                z, final = rnn(z, state=parts)  # (B, T, H_l)
            else:
                z, final = rnn(z, state=parts[0])  # (B, T, H_l)
            new_state.append(tuple(final) if isinstance(final, tuple) else (final,))
            if layer < len(self.rnns) - 1:
                z = self.drop_h(z)
        logits = self.decoder(self.drop_o(z))  # (B, T, V)
        return LMOutput(logits, tuple(new_state))


def sinusoidal_positions(length: int, width: int, *, device: Any = None) -> Tensor:
    """The sinusoidal position encodings of Vaswani et al. (2017), (T, E).

    ``PE[t, 2i] = sin(t / 10000^(2i/E))``, ``PE[t, 2i+1] = cos(t / 10000^(2i/E))``.
    """
    position = torch.arange(length, dtype=torch.float32, device=device)[:, None]  # (T, 1)
    rate = torch.exp(
        torch.arange(0, width, 2, dtype=torch.float32, device=device) * (-math.log(1e4) / width)
    )  # (ceil(E/2),)
    pe = torch.zeros(length, width, device=device)  # (T, E)
    pe[:, 0::2] = torch.sin(position * rate)
    pe[:, 1::2] = torch.cos(position * rate[: width // 2])
    return pe


class TransformerLM(nn.Module):
    """A causal Transformer language model from ``torch.nn.TransformerEncoder`` (module docstring).

    Args:
        config: the architecture (``arch: transformer``).
        vocab_size: V.
    """

    def __init__(self, config: LanguageModelConfig, vocab_size: int) -> None:
        super().__init__()
        c = config
        self.config = config
        self.vocab_size = vocab_size
        E = c.embedding_size
        self.embedding = nn.Embedding(vocab_size, E)
        layer = nn.TransformerEncoderLayer(
            E,
            c.num_heads,
            dim_feedforward=c.hidden_size,
            dropout=c.p_hidden,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, c.num_layers, norm=nn.LayerNorm(E), enable_nested_tensor=False
        )
        self.drop_e = nn.Dropout(c.p_embedding)
        self.drop_o = nn.Dropout(c.dropout)
        self.decoder = nn.Linear(E, vocab_size)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if c.tie_embeddings:
            self.decoder.weight = self.embedding.weight
        else:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, x: Tensor, state: Any = None) -> LMOutput:
        """Logits of the next token at every position of the window (``state`` is ignored).

        Args:
            x: (B, T) token ids.
            state: ignored (nothing is carried between windows).

        Returns:
            :class:`LMOutput`: logits (B, T, V) and state None.
        """
        T, E = x.shape[1], self.config.embedding_size
        pe = sinusoidal_positions(T, E, device=x.device).to(self.embedding.weight.dtype)
        scale = 1.0 if self.config.tie_embeddings else math.sqrt(E)
        z = self.drop_e(self.embedding(x) * scale + pe)  # (B, T, E)
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=x.device, dtype=z.dtype)
        z = self.encoder(z, mask=mask, is_causal=True)  # (B, T, E)
        return LMOutput(self.decoder(self.drop_o(z)), None)  # (B, T, V)


LanguageModel = RecurrentLM | TransformerLM


def build_language_model(config: LanguageModelConfig, vocab_size: int) -> LanguageModel:
    """The model of ``config.arch`` for a vocabulary of V = ``vocab_size`` ids."""
    if config.arch == "transformer":
        return TransformerLM(config, vocab_size)
    return RecurrentLM(config, vocab_size)


def log_softmax_last(logits: Tensor) -> Tensor:
    """(B, T, V) logits -> (B, V) log-probabilities of the token after the last position."""
    return F.log_softmax(logits[:, -1].float(), dim=-1)
