"""Tests for rnnkit.models.text_baselines: the majority class and TF-IDF + logistic regression."""

from __future__ import annotations

import numpy as np
import pytest

from rnnkit.models.text_baselines import C_GRID, MajorityClass, TfidfLogReg

TEXTS = ["a good film", "great fun", "good acting", "a bad film", "dull and bad", "awful plot"]
TARGETS = [1, 1, 1, 0, 0, 0]


def test_majority_predicts_the_most_frequent_class_and_its_frequencies() -> None:
    model = MajorityClass(3).fit(["x"] * 5, [2, 0, 2, 1, 2])
    assert model.majority == 2
    assert model.predict(["a", "b"]).tolist() == [2, 2]
    np.testing.assert_allclose(model.predict_proba(["a"]), [[0.2, 0.2, 0.6]])
    assert MajorityClass(2).fit(["x", "y"], [1, 0]).majority == 0  # ties: the first class


def test_majority_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        MajorityClass(2).fit(["a", "b"], [0])
    with pytest.raises(ValueError, match=r"labels must be class ids in \[0, 2\)"):
        MajorityClass(2).fit(["a"], [2])
    with pytest.raises(ValueError, match="no training examples"):
        MajorityClass(2).fit([], [])


def test_tfidf_separates_cue_words_and_keeps_unseen_classes_at_zero() -> None:
    pytest.importorskip("sklearn")
    model = TfidfLogReg(3).fit(TEXTS, TARGETS)
    assert model.C == 1.0
    assert model.predict(["good fun", "bad and dull"]).tolist() == [1, 0]
    proba = model.predict_proba(["good fun"])
    assert proba.shape == (1, 3) and proba[0, 2] == 0.0
    np.testing.assert_allclose(proba.sum(axis=1), [1.0])


def test_tfidf_chooses_c_on_validation() -> None:
    pytest.importorskip("sklearn")
    model = TfidfLogReg(2).fit(TEXTS, TARGETS, valid=(["good", "bad"], [1, 0]))
    assert model.C in C_GRID
    assert model.predict(["good", "bad"]).tolist() == [1, 0]


def test_tfidf_needs_two_classes_and_fitting_first() -> None:
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="needs at least two classes in training"):
        TfidfLogReg(2).fit(["a", "b"], [1, 1])
    with pytest.raises(RuntimeError, match="fit the baseline first"):
        TfidfLogReg(2).predict(["a"])
