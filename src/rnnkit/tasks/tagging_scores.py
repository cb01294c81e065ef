"""Scoring and reporting helpers of the ``tagging`` task: BIO span F1 (``seqeval``) and the
per-tag table of runs beside the most-frequent-tag baseline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rnnkit.tasks.base import TaskError

__all__ = ["BASELINE_NAME", "is_bio", "score_table", "span_scores"]

BASELINE_NAME = "most_frequent_tag"
"""The baseline's key in ``rnnkit evaluate --json``: each word's most frequent training tag."""

_TEXT_EXTRA = 'pip install "rnnkit[text]"'


def is_bio(tags: Iterable[str]) -> bool:
    """True when every tag is ``O`` or ``B-``/``I-``/``E-``/``S-`` + a type, and one is not ``O``."""
    seen = False
    for tag in tags:
        if tag == "O":
            continue
        if len(tag) < 3 or tag[:2] not in ("B-", "I-", "E-", "S-"):
            return False
        seen = True
    return seen


def span_scores(true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Span-level scores of BIO tags per sentence (``seqeval``, default conlleval mode).

    Returns:
        ``{"precision", "recall", "f1", "per_type": {type: {precision, recall, f1, support}}}``,
        micro-averaged over spans.

    Raises:
        TaskError: ``seqeval`` is not installed (naming the extra).
    """
    try:
        from seqeval.metrics import classification_report  # type: ignore[import-untyped]
    except ImportError:
        raise TaskError(
            f"span-level F1 of BIO tags needs the package 'seqeval'; install the extra with "
            f"{_TEXT_EXTRA}"
        ) from None
    report = classification_report(
        [list(s) for s in true], [list(s) for s in pred], output_dict=True, zero_division=0
    )
    micro = report.pop("micro avg")
    for key in ("macro avg", "weighted avg"):
        report.pop(key, None)
    return {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "support": int(micro["support"]),
        "per_type": {
            name: {
                "precision": float(v["precision"]),
                "recall": float(v["recall"]),
                "f1": float(v["f1-score"]),
                "support": int(v["support"]),
            }
            for name, v in sorted(report.items())
        },
    }


def score_table(
    runs: Mapping[str, dict[str, Any]], metrics: Mapping[str, Any], per_tag: str = "prf"
) -> str:
    """Per-tag scores of each run beside the baseline, then accuracy, macro-F1, span F1."""
    baseline = metrics[BASELINE_NAME]
    labels = list(baseline["per_class"])
    width = max(len("macro-F1"), len("span F1"), *(len(t) for t in labels))
    one = len(runs) == 1 and per_tag == "prf"
    names = list(runs)
    if one:
        head = f"{'tag':<{width}}  precision  recall     f1   baseline f1  support"
    else:
        cols = "".join(f"  {n:>10}" for n in names)
        head = f"{'tag (F1)':<{width}}{cols}  {'baseline':>10}  support"
    lines = [head]
    for tag in labels:
        base = baseline["per_class"][tag]
        if one:
            s = runs[names[0]]["per_class"][tag]
            lines.append(
                f"{tag:<{width}}  {s['precision']:9.3f}  {s['recall']:6.3f}  {s['f1']:5.3f}"
                f"  {base['f1']:12.3f}  {base['support']:7d}"
            )
        else:
            cells = "".join(f"  {runs[n]['per_class'][tag]['f1']:10.3f}" for n in names)
            lines.append(f"{tag:<{width}}{cells}  {base['f1']:10.3f}  {base['support']:7d}")
    rows = [("accuracy", "accuracy"), ("macro-F1", "macro_f1")]
    for label, key in rows + ([("span F1", "spans")] if "spans" in baseline else []):

        def value(s: Mapping[str, Any], key: str = key) -> float:
            return float(s["spans"]["f1"] if key == "spans" else s[key])

        if one:
            pad = " " * 19
            lines.append(
                f"{label:<{width}}  {pad}{value(runs[names[0]]):5.3f}  {value(baseline):12.3f}"
            )
        else:
            cells = "".join(f"  {value(runs[n]):10.3f}" for n in names)
            lines.append(f"{label:<{width}}{cells}  {value(baseline):10.3f}")
    lines.append(
        f"({metrics['data']}: {metrics['sentences']} sentences, {metrics['tokens']} tokens, "
        f"{100 * metrics['unknown_words']:.1f}% unknown words; baseline: each word's most "
        "frequent training tag)"
    )
    return "\n".join(lines)
