r"""Translation metrics: corpus BLEU and chrF (sacreBLEU), and BLEU by source-sentence length.

Both scores come from sacreBLEU's metric objects (:class:`sacrebleu.metrics.BLEU`,
:class:`sacrebleu.metrics.CHRF`) on *detokenised* text, one reference per sentence, and are
reported with sacreBLEU's signature so numbers from different runs can be compared honestly.

- BLEU (Papineni et al., 2002) over the corpus, with :math:`p_n` the clipped n-gram precisions
  (n = 1..4) and the brevity penalty BP for a hypothesis length c against a reference length r::

      BLEU = BP * exp(sum_{n=1..4} 1/4 log p_n)        BP = min(1, exp(1 - r / c))

  The text is tokenised by sacreBLEU's ``13a`` tokeniser by default (the WMT ``mteval-v13a``
  rules: punctuation split off, case kept). It suits English and French; ``intl`` also splits
  Unicode punctuation and symbols, ``char`` scores characters, ``zh`` is for Chinese and ``none``
  takes the text as already tokenised. The choice appears in the signature (``tok:13a``).
- chrF (Popovic, 2015): the character n-gram F-score (n = 1..6, beta = 2, whitespace removed),
  sacreBLEU's defaults; it does not tokenise.
- BLEU by source length (the lecture's "BLEU against sentence length" figure, Bahdanau et al.,
  2015): each sentence goes to a bucket by the number of words of its source (whitespace tokens of
  the detokenised source): ``1-10``, ``11-20``, ``21-30``, ``31-40``, ``41-50``, ``>50`` (an empty
  source counts in ``1-10``). Each bucket's BLEU is corpus BLEU on its sentences alone (not an
  average of sentence scores); an empty bucket has ``count`` 0 and ``bleu`` ``None`` (JSON null).

Scores are on sacreBLEU's 0-100 scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.chrf import CHRF

LENGTH_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("1-10", 1, 10),
    ("11-20", 11, 20),
    ("21-30", 21, 30),
    ("31-40", 31, 40),
    ("41-50", 41, 50),
    (">50", 51, None),
)
"""(label, fewest words, most words or None for no limit) of each source-length bucket."""

TOKENIZERS: tuple[str, ...] = ("13a", "intl", "char", "zh", "none")
"""sacreBLEU tokenisers that work offline with no extra package (``13a`` is the default)."""


class LengthBucket(TypedDict):
    """One source-length bucket: its label, number of sentences and corpus BLEU/chrF on them."""

    bucket: str
    count: int
    bleu: float | None
    chrf: float | None


class TranslationScores(TypedDict):
    """What :func:`translation_scores` returns (JSON-serialisable)."""

    bleu: float
    chrf: float
    signature: str
    chrf_signature: str
    count: int
    by_length: list[LengthBucket]


def length_bucket(n_words: int) -> str:
    """The label of the source-length bucket for a source of ``n_words`` words (0 goes to 1-10)."""
    if n_words < 0:
        raise ValueError(f"n_words must be >= 0, got {n_words}")
    for label, _, most in LENGTH_BUCKETS:
        if most is None or n_words <= most:
            return label
    raise AssertionError("unreachable: the last bucket has no upper limit")  # pragma: no cover


def _check_texts(name: str, texts: Sequence[str], count: int | None) -> list[str]:
    if isinstance(texts, str):
        raise ValueError(f"{name} must be a sequence of strings, not one string")
    texts = list(texts)
    for k, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{k}] must be a string, got {type(text).__name__}")
    if count is not None and len(texts) != count:
        raise ValueError(
            f"{name} has {len(texts)} sentences but hypotheses has {count}: one per sentence"
        )
    return texts


def _scores(
    bleu: BLEU, chrf: CHRF, hypotheses: list[str], references: list[str]
) -> tuple[float, float]:
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return float(bleu_score.score), float(chrf_score.score)


def translation_scores(
    hypotheses: Sequence[str],
    references: Sequence[str],
    sources: Sequence[str],
    *,
    tokenize: str = "13a",
) -> TranslationScores:
    """Corpus BLEU and chrF with their sacreBLEU signatures, and BLEU by source-length bucket.

    Args:
        hypotheses: N detokenised system translations.
        references: N detokenised reference translations, one per hypothesis.
        sources: N detokenised source sentences; their whitespace word counts pick the buckets.
        tokenize: sacreBLEU's tokeniser for BLEU, one of :data:`TOKENIZERS` (default ``13a``).

    Returns:
        ``{"bleu", "chrf", "signature" (BLEU's), "chrf_signature", "count" (N), "by_length":
        [{"bucket": "1-10", "count", "bleu", "chrf"}, ...]}`` with every bucket of
        :data:`LENGTH_BUCKETS` in order; an empty bucket has ``bleu`` and ``chrf`` ``None``.
    """
    if tokenize not in TOKENIZERS:
        raise ValueError(f"unknown tokenize {tokenize!r}; choose one of {', '.join(TOKENIZERS)}")
    hyps = _check_texts("hypotheses", hypotheses, None)
    refs = _check_texts("references", references, len(hyps))
    srcs = _check_texts("sources", sources, len(hyps))
    if not hyps:
        raise ValueError("no sentences to score: hypotheses is empty")

    bleu = BLEU(tokenize=tokenize)
    chrf = CHRF()
    corpus_bleu, corpus_chrf = _scores(bleu, chrf, hyps, refs)
    signature = str(bleu.get_signature())
    chrf_signature = str(chrf.get_signature())

    members: dict[str, list[int]] = {label: [] for label, _, _ in LENGTH_BUCKETS}
    for k, source in enumerate(srcs):
        members[length_bucket(len(source.split()))].append(k)
    by_length: list[LengthBucket] = []
    for label, _, _ in LENGTH_BUCKETS:
        indices = members[label]
        bucket_bleu: float | None = None
        bucket_chrf: float | None = None
        if indices:
            bucket_bleu, bucket_chrf = _scores(
                bleu, chrf, [hyps[k] for k in indices], [refs[k] for k in indices]
            )
        by_length.append(
            {"bucket": label, "count": len(indices), "bleu": bucket_bleu, "chrf": bucket_chrf}
        )
    return {
        "bleu": corpus_bleu,
        "chrf": corpus_chrf,
        "signature": signature,
        "chrf_signature": chrf_signature,
        "count": len(hyps),
        "by_length": by_length,
    }


def check_same_buckets(results: Mapping[str, Sequence[LengthBucket]]) -> list[str]:
    """The bucket labels shared by all runs; ValueError if the runs differ in buckets or counts.

    Args:
        results: run name -> its ``by_length`` list from :func:`translation_scores`.
    """
    if not results:
        raise ValueError("results is empty: give at least one run's by_length list")
    labels: list[str] | None = None
    counts: list[int] | None = None
    first = ""
    for name, buckets in results.items():
        these = [bucket["bucket"] for bucket in buckets]
        if not these:
            raise ValueError(f"run {name!r} has no length buckets")
        if labels is None:
            labels, counts, first = these, [bucket["count"] for bucket in buckets], name
        elif these != labels:
            raise ValueError(
                f"runs {first!r} and {name!r} have different buckets: {labels} vs {these}"
            )
        elif [bucket["count"] for bucket in buckets] != counts:
            raise ValueError(
                f"runs {first!r} and {name!r} were scored on different sentences "
                "(bucket counts differ)"
            )
    assert labels is not None
    return labels


def format_bleu_table(results: Mapping[str, Sequence[LengthBucket]]) -> str:
    """A plain-text table of BLEU by source length: one row per bucket, one column per run.

    Args:
        results: run name -> its ``by_length`` list from :func:`translation_scores` (all runs
            scored on the same sentences, so with the same buckets and counts).

    Returns:
        Aligned text: columns ``words``, ``sentences`` and one per run; BLEU with one decimal,
        ``-`` for an empty bucket. No trailing newline.
    """
    labels = check_same_buckets(results)
    names = list(results)
    any_run = results[names[0]]
    header = ["words", "sentences", *names]
    rows = [header]
    for k, label in enumerate(labels):
        cells = [label, str(any_run[k]["count"])]
        for name in names:
            value = results[name][k]["bleu"]
            cells.append("-" if value is None else f"{value:.1f}")
        rows.append(cells)
    widths = [max(len(row[j]) for row in rows) for j in range(len(header))]
    lines = []
    for row in rows:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]))
    return "\n".join(lines)


def format_scores(name: str, scores: TranslationScores) -> str:
    """BLEU and chrF with their signatures, then the table of BLEU by source length (text).

    Args:
        name: the run's name, the table's column heading.
        scores: :func:`translation_scores`' result.
    """
    return "\n".join(
        [
            f"BLEU  {scores['bleu']:6.2f}  {scores['signature']}",
            f"chrF  {scores['chrf']:6.2f}  {scores['chrf_signature']}",
            "",
            f"BLEU by source length ({scores['count']} sentences):",
            format_bleu_table({name: scores["by_length"]}),
        ]
    )
