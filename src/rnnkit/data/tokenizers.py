"""Tokenisers: sentencepiece (unigram or BPE), word level and character level, one interface.

Every tokeniser maps text to ids and back::

    ids = tok.encode("Dieu dit: Que la lumière soit!")   # list[int], no BOS/EOS added
    tok.decode(ids)                                      # the (normalised) text again
    tok.pieces("Dieu dit")                               # ["▁Dieu", "▁dit"], for display
    tok.vocab_size                                       # V, reserved ids included

Reserved ids are the same for all kinds: pad 0 (``<pad>``), bos 1 (``<s>``), eos 2 (``</s>``),
unk 3 (``<unk>``); sentencepiece is trained with these ids. ``encode`` adds no BOS/EOS (the model
code does); ``decode`` drops pad/bos/eos ids and writes unknown ids as ``<unk>`` (sentencepiece:
`` ⁇ ``).

Input text is normalised by :func:`normalize` first: Unicode NFKC, ``▁`` (U+2581, the word marker)
read as a space, runs of whitespace collapsed to one space, ends stripped. On text whose tokens are
all in the vocabulary, ``decode(encode(x)) == normalize(x)`` for every kind.

- ``word``: words ``\\w+`` and single punctuation marks. As in sentencepiece a token that follows
  a space is written with a ``▁`` prefix, so spacing is kept exactly (``"dit:"`` is ``["▁dit",
  ":"]``). The vocabulary (tokens counted on training text, kept with ``min_count`` and cut to
  ``max_size``, most frequent first, ties alphabetical) is saved as JSON.
- ``char``: one token per character, spaces included (shown as ``▁`` by :meth:`pieces`); JSON.
- ``unigram`` / ``bpe``: a sentencepiece model trained on the training text (from an iterator,
  deterministic: one thread, no sampling), saved as ``<prefix>.model`` next to a readable
  ``<prefix>.vocab``.

Joint or separate vocabularies are a caller's choice: train one tokeniser on source and target
text together, or one per side.

Vocabulary limits. A sentencepiece model needs at least one piece per character of its training
text (plus the four reserved ones) and can hold at most the pieces that text offers (a few hundred
for a few hundred short lines). A ``vocab_size`` outside these bounds raises
:class:`VocabSizeError`, which carries the bound so a caller can name its own config key; nothing
is written then. Word and character vocabularies take ``vocab_size`` as a maximum and never fail.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal, Protocol, get_args

from rnnkit.io import write_bytes_atomic, write_text_atomic
from rnnkit.runtime import tokenizer as _reading
from rnnkit.runtime.base import read_json
from rnnkit.runtime.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_TOKENS,
    UNK_ID,
    WORD_MARK,
    normalize,
)

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "TOKENIZER_KINDS",
    "UNK_ID",
    "WORD_MARK",
    "CharTokenizer",
    "SentencePieceTokenizer",
    "Tokenizer",
    "TokenizerKind",
    "VocabSizeError",
    "WordTokenizer",
    "build_tokenizer",
    "load_tokenizer",
    "normalize",
]

TokenizerKind = Literal["unigram", "bpe", "word", "char"]
TOKENIZER_KINDS: tuple[TokenizerKind, ...] = get_args(TokenizerKind)

_JSON_FORMAT = "rnnkit.tokenizer"
# sentencepiece 0.2's messages for a vocab_size the text cannot fill, or one below its characters
_TOO_HIGH_RE = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_LOW_RE = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


class VocabSizeError(ValueError):
    """A ``vocab_size`` the training text cannot give: too large for it, or below its characters.

    Attributes:
        kind: the tokeniser kind (``unigram`` or ``bpe``).
        requested: the ``vocab_size`` asked for.
        minimum: the smallest size the text allows (its characters plus the reserved pieces), set
            when ``requested`` is below it.
        maximum: the largest size the text allows, set when ``requested`` is above it.
    """

    def __init__(
        self, kind: str, requested: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> None:
        self.kind, self.requested, self.minimum, self.maximum = kind, requested, minimum, maximum
        super().__init__(f"vocab_size={requested} is {self.reason()}")

    def reason(self, text: str = "this training text") -> str:
        """Why, after ``vocab_size=N is``: which bound, and the tokeniser's limit; ``text``
        names the training text (``the target side's training text``)."""
        if self.maximum is not None:
            return (
                f"too large for {text}: the {self.kind} tokenizer can hold at most "
                f"{self.maximum} pieces"
            )
        return (
            f"too small for {text}: the {self.kind} tokenizer needs at least "
            f"{self.minimum} pieces (one per character, and the {len(SPECIAL_TOKENS)} reserved ones)"
        )

    def advice(self, key: str) -> str:
        """What to set ``key`` (the caller's name for ``vocab_size``) to instead."""
        if self.maximum is not None:
            return f"set {key} to {self.maximum} or less"
        return f"set {key} to {self.minimum} or more"


class Tokenizer(Protocol):
    """What every tokeniser offers (see the module docstring)."""

    kind: str

    @property
    def vocab_size(self) -> int:
        """V, the number of ids, reserved ids included."""
        ...

    def encode(self, text: str) -> list[int]:
        """Ids of the normalised ``text`` (no BOS/EOS)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, detokenised; pad/bos/eos ids are dropped."""
        ...

    def pieces(self, text: str) -> list[str]:
        """The token strings of ``text``, for display."""
        ...

    def id_to_piece(self, token: int) -> str:
        """The token string of one id, for display (``</s>`` for eos)."""
        ...

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the tokeniser under ``path``; return the file to :func:`load_tokenizer`."""
        ...


# ----------------------------------------------------------------------------- vocab-based


class _VocabTokenizer(_reading.VocabTokenizer):
    """Shared code of the word and char tokenisers: a checked token list whose index is the id;
    encoding and decoding are :class:`rnnkit.runtime.tokenizer.VocabTokenizer`'s."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary must start with {', '.join(SPECIAL_TOKENS)}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a vocabulary must not hold the same token twice")
        super().__init__(tokens)

    @classmethod
    def train(
        cls, texts: Iterable[str], *, min_count: int = 1, max_size: int | None = None
    ) -> _VocabTokenizer:
        """Build the vocabulary from training ``texts``.

        Tokens seen at least ``min_count`` times are kept, most frequent first (ties in
        alphabetical order, so the result is deterministic), cut so that V <= ``max_size``
        (reserved ids included).
        """
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1; got {min_count}")
        if max_size is not None and max_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"max_size must be > {len(SPECIAL_TOKENS)}; got {max_size}")
        tok = cls(SPECIAL_TOKENS)
        counts = Counter(t for text in texts for t in tok._split(normalize(text)))
        kept = sorted(
            (t for t, n in counts.items() if n >= min_count and t not in SPECIAL_TOKENS),
            key=lambda t: (-counts[t], t),
        )
        if max_size is not None:
            kept = kept[: max_size - len(SPECIAL_TOKENS)]
        return cls([*SPECIAL_TOKENS, *kept])

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vocabulary as JSON to ``path`` (atomically) and return the path."""
        file = Path(path)
        body = {"format": _JSON_FORMAT, "version": 1, "kind": self.kind, "tokens": self.tokens}
        write_text_atomic(file, json.dumps(body, ensure_ascii=False, indent=0) + "\n")
        return file


class WordTokenizer(_VocabTokenizer, _reading.WordTokenizer):
    """Word-level tokeniser: ``\\w+`` words and single punctuation marks, ``▁`` after a space."""


class CharTokenizer(_VocabTokenizer, _reading.CharTokenizer):
    """Character-level tokeniser: one token per character, the space included."""


# ----------------------------------------------------------------------------- sentencepiece


class SentencePieceTokenizer(_reading.SentencePieceTokenizer):
    """A sentencepiece model (unigram or BPE) with rnnkit's reserved ids and normalisation."""

    def __init__(self, model_proto: bytes) -> None:
        super().__init__(model_proto)
        ids = (self._sp.pad_id(), self._sp.bos_id(), self._sp.eos_id(), self._sp.unk_id())
        if ids != (PAD_ID, BOS_ID, EOS_ID, UNK_ID):
            raise ValueError(
                f"sentencepiece model has pad/bos/eos/unk ids {ids}; rnnkit needs "
                f"{(PAD_ID, BOS_ID, EOS_ID, UNK_ID)} (train it with SentencePieceTokenizer.train)"
            )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to ``path`` (atomically, conventionally ``*.model``) and return it."""
        file = Path(path)
        write_bytes_atomic(file, self._model_proto)
        return file

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SentencePieceTokenizer:
        """Read a model written by :meth:`train` or :meth:`save`; ValueError naming a bad file."""
        file = Path(path)
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise ValueError(f"{file}: no such sentencepiece model") from None
        try:
            return cls(data)
        except RuntimeError as err:  # sentencepiece's parse error
            raise ValueError(f"{file}: not a sentencepiece model ({err})") from None

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        model_prefix_path: str | os.PathLike[str],
        vocab_size: int,
        model_type: Literal["unigram", "bpe"] = "unigram",
        *,
        character_coverage: float = 1.0,
    ) -> SentencePieceTokenizer:
        """Train on ``texts`` and write ``<prefix>.model`` and ``<prefix>.vocab``.

        Training reads the (normalised) texts from an iterator, with one thread and no input
        sampling or shuffling, so the same texts give the same model. sentencepiece's own
        normalisation is off (``identity``): :func:`normalize` has done it.

        Raises:
            VocabSizeError: a ``vocab_size`` the text cannot fill, or one below the number of
                its characters plus the reserved pieces (nothing is written).
            ValueError: an unknown ``model_type``, no text, or another sentencepiece failure
                (its message included).
        """
        import sentencepiece as spm

        if model_type not in ("unigram", "bpe"):
            raise ValueError(f"model_type must be 'unigram' or 'bpe'; got {model_type!r}")
        lines = [line for line in (normalize(t) for t in texts) if line]
        if not lines:
            raise ValueError("cannot train a sentencepiece model on no text")
        model = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(lines),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                normalization_rule_name="identity",
                pad_id=PAD_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                unk_id=UNK_ID,
                pad_piece=SPECIAL_TOKENS[PAD_ID],
                bos_piece=SPECIAL_TOKENS[BOS_ID],
                eos_piece=SPECIAL_TOKENS[EOS_ID],
                unk_piece=SPECIAL_TOKENS[UNK_ID],
                num_threads=1,
                input_sentence_size=0,
                shuffle_input_sentence=False,
                minloglevel=2,
            )
        except RuntimeError as err:
            message = str(err)
            if high := _TOO_HIGH_RE.search(message):
                raise VocabSizeError(model_type, vocab_size, maximum=int(high[2])) from None
            if low := _TOO_LOW_RE.search(message):
                raise VocabSizeError(model_type, vocab_size, minimum=int(low[2])) from None
            raise ValueError(f"sentencepiece training failed: {message}") from None
        tok = cls(model.getvalue())
        prefix = Path(model_prefix_path)
        tok.save(prefix.with_name(prefix.name + ".model"))
        vocab = "".join(
            f"{tok._sp.id_to_piece(i)}\t{tok._sp.get_score(i)}\n" for i in range(tok.vocab_size)
        )
        write_text_atomic(prefix.with_name(prefix.name + ".vocab"), vocab)
        return tok


# ----------------------------------------------------------------------------- factory


def build_tokenizer(
    kind: str,
    texts: Iterable[str],
    path: str | os.PathLike[str],
    *,
    vocab_size: int | None = None,
    min_count: int = 1,
) -> Tokenizer:
    """Train a tokeniser of ``kind`` on training ``texts`` and save it at ``path``.

    Args:
        kind: ``unigram`` or ``bpe`` (sentencepiece; ``vocab_size`` required; ``path`` is the
            model prefix, files ``<path>.model`` and ``<path>.vocab``), ``word`` or ``char``
            (``vocab_size`` is the optional maximum V, ``min_count`` the minimum count; the JSON
            goes to ``<path>.json``).
        texts: the training text (e.g. the training split's source and target sides).
        path: where the tokeniser goes, without extension.

    Returns:
        The trained tokeniser; :func:`load_tokenizer` reads it back from the written file.

    Raises:
        ValueError: an unknown ``kind`` (listing the valid ones) or bad options.
    """
    prefix = Path(path)
    if kind in ("unigram", "bpe"):
        if vocab_size is None:
            raise ValueError(f"a {kind} tokenizer needs vocab_size")
        model_type: Literal["unigram", "bpe"] = "unigram" if kind == "unigram" else "bpe"
        return SentencePieceTokenizer.train(texts, prefix, vocab_size, model_type)
    if kind == "word":
        tok: _VocabTokenizer = WordTokenizer.train(texts, min_count=min_count, max_size=vocab_size)
    elif kind == "char":
        tok = CharTokenizer.train(texts, min_count=min_count, max_size=vocab_size)
    else:
        raise ValueError(
            f"unknown tokenizer kind {kind!r}; valid kinds: {', '.join(TOKENIZER_KINDS)}"
        )
    tok.save(prefix.with_name(prefix.name + ".json"))
    return tok


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """Read a tokeniser: a ``*.model`` sentencepiece file or a word/char ``*.json`` file.

    Raises ``ValueError`` naming the file when it is missing or not a tokeniser.
    """
    file = Path(path)
    if file.suffix == ".model":
        return SentencePieceTokenizer.load(file)
    body = read_json(file, "tokenizer file")
    if not isinstance(body, dict) or body.get("format") != _JSON_FORMAT:
        raise ValueError(f"{file}: not an rnnkit tokenizer file (no '{_JSON_FORMAT}' marker)")
    kinds: dict[str, type[_VocabTokenizer]] = {"word": WordTokenizer, "char": CharTokenizer}
    cls = kinds.get(body.get("kind", ""))
    tokens = body.get("tokens")
    if cls is None or not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"{file}: unknown tokenizer kind or bad token list")
    try:
        return cls(tokens)
    except ValueError as err:
        raise ValueError(f"{file}: {err}") from None
