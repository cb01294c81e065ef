"""Captioning from an ONNX export: the image encoder graph, the decoder step, NumPy beam search.

As :class:`rnnkit.tasks.captioning_predict.CaptioningPredictor`: image files in (read by
:mod:`rnnkit.runtime.images`), 64 encoded and decoded at a time, beam search (beam 5 unless
``--beam`` / ``--nbest``), n-best captions with the attention of each hypothesis over the grid.
Sampling, ``--attention-plot`` and ``--plot-all`` are not supported (an error names the flag).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.runtime import images, tokenizer
from rnnkit.runtime.base import RuntimePredictor, StepDecoder, json_float, session, unsupported
from rnnkit.runtime.search import Hypothesis, beam_search, format_nbest, search_options

__all__ = ["END", "Caption", "CaptioningRuntime", "load"]

END = "<end>"
UNSUPPORTED = ("sample", "temperature", "top_k", "top_p", "seed", "attention_plot", "plot_all")
BATCH = 64


@dataclass(frozen=True)
class Caption:
    """One caption (as :class:`rnnkit.tasks.captioning_predict.Caption`)."""

    caption: str
    tokens: list[str]
    score: float
    attention: np.ndarray | None
    ended: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The JSON of the torch predictor's ``Caption.to_dict``."""
        out: dict[str, Any] = {
            "caption": self.caption,
            "tokens": self.tokens,
            "score": json_float(self.score),
            "truncated": not self.ended,
        }
        if self.attention is not None:
            out["attention"] = [
                [[round(float(v), 4) for v in row] for row in grid] for grid in self.attention
            ]
        return out


class CaptioningRuntime(RuntimePredictor):
    """Image files in; for each, its n-best captions with scores, words and attention."""

    def __init__(self, folder: Path, config: dict[str, Any], threads: int | None) -> None:
        super().__init__(folder, config)
        self.vocab = tokenizer.load(folder / config["tokenizer"])
        self.encoder = session(folder / config["encoder"], threads)
        self.decoder = StepDecoder.from_config(folder, config, threads)

    def parse(self, text: str) -> Path:
        return Path(text)

    def pixels(self, path: Path) -> np.ndarray:
        """(3, Hin, Win) normalised pixels of one image file."""
        c = self.config
        return images.image_pixels(images.load_image(path), c["input_size"], c["mean"], c["std"])

    def encode(self, pixels: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(state, memory) of a batch of pixels (B, 3, Hin, Win)."""
        names = self.config["encoder_outputs"]
        outputs = dict(zip(names, self.encoder.run(names, {"pixels": pixels}), strict=True))
        state = {n: outputs[n] for n in self.config["state"]}
        return state, {n: outputs[n] for n in self.config["memory"]}

    def predict(self, inputs: Sequence[Path], options: Mapping[str, Any]) -> list[list[Caption]]:
        unsupported(options, UNSUPPORTED, self.flags)
        search = search_options(
            options, max_len_a=self.config["max_len_a"], max_len_b=self.config["max_len_b"]
        )
        pixels = []
        for k, path in enumerate(inputs, 1):
            try:
                pixels.append(self.pixels(Path(path)))
            except ValueError as err:
                raise ValueError(f"input {k}: {err}") from None
        cells = int(np.prod(self.config["grid"]))
        results: list[list[Caption]] = []
        for start in range(0, len(pixels), BATCH):
            batch = np.stack(pixels[start : start + BATCH])
            state, memory = self.encode(batch)
            lengths = np.full(batch.shape[0], cells, dtype=np.int64)
            found = beam_search(self.decoder, memory, state, lengths, search)
            results += [[self._caption(h) for h in hyps] for hyps in found]
        return results

    def _caption(self, hyp: Hypothesis) -> Caption:
        text = self.vocab.decode(hyp.tokens)
        words = text.split() if text else []
        return Caption(
            caption=" ".join(words),
            tokens=[*words, END] if hyp.ended else words,
            score=hyp.score,
            attention=hyp.attention,
            ended=hyp.ended,
        )

    def format(self, output: list[Caption]) -> str:
        """The torch predictor's text: the caption, or ``rank<TAB>score<TAB>caption`` lines."""
        return format_nbest([(c.caption, c.score, c.ended) for c in output])

    def to_json(self, inp: Path, output: list[Caption]) -> dict[str, Any]:
        return {
            "image": str(inp),
            "captions": [c.to_dict() for c in output],
            "grid": list(self.config["grid"]),
        }


def load(folder: Path, config: dict[str, Any], threads: int | None = None) -> CaptioningRuntime:
    """The runtime predictor of a captioning export."""
    return CaptioningRuntime(folder, config, threads)
