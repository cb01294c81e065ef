"""The captioning task's inference side: :class:`Caption`, :func:`caption_images` (batched beam
search or sampling over many images at once, n-best, the attention of every hypothesis) and
:class:`CaptioningPredictor` (``rnnkit predict RUN a.png b.png``)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field
from torch import Tensor, nn

from rnnkit.data.images import ImageBytes, ImageError, load_image
from rnnkit.decoding import Hypothesis, SamplingConfig, SearchConfig, beam_search, sample
from rnnkit.models.captioning_model import CaptioningModel
from rnnkit.models.image_encoders import ImageEncoder
from rnnkit.tasks.base import JSONModel, Predictor, TaskError, attention_plot_folder, json_kind
from rnnkit.tasks.captioning_features import pixels_of
from rnnkit.tasks.decoding_options import sampling_options
from rnnkit.training.device import flush_denormals
from rnnkit.viz.captioning import caption_attention_figure

if TYPE_CHECKING:
    from rnnkit.tasks.captioning import CaptioningTask

END = "<end>"
"""How the eos step is written among a caption's tokens (its attention is the last row)."""


@dataclass(frozen=True)
class Caption:
    """One caption of one image.

    Attributes:
        caption: the words joined by spaces.
        tokens: the words, then ``<end>`` when the caption ended (not cut at the length limit).
        score: the hypothesis score (length-penalised log-probability for beam search).
        attention: (T', Hg, Wg) each token's weights over the grid (T' = ``len(tokens)``), or
            None for a Show and Tell run.
        ended: False when the caption was cut at the length limit.
    """

    caption: str
    tokens: list[str]
    score: float
    attention: Tensor | None
    ended: bool = True

    def to_dict(self, with_attention: bool = True) -> dict[str, Any]:
        """A JSON-ready dict (the attention as nested lists rounded to 4 decimals)."""
        out: dict[str, Any] = {
            "caption": self.caption,
            "tokens": self.tokens,
            "score": self.score,
            "truncated": not self.ended,
        }
        if with_attention and self.attention is not None:
            out["attention"] = [
                [[round(float(v), 4) for v in row] for row in grid] for grid in self.attention
            ]
        return out


def caption_images(
    task: CaptioningTask,
    model: nn.Module,
    images: Sequence[Path | ImageBytes],
    search: SearchConfig | None = None,
    *,
    sampling: SamplingConfig | None = None,
    batch_size: int = 64,
) -> list[list[Caption]]:
    """Caption image files with batched beam search (beam 1 is greedy search) or sampling.

    Args:
        task: the run's task (its vocabulary and length limit).
        model: the run's :class:`~rnnkit.tasks.captioning.CaptioningModel`.
        images: image files, or files' bytes in memory (any format Pillow reads; converted to
            RGB, resized without cropping).
        search: beam size, n-best, length limit, length penalty (default: beam 5).
        sampling: when given, draw ``search.n_best`` samples per image instead.
        batch_size: images encoded and decoded together.

    Returns:
        For each image, ``search.n_best`` captions, best first (samples: in drawing order).

    Raises:
        TaskError: an image that cannot be read, naming it (``input 2: x.png: ...``).
    """
    if not isinstance(model, CaptioningModel):
        raise TypeError(f"caption_images needs a CaptioningModel, got {type(model).__name__}")
    search = search or task.search({})
    encoder = model.encoder
    pixels = []
    for k, path in enumerate(images, 1):
        try:
            pixels.append(pixels_of(path if isinstance(path, ImageBytes) else Path(path), encoder))
        except ImageError as err:
            raise TaskError(f"input {k}: {err}") from None
    generator = None
    if sampling is not None:
        generator = torch.Generator(device=next(model.parameters()).device)
        generator.manual_seed(sampling.seed)
    results: list[list[Caption]] = []
    m = model
    was_training = m.training
    m.eval()
    try:
        with torch.no_grad(), flush_denormals():
            for start in range(0, len(pixels), batch_size):
                grid = m.image_grid(torch.stack(pixels[start : start + batch_size]))
                memory = m.decoder.encode(grid)
                if sampling is None:
                    found = beam_search(m.decoder, memory, search)
                else:
                    found = sample(
                        m.decoder,
                        memory,
                        temperature=sampling.temperature,
                        top_k=sampling.top_k,
                        top_p=sampling.top_p,
                        generator=generator,
                        num_samples=search.n_best,
                        max_len_a=search.max_len_a,
                        max_len_b=search.max_len_b,
                    )
                results += [[_caption(task, h) for h in hyps] for hyps in found]
    finally:
        m.train(was_training)
    return results


