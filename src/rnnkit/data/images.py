"""Image files to RGB pictures and normalised tensors, with errors that name the file.

:func:`load_image` reads any file Pillow can decode (PNG, JPEG, GIF, BMP, WebP, TIFF, ...) and
returns it fully decoded, as an RGB image, the file closed:

- the EXIF orientation tag of photographs is applied (the picture as a viewer shows it);
- a multi-frame file (animated GIF or PNG) gives its first frame;
- grey (``1``, ``L``) and palette (``P``) images become RGB; ``CMYK``, ``YCbCr`` and the other
  colour spaces Pillow converts become RGB;
- 16-bit grey (``I;16`` and its byte orders) is scaled to 8 bits (divided by 257); 32-bit
  integer grey (``I``) is read as 16-bit when any value exceeds 255, else as 8-bit; float grey
  (``F``) is clipped to 0..255;
- anything with transparency (``RGBA``, ``LA``, ``PA``, a palette or grey image with a
  transparent colour) is composited over a WHITE background, so a transparent pixel is white.

Bad files raise :class:`ImageError`, a ``ValueError`` whose message starts with the path:

- ``{path}: no such image file``
- ``{path}: empty file (0 bytes), not an image``
- ``{path}: not an image file (cannot identify its format)``
- ``{path}: truncated or corrupt image ({detail})``: the decoder failed part way, or the file
  starts with the signature of an image format but its header cannot be read.

:func:`image_tensor` squeezes the whole picture, without cropping, to the encoder's input size
and normalises it, so that cell (i, j) of an H x W feature grid covers rows i/H..(i+1)/H and
columns j/W..(j+1)/W of the original image. :func:`file_digest` is the SHA-256 of a file's
bytes, the key of feature caches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

__all__ = ["ImageError", "file_digest", "image_tensor", "load_image"]

_SIGNATURES: dict[bytes, str] = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
_TRANSPARENT_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


class ImageError(ValueError):
    """An image file that cannot be read; the message starts with the file's path."""


def _signature_format(head: bytes) -> str | None:
    """The format whose magic bytes ``head`` starts with, if any."""
    for magic, name in _SIGNATURES.items():
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return None


def _detail(err: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_image(path: Path) -> Image.Image:
    """Read an image file into a fully decoded RGB picture (see the module docstring).

    Args:
        path: the image file.

    Returns:
        an ``RGB`` :class:`PIL.Image.Image` of the file's size (after EXIF orientation),
        transparent pixels composited over white; it holds no reference to the file.

    Raises:
        ImageError: a missing, empty, unidentifiable, truncated or corrupt file, or a colour
            mode Pillow cannot convert to RGB; the message starts with ``path``.
    """
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such image file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes), not an image")
    try:
        with Image.open(path) as opened:
            opened.load()
            picture = ImageOps.exif_transpose(opened)
            picture.load()
            return _to_rgb(picture, path)
    except UnidentifiedImageError:
        with path.open("rb") as handle:
            kind = _signature_format(handle.read(16))
        if kind is None:
            raise ImageError(f"{path}: not an image file (cannot identify its format)") from None
        raise ImageError(
            f"{path}: truncated or corrupt image (starts like a {kind} file but its header "
            "cannot be read)"
        ) from None
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageError(f"{path}: image too large to decode ({_detail(err)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError(f"{path}: truncated or corrupt image ({_detail(err)})") from None


def _grey_to_8bit(picture: Image.Image) -> Image.Image:
    """An ``L`` image from 16-bit, 32-bit integer or float grey (see the module docstring)."""
    values = np.asarray(picture)
    if picture.mode in _SIXTEEN_BIT_MODES:
        scaled = values.astype(np.float64) / 257.0
    elif picture.mode == "I":
        scaled = values.astype(np.float64)
        if scaled.size and scaled.max() > 255:
            scaled = scaled / 257.0
    else:  # "F"
        scaled = values.astype(np.float64)
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L")


def _on_white(picture: Image.Image) -> Image.Image:
    """An RGB image of ``picture`` (any mode with alpha) composited over white."""
    rgba = picture.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _to_rgb(picture: Image.Image, path: Path) -> Image.Image:
    """``picture`` as a new RGB image (see the module docstring)."""
    mode = picture.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        picture = _grey_to_8bit(picture)
        mode = "L"
    if mode in _TRANSPARENT_MODES or "transparency" in picture.info:
        return _on_white(picture)
    if mode == "RGB":
        return picture.copy()
    try:
        return picture.convert("RGB")
    except ValueError:
        raise ImageError(f"{path}: unsupported colour mode '{mode}'") from None


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
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0)  # (H, W, 3)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    return (pixels.permute(2, 0, 1) - m) / s  # (3, H, W)


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
