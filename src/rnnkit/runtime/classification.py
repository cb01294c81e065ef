"""The ``classification`` runtime: texts in; label, class probabilities, tokens and attention out.

It reads what :mod:`rnnkit.tasks.classification_export` wrote (``classifier.onnx``, the
tokeniser file and ``config.json``), tokenises as the run does (NFKC normalisation, optional
lower-casing, the first ``max_length`` tokens), runs the graph on length-sorted padded batches
and takes the softmax in NumPy. Its :class:`Prediction`, ``format`` and ``to_json`` are those of
:class:`rnnkit.tasks.classification_predict.ClassificationPredictor`.

Imports: numpy, onnxruntime, sentencepiece (for unigram/BPE tokenisers) and the standard library.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.runtime.base import RuntimePredictor, session, unsupported
from rnnkit.runtime.search import softmax

__all__ = ["ClassificationRuntime", "Prediction", "Tokenizer", "load", "normalize"]

WORD_MARK = "\u2581"
UNK_ID = 3
_WORD_RE = re.compile(r"\w+|[^\w\s]")
_SPACES_RE = re.compile(r"\s+")
_BATCH = 128


def normalize(text: str) -> str:
    """NFKC, ``▁`` read as a space, whitespace runs collapsed to one space, ends stripped."""
    text = unicodedata.normalize("NFKC", text).replace(WORD_MARK, " ")
    return _SPACES_RE.sub(" ", text).strip()


class Tokenizer:
    """rnnkit's word, char and sentencepiece tokenisers, encoding side only.

    Args:
        path: ``tokenizer.json`` (word or char vocabulary) or ``tokenizer.model``
            (sentencepiece).

    Raises:
        ValueError: the file is missing or not a tokeniser (naming it).
    """

    def __init__(self, path: Path) -> None:
        self._sp: Any = None
        self.kind = "sentencepiece"
        if path.suffix == ".model":
            import sentencepiece as spm

            if not path.is_file():
                raise ValueError(f"{path}: no such sentencepiece model")
            self._sp = spm.SentencePieceProcessor(model_file=str(path))
            return
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{path}: no such tokenizer file") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a tokenizer file ({err})") from None
        if not isinstance(body, dict) or body.get("kind") not in ("word", "char"):
            raise ValueError(f"{path}: not an rnnkit word or char tokenizer file")
        self.kind = str(body["kind"])
        self._ids = {str(t): i for i, t in enumerate(body["tokens"])}

    def pieces(self, text: str) -> list[str]:
        """The token strings of ``text`` (``▁`` marks a preceding space; char: a space)."""
        text = normalize(text)
        if self._sp is not None:
            return list(self._sp.encode(text, out_type=str))
        if self.kind == "char":
            return [WORD_MARK if c == " " else c for c in text]
        out = []
        for chunk in text.split(" "):
            for k, match in enumerate(_WORD_RE.finditer(chunk)):
                out.append(match.group() if k else WORD_MARK + match.group())
        return out

    def encode(self, text: str) -> list[int]:
        """The ids of ``text`` (no BOS/EOS); unknown tokens are ``<unk>`` (id 3)."""
        if self._sp is not None:
            return list(self._sp.encode(normalize(text), out_type=int))
        split = list(normalize(text)) if self.kind == "char" else self.pieces(text)
        return [self._ids.get(token, UNK_ID) for token in split]


@dataclass(frozen=True)
class Prediction:
    """The class of one text (as :class:`rnnkit.tasks.classification_predict.Prediction`).

    Attributes:
        label: the most probable class. probabilities: class -> probability, in class order.
        tokens: the T tokens the model read. attention: (T,) weights over them, or None.
    """

    label: str
    probabilities: dict[str, float]
    tokens: list[str]
    attention: list[float] | None = None


class ClassificationRuntime(RuntimePredictor):
    """An exported classifier: ``predict(texts, options) -> list[Prediction]``."""

    def __init__(self, folder: Path, config: dict[str, Any], threads: int | None = None) -> None:
        super().__init__(folder, config)
        self.labels = [str(label) for label in config["labels"]]
        self.lowercase = bool(config["lowercase"])
        self.max_length = int(config["max_length"])
        self.pad_id = int(config.get("pad_id", 0))
        self.attention = config["pooling"] == "attention"
        self.tokenizer = Tokenizer(folder / str(config["tokenizer"]))
        self.session = session(folder / str(config["graph"]), threads)

    def _text(self, text: str) -> str:
        return text.lower() if self.lowercase else text

    def encode(self, text: str) -> list[int]:
        """The token ids the model reads of ``text`` (at most ``max_length``)."""
        return self.tokenizer.encode(self._text(text))[: self.max_length]

    def tokens_of(self, text: str) -> list[str]:
        """The token strings the model reads of ``text``."""
        return self.tokenizer.pieces(self._text(text))[: self.max_length]

    def run(self, ids: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray | None]:
        """The graph on one padded batch of B id lists: logits (B, K) float32 and attention
        (B, T) or None."""
        T = max(len(row) for row in ids)
        tokens = np.full((len(ids), T), self.pad_id, dtype=np.int64)  # (B, T)
        for b, row in enumerate(ids):
            tokens[b, : len(row)] = row
        lengths = np.array([len(row) for row in ids], dtype=np.int64)  # (B,)
        out = self.session.run(None, {"tokens": tokens, "lengths": lengths})
        return out[0], (out[1] if self.attention else None)

    def classify(self, texts: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """Class probabilities (N, K) float64 and each text's (T_i,) attention weights (None
        without attention pooling), in input order, batched by length.

        Raises:
            ValueError: a text without tokens (naming its position).
        """
        ids = [self.encode(t) for t in texts]
        for i, row in enumerate(ids):
            if not row:
                raise ValueError(f"input {i + 1} is empty: nothing to classify")
        probs = np.zeros((len(ids), len(self.labels)))
        attention: list[np.ndarray | None] = [None] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), _BATCH):
            chunk = order[start : start + _BATCH]
            logits, weights = self.run([ids[i] for i in chunk])
            p = softmax(logits.astype(np.float32)).astype(np.float64)  # (B, K)
            for b, i in enumerate(chunk):
                probs[i] = p[b]
                if weights is not None:
                    attention[i] = weights[b, : len(ids[i])]
        return probs, attention

    def predict(self, inputs: Sequence[str], options: Mapping[str, Any]) -> list[Prediction]:
        """Each text's :class:`Prediction`; ``--attention-plot`` is refused (no figures here)."""
        unsupported(options, ["attention_plot"], self.flags)
        probs, attention = self.classify(inputs)
        out = []
        for text, p, a in zip(inputs, probs, attention, strict=True):
            out.append(
                Prediction(
                    label=self.labels[int(p.argmax())],
                    probabilities={k: float(v) for k, v in zip(self.labels, p, strict=True)},
                    tokens=self.tokens_of(text),
                    attention=None if a is None else [float(v) for v in a],
                )
            )
        return out

    def format(self, output: Prediction) -> str:
        """``label<TAB>class p, class p, ...`` (probabilities to 3 decimals, class order)."""
        probs = ", ".join(f"{label} {p:.3f}" for label, p in output.probabilities.items())
        return f"{output.label}\t{probs}"

    def to_json(self, inp: str, output: Prediction) -> Any:
        """The torch predictor's JSON: input, label, probabilities, tokens (and attention)."""
        body: dict[str, Any] = {
            "input": inp,
            "label": output.label,
            "probabilities": output.probabilities,
            "tokens": output.tokens,
        }
        if output.attention is not None:
            body["attention"] = [round(v, 4) for v in output.attention]
        return body


def load(folder: Path, config: dict[str, Any], threads: int | None = None) -> ClassificationRuntime:
    """The runtime predictor of a classification export (see :func:`rnnkit.runtime.load`)."""
    return ClassificationRuntime(folder, config, threads)
