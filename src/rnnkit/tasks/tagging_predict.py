"""The ``tagging`` task's predictor: :class:`Tagged` outputs and :class:`TaggingPredictor`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from rnnkit.data.conll import punctuation_words, restore_punctuation
from rnnkit.tasks.base import JSONModel, Predictor

if TYPE_CHECKING:
    from rnnkit.tasks.tagging import TaggingTask

__all__ = ["Tagged", "TaggingPredictor"]


@dataclass(frozen=True)
class Tagged:
    """The tags of one input.

    Attributes:
        tokens: the N input tokens.
        tags: the N predicted tags.
        probabilities: the model's probability of each predicted tag.
    """

    tokens: list[str]
    tags: list[str]
    probabilities: list[float]


class TaggedJSON(JSONModel):
    """One sentence's tags in ``rnnkit predict --json``."""

    tokens: list[str]
    tags: list[str]
    probabilities: list[float]
    text: str | None = Field(None, description="the sentence punctuated (punctuation tags)")


class TaggingPredictor(Predictor[list[str], Tagged]):
    """Sentences in; for each, its tokens with their tags and the tags' probabilities."""

    task: TaggingTask

    def parse(self, text: str) -> list[str]:
        """Whitespace-separated tokens; a ``punctuation-bible`` run reads the words as its corpus
        does (lower-cased, punctuation removed)."""
        if self.task.data.corpus == "punctuation-bible":
            return punctuation_words(text)
        return text.split()

    def predict(self, inputs: Sequence[list[str]], options: Mapping[str, Any]) -> list[Tagged]:
        _, tags, _ = self.task.vocabularies
        found = self.task.tag(self.model, inputs)
        return [
            Tagged(list(tokens), [tags.tokens[i] for i in ids], [round(p, 4) for p in probs])
            for tokens, (ids, probs) in zip(inputs, found, strict=True)
        ]

    def export_onnx(self, folder: Path) -> dict[str, Any]:
        """``tagger.onnx`` and the vocabularies (:mod:`rnnkit.tasks.tagging_export`)."""
        from rnnkit.tasks.tagging_export import export_tagger

        return export_tagger(self.task, self.model, folder)

    def format(self, output: Tagged) -> str:
        """``token/TAG`` pairs; for punctuation tags the restored text first, on its own line."""
        pairs = " ".join(f"{t}/{g}" for t, g in zip(output.tokens, output.tags, strict=True))
        if self.task.punctuation_tags():
            return restore_punctuation(output.tokens, output.tags) + "\n" + pairs
        return pairs

    json_output = TaggedJSON

    def input_tokens(self, inp: list[str]) -> int:
        """The sentence's words (one tag each)."""
        return len(inp)

    def to_json(self, inp: list[str], output: Tagged) -> Any:
        out: dict[str, Any] = {
            "tokens": output.tokens,
            "tags": output.tags,
            "probabilities": output.probabilities,
        }
        if self.task.punctuation_tags():
            out["text"] = restore_punctuation(output.tokens, output.tags)
        return out
