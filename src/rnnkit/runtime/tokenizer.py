"""Tokenisers for the runtime: read the files :mod:`rnnkit.data.tokenizers` wrote, torch-free.

The same four kinds and reserved ids (pad 0, bos 1, eos 2, unk 3), the same normalisation (NFKC,
``▁`` read as a space, whitespace runs collapsed, ends stripped) and the same ``encode``,
``decode``, ``id_to_piece`` (a test checks each against :mod:`rnnkit.data.tokenizers`). Only
reading: tokenisers are trained by ``rnnkit train``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path

__all__ = ["BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "WORD_MARK", "RuntimeTokenizer", "load"]

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
WORD_MARK = "\u2581"
_SPECIAL = (PAD_ID, BOS_ID, EOS_ID)
_WORD_RE = re.compile(r"\w+|[^\w\s]")
_SPACES_RE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC, ``▁`` as a space, whitespace runs collapsed to one space, ends stripped."""
    text = unicodedata.normalize("NFKC", text).replace(WORD_MARK, " ")
    return _SPACES_RE.sub(" ", text).strip()


class RuntimeTokenizer:
    """A word, char or sentencepiece tokeniser read from a run's file."""

    def __init__(self, kind: str, tokens: Sequence[str] = (), model: bytes | None = None) -> None:
        self.kind = kind
        self.tokens = tuple(tokens)
        self._ids = {t: i for i, t in enumerate(self.tokens)}
        self._sp = None
        if model is not None:
            import sentencepiece as spm

            self._sp = spm.SentencePieceProcessor(model_proto=model)

    @property
    def vocab_size(self) -> int:
        """V, reserved ids included."""
        return int(self._sp.get_piece_size()) if self._sp is not None else len(self.tokens)

    def _split(self, text: str) -> list[str]:
        if self.kind == "char":
            return list(text)
        out = []
        for chunk in text.split(" "):
            for k, match in enumerate(_WORD_RE.finditer(chunk)):
                out.append(match.group() if k else WORD_MARK + match.group())
        return out

    def encode(self, text: str) -> list[int]:
        """Ids of the normalised text (no bos/eos); unknown tokens get ``UNK_ID``."""
        if self._sp is not None:
            return list(self._sp.encode(normalize(text), out_type=int))
        return [self._ids.get(t, UNK_ID) for t in self._split(normalize(text))]

    def _check(self, i: int) -> int:
        if not 0 <= i < self.vocab_size:
            raise ValueError(f"id {i} is outside the vocabulary (size {self.vocab_size})")
        return i

    def decode(self, ids: Sequence[int]) -> str:
        """Detokenised text of ``ids``; pad/bos/eos dropped."""
        kept = [i for i in (self._check(int(i)) for i in ids) if i not in _SPECIAL]
        if self._sp is not None:
            return str(self._sp.decode(kept))
        tokens = [self.tokens[i] for i in kept]
        if self.kind == "char":
            return "".join(tokens)
        spaced = (
            " " + t[1:] if t[0] == WORD_MARK else " " + t if t == "<unk>" else t for t in tokens
        )
        text = "".join(spaced)
        return text[1:] if text.startswith(" ") else text

    def id_to_piece(self, token: int) -> str:
        """The token string of one id."""
        self._check(token)
        return str(self._sp.id_to_piece(token)) if self._sp is not None else self.tokens[token]


def load(path: Path) -> RuntimeTokenizer:
    """Read a ``*.model`` sentencepiece file or a word/char ``*.json`` vocabulary.

    Raises:
        ValueError: a missing or unreadable file, naming it.
    """
    if not path.is_file():
        raise ValueError(f"{path}: no such tokenizer file")
    if path.suffix == ".model":
        return RuntimeTokenizer("sentencepiece", model=path.read_bytes())
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a tokenizer file ({err})") from None
    if not isinstance(body, dict) or body.get("kind") not in ("word", "char"):
        raise ValueError(f"{path}: not an rnnkit word or char tokenizer file")
    return RuntimeTokenizer(str(body["kind"]), [str(t) for t in body["tokens"]])
