"""Tests for rnnkit.viz.attention: PNGs are written, sized to the tokens; bad input is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rnnkit.metrics.bleu import LENGTH_BUCKETS, LengthBucket
from rnnkit.viz.attention import plot_attention, plot_attention_grid, plot_bleu_by_length

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T_OUT, S = 5, 7


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from the PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _weights(rows: int, columns: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(torch.randn(rows, columns, generator=generator), dim=-1)  # (T_out, S)


def test_plot_attention_writes_png_from_tensor_or_array(tmp_path: Path, drawn: list[Any]) -> None:
    weights = _weights(T_OUT, S)
    source = ["the", "agreement", "on", "the", "European", "zone", "."]
    output = ["l'", "accord", "sur", "la", "zone"]
    from_tensor = plot_attention(weights, source, output, tmp_path / "t.png", title="en-fr")
    from_array = plot_attention(weights.numpy(), source, output, tmp_path / "a.png")
    assert from_tensor == tmp_path / "t.png"
    for path in (from_tensor, from_array):
        width, height = _png_size(path)
        assert width > 100 and height > 100
    # What was drawn: the weights as they are (row t = output token t), tokens on the axes.
    for figure in drawn:
        axes = figure.axes[0]
        (image,) = axes.images
        np.testing.assert_allclose(np.asarray(image.get_array()), weights.numpy(), rtol=1e-6)
        assert image.get_clim() == (0.0, 1.0)
        assert [t.get_text() for t in axes.get_xticklabels()] == source
        assert [t.get_text() for t in axes.get_yticklabels()] == output
    assert drawn[0].axes[0].get_xlabel() == "en-fr"


def test_plot_attention_grows_with_tokens(tmp_path: Path) -> None:
    small = plot_attention(_weights(4, 4), list("abcd"), list("wxyz"), tmp_path / "s.png")
    tokens = [f"token{k}" for k in range(60)]
    large = plot_attention(_weights(60, 60), tokens, tokens, tmp_path / "l.png")
    (w_small, h_small), (w_large, h_large) = _png_size(small), _png_size(large)
    assert w_large > 3 * w_small and h_large > 3 * h_small


def test_plot_attention_errors(tmp_path: Path) -> None:
    weights = _weights(T_OUT, S)
    path = tmp_path / "x.png"
    src, out = [f"s{k}" for k in range(S)], [f"o{k}" for k in range(T_OUT)]
    with pytest.raises(ValueError, match=r"weights must have 2 dimensions, got shape \(1, 5, 7\)"):
        plot_attention(weights[None], src, out, path)
    with pytest.raises(
        ValueError, match="source_tokens has 6 tokens but the weights have 7 source"
    ):
        plot_attention(weights, src[:6], out, path)
    with pytest.raises(
        ValueError, match="output_tokens has 4 tokens but the weights have 5 output"
    ):
        plot_attention(weights, src, out[:4], path)
    with pytest.raises(ValueError, match="source_tokens must be a sequence of tokens, not one"):
        plot_attention(weights, "abcdefg", out, path)
    with pytest.raises(ValueError, match="weights has non-finite values"):
        plot_attention(weights.masked_fill(weights > 0.3, float("nan")), src, out, path)
    with pytest.raises(ValueError, match=r"weights must lie in \[0, 1\]"):
        plot_attention(weights * 3, src, out, path)
    with pytest.raises(ValueError, match=r"weights must be non-empty, got shape \(0, 7\)"):
        plot_attention(weights[:0], src, [], path)
    assert not path.exists()


def test_plot_attention_grid(tmp_path: Path, drawn: list[Any]) -> None:
    words = ["a", "red", "apple", "<eos>"]
    grids = torch.softmax(torch.randn(len(words), 7 * 7), dim=-1).reshape(len(words), 7, 7)
    rgb = np.random.default_rng(0).uniform(size=(72, 72, 3))
    path = plot_attention_grid(rgb, grids, words, tmp_path / "grid.png", columns=3, title="emoji")
    width, height = _png_size(path)
    assert width > height  # 3 panels wide, 2 rows
    grey = plot_attention_grid(rgb[..., 0], grids.numpy(), words, tmp_path / "g.png")
    assert _png_size(grey)[0] > width  # 4 panels in one row
    # One panel per word, titled with it: the image, then that word's grid stretched over it.
    panels = drawn[0].axes
    assert [a.get_title() for a in panels] == words
    assert drawn[0].get_suptitle() == "emoji"
    for k, panel in enumerate(panels):
        picture, overlay = panel.images
        np.testing.assert_allclose(np.asarray(picture.get_array()), rgb)
        np.testing.assert_allclose(np.asarray(overlay.get_array()), grids[k].numpy(), rtol=1e-6)
        assert overlay.get_extent() == [-0.5, 71.5, 71.5, -0.5]  # the whole image, no crop
    with pytest.raises(ValueError, match=r"image must be \(Hi, Wi\) or \(Hi, Wi, 3\)"):
        plot_attention_grid(rgb[..., :2], grids, words, tmp_path / "x.png")
    with pytest.raises(ValueError, match="words has 3 tokens but the weights have 4 output steps"):
        plot_attention_grid(rgb, grids, words[:3], tmp_path / "x.png")
    with pytest.raises(ValueError, match="weights must have 3 dimensions"):
        plot_attention_grid(rgb, grids[0], words, tmp_path / "x.png")
    with pytest.raises(ValueError, match="columns must be >= 1, got 0"):
        plot_attention_grid(rgb, grids, words, tmp_path / "x.png", columns=0)


def _buckets(bleus: list[float | None], counts: list[int]) -> list[LengthBucket]:
    return [
        {"bucket": label, "count": n, "bleu": b, "chrf": b}
        for (label, _, _), b, n in zip(LENGTH_BUCKETS, bleus, counts, strict=True)
    ]


def test_plot_bleu_by_length(tmp_path: Path, drawn: list[Any]) -> None:
    counts = [40, 30, 20, 10, 5, 0]
    results = {
        "attention": _buckets([30.0, 28.0, 27.0, 26.0, 25.0, None], counts),
        "fixed context": _buckets([25.0, 20.0, 14.0, 10.0, 8.0, None], counts),
    }
    path = plot_bleu_by_length(results, tmp_path / "bleu_by_length.png")
    width, height = _png_size(path)
    assert width > 300 and height > 200
    (axes,) = drawn[0].axes
    assert [line.get_label() for line in axes.get_lines()] == ["attention", "fixed context"]
    for line, name in zip(axes.get_lines(), results, strict=True):
        expected = [np.nan if b["bleu"] is None else b["bleu"] for b in results[name]]
        np.testing.assert_array_equal(line.get_ydata(), expected)
    ticks = [t.get_text() for t in axes.get_xticklabels()]
    assert ticks[0] == "1-10\n(n=40)" and ticks[-1] == ">50\n(n=0)"
    with pytest.raises(ValueError, match="were scored on different sentences"):
        plot_bleu_by_length(
            {"a": results["attention"], "b": _buckets([1.0] * 6, [1] * 6)}, tmp_path / "x.png"
        )
    assert not (tmp_path / "x.png").exists()