def _caption(task: CaptioningTask, hyp: Hypothesis) -> Caption:
    words = task.words(hyp.tokens)
    return Caption(
        caption=" ".join(words),
        tokens=[*words, END] if hyp.ended else words,
        score=float(hyp.score),
        attention=None if hyp.attention is None else hyp.attention.detach().cpu(),
        ended=hyp.ended,
    )


class CaptionJSON(JSONModel):
    """One caption in ``rnnkit predict --json`` (see :meth:`Caption.to_dict`)."""

    caption: str
    tokens: list[str]
    score: float
    truncated: bool
    attention: list[list[list[float]]] | None = Field(None, description="(T', Hg, Wg) weights")


class CaptionsJSON(JSONModel):
    """One image's n-best captions and the CNN grid's size."""

    image: str
    captions: list[CaptionJSON]
    grid: list[int] = Field(description="[Hg, Wg]")


class CaptioningPredictor(Predictor[Path | ImageBytes, list[Caption]]):
    """Image files (or their bytes) in; for each, its n-best captions with scores, words and
    attention."""

    task: CaptioningTask
    input_kind = "image"
    json_output = CaptionsJSON

    def parse(self, text: str) -> Path:
        return Path(text)

    def from_json(self, value: Any, name: str) -> ImageBytes:
        """An image from JSON: its file's bytes in base64, or a ``data:image/...;base64,`` URL.

        Raises:
            TaskError: not a string, or not base64 (the image itself is checked when read).
        """
        if not isinstance(value, str):
            raise TaskError(f"{name}: expected an image file in base64, got {json_kind(value)}")
        text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise TaskError(f"{name}: not base64 (give the image file's bytes in base64)") from None
        return ImageBytes(name, data)

    def predict(
        self, inputs: Sequence[Path | ImageBytes], options: Mapping[str, Any]
    ) -> list[list[Caption]]:
        plots = attention_plot_folder(
            options,
            None
            if self.task.model_config.attention != "none"
            else f"{self.task.run_dir}: --attention-plot needs a model with attention; "
            "this run has model.attention: none",
        )
        if options.get("plot_all") and plots is None:
            raise TaskError("--plot-all needs --attention-plot DIR")
        search, sampling = self.task.search(options), sampling_options(options)
        return caption_images(self.task, self.model, inputs, search, sampling=sampling)

    def export_onnx(self, folder: Path) -> dict[str, Any]:
        """The image encoder and decoder-step graphs and the vocabulary (``captioning_export``)."""
        from rnnkit.tasks.captioning_export import export_captioning

        return export_captioning(self.task, self.model, folder)

    def format(self, output: list[Caption]) -> str:
        """The caption; for n-best lists one ``rank<TAB>score<TAB>caption`` line each; one cut
        at the length limit ends in ``[truncated]``."""

        def text(c: Caption) -> str:
            return c.caption if c.ended else f"{c.caption} [truncated]"

        if len(output) == 1:
            return text(output[0])
        return "\n".join(f"{k}\t{c.score:.4f}\t{text(c)}" for k, c in enumerate(output, 1))

    def to_json(self, inp: Path | ImageBytes, output: list[Caption]) -> Any:
        """``{"image": path, "captions": [{"caption", "tokens", "score", "attention"}, ...],
        "grid": [Hg, Wg]}``."""
        encoder = self.model.encoder
        assert isinstance(encoder, ImageEncoder)
        grid = list(encoder.grid)
        return {"image": str(inp), "captions": [c.to_dict() for c in output], "grid": grid}

    def write_files(
        self,
        inputs: Sequence[Path | ImageBytes],
        outputs: Sequence[list[Caption]],
        options: Mapping[str, Any],
    ) -> list[Path]:
        """``--attention-plot DIR``: the word-by-word attention of each image's best caption
        (DIR/001.png), or with ``--plot-all`` of every hypothesis (DIR/001-1.png, ...)."""
        folder = options.get("attention_plot")
        if folder is None:
            return []
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        width = max(3, len(str(len(inputs))))
        paths = []
        for k, (image, found) in enumerate(zip(inputs, outputs, strict=True), 1):
            picture = load_image(image)
            chosen = found if options.get("plot_all") else found[:1]
            for rank, cap in enumerate(chosen, 1):
                if cap.attention is None:
                    raise TaskError(f"input {k}: the caption has no attention weights")
                name = (
                    f"{k:0{width}d}-{rank}.png" if options.get("plot_all") else f"{k:0{width}d}.png"
                )
                title = f"{image.name}: {cap.caption}"
                paths.append(
                    caption_attention_figure(
                        picture, cap.tokens, cap.attention, folder / name, title=title
                    )
                )
        return paths
