"""rnnkit's tokenisers, reading side, torch-free: normalisation, encoding, decoding, pieces.

:mod:`rnnkit.data.tokenizers` builds on these classes (it adds training, checks and saving), so
a run and its export tokenise with the same code. Reserved ids: pad 0, bos 1, eos 2, unk 3.
Text is normalised first (:func:`normalize`: NFKC, ``▁`` read as a space, whitespace runs
collapsed, ends stripped). :func:`load` reads a ``*.model`` sentencepiece file or a word/char
``*.json`` vocabulary.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from rnnkit.runtime.base import read_json

__all__ = [
    "BOS_ID",
    "EOS_ID",
    "PAD_ID",
    "SPECIAL_TOKENS",
    "UNK_ID",
    "WORD_MARK",
    "CharTokenizer",
    "RuntimeTokenizer",
    "SentencePieceTokenizer",
    "VocabTokenizer",
    "WordTokenizer",
    "load",
    "normalize",
]

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<s>", "</s>", "<unk>")
WORD_MARK = "\u2581"  # ▁, "a space comes before this token"
_SPECIAL = (PAD_ID, BOS_ID, EOS_ID)
_WORD_RE = re.compile(r"\w+|[^\w\s]")
_SPACES_RE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC, ``▁`` as a space, whitespace runs collapsed to one space, ends stripped."""
    text = unicodedata.normalize("NFKC", text).replace(WORD_MARK, " ")
    return _SPACES_RE.sub(" ", text).strip()


def _outside(i: int, size: int) -> ValueError:
    return ValueError(f"id {i} is outside the vocabulary (size {size})")


class VocabTokenizer:
    """A token list whose index is the id: what the word and char tokenisers share."""

    kind: str

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens: tuple[str, ...] = tuple(tokens)
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    @property
    def vocab_size(self) -> int:
        """V, the number of ids, reserved ids included."""
        return len(self.tokens)

    def _split(self, text: str) -> list[str]:
        raise NotImplementedError

    def _join(self, tokens: list[str]) -> str:
        raise NotImplementedError

    def pieces(self, text: str) -> list[str]:
        """The token strings of the normalised ``text`` (unknown ones included as they are)."""
        return self._split(normalize(text))

    def id_to_piece(self, token: int) -> str:
        """The token string of one id."""
        if not 0 <= token < len(self.tokens):
            raise _outside(token, len(self.tokens))
        return self.tokens[token]

    def encode(self, text: str) -> list[int]:
        """Ids of the normalised ``text``; tokens not in the vocabulary get ``UNK_ID``."""
        return [self._ids.get(token, UNK_ID) for token in self._split(normalize(text))]

    def decode(self, ids: Sequence[int]) -> str:
        """Detokenised text of ``ids``; pad/bos/eos are dropped, unk is written ``<unk>``."""
        tokens = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.tokens):
                raise _outside(i, len(self.tokens))
            if i not in _SPECIAL:
                tokens.append(self.tokens[i])
        return self._join(tokens)


class WordTokenizer(VocabTokenizer):
    """Word-level tokeniser: ``\\w+`` words and single punctuation marks, ``▁`` after a space."""

    kind: str = "word"

    def _split(self, text: str) -> list[str]:
        out = []
        for chunk in text.split(" "):
            for k, match in enumerate(_WORD_RE.finditer(chunk)):
                out.append(match.group() if k else WORD_MARK + match.group())
        return out

    def _join(self, tokens: list[str]) -> str:
        # an unknown word is written as a word of its own: "<unk>" after a space
        spaced = (
            " " + t[1:] if t[0] == WORD_MARK else " " + t if t == "<unk>" else t for t in tokens
        )
        text = "".join(spaced)
        return text[1:] if text.startswith(" ") else text


class CharTokenizer(VocabTokenizer):
    """Character-level tokeniser: one token per character, the space included."""

    kind: str = "char"

    def _split(self, text: str) -> list[str]:
        return list(text)

    def _join(self, tokens: list[str]) -> str:
        return "".join(tokens)

    def pieces(self, text: str) -> list[str]:
        """The characters of the normalised ``text``, a space shown as ``▁``."""
        return [WORD_MARK if c == " " else c for c in self._split(normalize(text))]


class SentencePieceTokenizer:
    """A sentencepiece model (unigram or BPE) read from its serialised bytes."""

    kind: str = "sentencepiece"

    def __init__(self, model_proto: bytes) -> None:
        import sentencepiece as spm

        self._model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @property
    def vocab_size(self) -> int:
        """V, the number of pieces, reserved ids included."""
        return int(self._sp.get_piece_size())

    def encode(self, text: str) -> list[int]:
        """Piece ids of the normalised ``text`` (no BOS/EOS)."""
        return list(self._sp.encode(normalize(text), out_type=int))

    def decode(self, ids: Sequence[int]) -> str:
        """Detokenised text of ``ids``; pad/bos/eos ids are dropped."""
        kept = []
        for i in ids:
            i = int(i)
            if not 0 <= i < self.vocab_size:
                raise _outside(i, self.vocab_size)
            if i not in _SPECIAL:
                kept.append(i)
        return str(self._sp.decode(kept))

    def pieces(self, text: str) -> list[str]:
        """The pieces of the normalised ``text`` (``▁`` marks a preceding space)."""
        return list(self._sp.encode(normalize(text), out_type=str))

    def id_to_piece(self, token: int) -> str:
        """The piece of one id."""
        if not 0 <= token < self.vocab_size:
            raise _outside(token, self.vocab_size)
        return str(self._sp.id_to_piece(token))


RuntimeTokenizer = WordTokenizer | CharTokenizer | SentencePieceTokenizer
"""What :func:`load` returns."""


def load(path: Path) -> RuntimeTokenizer:
    """Read a ``*.model`` sentencepiece file or a word/char ``*.json`` vocabulary.

    Raises:
        ValueError: a missing or unreadable file, naming it.
    """
    if not path.is_file():
        raise ValueError(f"{path}: no such tokenizer file")
    if path.suffix == ".model":
        return SentencePieceTokenizer(path.read_bytes())
    body = read_json(path, "tokenizer file")
    if not isinstance(body, dict) or body.get("kind") not in ("word", "char"):
        raise ValueError(f"{path}: not an rnnkit word or char tokenizer file")
    tokens = [str(t) for t in body["tokens"]]
    return WordTokenizer(tokens) if body["kind"] == "word" else CharTokenizer(tokens)
