"""Tests for rnnkit.metrics.bleu: parity with sacreBLEU, bucket assignment, the table, errors."""

from __future__ import annotations

import json

import pytest
import sacrebleu
from sacrebleu.metrics import BLEU

from rnnkit.metrics.bleu import (
    LENGTH_BUCKETS,
    LengthBucket,
    check_same_buckets,
    format_bleu_table,
    length_bucket,
    translation_scores,
)

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "while",
    "dogs",
    "ran",
    "past",
    "houses",
    "near",
    "old",
    "red",
    "trees",
]


def _sentence(n_words: int, shift: int = 0) -> str:
    return " ".join(WORDS[(k + shift) % len(WORDS)] for k in range(n_words))


@pytest.fixture
def corpus() -> tuple[list[str], list[str], list[str]]:
    """Sources of chosen lengths; hypotheses that are partly right, differently per sentence."""
    # buckets: 1-10 four times, 11-20 three times, 21-30 once, >50 twice
    source_lengths = [3, 10, 11, 25, 12, 55, 7, 20, 60, 1]
    sources = [_sentence(n, shift=k) for k, n in enumerate(source_lengths)]
    references = [_sentence(n + 2, shift=2 * k) + " ." for k, n in enumerate(source_lengths)]
    hypotheses = [
        " ".join(ref.split()[: max(1, len(ref.split()) - k % 3)]) if k % 4 else _sentence(4, k)
        for k, ref in enumerate(references)
    ]
    return hypotheses, references, sources


def test_corpus_scores_equal_sacrebleu(corpus: tuple[list[str], ...]) -> None:
    hyps, refs, srcs = corpus
    scores = translation_scores(hyps, refs, srcs)
    assert scores["bleu"] == sacrebleu.corpus_bleu(hyps, [refs]).score
    assert scores["chrf"] == sacrebleu.corpus_chrf(hyps, [refs]).score
    assert 0.0 < scores["bleu"] < 100.0
    bleu = BLEU()
    bleu.corpus_score(hyps, [refs])
    assert scores["signature"] == str(bleu.get_signature())
    assert "tok:13a" in scores["signature"]
    assert scores["chrf_signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0")
    assert scores["count"] == len(hyps)
    json.dumps(scores)  # what `rnnkit evaluate --json` prints


def test_tokenizer_choice_changes_signature(corpus: tuple[list[str], ...]) -> None:
    hyps, refs, srcs = corpus
    scores = translation_scores(hyps, refs, srcs, tokenize="char")
    assert "tok:char" in scores["signature"]
    assert scores["bleu"] == sacrebleu.corpus_bleu(hyps, [refs], tokenize="char").score


@pytest.mark.parametrize(
    ("n_words", "label"),
    [(0, "1-10"), (1, "1-10"), (10, "1-10"), (11, "11-20"), (20, "11-20"), (21, "21-30"),
     (30, "21-30"), (31, "31-40"), (40, "31-40"), (41, "41-50"), (50, "41-50"), (51, ">50"),
     (400, ">50")],
)  # fmt: skip
def test_length_bucket_edges(n_words: int, label: str) -> None:
    assert length_bucket(n_words) == label


def test_buckets_counts_and_bleu_on_subsets(corpus: tuple[list[str], ...]) -> None:
    hyps, refs, srcs = corpus
    by_length = translation_scores(hyps, refs, srcs)["by_length"]
    assert [b["bucket"] for b in by_length] == [label for label, _, _ in LENGTH_BUCKETS]
    assert [b["count"] for b in by_length] == [4, 3, 1, 0, 0, 2]
    for bucket in by_length:
        keep = [k for k, s in enumerate(srcs) if length_bucket(len(s.split())) == bucket["bucket"]]
        if not keep:
            assert bucket["bleu"] is None and bucket["chrf"] is None
            continue
        sub_hyps, sub_refs = [hyps[k] for k in keep], [[refs[k] for k in keep]]
        assert bucket["bleu"] == sacrebleu.corpus_bleu(sub_hyps, sub_refs).score
        assert bucket["chrf"] == sacrebleu.corpus_chrf(sub_hyps, sub_refs).score


