"""The captioning task's ONNX export: an image encoder graph and a decoder-step graph.

``image_encoder.onnx`` reads normalised ``pixels`` (B, 3, Hin, Win) and writes what
:meth:`Captioner.encode` computes once per image: ``features`` (B, Hg, Wg, D) (the CNN's grid,
rounded through float16 as the feature cache holds it when the run trained on cached features,
plus the learned cell positions if any), ``keys`` (B, Hg, Wg, Ha) (soft attention), ``hidden``
(1, B, H) and ``cell`` (1, B, H) (LSTM). ``decoder_step.onnx`` is :meth:`Captioner.step`:
``tokens`` (N,), the state and the memory in; ``log_probs`` (N, V), ``<state>_out`` and
``attention`` (N, Hg, Wg) out. The search runs in NumPy (:mod:`rnnkit.runtime.captioning`),
the pixels come from Pillow and NumPy exactly as :func:`rnnkit.data.images.image_tensor` makes
them.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from rnnkit.data.tokenizers import BOS_ID, EOS_ID, PAD_ID
from rnnkit.export.graphs import export_graph
from rnnkit.models.captioner import Captioner, CaptionMemory
from rnnkit.models.captioning_model import CaptioningModel
from rnnkit.nn.decoder import DecoderState

if TYPE_CHECKING:
    from rnnkit.tasks.captioning import CaptioningTask

__all__ = ["export_captioning"]


def _state_names(decoder: Captioner) -> list[str]:
    return ["hidden", *(["cell"] if decoder.config.cell == "lstm" else [])]


def _memory_names(decoder: Captioner) -> list[str]:
    return ["features", *(["keys"] if decoder.attention is not None else [])]


class _ImageEncoder(nn.Module):
    """pixels (B, 3, Hin, Win) -> the state and memory of ``Captioner.encode``."""

    def __init__(self, model: CaptioningModel) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).cpu().float().eval()

    def forward(self, pixels: Tensor) -> tuple[Tensor, ...]:
        memory = self.model.decoder.encode(self.model.image_grid(pixels))
        named = {
            "hidden": memory.init_state.hidden,
            "cell": memory.init_state.cell,
            "features": memory.features,
            "keys": memory.keys,
        }
        names = _state_names(self.model.decoder) + _memory_names(self.model.decoder)
        return tuple(named[n] for n in names)  # type: ignore[misc]


class _Step(nn.Module):
    """``Captioner.step`` on named tensors: (tokens, state..., memory...) -> outputs."""

    def __init__(self, decoder: Captioner) -> None:
        super().__init__()
        self.decoder = copy.deepcopy(decoder).cpu().float().eval()
        self.names = _state_names(decoder) + _memory_names(decoder)

    def forward(self, tokens: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        given = dict(zip(self.names, rest, strict=True))
        state = DecoderState(given["hidden"], given.get("cell"), None)
        features = given["features"]
        lengths = torch.zeros(features.shape[0], dtype=torch.long)  # unused by the step
        out = self.decoder.step(
            tokens, state, CaptionMemory(features, given.get("keys"), lengths, state)
        )
        result = [out.log_probs, out.state.hidden]
        if out.state.cell is not None:
            result.append(out.state.cell)
        if out.attention is not None:
            result.append(out.attention)
        return tuple(result)


def export_captioning(task: CaptioningTask, model: nn.Module, folder: Path) -> dict[str, Any]:
    """Write ``image_encoder.onnx``, ``decoder_step.onnx`` and the vocabulary into ``folder``.

    Returns:
        The task's entries of ``config.json`` (graphs, vocabulary, state and memory names,
        special ids, the encoder's input size and normalisation, the grid, the length limit).
    """
    assert isinstance(model, CaptioningModel)
    encoder, decoder = model.encoder, model.decoder
    Hin, Win = encoder.input_size
    pixels = torch.randn(2, 3, Hin, Win)
    image = _ImageEncoder(model)
    state_names, memory_names = _state_names(decoder), _memory_names(decoder)
    outputs = state_names + memory_names
    batch_axis = {"hidden": 1, "cell": 1}
    export_graph(
        image,
        (pixels,),
        folder / "image_encoder.onnx",
        ["pixels"],
        outputs,
        {"pixels": {0: "B"}, **{n: {batch_axis.get(n, 0): "B"} for n in outputs}},
    )
    with torch.no_grad():
        example = dict(zip(outputs, image(pixels), strict=True))
    attention = decoder.attention is not None
    step_outputs = ["log_probs", *(f"{n}_out" for n in state_names)]
    step_outputs += ["attention"] if attention else []
    dynamic = {"tokens": {0: "N"}, "log_probs": {0: "N"}, "attention": {0: "N"}}
    dynamic.update({n: {batch_axis.get(n, 0): "N"} for n in outputs})
    dynamic.update({f"{n}_out": {1: "N"} for n in state_names})
    export_graph(
        _Step(decoder),
        (torch.tensor([BOS_ID, 5]), *(example[n] for n in outputs)),
        folder / "decoder_step.onnx",
        ["tokens", *outputs],
        step_outputs,
        {k: v for k, v in dynamic.items() if k in {"tokens", *outputs, *step_outputs}},
    )
    vocab = task.folder() / "vocab.json"
    shutil.copyfile(vocab, folder / "vocab.json")
    search = task.search({})
    return {
        "runtime": "captioning",
        "encoder": "image_encoder.onnx",
        "step": "decoder_step.onnx",
        "tokenizer": "vocab.json",
        "state": {n: batch_axis[n] for n in state_names},
        "memory": memory_names,
        "encoder_outputs": outputs,
        "attention": attention,
        "pad_id": PAD_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "input_size": [Hin, Win],
        "mean": list(encoder.mean),
        "std": list(encoder.std),
        "grid": list(encoder.grid),
        "max_len_a": search.max_len_a,
        "max_len_b": search.max_len_b,
    }
