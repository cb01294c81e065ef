"""The language model's ONNX export: one graph from token ids to next-token logits.

``language_model.onnx`` reads ``ids`` (B, T) int64 and writes ``logits`` (B, T, V), both axes
dynamic. A recurrent model exports through fused ``torch.nn`` twins of its rnnkit layers
(:func:`rnnkit.export.graphs.rnn_graph_module`), each starting from the zero state (a prompt is
read from a line start, as ``rnnkit predict`` reads it); the Transformer exports as it is (its
causal mask makes a prompt's logits independent of what follows it), with a fixed shape
(1, ``train.bptt``): the runtime pads a prompt on the right and reads the logits at its last
token (the traced attention fixes its reshapes to the example's length).
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor, nn

from rnnkit.data.tokenizers import EOS_ID
from rnnkit.export.graphs import export_graph, rnn_graph_module
from rnnkit.models.language_model import RecurrentLM, TransformerLM

if TYPE_CHECKING:
    from rnnkit.tasks.language_model import LanguageModelTask

__all__ = ["export_language_model"]


class _Recurrent(nn.Module):
    """``RecurrentLM.forward`` from the zero state with fused layers: ids (B, T) -> logits."""

    def __init__(self, model: RecurrentLM) -> None:
        super().__init__()
        self.embedding = copy.deepcopy(model.embedding)
        self.rnns = nn.ModuleList(rnn_graph_module(cast(nn.RNNBase, r)) for r in model.rnns)
        self.decoder = copy.deepcopy(model.decoder)

    def forward(self, ids: Tensor) -> Tensor:
        z = self.embedding(ids)  # (B, T, E)
        for rnn in self.rnns:
            z, _ = rnn(z)  # (B, T, H_l)
        logits: Tensor = self.decoder(z)  # (B, T, V)
        return logits


class _Transformer(nn.Module):
    def __init__(self, model: TransformerLM) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).cpu().float().eval()

    def forward(self, ids: Tensor) -> Tensor:
        logits: Tensor = self.model(ids).logits  # (B, T, V)
        return logits


def export_language_model(
    task: LanguageModelTask, model: nn.Module, folder: Path, top_k: int
) -> dict[str, Any]:
    """Write ``language_model.onnx`` and the tokeniser into ``folder``.

    Args:
        top_k: the predictor's default ``--top-k``.

    Returns:
        The task's entries of ``config.json``.
    """
    graph: nn.Module
    example = torch.tensor([[EOS_ID, 5, 6, 7], [EOS_ID, 8, 9, 10]])  # (2, 4)
    dynamic: dict[str, dict[int, str]] = {"ids": {0: "B", 1: "T"}, "logits": {0: "B", 1: "T"}}
    if isinstance(model, RecurrentLM):
        graph, context = _Recurrent(model.cpu().float().eval()), None
    elif isinstance(model, TransformerLM):
        graph, context = _Transformer(model), task.config.train.bptt
        example, dynamic = torch.full((1, context), EOS_ID), {}
    else:
        raise ValueError(f"cannot export a language model of type {type(model).__name__}")
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused layer has no ONNX form
    try:
        export_graph(
            graph.eval(),
            (example,),
            folder / "language_model.onnx",
            ["ids"],
            ["logits"],
            dynamic,
        )
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    source = task._tokenizer_path()
    name = f"tokenizer{source.suffix}"
    shutil.copyfile(source, folder / name)
    return {
        "runtime": "language_model",
        "graph": "language_model.onnx",
        "tokenizer": name,
        "eos_id": EOS_ID,
        "context": context,
        "fixed_length": context is not None,
        "top_k": top_k,
    }
