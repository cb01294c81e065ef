"""The ``classification`` runtime: texts in; label, class probabilities, tokens and attention out.

It reads what :mod:`rnnkit.tasks.classification_export` wrote (``classifier.onnx``, the
tokeniser file and ``config.json``), tokenises as the run does (NFKC normalisation, optional
lower-casing, the first ``max_length`` tokens), runs the graph on length-sorted padded batches
and takes the softmax in NumPy. :class:`Prediction`, :func:`format_prediction` and
:func:`prediction_json` are also the torch engine's
(:class:`rnnkit.tasks.classification_predict.ClassificationPredictor`).

Imports: numpy, onnxruntime, sentencepiece (for unigram/BPE tokenisers) and the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.runtime import tokenizer
from rnnkit.runtime.base import RuntimePredictor, session, unsupported
from rnnkit.runtime.search import softmax

__all__ = [
    "ClassificationRuntime",
    "Prediction",
    "format_prediction",
    "load",
    "prediction_json",
]

_BATCH = 128


@dataclass(frozen=True)
class Prediction:
    """The class of one text (both engines' answer: :mod:`rnnkit.tasks.classification_predict`
    uses this class).

    Attributes:
        label: the most probable class.
        probabilities: class -> probability, in the run's class order.
        tokens: the T tokens the model read, as strings.
        attention: (T,) attention weights over them (attention pooling), else None.
    """

    label: str
    probabilities: dict[str, float]
    tokens: list[str]
    attention: list[float] | None = None


def format_prediction(output: Prediction) -> str:
    """``label<TAB>class p, class p, ...`` (probabilities to 3 decimals, class order): what
    ``rnnkit predict`` prints for a text, with either engine."""
    probs = ", ".join(f"{label} {p:.3f}" for label, p in output.probabilities.items())
    return f"{output.label}\t{probs}"


def prediction_json(inp: str, output: Prediction) -> dict[str, Any]:
    """What ``rnnkit predict --json`` prints for a text, with either engine: input, label,
    probabilities, tokens and (attention pooling) the (T,) weights to 4 decimals."""
    body: dict[str, Any] = {
        "input": inp,
        "label": output.label,
        "probabilities": output.probabilities,
        "tokens": output.tokens,
    }
    if output.attention is not None:
        body["attention"] = [round(v, 4) for v in output.attention]
    return body


class ClassificationRuntime(RuntimePredictor):
    """An exported classifier: ``predict(texts, options) -> list[Prediction]``."""

    def __init__(self, folder: Path, config: dict[str, Any], threads: int | None = None) -> None:
        super().__init__(folder, config)
        self.labels = [str(label) for label in config["labels"]]
        self.lowercase = bool(config["lowercase"])
        self.max_length = int(config["max_length"])
        self.pad_id = int(config.get("pad_id", 0))
        self.attention = config["pooling"] == "attention"
        self.tokenizer = tokenizer.load(folder / str(config["tokenizer"]))
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
        # ClassificationTask.classify's loop, on the graph instead of the module: arrays here,
        # tensors there (the runtime imports no torch)
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
        return format_prediction(output)

    def to_json(self, inp: str, output: Prediction) -> Any:
        """The torch predictor's JSON: input, label, probabilities, tokens (and attention)."""
        return prediction_json(inp, output)


def load(folder: Path, config: dict[str, Any], threads: int | None = None) -> ClassificationRuntime:
    """The runtime predictor of a classification export (see :func:`rnnkit.runtime.load`)."""
    return ClassificationRuntime(folder, config, threads)
