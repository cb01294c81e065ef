"""The translation task's ONNX export: an encoder graph and a decoder-step graph.

``encoder.onnx`` reads ``src`` (B, S) int64 (padded with pad_id) and ``src_lengths`` (B,)
int64 and writes the memory and the initial state: ``states`` (B, S, De), ``hidden`` (L, B, H),
``cell`` (L, B, H) (LSTM), ``feed`` (B, E) (Luong attention), ``keys`` (B, S, Dp) (attention) or
``context_gates`` (B, G) and ``context_out`` (B, E) (fixed context). The encoder's rnnkit layer
is exported through its fused twin on a packed batch (:class:`rnnkit.export.graphs.PackedRNN`:
the ONNX RNN op with ``sequence_lens``), so padding is exact, bidirectional included.

``decoder_step.onnx`` is :meth:`Seq2Seq.step`: ``tokens`` (N,), the state, the memory and
``mask`` (N, S) bool in; ``log_probs`` (N, V), ``<state>_out`` and ``attention`` (N, S) out. The
search runs in NumPy (:mod:`rnnkit.runtime.search`), in :mod:`rnnkit.runtime.translation`.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from rnnkit.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from rnnkit.export.graphs import PackedRNN, export_graph, rnn_graph_module
from rnnkit.models.seq2seq import EncoderOutput, Seq2Seq
from rnnkit.nn.decoder import DecoderState
from rnnkit.nn.padding import length_mask

if TYPE_CHECKING:
    from rnnkit.tasks.translation import TranslationTask

__all__ = ["export_translation"]


class _PackedLayer(nn.Module):
    """An rnnkit layer's call ``layer(x, lengths=...) -> (out, final)`` through its fused twin."""

    def __init__(self, layer: nn.RNNBase) -> None:
        super().__init__()
        self.packed = PackedRNN(rnn_graph_module(layer))

    def forward(
        self, x: Tensor, lengths: Tensor | None = None
    ) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
        assert lengths is not None
        out, h, c = self.packed(x, lengths)
        return out, (h if c is None else (h, c))


def _state_names(model: Seq2Seq) -> list[str]:
    return [
        "hidden",
        *(["cell"] if model.config.cell == "lstm" else []),
        *(["feed"] if model.luong else []),
    ]


def _memory_names(model: Seq2Seq) -> list[str]:
    if model.attention is not None:
        return ["states", "mask", "keys"]
    return ["states", "context_gates", "context_out"]


class _Encoder(nn.Module):
    """``Seq2Seq.encode`` with a fused encoder: (src, src_lengths) -> state and memory."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).cpu().float().eval()
        self.model.encoder = _PackedLayer(model.encoder)  # type: ignore[assignment]

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        m = self.model.encode(src, src_lengths)
        state = {
            "hidden": m.init_state.hidden,
            "cell": m.init_state.cell,
            "feed": m.init_state.feed,
        }
        memory = {
            "states": m.states,
            "keys": m.projected_keys,
            "context_gates": m.context_gates,
            "context_out": m.context_out,
        }
        names = _state_names(self.model) + [n for n in _memory_names(self.model) if n != "mask"]
        both = {**state, **memory}
        return tuple(both[n] for n in names)  # type: ignore[misc]


class _Step(nn.Module):
    """``Seq2Seq.step`` on named tensors: (tokens, state..., memory...) -> outputs."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).cpu().float().eval()
        self.state_names = _state_names(model)
        self.memory_names = _memory_names(model)

    def forward(self, tokens: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        given = dict(zip(self.state_names + self.memory_names, rest, strict=True))
        state = DecoderState(given["hidden"], given.get("cell"), given.get("feed"))
        states = given["states"]
        mask = given.get("mask")
        if mask is None:
            mask = torch.ones(states.shape[:2], dtype=torch.bool)
        memory = EncoderOutput(
            states,
            mask,
            mask.sum(dim=1),
            state,
            given.get("keys"),
            None,
            given.get("context_gates"),
            given.get("context_out"),
        )
        out = self.model.step(tokens, state, memory)
        new = {"hidden": out.state.hidden, "cell": out.state.cell, "feed": out.state.feed}
        result = [out.log_probs, *(new[n] for n in self.state_names)]
        if out.attention is not None:
            result.append(out.attention)
        return tuple(result)  # type: ignore[arg-type]


def export_translation(task: TranslationTask, model: nn.Module, folder: Path) -> dict[str, Any]:
    """Write ``encoder.onnx``, ``decoder_step.onnx`` and the tokenisers into ``folder``.

    Returns:
        The task's entries of ``config.json`` (graph and tokeniser files, state and memory
        names, special ids, the length limit and the input bound).
    """
    assert isinstance(model, Seq2Seq)
    model = model.eval()
    src = torch.tensor([[5, 6, 7, 8, 9], [5, 6, 7, 0, 0], [9, 0, 0, 0, 0]])  # (3, 5)
    lengths = torch.tensor([5, 3, 1])
    encoder = _Encoder(model)
    state_names, memory_names = _state_names(model), _memory_names(model)
    enc_outputs = [*state_names, *(n for n in memory_names if n != "mask")]
    batch_axis = {"hidden": 1, "cell": 1}
    seq = {"states", "keys", "mask"}

    def axes(name: str, batch: str) -> dict[int, str]:
        a = {batch_axis.get(name, 0): batch}
        return {**a, 1: "S"} if name in seq else a

    export_graph(
        encoder,
        (src, lengths),
        folder / "encoder.onnx",
        ["src", "src_lengths"],
        enc_outputs,
        {
            "src": {0: "B", 1: "S"},
            "src_lengths": {0: "B"},
            **{n: axes(n, "B") for n in enc_outputs},
        },
    )
    with torch.no_grad():
        example = dict(zip(enc_outputs, encoder(src, lengths), strict=True))
    example["mask"] = length_mask(lengths, src.shape[1])
    step = _Step(model)
    step_inputs = [*state_names, *memory_names]
    step_outputs = ["log_probs", *(f"{n}_out" for n in state_names)]
    attention = model.attention is not None
    if attention:
        step_outputs.append("attention")
    dynamic = {"tokens": {0: "N"}, "log_probs": {0: "N"}, "attention": {0: "N", 1: "S"}}
    dynamic.update({n: axes(n, "N") for n in step_inputs})
    dynamic.update({f"{n}_out": axes(n, "N") for n in state_names})
    export_graph(
        step,
        (torch.tensor([BOS_ID, 5, 6]), *(example[n] for n in step_inputs)),
        folder / "decoder_step.onnx",
        ["tokens", *step_inputs],
        step_outputs,
        {k: v for k, v in dynamic.items() if k in {"tokens", *step_inputs, *step_outputs}},
    )
    paths = task._tokenizer_paths()
    names = []
    for side, path in zip(("source", "target"), (paths[0], paths[-1]), strict=True):
        name = f"{side}{path.suffix}"
        shutil.copyfile(path, folder / name)
        names.append(name)
    a, b = task.length_limit
    bound, origin = task.max_input_tokens({})
    return {
        "runtime": "translation",
        "encoder": "encoder.onnx",
        "step": "decoder_step.onnx",
        "source_tokenizer": names[0],
        "target_tokenizer": names[1],
        "state": {n: batch_axis.get(n, 0) for n in state_names},
        "memory": memory_names,
        "encoder_outputs": enc_outputs,
        "attention": attention,
        "pad_id": PAD_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "max_len_a": a,
        "max_len_b": b,
        "max_input_tokens": bound,
        "max_input_origin": origin,
    }
