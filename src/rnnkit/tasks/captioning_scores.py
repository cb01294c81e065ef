"""How the captioning task prints its scores: ``rnnkit evaluate``'s lines and ``rnnkit
compare``'s table (the scores themselves come from :mod:`rnnkit.metrics.captioning`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

TOKENIZATION = (
    "lower-cased words (unicode letters and digits, apostrophes inside words), punctuation "
    "dropped; the same for hypotheses and references"
)
METRIC_ORDER = (
    "bleu_1",
    "bleu_2",
    "bleu_3",
    "bleu_4",
    "cider_d",
    "rouge_l",
    "meteor",
    "attention_hit_rate",
    "attention_mass_in_box",
    "object_words",
    "truncated",
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def format_caption_scores(metrics: Mapping[str, Any], path: Path) -> str:
    """The text ``rnnkit evaluate`` prints for a captioning run's scores."""
    lines = [f"{key}\t{_cell(metrics[key])}" for key in METRIC_ORDER if key in metrics]
    lines.append(
        f"({path}: {metrics['images']} images, {metrics['references']} references, beam "
        f"{metrics['beam']}; scores x 100 except the attention rates; {TOKENIZATION})"
    )
    if metrics.get("notice"):
        lines.append(str(metrics["notice"]))
    return "\n".join(lines)


def compare_table(results: Mapping[str, Mapping[str, Any]], path: Path) -> str:
    """The table of ``rnnkit compare``: a row per metric, a column per run."""
    names = list(results)
    keys = [k for k in METRIC_ORDER if any(r.get(k) is not None for r in results.values())]
    width = max(len(k) for k in keys)
    cols = max(8, *(len(n) for n in names))
    lines = [f"{'metric'.ljust(width)}  " + "  ".join(n.rjust(cols) for n in names)]
    for key in keys:
        cells = [_cell(results[n].get(key)).rjust(cols) for n in names]
        lines.append(f"{key.ljust(width)}  " + "  ".join(cells))
    first = next(iter(results.values()))
    lines.append(f"({path}: {first['images']} images, beam {first['beam']}; {TOKENIZATION})")
    if first.get("notice"):
        lines.append(str(first["notice"]))
    return "\n".join(lines)
