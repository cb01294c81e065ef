"""ONNX export of a ``classification`` run: one graph, the tokeniser and the classes beside it.

The graph ``classifier.onnx`` is the :class:`~rnnkit.models.classifier.TextClassifier` in eval
mode with its recurrent layer replaced by a fused twin over packed sequences
(:class:`rnnkit.export.graphs.PackedRNN`), so padding stays exact in the ONNX LSTM/GRU/RNN op's
``sequence_lens`` and batch and length are free::

    tokens (B, T) int64, padded with 0      lengths (B,) int64 in [1, T]
      -> logits (B, K)                      attention (B, T), 0 at padding (attention pooling)

The runtime (:mod:`rnnkit.runtime.classification`) tokenises with the copied tokeniser file
(``tokenizer.json`` or ``tokenizer.model``), runs the graph and applies the softmax in NumPy.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from rnnkit.data.tokenizers import PAD_ID
from rnnkit.models.classifier import TextClassifier

if TYPE_CHECKING:
    from rnnkit.tasks.classification import ClassificationTask

__all__ = ["GRAPH_FILE", "ClassifierGraph", "export_classifier"]

GRAPH_FILE = "classifier.onnx"


class ClassifierGraph(nn.Module):
    """A :class:`TextClassifier` as a traceable graph: tokens (B, T), lengths (B,) -> logits
    (B, K) and, with attention pooling, the weights (B, T).

    Args:
        model: the trained classifier (its weights are shared, its recurrent layer twinned).
    """

    def __init__(self, model: TextClassifier) -> None:
        super().__init__()
        from rnnkit.export.graphs import PackedRNN, rnn_graph_module

        self.model = model.eval()
        self.rnn = PackedRNN(rnn_graph_module(model.rnn))

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        """logits (B, K) (and attention (B, T)) of tokens (B, T) with lengths (B,)."""
        emb = self.model.embed(tokens)  # (B, T, E); dropout is off in eval
        out, h, c = self.rnn(emb, lengths)  # (B, T, D*H), zero at padding
        state = h if c is None else (h, c)
        z, weights = self.model.pool(out, state, lengths)  # (B, D*H), (B, T) | None
        logits: Tensor = self.model.head(z)  # (B, K)
        return (logits,) if weights is None else (logits, weights)


def export_classifier(task: ClassificationTask, model: nn.Module, folder: Path) -> dict[str, Any]:
    """Write ``classifier.onnx`` and the tokeniser into ``folder``; return config entries.

    Args:
        task: the run's task (tokeniser, classes, ``data`` options).
        model: its trained :class:`TextClassifier`.
        folder: the (temporary) export folder.

    Returns:
        ``config.json`` entries: the graph and tokeniser files, the classes, the text options
        (``lowercase``, ``max_length``) and the pooling.
    """
    from rnnkit.export.graphs import export_graph

    assert isinstance(model, TextClassifier)
    graph = ClassifierGraph(model.cpu().float())
    tokens = torch.tensor([[5, 6, 7, 8], [9, 10, PAD_ID, PAD_ID]]) % task.tokenizer.vocab_size
    lengths = torch.tensor([4, 2])
    attention = task.model_config.pooling == "attention"
    outputs = ["logits", "attention"] if attention else ["logits"]
    axes = {"tokens": {0: "B", 1: "T"}, "lengths": {0: "B"}, "logits": {0: "B"}}
    if attention:
        axes["attention"] = {0: "B", 1: "T"}
    export_graph(
        graph, (tokens, lengths), folder / GRAPH_FILE, ["tokens", "lengths"], outputs, axes
    )
    source = task._tokenizer_path()
    shutil.copyfile(source, folder / source.name)
    return {
        "graph": GRAPH_FILE,
        "tokenizer": source.name,
        "labels": list(task.labels),
        "lowercase": task.data.lowercase,
        "max_length": task.data.max_length,
        "pooling": task.model_config.pooling,
        "pad_id": PAD_ID,
    }
