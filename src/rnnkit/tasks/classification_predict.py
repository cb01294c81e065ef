"""The classification task's inference side: :class:`Prediction` (a text's label, class
probabilities, tokens and attention) and :class:`ClassificationPredictor` (``rnnkit predict``).

:class:`Prediction` and its text and JSON are :mod:`rnnkit.runtime.classification`'s (torch-free),
so the torch and onnx engines answer alike."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from rnnkit.runtime.classification import Prediction as Prediction
from rnnkit.runtime.classification import format_prediction, prediction_json
from rnnkit.tasks.base import (
    JSONModel,
    Predictor,
    TaskError,
    attention_plot_folder,
)
from rnnkit.viz.text import plot_word_weights

logger = logging.getLogger(__name__)

LABELS_FILE = "labels.json"
"""The run folder's file of the classes and their training counts, written by prepare()."""

Split = Literal["train", "valid", "test"]
_BUILTIN_SPLIT = re.compile(r"^(?P<corpus>[\w-]+):(?P<split>train|valid|test)$")

if TYPE_CHECKING:
    from rnnkit.tasks.classification import ClassificationTask


class PredictionJSON(JSONModel):
    """One text's class in ``rnnkit predict --json``."""

    input: str
    label: str
    probabilities: dict[str, float]
    tokens: list[str]
    attention: list[float] | None = Field(None, description="(T,) weights, attention pooling")


class ClassificationPredictor(Predictor[str, Prediction]):
    """Texts in; for each, its label, the class probabilities and the attention weights."""

    task: ClassificationTask

    def predict(self, inputs: Sequence[str], options: Mapping[str, Any]) -> list[Prediction]:
        pooling = self.task.model_config.pooling
        attention_plot_folder(
            options,
            None
            if pooling == "attention"
            else f"{self.task.run_dir}: --attention-plot needs model.pooling: attention; "
            f"this run has model.pooling: {pooling}",
        )
        probs, attention = self.task.classify(self.model, inputs)
        labels = self.task.labels
        out = []
        for text, p, a in zip(inputs, probs, attention, strict=True):
            out.append(
                Prediction(
                    label=labels[int(p.argmax())],
                    probabilities={label: float(v) for label, v in zip(labels, p, strict=True)},
                    tokens=self.task.tokens_of(text),
                    attention=None if a is None else [float(v) for v in a],
                )
            )
        return out

    def export_onnx(self, folder: Path) -> dict[str, Any]:
        """``classifier.onnx`` and the tokeniser (:mod:`rnnkit.tasks.classification_export`)."""
        from rnnkit.tasks.classification_export import export_classifier

        return export_classifier(self.task, self.model, folder)

    def format(self, output: Prediction) -> str:
        """``label<TAB>class p, class p, ...`` (probabilities to 3 decimals, class order)."""
        return format_prediction(output)

    json_output = PredictionJSON

    def input_tokens(self, inp: str) -> int:
        """The text's tokens as the model reads them."""
        return len(self.task.tokens_of(inp))

    def to_json(self, inp: str, output: Prediction) -> Any:
        return prediction_json(inp, output)

    def write_files(
        self, inputs: Sequence[str], outputs: Sequence[Prediction], options: Mapping[str, Any]
    ) -> list[Path]:
        """``--attention-plot DIR``: each input's words shaded by weight (DIR/001.png, ...)."""
        folder = options.get("attention_plot")
        if folder is None:
            return []
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        width = max(3, len(str(len(inputs))))
        paths = []
        for k, output in enumerate(outputs, 1):
            if output.attention is None:
                raise TaskError(f"input {k}: the prediction has no attention weights")
            title = f"{output.label} ({output.probabilities[output.label]:.2f})"
            path = folder / f"{k:0{width}d}.png"
            paths.append(plot_word_weights(output.tokens, output.attention, path, title=title))
        return paths
