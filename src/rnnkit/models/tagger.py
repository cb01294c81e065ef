r"""Many-to-many aligned models: one prediction per input position (tagging).

An embedding and an rnnkit recurrent layer read the tokens, and a Linear head maps every output
state to K logits::

    e_t = [emb(x_t); char(w_t)]                           (B, T, E + C), char part optional
    h_1 .. h_T = RNN(e_1 .. e_T, lengths)                 (B, T, D*H), zero at padding
    y_t = W h_t + b                                       (B, T, K)

With ``char_features`` each word also gets a vector computed from its characters (so an unknown
word still has a spelling): ``cnn`` embeds the characters, runs one convolution of width 3 and
takes the max over the word's real characters (Ma and Hovy, 2016), C = ``char_hidden_size``;
``lstm`` reads them with a bidirectional LSTM and concatenates its two final states (Lample et
al., 2016), C = 2 ``char_hidden_size``. Only real words are encoded, and padding characters never
reach a real one's vector, so padding changes no output.

Used by the tagging task (:class:`SequenceTaggerConfig`, bidirectional by default) and by the
copy-memory task, which passes the classifier's :class:`SequenceClassifierConfig` (one direction,
no character features, dropout before the head only, token 0 a real symbol rather than padding).
``forward`` returns logits; losses live in training code.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import ValidationInfo, field_validator
from torch import Tensor, nn

from rnnkit.models.classifier import SequenceClassifierConfig
from rnnkit.nn import make_layer

CharFeatures = Literal["none", "cnn", "lstm"]


class SequenceTaggerConfig(SequenceClassifierConfig):
    """Architecture of a :class:`SequenceTagger` for text: the classifier's fields, bidirectional
    by default, plus optional character-level word features.

    Attributes:
        bidirectional: read the sentence both ways (each tag sees its left and right context).
        char_features: ``none``, ``cnn`` or ``lstm`` (see the module docstring).
        char_embedding_size: size of the character embeddings.
        char_hidden_size: CNN filters, or LSTM hidden units per direction.
        dropout: on the word features (embedding and char features), between layers and before
            the head.
    """

    bidirectional: bool = True
    char_features: CharFeatures = "none"
    char_embedding_size: int = 32
    char_hidden_size: int = 32

    @field_validator("char_embedding_size", "char_hidden_size")
    @classmethod
    def _positive_char(cls, value: int, info: ValidationInfo) -> int:
        if value <= 0:
            raise ValueError(f"{info.field_name} must be positive, got {value}")
        return value


class CharCNN(nn.Module):
    """Characters of each word -> one vector: embed, convolve (width 3), max over real chars.

    Args:
        num_chars: character ids are in ``[0, num_chars)``; 0 is padding.
        embedding_size: Ec. hidden_size: C, the filters and the output size.
    """

    def __init__(self, num_chars: int, embedding_size: int, hidden_size: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_chars, embedding_size, padding_idx=0)
        self.conv = nn.Conv1d(embedding_size, hidden_size, kernel_size=3, padding=1)
        self.output_size = hidden_size

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        """chars (N, L) ids padded with 0, lengths (N,) in [1, L] -> (N, C).

        The padding id's embedding is zero, as is the convolution's own padding, so a real
        character's window is the same however many padding characters follow the word.
        """
        x = self.embed(chars).transpose(1, 2)  # (N, Ec, L)
        h = torch.relu(self.conv(x))  # (N, C, L)
        L = chars.shape[1]
        real = torch.arange(L, device=chars.device)[None, :] < lengths[:, None]  # (N, L)
        h = h.masked_fill(~real[:, None, :], float("-inf"))
        out: Tensor = h.max(dim=2).values  # (N, C)
        return out


class CharLSTM(nn.Module):
    """Characters of each word -> one vector: the two final states of a bidirectional LSTM.

    Args:
        num_chars: character ids are in ``[0, num_chars)``; 0 is padding.
        embedding_size: Ec. hidden_size: Hc per direction; the output is C = 2 Hc.
    """

    def __init__(self, num_chars: int, embedding_size: int, hidden_size: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_chars, embedding_size, padding_idx=0)
        self.rnn = make_layer("lstm", embedding_size, hidden_size, bidirectional=True)
        self.output_size = 2 * hidden_size

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        """chars (N, L) ids padded with 0, lengths (N,) in [1, L] -> (N, 2 Hc)."""
        _, (h, _) = self.rnn(self.embed(chars), lengths=lengths)  # h: (2, N, Hc)
        out: Tensor = h.permute(1, 0, 2).reshape(chars.shape[0], -1)  # (N, 2 Hc)
        return out


class SequenceTagger(nn.Module):
    """Token sequences to per-position class logits.

    Args:
        config: the architecture: a :class:`SequenceTaggerConfig`, or the classifier's config
            (cell, sizes, layers, direction, dropout) as the copy-memory task passes it.
        vocab_size: V, token ids are in ``[0, V)``.
        num_classes: K, logits per position.
        num_chars: ids of the character vocabulary (0 is padding); needed with char features.
        pad_id: the padding token id (its embedding is zero and receives no gradient), or None
            when every id is a real token.
    """

    def __init__(
        self,
        config: SequenceClassifierConfig,
        vocab_size: int,
        num_classes: int,
        *,
        num_chars: int = 0,
        pad_id: int | None = None,
    ) -> None:
        super().__init__()
        if vocab_size <= 0 or num_classes <= 0:
            raise ValueError(
                f"vocab_size and num_classes must be positive, got {vocab_size}, {num_classes}"
            )
        if pad_id is not None and not 0 <= pad_id < vocab_size:
            raise ValueError(f"pad_id={pad_id} is not a token id (vocab_size={vocab_size})")
        self.config = config
        self.embed = nn.Embedding(vocab_size, config.embedding_size, padding_idx=pad_id)
        tagger = isinstance(config, SequenceTaggerConfig)
        self.chars: CharCNN | CharLSTM | None = None
        if isinstance(config, SequenceTaggerConfig) and config.char_features != "none":
            if num_chars < 2:
                raise ValueError(
                    f"char_features '{config.char_features}' needs num_chars >= 2, got {num_chars}"
                )
            char_cls = CharCNN if config.char_features == "cnn" else CharLSTM
            self.chars = char_cls(num_chars, config.char_embedding_size, config.char_hidden_size)
        input_size = config.embedding_size + (self.chars.output_size if self.chars else 0)
        self.rnn = make_layer(
            config.cell,
            input_size,
            config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        D = 2 if config.bidirectional else 1
        self.input_dropout = nn.Dropout(config.dropout if tagger else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(D * config.hidden_size, num_classes)

    def features(self, tokens: Tensor, lengths: Tensor | None, chars: Tensor | None) -> Tensor:
        """Word features e_t: tokens (B, T), lengths (B,) or None, chars (B, T, L) or None ->
        (B, T, E + C); the char part is zero at padded words."""
        emb: Tensor = self.embed(tokens)  # (B, T, E)
        if self.chars is None:
            if chars is not None:
                raise ValueError("chars given to a tagger without char_features")
            return emb
        if chars is None:
            raise ValueError("this tagger has char_features: pass chars (B, T, L)")
        B, T = tokens.shape
        if chars.dim() != 3 or chars.shape[:2] != (B, T):
            raise ValueError(f"chars must be ({B}, {T}, L), got shape {tuple(chars.shape)}")
        char_lengths = (chars != 0).sum(dim=2)  # (B, T)
        real = char_lengths > 0  # (B, T) words with characters
        if lengths is not None:
            real &= (
                torch.arange(T, device=tokens.device)[None, :] < lengths.to(tokens.device)[:, None]
            )
        words = self.chars(chars[real], char_lengths[real])  # (N, C), N real words
        out = emb.new_zeros(B, T, self.chars.output_size)  # (B, T, C)
        out[real] = words.to(out.dtype)
        return torch.cat([emb, out], dim=-1)  # (B, T, E + C)

    def forward(
        self, tokens: Tensor, lengths: Tensor | None = None, chars: Tensor | None = None
    ) -> Tensor:
        """Per-position logits.

        Args:
            tokens: (B, T) token ids.
            lengths: (B,) real lengths, or None when all T positions are real.
            chars: (B, T, L) character ids of each word, padded with 0 (needed exactly when
                the config has char features).

        Returns:
            (B, T, K) logits.
        """
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (B, T), got shape {tuple(tokens.shape)}")
        x = self.input_dropout(self.features(tokens, lengths, chars))  # (B, T, E + C)
        out, _ = self.rnn(x, lengths=lengths)  # (B, T, D*H)
        logits: Tensor = self.head(self.dropout(out))  # (B, T, K)
        return logits
