"""Image files to an encoder's normalised pixels with Pillow and NumPy, torch-free.

The same picture as :func:`rnnkit.data.images.load_image` (EXIF orientation applied, the first
frame, 16/32-bit and float grey scaled to 8 bits, transparency composited over white, any mode
converted to RGB) and the same pixels as :func:`rnnkit.data.images.image_tensor` (the whole
picture resized bilinearly to the input size without cropping, [0, 1], ``(x - mean) / std``);
a test checks both against those functions. Bad files raise ``ValueError`` naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["image_pixels", "load_image"]

_TRANSPARENT = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def _to_rgb(picture: Image.Image, path: Path) -> Image.Image:
    mode = picture.mode
    if mode in _SIXTEEN or mode in ("I", "F"):
        values = np.asarray(picture).astype(np.float64)
        if mode in _SIXTEEN or (mode == "I" and values.size and values.max() > 255):
            values = values / 257.0
        picture = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
        mode = "L"
    if mode in _TRANSPARENT or "transparency" in picture.info:
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "RGB":
        return picture.copy()
    try:
        return picture.convert("RGB")
    except ValueError:
        raise ValueError(f"{path}: unsupported colour mode '{mode}'") from None


def load_image(path: Path) -> Image.Image:
    """A fully decoded RGB picture of an image file.

    Raises:
        ValueError: a missing, empty, unreadable or corrupt file; the message starts with it.
    """
    if not path.exists():
        raise ValueError(f"{path}: no such image file")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes), not an image")
    try:
        with Image.open(path) as opened:
            opened.load()
            picture = ImageOps.exif_transpose(opened)
            picture.load()
            return _to_rgb(picture, path)
    except UnidentifiedImageError:
        raise ValueError(f"{path}: not an image file (cannot identify its format)") from None
    except (OSError, SyntaxError, EOFError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: truncated or corrupt image ({first})") from None


def image_pixels(
    image: Image.Image, size: Sequence[int], mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """(3, H, W) float32 normalised pixels of an RGB picture resized to ``size`` = (H, W)."""
    height, width = int(size[0]), int(size[1])
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(resized, dtype=np.float32) / 255.0  # (H, W, 3)
    m = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    out: np.ndarray = (pixels.transpose(2, 0, 1) - m) / s  # (3, H, W)
    return out.astype(np.float32)
