"""What the captioner reads of each image: cached CNN grid features, or pixels.

A frozen pretrained CNN gives each image the same grid ``h_{i,j}`` (Hg x Wg x D) at every epoch,
so :func:`load_inputs` computes it once, in batches under ``torch.inference_mode``, and keeps it
on disk::

    <cache>/features/<encoder key>/<sha[:2]>/<sha>.safetensors      one tensor "grid" (Hg, Wg, D)

``sha`` is the SHA-256 of the image file's bytes (so an edited image is a new entry and a renamed
one is not), and the encoder key names the encoder, its input size and grid and the SHA-256 of
its weights file (so features of another CNN are never read). Each file is written atomically:
a killed extraction leaves whole files and no half-written one, and the next run computes only
what is missing. Features are stored in float16 (about 125 kB for EfficientNet-Lite0's
7 x 7 x 1280); :func:`round_features` puts freshly computed features through the same rounding,
so ``predict`` on an image sees exactly what training and ``evaluate`` read from the cache.

A CNN that is trained (``small_cnn``, or ``model.finetune_cnn`` > 0) must see pixels: then the
images are only decoded, resized and normalised (:func:`rnnkit.data.images.image_tensor`), and
kept in memory. An image that cannot be read is an error naming the data row it comes from
(``train.csv:7: images/a.png: truncated or corrupt image (...)``), or with ``data.on_error:
skip`` it is left out and counted.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from rnnkit.data.captions import CaptionExample
from rnnkit.data.images import ImageBytes, ImageError, file_digest, image_tensor, load_image
from rnnkit.io import load_safetensors, save_safetensors
from rnnkit.models.image_encoders import ImageEncoder
from rnnkit.tasks.base import TaskError

logger = logging.getLogger(__name__)

FEATURE_DTYPE = torch.float16
"""The precision features are cached in."""


@dataclass(frozen=True)
class ImageInputs:
    """The images of a list of examples, ready for the model.

    Attributes:
        examples: the examples whose image could be read, in their order.
        inputs: (N, Hg, Wg, D) float16 grid features (``kind == "features"``) or (N, 3, H, W)
            float32 normalised pixels (``kind == "pixels"``), row n for ``examples[n]``.
        kind: which of the two.
        skipped: one ``where: problem`` line per example left out (``data.on_error: skip``).
        computed: images whose features were computed by this call (0 for pixels).
        cached: images whose features were read from the cache.
    """

    examples: list[CaptionExample]
    inputs: Tensor
    kind: Literal["features", "pixels"]
    skipped: list[str]
    computed: int = 0
    cached: int = 0


_WEIGHT_DIGESTS: dict[Path, str] = {}


def encoder_key(encoder: ImageEncoder, weights: Path | None) -> str:
    """The cache folder name of an encoder's features: its name, input size, grid and the first
    16 hex digits of its weights file's SHA-256 (``none`` for an encoder without one)."""
    digest = "none"
    if weights is not None:
        path = Path(weights).resolve()
        if path not in _WEIGHT_DIGESTS:
            _WEIGHT_DIGESTS[path] = file_digest(path)
        digest = _WEIGHT_DIGESTS[path][:16]
    h, w = encoder.input_size
    gh, gw = encoder.grid
    name = encoder.name.replace(":", "-").replace("/", "-")
    return f"{name}-{h}x{w}-grid{gh}x{gw}-{digest}"


def round_features(grid: Tensor) -> Tensor:
    """``grid`` through the cache's float16 and back to float32: what the cache would hold."""
    return grid.to(FEATURE_DTYPE).float()


def _cache_file(folder: Path, sha: str) -> Path:
    return folder / sha[:2] / f"{sha}.safetensors"


def pixels_of(path: Path | ImageBytes, encoder: ImageEncoder) -> Tensor:
    """(3, H, W) normalised pixels of one image for ``encoder`` (resized without cropping).

    Raises:
        ImageError: the file is missing or not a readable image (the message names it).
    """
    return image_tensor(load_image(path), encoder.input_size, encoder.mean, encoder.std)


def _progress(total: int, desc: str) -> object:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not sys.stderr.isatty())


