"""Image files to RGB pictures and normalised tensors, with errors that name the file.

:func:`load_image`, :class:`ImageBytes` and :class:`ImageError` are those of
:mod:`rnnkit.runtime.images` (torch-free, so a run and its ONNX export read a picture alike; its
docstring lists the decoding rules and the messages): any file Pillow can decode, fully decoded
as an RGB image with the EXIF orientation applied, the first frame of an animation, 16/32-bit
and float grey scaled to 8 bits and transparency composited over white.

:func:`image_tensor` squeezes the whole picture, without cropping, to the encoder's input size
and normalises it, so that cell (i, j) of an H x W feature grid covers rows i/H..(i+1)/H and
columns j/W..(j+1)/W of the original image. :func:`file_digest` is the SHA-256 of a file's
bytes, the key of feature caches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

# Decoding and the pixels are the ONNX runtime's (torch-free) functions: a run and its export
# read an image alike; this module adds the checks of image_tensor, the tensor and file digests.
from rnnkit.runtime.images import MAX_UPLOAD_PIXELS as MAX_UPLOAD_PIXELS
from rnnkit.runtime.images import ImageBytes as ImageBytes
from rnnkit.runtime.images import ImageError as ImageError
from rnnkit.runtime.images import image_pixels
from rnnkit.runtime.images import load_image as load_image

__all__ = [
    "MAX_UPLOAD_PIXELS",
    "ImageBytes",
    "ImageError",
    "file_digest",
    "image_tensor",
    "load_image",
]


def image_tensor(
    image: Image.Image, size: tuple[int, int], mean: Sequence[float], std: Sequence[float]
) -> Tensor:
    """An RGB picture as the normalised input of an image encoder.

    The whole picture is resized, without cropping, to ``size`` (bilinear, antialiased when
    shrinking: Pillow's filter widens with the scale), so the aspect ratio may change; pixel
    values are scaled to [0, 1] and normalised per channel as ``(x - mean) / std``.

    Args:
        image: an ``RGB`` picture (:func:`load_image` gives one).
        size: ``(H, W)`` of the result.
        mean, std: three per-channel values each (R, G, B), on the [0, 1] scale.

    Returns:
        float32 tensor ``(3, H, W)``.

    Raises:
        ValueError: an image that is not RGB, a bad size, or mean/std not three values (std
            all non-zero).
    """
    if image.mode != "RGB":
        raise ValueError(f"image_tensor needs an RGB image, got mode '{image.mode}'")
    height, width = size
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive (H, W); got {size}")
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"mean and std need 3 values each; got {len(mean)} and {len(std)}")
    if any(s == 0 for s in std):
        raise ValueError(f"std values must be non-zero; got {tuple(std)}")
    return torch.from_numpy(image_pixels(image, size, mean, std))  # (3, H, W)


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits.

    Raises:
        ImageError: the file does not exist (``{path}: no such image file``).
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except (FileNotFoundError, IsADirectoryError):
        raise ImageError(f"{path}: no such image file") from None
