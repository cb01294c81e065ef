"""Translation and captioning figures: attention heatmaps and BLEU against sentence length (PNG).

- :func:`plot_attention`: the alignment matrix of one translation (Bahdanau et al., 2015, Fig. 3):
  source tokens along the top (x), output tokens down the side (y), weight a_{t,i} in greyscale
  (black 0, white 1), one row per output token.
- :func:`plot_attention_grid`: "Show, Attend and Tell" (Xu et al., 2015): for each output word the
  image with its (H, W) attention grid laid over it (upsampled to the image, white = attended).
- :func:`plot_bleu_by_length`: BLEU against source-sentence length, one line per model
  (Bahdanau et al., 2015, Fig. 2), from :func:`rnnkit.metrics.bleu.translation_scores`'s
  ``by_length`` lists.

Each function takes plain data (NumPy arrays or tensors, token strings) and a path, draws one
figure and writes it atomically with :func:`rnnkit.viz.figures.save_png`; matplotlib is imported
only when drawing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from rnnkit.metrics.bleu import LengthBucket, check_same_buckets
from rnnkit.viz.figures import new_figure, save_png

_INCH_PER_TOKEN = 0.22


def _as_array(name: str, values: np.ndarray | torch.Tensor, ndim: int) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} has non-finite values")
    if array.size and (array.min() < -1e-6 or array.max() > 1 + 1e-6):
        raise ValueError(
            f"{name} must lie in [0, 1] (attention weights), got [{array.min():g}, {array.max():g}]"
        )
    return array


def _check_tokens(name: str, tokens: Sequence[str], size: int, axis: str) -> list[str]:
    if isinstance(tokens, str):
        raise ValueError(f"{name} must be a sequence of tokens, not one string")
    tokens = [str(token) for token in tokens]
    if len(tokens) != size:
        raise ValueError(f"{name} has {len(tokens)} tokens but the weights have {size} {axis}")
    return tokens


def plot_attention(
    weights: np.ndarray | torch.Tensor,
    source_tokens: Sequence[str],
    output_tokens: Sequence[str],
    path: Path,
    title: str | None = None,
) -> Path:
    """Heatmap of one sentence's attention weights; a PNG.

    Args:
        weights: (T_out, S) attention weights in [0, 1], row t the weights of output token t over
            the S source tokens (a row of :class:`rnnkit.models.seq2seq.StepResult`'s
            ``attention`` per step, padding cut off).
        source_tokens: the S source tokens, shown along the top (x axis), rotated.
        output_tokens: the T_out output tokens, shown down the left side (y axis).
        path: the PNG to write.
        title: optional title under the figure.

    Returns:
        ``path``. The figure grows with the number of tokens, so up to ~60 per side stay readable.
    """
    array = _as_array("weights", weights, 2)  # (T_out, S)
    t_out, s = array.shape
    if t_out == 0 or s == 0:
        raise ValueError(f"weights must be non-empty, got shape {(t_out, s)}")
    sources = _check_tokens("source_tokens", source_tokens, s, "source positions (columns)")
    outputs = _check_tokens("output_tokens", output_tokens, t_out, "output steps (rows)")

    fontsize = 9.0 if max(s, t_out) <= 30 else 7.0
    figure = new_figure(
        max(3.0, _INCH_PER_TOKEN * s + 1.5), max(3.0, _INCH_PER_TOKEN * t_out + 1.0)
    )
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(array, cmap="gray", vmin=0.0, vmax=1.0, aspect="equal")
    axes.xaxis.tick_top()
    axes.set_xticks(range(s))
    axes.set_xticklabels(sources, rotation=90, fontsize=fontsize)
    axes.set_yticks(range(t_out))
    axes.set_yticklabels(outputs, fontsize=fontsize)
    axes.tick_params(length=0)
    figure.colorbar(image, ax=axes, fraction=0.03, pad=0.02)
    if title is not None:
        axes.set_xlabel(title)
    return save_png(figure, path)


def plot_attention_grid(
    image: np.ndarray | torch.Tensor,
    weights: np.ndarray | torch.Tensor,
    words: Sequence[str],
    path: Path,
    *,
    columns: int = 5,
    title: str | None = None,
) -> Path:
    """Attention over an image for each output word ("Show, Attend and Tell"); a PNG.

    Args:
        image: (Hi, Wi) greyscale or (Hi, Wi, 3) RGB image with values in [0, 1].
        weights: (T_out, H, W) attention weights in [0, 1] over the encoder's H x W grid, one grid
            per output word (e.g. 7 x 7 for EfficientNet-Lite0's last feature map).
        words: the T_out output words, one panel title each.
        path: the PNG to write.
        columns: panels per row.
        title: optional title over the whole figure.

    Returns:
        ``path``. Each panel shows the image with its word's grid stretched over it (bilinear),
        white where the weight is high.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().to("cpu", torch.float64).numpy()
    picture = np.asarray(image, dtype=np.float64)
    if picture.ndim not in (2, 3) or (picture.ndim == 3 and picture.shape[2] != 3):
        raise ValueError(f"image must be (Hi, Wi) or (Hi, Wi, 3), got shape {picture.shape}")
    grids = _as_array("weights", weights, 3)  # (T_out, H, W)
    if grids.shape[0] == 0 or grids.shape[1] == 0 or grids.shape[2] == 0:
        raise ValueError(f"weights must be non-empty, got shape {grids.shape}")
    labels = _check_tokens("words", words, grids.shape[0], "output steps")
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")

    columns = min(columns, len(labels))
    rows = -(-len(labels) // columns)
    height, width = picture.shape[:2]
    extent = (-0.5, width - 0.5, height - 0.5, -0.5)
    figure = new_figure(2.2 * columns, 2.4 * rows)
    for k, label in enumerate(labels):
        axes = figure.add_subplot(rows, columns, k + 1)
        axes.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0.0, vmax=1.0)
        axes.imshow(
            grids[k],  # (H, W)
            cmap="gray",
            vmin=0.0,
            vmax=float(grids[k].max()) or 1.0,
            alpha=0.6,
            extent=extent,
            interpolation="bilinear",
        )
        axes.set_title(label, fontsize=9)
        axes.set_axis_off()
    if title is not None:
        figure.suptitle(title)
    figure.tight_layout()
    return save_png(figure, path)


def plot_bleu_by_length(
    results: Mapping[str, Sequence[LengthBucket]], path: Path, *, title: str | None = None
) -> Path:
    """BLEU against source-sentence length, one line per model; a PNG.

    Args:
        results: model name -> its ``by_length`` list from
            :func:`rnnkit.metrics.bleu.translation_scores` (all scored on the same sentences).
        path: the PNG to write.
        title: the figure's title (default "BLEU by source sentence length").

    Returns:
        ``path``. Buckets are evenly spaced on the x axis and labelled with their word ranges and
        sentence counts; an empty bucket leaves a gap in every line.
    """
    labels = check_same_buckets(results)
    counts = [bucket["count"] for bucket in next(iter(results.values()))]
    positions = list(range(len(labels)))
    figure = new_figure()
    axes = figure.add_subplot(1, 1, 1)
    for name, buckets in results.items():
        scores = [np.nan if bucket["bleu"] is None else bucket["bleu"] for bucket in buckets]
        axes.plot(positions, scores, marker="o", label=name)
    axes.set_xticks(positions)
    axes.set_xticklabels([f"{label}\n(n={n})" for label, n in zip(labels, counts, strict=True)])
    axes.set_xlabel("source sentence length (words)")
    axes.set_ylabel("BLEU")
    axes.set_ylim(bottom=0.0)
    axes.set_title(title if title is not None else "BLEU by source sentence length")
    axes.grid(True, alpha=0.3)
    axes.legend()
    return save_png(figure, path)