def test_words_are_whitespace_tokens_of_the_detokenised_source() -> None:
    # 10 words once punctuation stays attached; 13a tokenisation would make it 12 tokens.
    source = "Hello, world! " + " ".join(["w"] * 8)
    scores = translation_scores(["a b"], ["a b"], [source])
    assert [b["count"] for b in scores["by_length"]] == [1, 0, 0, 0, 0, 0]


def test_perfect_translation_scores_100() -> None:
    refs = ["le chat est assis sur le tapis .", "une pomme rouge et verte ici"]
    scores = translation_scores(refs, refs, ["the cat sat on the mat", "a red apple"])
    assert scores["bleu"] == pytest.approx(100.0)
    assert scores["chrf"] == pytest.approx(100.0)
    assert scores["by_length"][0]["bleu"] == pytest.approx(100.0)


def test_errors() -> None:
    with pytest.raises(ValueError, match="references has 1 sentences but hypotheses has 2"):
        translation_scores(["a", "b"], ["a"], ["x", "y"])
    with pytest.raises(ValueError, match="sources has 3 sentences but hypotheses has 2"):
        translation_scores(["a", "b"], ["a", "b"], ["x", "y", "z"])
    with pytest.raises(ValueError, match="hypotheses must be a sequence of strings, not one"):
        translation_scores("a b", ["a b"], ["x"])
    with pytest.raises(ValueError, match=r"references\[1\] must be a string, got int"):
        translation_scores(["a", "b"], ["a", 3], ["x", "y"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="no sentences to score"):
        translation_scores([], [], [])
    with pytest.raises(ValueError, match="unknown tokenize 'spm'; choose one of 13a, intl"):
        translation_scores(["a"], ["a"], ["x"], tokenize="spm")
    with pytest.raises(ValueError, match="n_words must be >= 0, got -1"):
        length_bucket(-1)


def _buckets(bleus: list[float | None], counts: list[int]) -> list[LengthBucket]:
    return [
        {"bucket": label, "count": n, "bleu": b, "chrf": b}
        for (label, _, _), b, n in zip(LENGTH_BUCKETS, bleus, counts, strict=True)
    ]


def test_format_bleu_table() -> None:
    counts = [40, 30, 20, 10, 5, 0]
    table = format_bleu_table(
        {
            "rnnsearch-50": _buckets([30.0, 28.25, 27.0, 26.5, 25.0, None], counts),
            "rnnenc": _buckets([25.0, 20.0, 14.04, 10.0, 8.0, None], counts),
        }
    )
    lines = table.splitlines()
    assert lines[0].split() == ["words", "sentences", "rnnsearch-50", "rnnenc"]
    assert lines[2].split() == ["11-20", "30", "28.2", "20.0"]
    assert lines[3].split() == ["21-30", "20", "27.0", "14.0"]
    assert lines[6].split() == [">50", "0", "-", "-"]
    assert len({len(line) for line in lines}) == 1  # aligned columns
    assert not table.endswith("\n")


def test_bucket_results_must_match() -> None:
    counts = [1, 1, 1, 1, 1, 1]
    good = _buckets([1.0] * 6, counts)
    with pytest.raises(ValueError, match="results is empty"):
        check_same_buckets({})
    with pytest.raises(ValueError, match="run 'b' has no length buckets"):
        check_same_buckets({"a": good, "b": []})
    with pytest.raises(ValueError, match="runs 'a' and 'b' were scored on different sentences"):
        check_same_buckets({"a": good, "b": _buckets([1.0] * 6, [2, 1, 1, 1, 1, 1])})
    with pytest.raises(ValueError, match="runs 'a' and 'b' have different buckets"):
        check_same_buckets({"a": good, "b": good[:3]})
    assert check_same_buckets({"a": good, "b": good}) == [label for label, _, _ in LENGTH_BUCKETS]
