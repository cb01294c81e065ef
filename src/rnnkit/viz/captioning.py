"""The captioning figure of the lecture: a caption's attention over its image, word by word (PNG).

"Show, Attend and Tell" (Xu et al., 2015, Fig. 2-3): the image, then one panel per generated word
with the decoder's attention at that step laid over the image, the word as the panel's title.

- The attention of one step is a (H, W) grid over the encoder's feature map. The grid covers the
  whole image (images are resized without cropping), so cell (i, j) covers rows i/H..(i+1)/H and
  columns j/W..(j+1)/W. It is upsampled **smoothly** to the picture's pixels (bicubic,
  :func:`torch.nn.functional.interpolate` with ``align_corners=False``, so each cell's centre lands
  on its region's centre; the small overshoot of bicubic below 0 is clipped) and drawn over the
  image in grey with alpha 0.6, on one scale for the whole figure (black 0, white the largest
  weight of any step), so a step that looks everywhere is darker than one that looks at one
  place.
- When the attention has one row more than there are words, the last row is the end-of-caption
  step and its panel is titled ``<end>``.
- Images: a PIL image in any mode (transparency composited on white, as the captioner sees it) or
  an array (Hi, Wi) / (Hi, Wi, 3) / (Hi, Wi, 4), uint8 0..255 or float 0..1; shown shrunk to at
  most :data:`MAX_SIDE` pixels on its longer side (aspect kept).

:func:`caption_attention_figure` draws one caption; :func:`caption_figures` draws one figure per
hypothesis of an image (the n-best list of a beam search, each with its own attention). Figures
are written atomically with :func:`rnnkit.viz.figures.save_png`; matplotlib is imported only when
drawing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.viz.figures import new_figure, save_png

if TYPE_CHECKING:
    from PIL import Image

MAX_SIDE = 256
"""Longest side, in pixels, of the picture drawn in each panel."""

END_TOKEN = "<end>"
"""Title of the panel of the end-of-caption step."""

_PANEL_INCHES = 2.2


def _picture(image: Image.Image | np.ndarray) -> np.ndarray:
    """The image as a (h, w, 3) float array in [0, 1], longest side at most MAX_SIDE."""
    from PIL import Image

    if isinstance(image, Image.Image):
        picture = image
    else:
        array = np.asarray(image)
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise ValueError(
                f"image must be (Hi, Wi), (Hi, Wi, 3) or (Hi, Wi, 4), got shape {array.shape}"
            )
        if array.size == 0:
            raise ValueError(f"image is empty, got shape {array.shape}")
        if array.dtype != np.uint8:
            values = array.astype(np.float64)
            if not np.all(np.isfinite(values)) or values.min() < 0.0 or values.max() > 1.0:
                raise ValueError("a float image must have values in [0, 1] (or give uint8 0..255)")
            array = np.round(values * 255.0).astype(np.uint8)
        picture = Image.fromarray(array)
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(white, rgba)
    picture = picture.convert("RGB")
    scale = MAX_SIDE / max(picture.size)
    if scale < 1.0:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(picture, dtype=np.float64) / 255.0


def _attention(attention: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(attention, np.ndarray):
        attention = torch.from_numpy(attention)
    grids = attention.detach().to("cpu", torch.float64)
    if grids.ndim != 3 or 0 in grids.shape[1:]:
        raise ValueError(f"attention must be (T, H, W), got shape {tuple(grids.shape)}")
    if not bool(torch.isfinite(grids).all()):
        raise ValueError("attention has non-finite values")
    if grids.numel() and (grids.min() < -1e-6 or grids.max() > 1 + 1e-6):
        raise ValueError(
            "attention must lie in [0, 1] (attention weights), "
            f"got [{float(grids.min()):g}, {float(grids.max()):g}]"
        )
    return grids


def upsample_attention(grid: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """One step's attention grid upsampled smoothly (bicubic) to an image's pixels.

    Args:
        grid: (H, W) attention weights over the encoder's grid.
        size: (h, w) of the picture in pixels.

    Returns:
        (h, w) float64 array, non-negative (bicubic overshoot below 0 clipped).
    """
    if grid.ndim != 2:
        raise ValueError(f"grid must be (H, W), got shape {tuple(grid.shape)}")
    smooth = F.interpolate(
        grid.to(torch.float64)[None, None], size=size, mode="bicubic", align_corners=False
    )[0, 0]  # (h, w)
    result: np.ndarray = smooth.clamp(min=0.0).numpy()
    return result


def caption_attention_figure(
    image: Image.Image | np.ndarray,
    tokens: Sequence[str],
    attention: torch.Tensor | np.ndarray,
    path: Path,
    *,
    title: str | None = None,
    columns: int = 5,
) -> Path:
    """The image, then one panel per word with that step's attention laid over it; a PNG.

    Args:
        image: the captioned image (PIL image or array, see the module docstring).
        tokens: the T' words of the caption (no bos/eos).
        attention: (T', H, W) attention weights over the encoder's grid, or (T' + 1, H, W) with
            the end-of-caption step last (shown as ``<end>``).
        path: the PNG to write.
        title: title over the figure (default: the caption, its words joined by spaces).
        columns: panels per row (the image counts as one).

    Returns:
        ``path``. The figure has T' + 1 panels (T' + 2 with the ``<end>`` step): the image alone
        (untitled), then each word's.

    Raises:
        ValueError: a bad image, attention that is not (T, H, W) with T = T' or T' + 1, weights
            outside [0, 1], or columns < 1.
    """
    if isinstance(tokens, str):
        raise ValueError("tokens must be a sequence of words, not one string")
    words = [str(token) for token in tokens]
    grids = _attention(attention)  # (T, H, W)
    if grids.shape[0] == len(words) + 1:
        labels = [*words, END_TOKEN]
    elif grids.shape[0] == len(words):
        labels = words
    else:
        raise ValueError(
            f"attention has {grids.shape[0]} steps but the caption has {len(words)} words: "
            "give one step per word (and optionally one more for the end of the caption)"
        )
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    picture = _picture(image)  # (h, w, 3)
    height, width = picture.shape[:2]

    panels = len(labels) + 1
    columns = min(columns, panels)
    rows = -(-panels // columns)
    aspect = height / width
    figure = new_figure(_PANEL_INCHES * columns, (_PANEL_INCHES * aspect + 0.35) * rows + 0.4)
    axes = figure.add_subplot(rows, columns, 1)
    axes.imshow(picture)
    axes.set_axis_off()
    heats = [upsample_attention(grids[k], (height, width)) for k in range(len(labels))]  # (h, w)
    top = max((float(heat.max()) for heat in heats), default=1.0) or 1.0
    for k, (label, heat) in enumerate(zip(labels, heats, strict=True)):
        axes = figure.add_subplot(rows, columns, k + 2)
        axes.imshow(picture)
        axes.imshow(heat, cmap="gray", vmin=0.0, vmax=top, alpha=0.6)
        axes.set_title(label, fontsize=10)
        axes.set_axis_off()
    figure.suptitle(title if title is not None else " ".join(words))
    figure.tight_layout()
    return save_png(figure, path)


_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def caption_figures(
    image: Image.Image | np.ndarray,
    hypotheses: Sequence[Sequence[str]],
    attentions: Sequence[torch.Tensor | np.ndarray],
    folder: Path,
    *,
    stem: str = "caption",
    scores: Sequence[float] | None = None,
    columns: int = 5,
) -> list[Path]:
    """One :func:`caption_attention_figure` per hypothesis of one image (e.g. a beam's n-best).

    Args:
        image: the captioned image.
        hypotheses: N captions, each its T'_n words, best first.
        attentions: N attention tensors, each (T'_n, H, W) or (T'_n + 1, H, W).
        folder: where the PNGs go (created if missing).
        stem: file-name stem: the files are ``{stem}-1.png`` .. ``{stem}-N.png`` (letters, digits,
            ``.``, ``_``, ``-``).
        scores: the N hypotheses' scores (log-probabilities), shown in the titles when given.
        columns: panels per row.

    Returns:
        The N paths, in the hypotheses' order. Each title reads ``"{n}. {caption}"``, followed by
        ``"  (score {s:.2f})"`` when ``scores`` are given.
    """
    if not _STEM.match(stem):
        raise ValueError(
            f"stem {stem!r} must be a plain file name (letters, digits, '.', '_', '-')"
        )
    if len(attentions) != len(hypotheses):
        raise ValueError(
            f"hypotheses has {len(hypotheses)} captions but attentions has {len(attentions)}"
        )
    if scores is not None and len(scores) != len(hypotheses):
        raise ValueError(f"hypotheses has {len(hypotheses)} captions but scores has {len(scores)}")
    paths = []
    for n, (words, attention) in enumerate(zip(hypotheses, attentions, strict=True)):
        if isinstance(words, str):
            raise ValueError(f"hypotheses[{n}] must be a sequence of words, not one string")
        title = f"{n + 1}. {' '.join(words)}"
        if scores is not None:
            title += f"  (score {scores[n]:.2f})"
        paths.append(
            caption_attention_figure(
                image,
                words,
                attention,
                folder / f"{stem}-{n + 1}.png",
                title=title,
                columns=columns,
            )
        )
    return paths
