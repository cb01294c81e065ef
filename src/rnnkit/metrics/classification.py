r"""Classification metrics from predicted and true class ids (NumPy).

Shapes: N examples (tokens, for tagging), K classes with ids in ``[0, K)``. The confusion matrix
``C`` is (K, K) with ``C[i, j]`` the number of examples of true class i predicted as j. Per class k:

- precision :math:`= C_{kk} / \sum_i C_{ik}` (0 when class k is never predicted),
- recall :math:`= C_{kk} / \sum_j C_{kj}` (0 when class k never occurs),
- F1 :math:`= 2PR / (P + R)` (0 when both are 0),

accuracy :math:`= \sum_k C_{kk} / N`, and macro-F1 the unweighted mean of F1 over the classes that
occur in the true labels or the predictions (scikit-learn's ``f1_score(average="macro")`` over the
labels present, the usual convention). These few lines are written here rather than taken from
scikit-learn so the text tasks work without that optional dependency; tests check them against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def confusion_matrix(true: Sequence[int], pred: Sequence[int], num_classes: int) -> np.ndarray:
    """The (K, K) int64 confusion matrix of ``true`` and ``pred`` ((N,) class ids in ``[0, K)``).

    Raises:
        ValueError: different lengths, no examples, or an id outside ``[0, K)``.
    """
    t = np.asarray(true, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"true and pred must be 1-D of one length, got {t.shape} and {p.shape}")
    if t.size == 0:
        raise ValueError("no examples to score")
    for name, ids in (("true", t), ("pred", p)):
        if ids.min() < 0 or ids.max() >= num_classes:
            raise ValueError(f"{name} holds a class id outside [0, {num_classes})")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


@dataclass(frozen=True)
class ClassificationScores:
    """Scores of one prediction run over K named classes.

    Attributes:
        labels: the K class names, index = class id.
        confusion: (K, K) counts, rows true, columns predicted.
        precision, recall, f1: (K,) per class.
        support: (K,) true examples per class.
    """

    labels: tuple[str, ...]
    confusion: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @property
    def accuracy(self) -> float:
        """Share of examples predicted right."""
        return float(np.trace(self.confusion) / self.confusion.sum())

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the classes present in the true labels or the predictions."""
        present = (self.confusion.sum(axis=0) + self.confusion.sum(axis=1)) > 0
        return float(self.f1[present].mean())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: accuracy, macro_f1, per-class scores and the confusion matrix."""
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_class": {
                label: {
                    "precision": float(self.precision[k]),
                    "recall": float(self.recall[k]),
                    "f1": float(self.f1[k]),
                    "support": int(self.support[k]),
                }
                for k, label in enumerate(self.labels)
            },
            "confusion": self.confusion.tolist(),
        }


def classification_scores(
    true: Sequence[int], pred: Sequence[int], labels: Sequence[str]
) -> ClassificationScores:
    """Confusion matrix and per-class precision, recall and F1 of ``pred`` against ``true``.

    Args:
        true, pred: (N,) class ids in ``[0, K)``.
        labels: the K class names.
    """
    conf = confusion_matrix(true, pred, len(labels))
    hits = np.diag(conf).astype(np.float64)
    predicted = conf.sum(axis=0).astype(np.float64)
    support = conf.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(support > 0, hits / support, 0.0)
        both = precision + recall
        f1 = np.where(both > 0, 2 * precision * recall / both, 0.0)
    return ClassificationScores(tuple(labels), conf, precision, recall, f1, support)


def format_scores(scores: ClassificationScores, *, digits: int = 3) -> str:
    """A per-class table (precision, recall, F1, support), then accuracy and macro-F1."""
    width = max(9, *(len(label) for label in scores.labels))
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for k, label in enumerate(scores.labels):
        lines.append(
            f"{label:<{width}}  {scores.precision[k]:9.{digits}f}  {scores.recall[k]:6.{digits}f}"
            f"  {scores.f1[k]:5.{digits}f}  {int(scores.support[k]):7d}"
        )
    lines.append(f"{'accuracy':<{width}}  {scores.accuracy:.{digits}f}")
    lines.append(f"{'macro-F1':<{width}}  {scores.macro_f1:.{digits}f}")
    return "\n".join(lines)
