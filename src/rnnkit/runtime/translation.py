"""Translation from an ONNX export: encoder graph, decoder-step graph, NumPy beam search.

The same inputs, checks, search and outputs as :class:`rnnkit.tasks.translation_predict.
TranslationPredictor`: sentences sorted by length and decoded 64 at a time, beam search (beam 1
is greedy with the length penalty's score), n-best lists, attention over the real source tokens.
Sampling and ``--attention-plot`` are not supported (an error names the flag).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.runtime import tokenizer
from rnnkit.runtime.base import RuntimePredictor, StepDecoder, json_float, session, unsupported
from rnnkit.runtime.search import Hypothesis, beam_search, format_nbest, search_options

__all__ = ["Translation", "TranslationRuntime", "load"]

UNSUPPORTED = ("sample", "temperature", "top_k", "top_p", "seed", "attention_plot")
BATCH = 64


@dataclass(frozen=True)
class Translation:
    """One translation (as :class:`rnnkit.tasks.translation_predict.Translation`)."""

    text: str
    score: float
    source_pieces: list[str]
    output_pieces: list[str]
    attention: np.ndarray | None
    ended: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The JSON of the torch predictor's ``Translation.to_dict``."""
        out: dict[str, Any] = {
            "translation": self.text,
            "score": json_float(self.score),
            "source_tokens": self.source_pieces,
            "output_tokens": self.output_pieces,
            "truncated": not self.ended,
        }
        if self.attention is not None:
            out["attention"] = [[round(float(v), 4) for v in row] for row in self.attention]
        return out


class TranslationRuntime(RuntimePredictor):
    """Sentences in; for each, its n-best translations with scores, tokens and attention."""

    def __init__(self, folder: Path, config: dict[str, Any], threads: int | None) -> None:
        super().__init__(folder, config)
        self.source = tokenizer.load(folder / config["source_tokenizer"])
        self.target = tokenizer.load(folder / config["target_tokenizer"])
        self.encoder = session(folder / config["encoder"], threads)
        self.decoder = StepDecoder.from_config(folder, config, threads)

    def encode(
        self, ids: Sequence[Sequence[int]]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(state, memory) of B sources: the encoder graph on the padded batch.

        Returns:
            The initial state (``hidden`` (L, B, H), ...) and the memory (``states``
            (B, S, De), ``mask`` (B, S), ...), by the names of ``config.json``.
        """
        lengths = np.array([len(s) for s in ids], dtype=np.int64)  # (B,)
        src = np.full((len(ids), int(lengths.max())), self.config["pad_id"], dtype=np.int64)
        for b, row in enumerate(ids):
            src[b, : len(row)] = row
        names = self.config["encoder_outputs"]
        outputs = dict(
            zip(names, self.encoder.run(names, {"src": src, "src_lengths": lengths}), strict=True)
        )
        outputs["mask"] = np.arange(src.shape[1])[None, :] < lengths[:, None]  # (B, S)
        state = {n: outputs[n] for n in self.config["state"]}
        memory = {n: outputs[n] for n in self.config["memory"]}
        return state, memory

    def predict(self, inputs: Sequence[str], options: Mapping[str, Any]) -> list[list[Translation]]:
        unsupported(options, UNSUPPORTED, self.flags)
        search = search_options(
            options, max_len_a=self.config["max_len_a"], max_len_b=self.config["max_len_b"]
        )
        given = options.get("max_input_tokens")
        if given is not None and given < 1:
            raise ValueError(f"--max-input-tokens must be at least 1, got {given}")
        bound, origin = (
            (int(given), "--max-input-tokens")
            if given is not None
            else (self.config["max_input_tokens"], self.config["max_input_origin"])
        )
        ids = [self.source.encode(s) for s in inputs]
        for i, s in enumerate(ids):
            if not s:
                raise ValueError(f"input {i + 1} is empty: nothing to translate")
            if len(s) > bound:
                raise ValueError(
                    f"input {i + 1}: the source has {len(s)} tokens, more than the {bound} an "
                    f"input may have ({origin}); shorten it, or pass --max-input-tokens N"
                )
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        results: list[list[Translation]] = [[] for _ in ids]
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            state, memory = self.encode([ids[i] for i in chunk])
            lengths = np.array([len(ids[i]) for i in chunk], dtype=np.int64)
            found = beam_search(self.decoder, memory, state, lengths, search)
            for i, hyps in zip(chunk, found, strict=True):
                results[i] = [self._translation(h, ids[i]) for h in hyps]
        return results

    def _translation(self, hyp: Hypothesis, source: list[int]) -> Translation:
        pieces = [self.target.id_to_piece(t) for t in hyp.tokens]
        if hyp.ended:
            pieces.append(self.target.id_to_piece(self.config["eos_id"]))
        return Translation(
            text=self.target.decode(hyp.tokens),
            score=hyp.score,
            source_pieces=[self.source.id_to_piece(t) for t in source],
            output_pieces=pieces,
            attention=hyp.attention,
            ended=hyp.ended,
        )

    def format(self, output: list[Translation]) -> str:
        """The torch predictor's text: the translation, or ``rank<TAB>score<TAB>text`` lines."""
        return format_nbest([(t.text, t.score, t.ended) for t in output])

    def to_json(self, inp: str, output: list[Translation]) -> dict[str, Any]:
        return {"input": inp, "translations": [t.to_dict() for t in output]}


def load(folder: Path, config: dict[str, Any], threads: int | None = None) -> TranslationRuntime:
    """The runtime predictor of a translation export."""
    return TranslationRuntime(folder, config, threads)