def load_inputs(
    examples: Sequence[CaptionExample],
    encoder: ImageEncoder,
    *,
    cache: Path | None,
    weights: Path | None,
    on_error: Literal["raise", "skip"] = "raise",
    batch_size: int = 32,
) -> ImageInputs:
    """Grid features of every example's image (cached), or their pixels when ``cache`` is None.

    Args:
        examples: the data's examples (one per image).
        encoder: the image encoder; its features are computed in eval mode, without grads.
        cache: the cache root (features under ``cache/features/<encoder key>``), or None to
            return pixels for a CNN that trains.
        weights: the encoder's weights file (part of the cache key).
        on_error: ``raise`` a :class:`TaskError` at the first unreadable image, naming the
            data row (``example.where``) and the file, or ``skip`` it and count it.
        batch_size: images per forward pass.

    Returns:
        The kept examples and their inputs (see :class:`ImageInputs`).
    """
    kept: list[CaptionExample] = []
    skipped: list[str] = []
    rows: list[Tensor | None] = []
    todo: list[tuple[int, Path, str]] = []  # (row, image path, sha)
    folder = None if cache is None else cache / "features" / encoder_key(encoder, weights)
    hits = computed = 0
    for example in examples:
        try:
            if folder is None:
                rows.append(pixels_of(example.image, encoder))
            else:
                sha = _digest(example.image)
                path = _cache_file(folder, sha)
                if path.is_file():
                    rows.append(load_safetensors(path)["grid"])
                    hits += 1
                else:
                    rows.append(None)
                    todo.append((len(rows) - 1, example.image, sha))
        except (ImageError, ValueError) as err:
            message = f"{example.where}: {err}" if example.where else str(err)
            if on_error == "raise":
                raise TaskError(message) from None
            skipped.append(message)
            continue
        kept.append(example)
    if folder is not None and todo:
        failed, computed = _extract(
            todo, rows, encoder, folder, batch_size, kept, on_error, skipped
        )
        if failed:
            keep = [i for i in range(len(rows)) if i not in failed]
            kept = [kept[i] for i in keep]
            rows = [rows[i] for i in keep]
    if not kept:
        return ImageInputs(kept, torch.empty(0), "features" if folder else "pixels", skipped)
    stacked = torch.stack([r for r in rows if r is not None])  # (N, ...)
    kind: Literal["features", "pixels"] = "pixels" if folder is None else "features"
    if folder is not None:
        logger.info(
            "image features: %d read from the cache, %d computed (%s)", hits, computed, folder
        )
    return ImageInputs(kept, stacked, kind, skipped, computed, hits)


def _digest(path: Path) -> str:
    try:
        return file_digest(path)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such image file") from None
    except OSError as err:
        raise ImageError(f"{path}: cannot be read ({err.strerror or err})") from None


@torch.inference_mode()
def _extract(
    todo: list[tuple[int, Path, str]],
    rows: list[Tensor | None],
    encoder: ImageEncoder,
    folder: Path,
    batch_size: int,
    kept: list[CaptionExample],
    on_error: Literal["raise", "skip"],
    skipped: list[str],
) -> tuple[set[int], int]:
    """Compute, cache and fill in the features of ``todo``: the rows that failed (skip mode)
    and how many images were computed."""
    was_training = encoder.training
    encoder.eval()
    failed: set[int] = set()
    done: dict[str, Tensor] = {}  # one image file twice is computed once
    bar = _progress(len(todo), "image features")
    try:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            pixels: list[Tensor] = []
            fresh: list[tuple[int, str]] = []
            for row, path, sha in chunk:
                if sha in done:
                    rows[row] = done[sha]
                    continue
                try:
                    pixels.append(pixels_of(path, encoder))
                except ImageError as err:
                    where = kept[row].where
                    message = f"{where}: {err}" if where else str(err)
                    if on_error == "raise":
                        raise TaskError(message) from None
                    skipped.append(message)
                    failed.add(row)
                    continue
                fresh.append((row, sha))
            if pixels:
                grids = encoder(torch.stack(pixels)).to(FEATURE_DTYPE)  # (b, Hg, Wg, D)
                for (row, sha), grid in zip(fresh, grids, strict=True):
                    grid = grid.clone()
                    save_safetensors({"grid": grid}, _cache_file(folder, sha))
                    rows[row] = grid
                    done[sha] = grid
            bar.update(len(chunk))  # type: ignore[attr-defined]
    finally:
        bar.close()  # type: ignore[attr-defined]
        encoder.train(was_training)
    # a duplicate of a failed image failed too
    for row, _, _ in todo:
        if rows[row] is None and row not in failed:
            failed.add(row)
    return failed, len(done)
