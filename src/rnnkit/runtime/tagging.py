"""The ``tagging`` runtime: sentences in; each token's tag and its probability out.

It reads what :mod:`rnnkit.tasks.tagging_export` wrote (``tagger.onnx``, ``vocab.json`` and
``config.json``), reads words as the run does (whitespace-separated, or for a
``punctuation-bible`` run lower-cased with punctuation removed), encodes them with the run's
word (and character) vocabularies, runs the graph on length-sorted padded batches and takes
each position's most probable tag (softmax in NumPy; the tagger has no CRF). Its :class:`Tagged`,
``format`` and ``to_json`` are those of :class:`rnnkit.tasks.tagging_predict.TaggingPredictor`,
with the restored text when the tags are punctuation marks.

Imports: numpy, onnxruntime and the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.runtime.base import RuntimePredictor, read_json, session
from rnnkit.runtime.search import softmax

__all__ = ["Tagged", "TaggingRuntime", "load", "punctuation_words", "restore_punctuation"]

PAD = 0
_PUNCTUATION_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_BATCH = 64


def punctuation_words(text: str) -> list[str]:
    """The words of ``text`` lower-cased, punctuation removed (inner ``-`` and ``'`` kept), as
    the ``punctuation-bible`` corpus reads them."""
    return [m.group().lower() for m in _PUNCTUATION_WORD.finditer(text)]


def restore_punctuation(tokens: Sequence[str], tags: Sequence[str]) -> str:
    """The tokens joined by spaces, each followed by its mark (``O`` adds none)."""
    return " ".join(
        token if tag == "O" else token + tag for token, tag in zip(tokens, tags, strict=True)
    )


class _Vocabulary:
    """Tokens and their ids, with the unknown token's id for tokens not in it."""

    def __init__(self, body: Any, where: str) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("tokens"), list):
            raise ValueError(f"{where}: a vocabulary must be a mapping with 'tokens'")
        self.tokens = [str(t) for t in body["tokens"]]
        self._ids = {t: i for i, t in enumerate(self.tokens)}
        unk = body.get("unk")
        self.unk = None if unk is None else self._ids[str(unk)]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """The ids of ``tokens`` (unknown ones: the unknown token's id)."""
        out = []
        for t in tokens:
            found = self._ids.get(t, self.unk)
            if found is None:
                raise ValueError(f"token {t!r} is not in the vocabulary")
            out.append(found)
        return out


@dataclass(frozen=True)
class Tagged:
    """The tags of one input (as :class:`rnnkit.tasks.tagging_predict.Tagged`).

    Attributes:
        tokens: the N input tokens. tags: the N predicted tags. probabilities: the model's
            probability of each predicted tag (4 decimals).
    """

    tokens: list[str]
    tags: list[str]
    probabilities: list[float]


class TaggingRuntime(RuntimePredictor):
    """An exported tagger: ``predict(token lists, options) -> list[Tagged]``."""

    def __init__(self, folder: Path, config: dict[str, Any], threads: int | None = None) -> None:
        super().__init__(folder, config)
        path = folder / str(config["vocab"])
        body = read_json(path, "vocabulary file", "JSON file")
        self.words = _Vocabulary(body.get("words"), str(path))
        self.tags = _Vocabulary(body.get("tags"), str(path)).tokens
        self.chars = _Vocabulary(body["chars"], str(path)) if config["char_features"] else None
        self.punctuation_words = config["words"] == "punctuation"
        self.lowercase = bool(config["lowercase"])
        self.max_word_length = int(config["max_word_length"])
        self.punctuation = bool(config["punctuation"])
        self.session = session(folder / str(config["graph"]), threads)

    def parse(self, text: str) -> list[str]:
        """Whitespace-separated tokens; a ``punctuation-bible`` run's words as its corpus reads
        them (lower-cased, punctuation removed)."""
        return punctuation_words(text) if self.punctuation_words else text.split()

    def encode(self, tokens: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """Word ids (N,) and, with char features, each word's character ids (else empty)."""
        ids = self.words.encode([t.lower() if self.lowercase else t for t in tokens])
        if self.chars is None:
            return ids, []
        return ids, [self.chars.encode(list(t[: self.max_word_length])) for t in tokens]

    def run(self, encoded: Sequence[tuple[list[int], list[list[int]]]]) -> np.ndarray:
        """The graph on one padded batch of B encoded sentences: logits (B, T, K) float32."""
        B = len(encoded)
        T = max(len(w) for w, _ in encoded)
        tokens = np.full((B, T), PAD, dtype=np.int64)  # (B, T)
        for b, (w, _) in enumerate(encoded):
            tokens[b, : len(w)] = w
        lengths = np.array([len(w) for w, _ in encoded], dtype=np.int64)  # (B,)
        feeds = {"tokens": tokens, "lengths": lengths}
        if self.chars is not None:
            L = max((len(c) for _, cs in encoded for c in cs), default=1)
            chars = np.full((B, T, max(L, 1)), PAD, dtype=np.int64)  # (B, T, L)
            for b, (_, cs) in enumerate(encoded):
                for i, c in enumerate(cs):
                    chars[b, i, : len(c)] = c
            feeds["chars"] = chars
        logits: np.ndarray = self.session.run(["logits"], feeds)[0]
        return logits

    def tag(self, token_lists: Sequence[Sequence[str]]) -> list[tuple[list[int], list[float]]]:
        """Each token list's predicted tag ids and their probabilities, batched by length.

        Raises:
            ValueError: an input with no tokens (naming its position).
        """
        for k, tokens in enumerate(token_lists):
            if not tokens:
                raise ValueError(f"input {k + 1} is empty: nothing to tag")
        encoded = [self.encode(t) for t in token_lists]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
        results: list[tuple[list[int], list[float]]] = [([], []) for _ in encoded]
        for start in range(0, len(order), _BATCH):
            chunk = order[start : start + _BATCH]
            probs = softmax(self.run([encoded[i] for i in chunk]).astype(np.float32))  # (B, T, K)
            best, ids = probs.max(-1), probs.argmax(-1)  # (B, T) each
            for row, i in enumerate(chunk):
                n = len(encoded[i][0])
                results[i] = (ids[row, :n].tolist(), best[row, :n].tolist())
        return results

    def predict(self, inputs: Sequence[list[str]], options: Mapping[str, Any]) -> list[Tagged]:
        """Each sentence's :class:`Tagged` (the tagging task has no predict options)."""
        found = self.tag(inputs)
        return [
            Tagged(list(tokens), [self.tags[i] for i in ids], [round(p, 4) for p in probs])
            for tokens, (ids, probs) in zip(inputs, found, strict=True)
        ]

    def format(self, output: Tagged) -> str:
        """``token/TAG`` pairs; for punctuation tags the restored text first, on its own line."""
        pairs = " ".join(f"{t}/{g}" for t, g in zip(output.tokens, output.tags, strict=True))
        if self.punctuation:
            return restore_punctuation(output.tokens, output.tags) + "\n" + pairs
        return pairs

    def to_json(self, inp: list[str], output: Tagged) -> Any:
        """The torch predictor's JSON: tokens, tags, probabilities (and the restored text)."""
        out: dict[str, Any] = {
            "tokens": output.tokens,
            "tags": output.tags,
            "probabilities": output.probabilities,
        }
        if self.punctuation:
            out["text"] = restore_punctuation(output.tokens, output.tags)
        return out


def load(folder: Path, config: dict[str, Any], threads: int | None = None) -> TaggingRuntime:
    """The runtime predictor of a tagging export (see :func:`rnnkit.runtime.load`)."""
    return TaggingRuntime(folder, config, threads)
