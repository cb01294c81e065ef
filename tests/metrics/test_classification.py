"""Classification metrics against scikit-learn and hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.metrics.classification import classification_scores, confusion_matrix, format_scores


def test_confusion_matrix_counts_by_hand() -> None:
    conf = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert conf.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_scores_match_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.6, true, rng.integers(0, 4, 200))
    scores = classification_scores(true.tolist(), pred.tolist(), ["a", "b", "c", "d"])
    p, r, f, s = metrics.precision_recall_fscore_support(true, pred, labels=[0, 1, 2, 3])
    np.testing.assert_allclose(scores.precision, p)
    np.testing.assert_allclose(scores.recall, r)
    np.testing.assert_allclose(scores.f1, f)
    assert scores.support.tolist() == s.tolist()
    assert scores.accuracy == pytest.approx(metrics.accuracy_score(true, pred))
    assert scores.macro_f1 == pytest.approx(metrics.f1_score(true, pred, average="macro"))


def test_macro_f1_skips_absent_classes_and_zero_division_is_zero() -> None:
    scores = classification_scores([0, 0, 1], [0, 0, 0], ["x", "y", "z"])
    assert scores.precision.tolist() == [pytest.approx(2 / 3), 0.0, 0.0]
    assert scores.f1[1] == 0.0
    assert scores.macro_f1 == pytest.approx((0.8 + 0.0) / 2)  # z never occurs nor is predicted
    body = scores.to_dict()
    assert body["per_class"]["y"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert "macro-F1   0.400" in format_scores(scores)


def test_bad_ids_are_refused() -> None:
    with pytest.raises(ValueError, match=r"pred holds a class id outside \[0, 2\)"):
        confusion_matrix([0, 1], [0, 2], 2)
    with pytest.raises(ValueError, match="no examples to score"):
        confusion_matrix([], [], 2)
