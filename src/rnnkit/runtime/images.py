"""Image files to RGB pictures and an encoder's normalised pixels, with Pillow and NumPy, torch-free.

:mod:`rnnkit.data.images` (the torch side) uses these functions, so a run and its ONNX export see
the same picture and the same pixels. :func:`load_image` reads any file Pillow can decode (PNG,
JPEG, GIF, BMP, WebP, TIFF, ...) and returns it fully decoded, as an RGB image, the file closed:

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

:func:`image_pixels` squeezes the whole picture, without cropping, to the encoder's input size
(bilinear) and normalises it: [0, 1], then ``(x - mean) / std`` per channel.

Imports: numpy, Pillow and the standard library.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "MAX_UPLOAD_PIXELS",
    "ImageBytes",
    "ImageError",
    "image_pixels",
    "load_image",
]

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


MAX_UPLOAD_PIXELS = 50_000_000
"""The most pixels :func:`load_image` decodes from an :class:`ImageBytes` (about 150 MB as RGB):
bytes come from uploads, and a small file can declare a huge picture."""


class ImageError(ValueError):
    """An image file that cannot be read; the message starts with the file's path."""


@dataclass(frozen=True)
class ImageBytes:
    """An image file's bytes held in memory (an upload), read by :func:`load_image` as a file.

    Attributes:
        name: what to call it in messages and outputs (``inputs[0]``, an upload's file name).
        data: the file's bytes.
    """

    name: str
    data: bytes

    def __str__(self) -> str:
        return self.name


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


def load_image(path: Path | ImageBytes, max_pixels: int | None = None) -> Image.Image:
    """Read an image file into a fully decoded RGB picture (see the module docstring).

    Args:
        path: the image file, or an image file's bytes in memory.
        max_pixels: refuse a picture of more pixels (width x height) before decoding it, e.g.
            a small file that expands to gigabytes; None: :data:`MAX_UPLOAD_PIXELS` for
            :class:`ImageBytes`, Pillow's own bound for files.

    Returns:
        an ``RGB`` :class:`PIL.Image.Image` of the file's size (after EXIF orientation),
        transparent pixels composited over white; it holds no reference to the file.

    Raises:
        ImageError: a missing, empty, unidentifiable, truncated or corrupt file, one over
            ``max_pixels``, or a colour mode Pillow cannot convert to RGB; the message starts
            with ``path`` (an :class:`ImageBytes`' name).
    """
    source: Path | io.BytesIO
    if isinstance(path, ImageBytes):
        name, head = path.name, path.data[:16]
        if not path.data:
            raise ImageError(f"{name}: empty file (0 bytes), not an image")
        source = io.BytesIO(path.data)
        max_pixels = MAX_UPLOAD_PIXELS if max_pixels is None else max_pixels
    else:
        source = Path(path)
        name = str(source)
        if not source.exists():
            raise ImageError(f"{name}: no such image file")
        if source.is_dir():
            raise ImageError(f"{name}: is a folder, not an image file")
        if source.stat().st_size == 0:
            raise ImageError(f"{name}: empty file (0 bytes), not an image")
        with source.open("rb") as handle:
            head = handle.read(16)
    try:
        with Image.open(source) as opened:
            if max_pixels is not None and opened.width * opened.height > max_pixels:
                raise ImageError(
                    f"{name}: image of {opened.width} x {opened.height} pixels, more than the "
                    f"{max_pixels} allowed"
                )
            opened.load()
            picture = ImageOps.exif_transpose(opened)
            picture.load()
            return _to_rgb(picture, name)
    except UnidentifiedImageError:
        kind = _signature_format(head)
        if kind is None:
            raise ImageError(f"{name}: not an image file (cannot identify its format)") from None
        raise ImageError(
            f"{name}: truncated or corrupt image (starts like a {kind} file but its header "
            "cannot be read)"
        ) from None
    except ImageError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageError(f"{name}: image too large to decode ({_detail(err)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError(f"{name}: truncated or corrupt image ({_detail(err)})") from None


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


def _to_rgb(picture: Image.Image, path: str) -> Image.Image:
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


def image_pixels(
    image: Image.Image, size: Sequence[int], mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """(3, H, W) float32 normalised pixels of an RGB picture resized to ``size`` = (H, W).

    The whole picture is resized, without cropping (bilinear, antialiased when shrinking:
    Pillow's filter widens with the scale), so the aspect ratio may change; pixel values are
    scaled to [0, 1] and normalised per channel (R, G, B) as ``(x - mean) / std``.
    """
    height, width = int(size[0]), int(size[1])
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(resized, dtype=np.float32) / 255.0  # (H, W, 3)
    m = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    out: np.ndarray = (pixels.transpose(2, 0, 1) - m) / s  # (3, H, W)
    return out.astype(np.float32)
