"""Caption metrics (pycocoevalcap) and attention-in-box scores, against hand computations."""

from __future__ import annotations

import math
import os
import shutil
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch

from rnnkit.metrics import captioning
from rnnkit.metrics.captioning import (
    METEOR_NOTICE,
    BoxScores,
    CaptionScores,
    attention_box_scores,
    caption_scores,
)

pytest.importorskip("pycocoevalcap")

DISTINCT = [
    ["a dog left of a tree"],
    ["the red car above the house"],
    ["one small fish near a big boat"],
]


class Box(NamedTuple):
    """Stands in for rnnkit.data.captions.Box (metrics may not import rnnkit.data)."""

    word: str
    x0: float
    y0: float
    x1: float
    y1: float


# ---------------------------------------------------------------------------- caption_scores


def test_bleu_1_and_rouge_l_equal_hand_values() -> None:
    hypotheses = ["a cat sat on the mat", "the dog"]
    references = [["a cat is on the mat", "there is a cat on the mat"], ["a dog runs"]]
    scores = caption_scores(hypotheses, references, meteor=False)
    # BLEU-1: clipped unigram matches 5 of 6 and 1 of 2 -> 6 / 8; hypothesis length c = 8 against
    # the closest reference lengths r = 6 + 3 = 9, so BP = exp(1 - 9 / 8).
    assert scores.bleu_1 == pytest.approx(6 / 8 * math.exp(1 - 9 / 8), rel=1e-8)
    # BLEU-2: bigram matches "a cat", "on the", "the mat" of 5, and 0 of 1 -> 3 / 6.
    assert scores.bleu_2 == pytest.approx(math.sqrt(6 / 8 * 3 / 6) * math.exp(1 - 9 / 8), rel=1e-8)

    # ROUGE-L (beta = 1.2): image 1 LCS 5 -> P = R = 5/6; image 2 LCS 1 -> P = 1/2, R = 1/3.
    def f(p: float, r: float) -> float:
        return (1 + 1.2**2) * p * r / (r + 1.2**2 * p)

    assert scores.rouge_l == pytest.approx((f(5 / 6, 5 / 6) + f(1 / 2, 1 / 3)) / 2, rel=1e-12)
    assert scores.count == 2
    assert scores.meteor is None and scores.notice is None


def test_identical_captions_score_one_and_cider_d_ten() -> None:
    scores = caption_scores([refs[0] for refs in DISTINCT], DISTINCT, meteor=False)
    for value in (scores.bleu_1, scores.bleu_2, scores.bleu_3, scores.bleu_4):
        assert value == pytest.approx(1.0, abs=1e-8)
    assert scores.rouge_l == 1.0
    # every n-gram of each caption is in no other image's references: cosine 1 for each of the
    # four orders, no length penalty, times 10.
    assert scores.cider_d == pytest.approx(10.0, rel=1e-12)


def test_cider_d_clips_counts_and_penalises_length_with_sigma_6() -> None:
    # Two images, so idf = log 2 - log max(1, df): "a" (in both) weighs 0, everything else log 2.
    references = [["a dog"], ["a cat"]]
    # Image 1, "dog dog": unigram "dog" has tf-idf 2 log 2 against the reference's log 2; clipped
    # to log 2 the cosine is log2 * log2 / (2 log2 * log2) = 1/2 (1 without clipping); no shared
    # bigram; no 3- or 4-grams. Lengths 1 and 1 bigram: no penalty. 10 * (1/2) / 4.
    image_1 = 10 * 0.5 / 4
    # Image 2, "a a a a a a a cat": unigram cosine 1 ("a" weighs 0); bigrams "a a" x6 and "a cat"
    # against "a cat": 1 / sqrt(36 + 1); length 7 bigrams against 1: penalty exp(-6^2 / (2 * 6^2)).
    image_2 = 10 * math.exp(-0.5) * (1 + 1 / math.sqrt(37)) / 4
    scores = caption_scores(["dog dog", "a a a a a a a cat"], references, meteor=False)
    assert scores.cider_d == pytest.approx((image_1 + image_2) / 2, rel=1e-12)


def test_cider_d_orders_exact_above_partial_above_wrong() -> None:
    exact = caption_scores([refs[0] for refs in DISTINCT], DISTINCT, meteor=False).cider_d
    partial = caption_scores(
        ["a dog left of a car", "the red car", "one fish near a boat"], DISTINCT, meteor=False
    ).cider_d
    wrong = caption_scores(
        ["the house", "a big tree", "a dog above a car"], DISTINCT, meteor=False
    ).cider_d
    assert exact > partial > wrong > 0.0
    # on a single image every n-gram has idf 0: CIDEr-D is 0 even for an exact match
    assert caption_scores(DISTINCT[0], [DISTINCT[0]], meteor=False).cider_d == 0.0


