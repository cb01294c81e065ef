"""Text-classification figures: the confusion matrix, and the words shaded by attention (PNG).

- :func:`plot_confusion`: the (K, K) confusion matrix, true classes down the side, predicted
  along the top, each cell's count written in it and shaded by its share of the row (recall).
- :func:`plot_word_weights`: a text as its tokens, in reading order, each on a box shaded by its
  attention weight (white 0, dark the largest weight), with the predicted label as the title.

Each function takes plain data and a path, draws one figure and writes it atomically with
:func:`rnnkit.viz.figures.save_png`; matplotlib is imported only when drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rnnkit.viz.figures import new_figure, save_png

_CHARS_PER_ROW = 60


def plot_confusion(
    confusion: np.ndarray | Sequence[Sequence[int]],
    labels: Sequence[str],
    path: Path,
    title: str | None = None,
) -> Path:
    """Draw a confusion matrix as a PNG.

    Args:
        confusion: (K, K) counts, rows true classes, columns predicted.
        labels: the K class names.
        path: the PNG to write.
        title: over the figure.

    Returns:
        ``path``.

    Raises:
        ValueError: a matrix that is not (K, K) for the K labels, or has negative counts.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    K = len(labels)
    if counts.shape != (K, K):
        raise ValueError(f"confusion must be ({K}, {K}) for {K} labels, got {counts.shape}")
    if counts.size and counts.min() < 0:
        raise ValueError("confusion holds negative counts")
    rows = counts.sum(axis=1, keepdims=True)
    share = np.where(rows > 0, counts / np.maximum(rows, 1), 0.0)  # (K, K), row-normalised
    size = 1.6 + 0.7 * K
    figure = new_figure(size + 1.2, size)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(K):
        for j in range(K):
            colour = "white" if share[i, j] > 0.6 else "black"
            axes.text(j, i, str(counts[i, j]), ha="center", va="center", color=colour)
    axes.set_xticks(range(K), [str(x) for x in labels], rotation=45, ha="right")
    axes.set_yticks(range(K), [str(x) for x in labels])
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    if title is not None:
        axes.set_title(title)
    return save_png(figure, path)


def _wrap(tokens: Sequence[str]) -> list[list[int]]:
    """Token indices in rows of about :data:`_CHARS_PER_ROW` characters."""
    rows: list[list[int]] = [[]]
    width = 0
    for k, token in enumerate(tokens):
        if rows[-1] and width + len(token) + 1 > _CHARS_PER_ROW:
            rows.append([])
            width = 0
        rows[-1].append(k)
        width += len(token) + 1
    return rows


def plot_word_weights(
    tokens: Sequence[str],
    weights: np.ndarray | torch.Tensor | Sequence[float],
    path: Path,
    title: str | None = None,
) -> Path:
    """Draw the tokens of a text shaded by their attention weights, as a PNG.

    Args:
        tokens: the T tokens as strings (a leading ``▁`` word marker is dropped for display).
        weights: (T,) weights in [0, 1] (they need not sum to 1).
        path: the PNG to write.
        title: over the figure (e.g. the predicted label and its probability).

    Returns:
        ``path``.

    Raises:
        ValueError: weights of another length than the tokens, outside [0, 1] or not finite.
    """
    if isinstance(tokens, str):
        raise ValueError("tokens must be a sequence of tokens, not one string")
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().to("cpu", torch.float64).numpy()
    a = np.asarray(weights, dtype=np.float64)
    if a.shape != (len(tokens),):
        raise ValueError(f"weights must have shape ({len(tokens)},), got {a.shape}")
    if not np.all(np.isfinite(a)) or (a.size and (a.min() < -1e-6 or a.max() > 1 + 1e-6)):
        raise ValueError("weights must be finite and lie in [0, 1]")
    from matplotlib import colormaps

    shown = [t[1:] if t.startswith("\u2581") and len(t) > 1 else t for t in tokens]
    rows = _wrap(shown)
    top = float(a.max()) if a.size and a.max() > 0 else 1.0
    cmap = colormaps["Reds"]
    char = 0.115  # inches per character of the monospace font below
    figure = new_figure(char * (_CHARS_PER_ROW + 4), 0.45 * len(rows) + 0.6)
    axes = figure.add_subplot(1, 1, 1)
    axes.set_xlim(0, _CHARS_PER_ROW + 2)
    axes.set_ylim(len(rows), -0.2)
    axes.axis("off")
    for r, row in enumerate(rows):
        x = 0.5
        for k in row:
            shade = a[k] / top
            axes.text(
                x,
                r + 0.5,
                shown[k],
                family="monospace",
                fontsize=11,
                va="center",
                color="white" if shade > 0.6 else "black",
                bbox={"facecolor": cmap(shade), "edgecolor": "none", "pad": 1.5},
            )
            x += len(shown[k]) + 1
    if title is not None:
        axes.set_title(title, fontsize=11)
    return save_png(figure, path)
