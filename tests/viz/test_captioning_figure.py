"""Tests for rnnkit.viz.captioning: the word-by-word attention figure over the image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from rnnkit.viz.captioning import (
    MAX_SIDE,
    caption_attention_figure,
    caption_figures,
    upsample_attention,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WORDS = ["a", "dog", "left", "of", "a", "tree"]
H, W = 3, 4  # a grid with distinct sides, so a transpose fails


def _attention(steps: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(steps, H * W, generator=generator)
    return torch.softmax(logits, dim=-1).reshape(steps, H, W)  # (T, H, W)


def _scene() -> Image.Image:
    """A 200 x 150 RGBA picture: transparent, with an opaque red square at the top left."""
    pixels = np.zeros((150, 200, 4), dtype=np.uint8)
    pixels[10:60, 10:60] = (255, 0, 0, 255)
    return Image.fromarray(pixels)  # (h, w, 4) uint8: RGBA


def test_one_panel_per_word_plus_the_image(tmp_path: Path, drawn: list[Any]) -> None:
    attention = _attention(len(WORDS))
    path = caption_attention_figure(_scene(), WORDS, attention, tmp_path / "fig.png", columns=4)
    assert path == tmp_path / "fig.png"
    assert path.read_bytes()[:8] == PNG_MAGIC
    (figure,) = drawn
    assert len(figure.axes) == len(WORDS) + 1
    assert [axes.get_title() for axes in figure.axes] == ["", *WORDS]
    assert figure.get_suptitle() == "a dog left of a tree"
    # the first panel is the image alone, composited on white; the others add the overlay
    (picture,) = figure.axes[0].images
    shown = np.asarray(picture.get_array())
    assert shown.shape == (150, 200, 3)
    np.testing.assert_array_equal(shown[100, 150], [1.0, 1.0, 1.0])  # transparent -> white
    np.testing.assert_array_equal(shown[30, 30], [1.0, 0.0, 0.0])
    heats = [upsample_attention(attention[k], (150, 200)) for k in range(len(WORDS))]
    top = max(float(heat.max()) for heat in heats)  # one grey scale for the whole figure
    for k, axes in enumerate(figure.axes[1:]):
        image, overlay = axes.images
        np.testing.assert_array_equal(np.asarray(image.get_array()), shown)
        heat = np.asarray(overlay.get_array())
        assert heat.shape == (150, 200)
        np.testing.assert_allclose(heat, heats[k])
        assert overlay.get_alpha() == 0.6
        assert overlay.get_clim() == (0.0, pytest.approx(top))
    # no file left behind but the PNG (atomic write)
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]


def test_extra_step_is_the_end_panel(tmp_path: Path, drawn: list[Any]) -> None:
    attention = _attention(len(WORDS) + 1).numpy()
    picture = np.random.default_rng(0).random((64, 48))  # grey float image in [0, 1]
    caption_attention_figure(picture, WORDS, attention, tmp_path / "end.png", title="scene 7")
    (figure,) = drawn
    assert [axes.get_title() for axes in figure.axes] == ["", *WORDS, "<end>"]
    assert figure.get_suptitle() == "scene 7"


def test_upsampling_is_smooth_and_keeps_cells_in_place() -> None:
    grid = torch.zeros(H, W)
    grid[2, 1] = 1.0  # the cell at rows 2/3..1, columns 1/4..2/4
    heat = upsample_attention(grid, (90, 80))  # each cell 30 x 20 pixels
    assert heat.shape == (90, 80) and heat.min() >= 0.0
    row, col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert 60 <= row < 90 and 20 <= col < 40
    # smooth: neighbouring pixels differ by far less than a step from 0 to 1 would
    assert np.abs(np.diff(heat, axis=0)).max() < 0.2
    assert np.abs(np.diff(heat, axis=1)).max() < 0.2


def test_large_images_are_shrunk_for_the_panels(tmp_path: Path, drawn: list[Any]) -> None:
    big = Image.new("L", (1024, 512), 128)  # grey mode
    caption_attention_figure(big, ["dog"], _attention(1), tmp_path / "big.png")
    (figure,) = drawn
    (picture,) = figure.axes[0].images
    assert np.asarray(picture.get_array()).shape == (MAX_SIDE // 2, MAX_SIDE, 3)


def test_caption_figures_one_per_hypothesis(tmp_path: Path, drawn: list[Any]) -> None:
    hypotheses = [WORDS, ["a", "dog"], ["a", "tree"]]
    attentions = [_attention(len(words) + 1, seed=k) for k, words in enumerate(hypotheses)]
    paths = caption_figures(
        _scene(), hypotheses, attentions, tmp_path / "plots", stem="scene-3", scores=[-1.5, -2, -3]
    )
    assert paths == [tmp_path / "plots" / f"scene-3-{n}.png" for n in (1, 2, 3)]
    assert all(path.read_bytes()[:8] == PNG_MAGIC for path in paths)
    assert [figure.get_suptitle() for figure in drawn] == [
        "1. a dog left of a tree  (score -1.50)",
        "2. a dog  (score -2.00)",
        "3. a tree  (score -3.00)",
    ]
    assert [len(figure.axes) for figure in drawn] == [8, 4, 4]


@pytest.mark.parametrize(
    ("image", "tokens", "attention", "columns", "message"),
    [
        (
            np.zeros((4, 4, 2)),
            ["dog"],
            torch.ones(1, 2, 2) / 4,
            5,
            r"^image must be \(Hi, Wi\), \(Hi, Wi, 3\) or \(Hi, Wi, 4\), got shape \(4, 4, 2\)$",
        ),
        (
            np.full((4, 4), 2.0),
            ["dog"],
            torch.ones(1, 2, 2) / 4,
            5,
            r"^a float image must have values in \[0, 1\]",
        ),
        (
            np.zeros((4, 4)),
            ["a", "dog", "runs"],
            torch.ones(1, 2, 2) / 4,
            5,
            r"^attention has 1 steps but the caption has 3 words",
        ),
        (np.zeros((4, 4)), ["dog"], torch.ones(1, 4), 5, r"^attention must be \(T, H, W\)"),
        (np.zeros((4, 4)), ["dog"], torch.full((1, 2, 2), 2.0), 5, r"^attention must lie in"),
        (np.zeros((4, 4)), "dog", torch.ones(3, 2, 2) / 4, 5, r"^tokens must be a sequence"),
        (np.zeros((4, 4)), ["dog"], torch.ones(1, 2, 2) / 4, 0, r"^columns must be >= 1, got 0$"),
    ],
)
def test_bad_input_is_refused(
    tmp_path: Path,
    image: np.ndarray,
    tokens: list[str],
    attention: torch.Tensor,
    columns: int,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        caption_attention_figure(image, tokens, attention, tmp_path / "x.png", columns=columns)
    assert not (tmp_path / "x.png").exists()


def test_caption_figures_bad_input(tmp_path: Path) -> None:
    attention = [torch.ones(2, 2, 2) / 4]
    with pytest.raises(ValueError, match=r"^stem '\.\./x' must be a plain file name"):
        caption_figures(np.zeros((4, 4)), [["dog"]], attention, tmp_path, stem="../x")
    with pytest.raises(ValueError, match=r"^hypotheses has 1 captions but attentions has 0$"):
        caption_figures(np.zeros((4, 4)), [["dog"]], [], tmp_path)
    with pytest.raises(ValueError, match=r"^hypotheses has 1 captions but scores has 2$"):
        caption_figures(np.zeros((4, 4)), [["dog"]], attention, tmp_path, scores=[1.0, 2.0])
