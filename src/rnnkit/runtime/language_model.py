"""A language model from an ONNX export: the next tokens after a prompt (``rnnkit predict``).

As :class:`rnnkit.tasks.language_model.LanguageModelPredictor`: the prompt is read from a line
start (``</s>`` first), the softmax over the token after it gives the ``--top-k`` most likely
next tokens (default 5). Text generation (``rnnkit generate``) stays with the torch engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnkit.runtime import tokenizer
from rnnkit.runtime.base import RuntimePredictor, json_float, session
from rnnkit.runtime.search import softmax
from rnnkit.runtime.tokenizer import WORD_MARK

__all__ = ["Candidate", "LanguageModelRuntime", "NextTokens", "load"]


@dataclass(frozen=True)
class Candidate:
    """One possible next token: its piece, its text and its probability."""

    token: str
    text: str
    probability: float


@dataclass(frozen=True)
class NextTokens:
    """The prompt's pieces and the k most likely next tokens, most likely first."""

    prompt_tokens: list[str]
    candidates: list[Candidate]


class LanguageModelRuntime(RuntimePredictor):
    """Prompts in; their most likely next tokens out."""

    def __init__(self, folder: Path, config: dict[str, Any], threads: int | None) -> None:
        super().__init__(folder, config)
        self.tokenizer = tokenizer.load(folder / config["tokenizer"])
        self.graph = session(folder / config["graph"], threads)

    def next_token_probs(self, prompt: str) -> np.ndarray:
        """(V,) float32 softmax over the token after ``prompt`` (read from a line start)."""
        ids = [self.config["eos_id"], *self.tokenizer.encode(prompt)]
        if self.config.get("context"):
            ids = ids[-int(self.config["context"]) :]
        row = np.array([ids], dtype=np.int64)  # (1, P)
        if self.config.get("fixed_length"):  # (1, context), padded on the right (causal)
            row = np.pad(row, ((0, 0), (0, int(self.config["context"]) - len(ids))))
        (logits,) = self.graph.run(["logits"], {"ids": row})
        probs: np.ndarray = softmax(logits[0, len(ids) - 1].astype(np.float32))
        return probs

    def _display(self, token: int) -> tuple[str, str]:
        piece = self.tokenizer.id_to_piece(token)
        if token == self.config["eos_id"] or piece.strip() == "":
            return piece, WORD_MARK if piece == " " else piece
        text = piece[1:] if piece.startswith(WORD_MARK) and len(piece) > 1 else piece
        return piece, text

    def predict(self, inputs: Sequence[str], options: Mapping[str, Any]) -> list[NextTokens]:
        k = options.get("top_k")
        k = int(self.config["top_k"]) if k is None else int(k)
        if k < 1:
            raise ValueError(f"--top-k must be at least 1, got {k}")
        results = []
        for prompt in inputs:
            probs = self.next_token_probs(prompt)
            top = np.argsort(-probs, kind="stable")[: min(k, probs.size)]
            candidates = [Candidate(*self._display(int(i)), float(probs[i])) for i in top]
            pieces = [self.tokenizer.id_to_piece(i) for i in self.tokenizer.encode(prompt)]
            results.append(NextTokens(pieces, candidates))
        return results

    def format(self, output: NextTokens) -> str:
        """One ``token<TAB>probability`` line per candidate, most likely first."""
        return "\n".join(f"{c.text}\t{c.probability:.4f}" for c in output.candidates)

    def to_json(self, inp: str, output: NextTokens) -> dict[str, Any]:
        return {
            "input": inp,
            "prompt_tokens": output.prompt_tokens,
            "candidates": [
                {"token": c.token, "text": c.text, "probability": json_float(c.probability)}
                for c in output.candidates
            ],
        }


def load(folder: Path, config: dict[str, Any], threads: int | None = None) -> LanguageModelRuntime:
    """The runtime predictor of a language-model export."""
    return LanguageModelRuntime(folder, config, threads)
