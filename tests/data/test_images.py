"""Tests for rnnkit.data.images: every colour mode to RGB (transparency over white), every bad
file with its exact message, the resize without cropping, normalisation and the file digest."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rnnkit.data.images import ImageError, file_digest, image_tensor, load_image


def noise(height: int = 12, width: int = 10) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def saved(image: Image.Image, path: Path, **kwargs: object) -> Path:
    image.save(path, **kwargs)  # type: ignore[arg-type]
    return path


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def test_rgb_png_reads_back_exactly_and_detached_from_the_file(tmp_path: Path) -> None:
    original = noise()
    path = saved(original, tmp_path / "a.png")
    image = load_image(path)
    path.unlink()  # fully decoded: the file is no longer needed
    assert image.mode == "RGB" and image.size == (10, 12)
    assert np.array_equal(pixels(image), pixels(original))


def test_grey_and_sixteen_bit_grey_become_rgb(tmp_path: Path) -> None:
    grey = Image.fromarray(np.array([[0, 100, 255]], dtype=np.uint8), "L")
    image = load_image(saved(grey, tmp_path / "grey.png"))
    assert image.mode == "RGB"
    assert pixels(image).tolist() == [[[0, 0, 0], [100, 100, 100], [255, 255, 255]]]
    deep = Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16))
    path = saved(deep, tmp_path / "deep.png")
    assert Image.open(path).mode == "I;16"
    assert pixels(load_image(path)).tolist() == [[[0, 0, 0], [100, 100, 100], [255, 255, 255]]]


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.array(
        [[[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 255, 128], [10, 20, 30, 51]]], dtype=np.uint8
    )
    image = load_image(saved(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert image.mode == "RGB"
    # out = a * colour + (1 - a) * 255, rounded: a = 128/255 and 51/255
    assert pixels(image).tolist() == [
        [[255, 0, 0], [255, 255, 255], [127, 127, 255], [206, 208, 210]]
    ]


def test_grey_with_alpha_is_composited_on_white(tmp_path: Path) -> None:
    la = Image.fromarray(np.array([[[0, 0], [0, 255], [100, 51]]], dtype=np.uint8), "LA")
    image = load_image(saved(la, tmp_path / "a.png"))
    assert pixels(image).tolist() == [[[255, 255, 255], [0, 0, 0], [224, 224, 224]]]


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    palette = Image.new("P", (3, 1))
    palette.putpalette([255, 0, 0, 0, 128, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    palette.putdata([0, 1, 2])
    plain = load_image(saved(palette, tmp_path / "plain.png"))
    assert pixels(plain).tolist() == [[[255, 0, 0], [0, 128, 0], [0, 0, 255]]]
    see_through = load_image(saved(palette, tmp_path / "clear.png", transparency=1))
    assert pixels(see_through).tolist() == [[[255, 0, 0], [255, 255, 255], [0, 0, 255]]]
    gif = load_image(saved(palette, tmp_path / "clear.gif", transparency=2))
    assert pixels(gif).tolist() == [[[255, 0, 0], [0, 128, 0], [255, 255, 255]]]


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 0, 0, 0))  # no ink: white
    image = load_image(saved(cmyk, tmp_path / "a.jpg", quality=95))
    assert image.mode == "RGB" and image.size == (8, 8)
    assert int(pixels(image).min()) >= 250


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    original = noise(4, 6)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    path = saved(original, tmp_path / "a.png", exif=exif)
    image = load_image(path)
    assert image.size == (4, 6)
    assert np.array_equal(pixels(image), pixels(original.transpose(Image.Transpose.ROTATE_270)))


def test_missing_empty_and_not_an_image(tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    with pytest.raises(ImageError, match=f"^{re.escape(f'{missing}: no such image file')}$"):
        load_image(missing)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(
        ImageError, match=f"^{re.escape(f'{empty}: empty file (0 bytes), not an image')}$"
    ):
        load_image(empty)
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture\n")
    message = f"{text}: not an image file (cannot identify its format)"
    with pytest.raises(ImageError, match=f"^{re.escape(message)}$"):
        load_image(text)
    with pytest.raises(
        ImageError, match=f"^{re.escape(f'{tmp_path}: is a folder, not an image file')}$"
    ):
        load_image(tmp_path)


def test_truncated_png_cut_in_the_data_and_in_the_header(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    noise(40, 50).save(buffer, format="PNG")
    data = buffer.getvalue()
    half = tmp_path / "half.png"
    half.write_bytes(data[: len(data) // 2])
    message = f"{half}: truncated or corrupt image (image file is truncated)"
    with pytest.raises(ImageError, match=f"^{re.escape(message)}$"):
        load_image(half)
    head = tmp_path / "head.png"
    head.write_bytes(data[:30])
    message = (
        f"{head}: truncated or corrupt image (starts like a PNG file but its header cannot be read)"
    )
    with pytest.raises(ImageError, match=f"^{re.escape(message)}$"):
        load_image(head)


def test_truncated_jpeg(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    noise(40, 50).save(buffer, format="JPEG")
    data = buffer.getvalue()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    pattern = re.escape(f"{cut}: truncated or corrupt image (image file is truncated (") + r"\d+"
    with pytest.raises(ImageError, match=f"^{pattern}{re.escape(' bytes not processed))')}$"):
        load_image(cut)
    short = tmp_path / "short.jpg"
    short.write_bytes(data[:10])
    message = f"{short}: truncated or corrupt image (Truncated File Read)"
    with pytest.raises(ImageError, match=f"^{re.escape(message)}$"):
        load_image(short)


def test_image_error_is_a_value_error() -> None:
    assert issubclass(ImageError, ValueError)


def test_image_tensor_normalises_a_plain_colour_exactly() -> None:
    image = Image.new("RGB", (9, 5), (51, 102, 204))
    mean, std = (0.5, 0.25, 0.1), (0.5, 0.25, 2.0)
    x = image_tensor(image, (3, 7), mean, std)
    assert x.shape == (3, 3, 7) and x.dtype == torch.float32
    expected = torch.tensor([(0.2 - 0.5) / 0.5, (0.4 - 0.25) / 0.25, (0.8 - 0.1) / 2.0])
    torch.testing.assert_close(x, expected.view(3, 1, 1).expand(3, 3, 7))


def test_image_tensor_squeezes_the_whole_image_without_cropping() -> None:
    wide = np.full((20, 60, 3), 255, dtype=np.uint8)
    wide[:, :12] = (255, 0, 0)  # a red band at the far left, blue at the far right
    wide[:, -12:] = (0, 0, 255)
    x = image_tensor(Image.fromarray(wide, "RGB"), (10, 10), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert x.shape == (3, 10, 10)
    # a centre crop to 20x20 would lose both bands; squeezed, each fills two output columns
    red, blue = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0])
    torch.testing.assert_close(x[:, :, 0], red[:, None].expand(3, 10))
    torch.testing.assert_close(x[:, :, -1], blue[:, None].expand(3, 10))
    torch.testing.assert_close(x[:, :, 4:6], torch.ones(3, 10, 2))


def test_image_tensor_is_antialiased() -> None:
    stripes = np.zeros((64, 64, 3), dtype=np.uint8)
    stripes[:, ::2] = 255  # one-pixel black and white stripes
    x = image_tensor(Image.fromarray(stripes, "RGB"), (8, 8), (0.0,) * 3, (1.0,) * 3)
    assert float((x - 0.5).abs().max()) < 0.02  # averaged (sampling would give 0 or 1)


def test_image_tensor_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"^image_tensor needs an RGB image, got mode 'L'$"):
        image_tensor(Image.new("L", (4, 4)), (2, 2), (0.0,) * 3, (1.0,) * 3)
    rgb = Image.new("RGB", (4, 4))
    with pytest.raises(ValueError, match=r"^mean and std need 3 values each; got 1 and 3$"):
        image_tensor(rgb, (2, 2), (0.0,), (1.0,) * 3)
    with pytest.raises(ValueError, match=r"^std values must be non-zero; got \(1.0, 0.0, 1.0\)$"):
        image_tensor(rgb, (2, 2), (0.0,) * 3, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"^image size must be positive \(H, W\); got \(0, 2\)$"):
        image_tensor(rgb, (0, 2), (0.0,) * 3, (1.0,) * 3)


def test_file_digest_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc")
    assert file_digest(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    path.write_bytes(b"abd")
    assert file_digest(path) == hashlib.sha256(b"abd").hexdigest()
    missing = tmp_path / "none.png"
    with pytest.raises(ImageError, match=f"^{re.escape(f'{missing}: no such image file')}$"):
        file_digest(missing)
