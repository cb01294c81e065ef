"""Baselines of text classification: the majority class, and TF-IDF + logistic regression.

Both are fitted on the training split at evaluation time (nothing is pickled into a run folder)
and predict class ids for texts, so ``rnnkit evaluate`` scores them on the same file as the RNN.
Shapes: N texts, K classes, class ids index the ``labels`` given at fitting.

- :class:`MajorityClass`: always the most frequent training label (ties: the first in
  ``labels``). The floor any model must clear.
- :class:`TfidfLogReg`: what most practitioners try first (scikit-learn, the optional extra
  ``rnnkit[text]``): ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)`` over words
  (lowercased, scikit-learn's default token pattern), then multinomial
  ``LogisticRegression``. The inverse regularisation strength C is chosen from
  :data:`C_GRID` by accuracy on the validation split when one is given (as the RNN's
  checkpoint is chosen on it), else C = 1.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

C_GRID: tuple[float, ...] = (0.25, 1.0, 4.0, 16.0, 64.0)
SKLEARN_HINT = 'pip install "rnnkit[text]" (scikit-learn)'


def sklearn_available() -> bool:
    """True when scikit-learn can be imported (the TF-IDF baseline needs it)."""
    return importlib.util.find_spec("sklearn") is not None


def _check(texts: Sequence[str], targets: Sequence[int], num_classes: int) -> np.ndarray:
    if len(texts) != len(targets):
        raise ValueError(f"{len(texts)} texts but {len(targets)} labels")
    if not texts:
        raise ValueError("no training examples")
    y = np.asarray(targets, dtype=np.int64)
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must be class ids in [0, {num_classes})")
    return y


class MajorityClass:
    """Predicts the most frequent training class for every text.

    Args:
        num_classes: K.
    """

    name = "majority"

    def __init__(self, num_classes: int) -> None:
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.counts = np.zeros(num_classes, dtype=np.int64)

    def fit(self, texts: Sequence[str], targets: Sequence[int]) -> MajorityClass:
        """Count the (N,) training class ids ``targets``; returns self."""
        y = _check(texts, targets, self.num_classes)
        self.counts = np.bincount(y, minlength=self.num_classes)
        return self

    @property
    def majority(self) -> int:
        """The predicted class id."""
        return int(np.argmax(self.counts))

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) class ids: the majority class for each text."""
        return np.full(len(texts), self.majority, dtype=np.int64)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, K) the training class frequencies for each text."""
        total = max(int(self.counts.sum()), 1)
        return np.tile(self.counts / total, (len(texts), 1))


class TfidfLogReg:
    """TF-IDF of word 1-2 grams and logistic regression (scikit-learn).

    Args:
        num_classes: K.
        seed: the solver's random state.
    """

    name = "tfidf_logreg"

    def __init__(self, num_classes: int, seed: int = 0) -> None:
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if not sklearn_available():
            raise ImportError(f"the TF-IDF baseline needs scikit-learn: {SKLEARN_HINT}")
        self.num_classes = num_classes
        self.seed = seed
        self.C = 1.0
        self.pipeline: Any = None

    def _make(self, C: float) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped, unused-ignore]
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped, unused-ignore]
        from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped, unused-ignore]

        return make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            LogisticRegression(C=C, max_iter=2000, random_state=self.seed),
        )

    def fit(
        self,
        texts: Sequence[str],
        targets: Sequence[int],
        valid: tuple[Sequence[str], Sequence[int]] | None = None,
    ) -> TfidfLogReg:
        """Fit on (N,) ``texts`` and class ids ``targets``; with ``valid`` (texts, ids), choose
        C from :data:`C_GRID` by validation accuracy first (ties: the smaller C). Returns self."""
        y = _check(texts, targets, self.num_classes)
        if len(np.unique(y)) < 2:
            raise ValueError("the TF-IDF baseline needs at least two classes in training")
        if valid is not None and len(valid[0]) > 0:
            vy = _check(valid[0], valid[1], self.num_classes)
            best = -1.0
            for C in C_GRID:
                model = self._make(C).fit(list(texts), y)
                accuracy = float(np.mean(self._ids(model, list(valid[0])) == vy))
                if accuracy > best:
                    best, self.C, self.pipeline = accuracy, C, model
            return self
        self.pipeline = self._make(self.C).fit(list(texts), y)
        return self

    def _ids(self, model: Any, texts: list[str]) -> np.ndarray:
        classes = np.asarray(model.classes_, dtype=np.int64)
        best: np.ndarray = classes[np.asarray(model.predict_proba(texts)).argmax(axis=1)]
        return best

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) predicted class ids."""
        if self.pipeline is None:
            raise RuntimeError("fit the baseline first")
        return self._ids(self.pipeline, list(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N, K) class probabilities (0 for classes absent from training)."""
        if self.pipeline is None:
            raise RuntimeError("fit the baseline first")
        proba = np.asarray(self.pipeline.predict_proba(list(texts)))
        out = np.zeros((len(texts), self.num_classes))
        out[:, np.asarray(self.pipeline.classes_, dtype=np.int64)] = proba
        return out