def test_empty_hypotheses_score_zero_without_crashing() -> None:
    scores = caption_scores(["", "  ", "one small fish near a big boat"], DISTINCT, meteor=False)
    assert scores.rouge_l == pytest.approx(1 / 3)
    assert scores.cider_d == pytest.approx(10 / 3, rel=1e-12)
    assert 0.0 <= scores.bleu_4 <= scores.bleu_1 < 1.0
    all_empty = caption_scores(["", ""], [["a dog"], ["a cat"]], meteor=False)
    assert all_empty.bleu_1 == pytest.approx(0.0, abs=1e-12)
    assert all_empty.cider_d == 0.0 and all_empty.rouge_l == 0.0


def test_pycocoevalcap_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    caption_scores(["a dog", "a cat"], [["a dog"], ["a cat"]], meteor=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_to_dict_is_json_ready() -> None:
    scores = caption_scores(["a dog", "a cat"], [["a dog"], ["a cat"]], meteor=False)
    assert isinstance(scores, CaptionScores)
    assert list(scores.to_dict()) == [
        *("bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider_d", "rouge_l", "meteor", "notice"),
        "count",
    ]


def test_no_java_gives_the_notice_or_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    scores = caption_scores(["a dog", "a cat"], [["a dog"], ["a cat"]])
    assert scores.meteor is None
    assert scores.notice == METEOR_NOTICE
    assert scores.notice == (
        "METEOR skipped: Java was not found (install a Java runtime to compute it)"
    )
    with pytest.raises(
        ValueError, match=r"^METEOR needs a Java runtime and `java` was not found on PATH"
    ):
        caption_scores(["a dog"], [["a dog"]], meteor=True)
    assert caption_scores(["a dog"], [["a dog"]], meteor=False).notice is None


def test_meteor_failure_is_a_notice_in_auto_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(captioning.shutil, "which", lambda name: "/bin/java")

    def broken(gts: object, res: object) -> float:
        raise RuntimeError("METEOR failed: Error: Unable to access jarfile meteor-1.5.jar")

    monkeypatch.setattr(captioning, "_meteor", broken)
    scores = caption_scores(["a dog"], [["a dog"]])
    assert scores.notice == (
        "METEOR skipped: METEOR failed: Error: Unable to access jarfile meteor-1.5.jar"
    )
    with pytest.raises(ValueError, match=r"^METEOR failed: Error: Unable to access jarfile"):
        caption_scores(["a dog"], [["a dog"]], meteor=True)


def test_a_java_that_fails_gives_its_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a `java` that prints an error and exits, as a broken Java install would
    java = tmp_path / "java"
    java.write_text(
        "#!/bin/sh\necho 'Error: could not create the Java virtual machine' >&2\nexit 1\n"
    )
    java.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    scores = caption_scores(["a dog"], [["a dog"]])
    assert scores.meteor is None
    assert scores.notice == (
        "METEOR skipped: METEOR failed: Error: could not create the Java virtual machine"
    )
    with pytest.raises(
        ValueError, match=r"^METEOR failed: Error: could not create the Java virtual machine$"
    ):
        caption_scores(["a dog"], [["a dog"]], meteor=True)


def test_missing_pycocoevalcap_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pycocoevalcap.bleu.bleu", None)
    with pytest.raises(
        ValueError,
        match=r"^caption metrics need the pycocoevalcap package: pip install 'rnnkit\[captioning\]'$",
    ):
        caption_scores(["a dog"], [["a dog"]], meteor=False)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs a Java runtime")
def test_real_meteor_with_java() -> None:
    # one JVM start (a few seconds): a perfect caption and an empty one
    scores = caption_scores(
        ["a dog left of a tree", ""], [["a dog left of a tree"], ["a cat above a car"]]
    )
    assert scores.notice is None
    assert scores.meteor is not None
    assert 0.0 < scores.meteor < 1.0


@pytest.mark.parametrize(
    ("hypotheses", "references", "message"),
    [
        (["a"], [["a"], ["b"]], r"^hypotheses has 1 captions but references has 2 lists"),
        ([], [], r"^no captions to score: hypotheses is empty$"),
        ("a dog", [["a dog"]], r"^hypotheses must be a sequence of strings, not one string$"),
        (["a dog"], ["a dog"], r"^references\[0\] must be a list of strings, got str$"),
        (["a dog"], [[]], r"^references\[0\] is empty: each image needs at least one reference$"),
        (["a", "b"], [["a"], ["b", " "]], r"^references\[1\]\[1\] is an empty caption$"),
        ([3], [["a"]], r"^hypotheses\[0\] must be a string, got int$"),
    ],
)
def test_bad_input_is_a_one_line_error(
    hypotheses: list[str], references: list[list[str]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        caption_scores(hypotheses, references, meteor=False)


# ---------------------------------------------------------------------- attention_box_scores


def test_box_scores_equal_hand_values() -> None:
    # 2 x 2 grid; "dog" occupies the left half, "tree" the top-right quarter.
    boxes = [Box("dog", 0.0, 0.0, 0.5, 1.0), Box("tree", 0.5, 0.0, 1.0, 0.5)]
    tokens = ["a", "dog", "left", "of", "a", "tree"]
    attention = torch.full((7, 2, 2), 0.25)  # (T' + 1 eos step, H, W)
    attention[1] = torch.tensor([[0.7, 0.1], [0.1, 0.1]])  # dog: argmax (0, 0), in the box
    attention[5] = torch.tensor([[0.1, 0.2], [0.3, 0.4]])  # tree: argmax (1, 1), outside
    scores = attention_box_scores([tokens], [attention], [boxes])
    assert scores == BoxScores(
        attention_hit_rate=0.5,
        attention_mass_in_box=pytest.approx(((0.7 + 0.1) + 0.2) / 2),
        object_words=2,
    )


def test_box_mass_counts_partly_covered_cells() -> None:
    # box over columns 0..0.75 and rows 0..0.5 of a 2 x 2 grid: all of cell (0, 0), half of (0, 1)
    boxes = [Box("Cat", 0.0, 0.0, 0.75, 0.5)]
    attention = np.array([[[0.2, 0.6], [0.1, 0.1]]])  # (1, 2, 2); argmax (0, 1) centre x = 0.75
    scores = attention_box_scores([["cat"]], [attention], [boxes])
    assert scores.attention_mass_in_box == pytest.approx(0.2 + 0.5 * 0.6)
    assert scores.attention_hit_rate == 1.0  # the centre lies on the box's border: inside


def test_repeated_words_use_the_next_box_and_images_pool() -> None:
    left, right = Box("dog", 0.0, 0.0, 0.5, 1.0), Box("dog", 0.5, 0.0, 1.0, 1.0)
    looks_left = torch.tensor([[1.0, 0.0]])  # (H=1, W=2)
    looks_right = torch.tensor([[0.0, 1.0]])
    image_1 = torch.stack([looks_left, looks_right, looks_left])  # "dog dog dog": 2 boxes only
    image_2 = torch.stack([looks_left, looks_left])  # "cat dog": the dog looked left, box right
    scores = attention_box_scores(
        [["dog", "dog", "dog"], ["cat", "dog"]],
        [image_1, image_2],
        [[left, right], [right]],
    )
    assert scores.object_words == 3
    assert scores.attention_hit_rate == pytest.approx(2 / 3)
    assert scores.attention_mass_in_box == pytest.approx(2 / 3)


def test_no_object_word_gives_none() -> None:
    scores = attention_box_scores(
        [["a", "cat"], []],
        [torch.ones(2, 1, 1), torch.ones(0, 1, 1)],
        [[Box("dog", 0, 0, 1, 1)], []],
    )
    assert scores == BoxScores(attention_hit_rate=None, attention_mass_in_box=None, object_words=0)


@pytest.mark.parametrize(
    ("tokens", "attention", "boxes", "message"),
    [
        ([["dog"]], [], [[]], r"^tokens, attention and boxes must have one entry per image"),
        ([["dog"]], [torch.ones(1, 4)], [[]], r"^attention\[0\] must be \(T, H, W\), got shape"),
        (
            [["a", "dog"]],
            [torch.ones(1, 2, 2)],
            [[]],
            r"^attention\[0\] has 1 steps but tokens\[0\] has 2 tokens$",
        ),
        (
            [["dog"]],
            [torch.ones(1, 2, 2)],
            [[Box("dog", 0.5, 0.0, 0.5, 1.0)]],
            r"^boxes\[0\]\[0\] \('dog'\) must have 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1",
        ),
        (
            [["dog"]],
            [torch.full((1, 2, 2), float("nan"))],
            [[]],
            r"^attention\[0\] has non-finite values$",
        ),
        (["dog"], [torch.ones(3, 2, 2)], [[]], r"^tokens\[0\] must be a sequence of tokens"),
    ],
)
def test_box_scores_bad_input(
    tokens: list[list[str]], attention: list[torch.Tensor], boxes: list[list[Box]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        attention_box_scores(tokens, attention, boxes)
