"""Helpers every task's export uses: one graph to an ONNX file, and fused-RNN twins of layers.

:func:`export_graph` runs torch's TorchScript exporter (``dynamo=False``: a second per graph
where the dynamo exporter takes tens), writes the file atomically and checks it with
``onnx.checker``. :func:`rnn_graph_module` turns an rnnkit recurrent layer (which sorts by
length and cuts the time axis into data-dependent chunks, so tracing it would freeze one length)
into a plain ``torch.nn.LSTM/GRU/RNN`` with the same weights: :class:`PackedRNN` runs it on a
packed batch, which the exporter writes as the ONNX LSTM/GRU/RNN op with its ``sequence_lens``
input, so padding is exact (the backward direction starts at each sequence's own end, outputs
past the end are zero, the final state is each sequence's own), with dynamic batch and length.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.io import write_bytes_atomic

__all__ = ["OPSET", "PackedRNN", "export_graph", "rnn_graph_module"]

OPSET = 17
"""The ONNX opset the graphs are written with (onnxruntime >= 1.18 runs it)."""


def export_graph(
    module: nn.Module,
    args: tuple[Any, ...],
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
) -> Path:
    """Trace ``module(*args)`` into an ONNX graph at ``path`` (atomically) and check it.

    Args:
        module: the network to export, in eval mode; its ``forward`` takes ``args``.
        args: example inputs (tensors); shapes not named in ``dynamic_axes`` are fixed.
        path: the ``.onnx`` file to write.
        input_names, output_names: the graph's input and output names, in order.
        dynamic_axes: per input or output name, its variable axes by index and name, e.g.
            ``{"src": {0: "B", 1: "S"}}``.

    Returns:
        ``path``.

    Raises:
        ValueError: the exporter failed, or the written graph does not pass ``onnx.checker``.
    """
    import onnx

    module.eval()
    scratch = tempfile.TemporaryDirectory(prefix="rnnkit-onnx-")
    traced = Path(scratch.name) / path.name
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape checks made constant
            torch.onnx.export(
                module,
                args,
                str(traced),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
                opset_version=OPSET,
                dynamo=False,
            )
        data = traced.read_bytes()
    except Exception as err:  # the exporter raises many kinds; report one line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path.name}: ONNX export failed ({first})") from None
    finally:
        scratch.cleanup()
    try:
        onnx.checker.check_model(onnx.load_from_string(data))
    except onnx.checker.ValidationError as err:
        raise ValueError(f"{path.name}: the exported graph is not valid ONNX ({err})") from None
    write_bytes_atomic(path, data)
    return path


def rnn_graph_module(layer: nn.RNNBase) -> nn.RNNBase:
    """A plain ``torch.nn.LSTM``, ``GRU`` or ``RNN`` (batch first) with ``layer``'s weights.

    Args:
        layer: an rnnkit (or torch) recurrent layer; rnnkit's subclass ``torch.nn.RNNBase`` and
            share its parameter names and layout.

    Returns:
        The twin, in eval mode, on the CPU, with copies of the weights.
    """
    kinds: dict[str, type[nn.RNNBase]] = {"LSTM": nn.LSTM, "GRU": nn.GRU}
    common: dict[str, Any] = {
        "input_size": layer.input_size,
        "hidden_size": layer.hidden_size,
        "num_layers": layer.num_layers,
        "bias": layer.bias,
        "batch_first": True,
        "bidirectional": layer.bidirectional,
    }
    twin: nn.RNNBase
    if layer.mode in kinds:
        twin = kinds[layer.mode](**common)
    elif layer.mode in ("RNN_TANH", "RNN_RELU"):
        twin = nn.RNN(nonlinearity="relu" if layer.mode == "RNN_RELU" else "tanh", **common)
    else:
        raise ValueError(f"cannot export a recurrent layer of mode {layer.mode!r}")
    state = {k: v.detach().cpu().float() for k, v in layer.state_dict().items()}
    twin.load_state_dict(state)
    return twin.eval()


class PackedRNN(nn.Module):
    """A fused recurrent layer over padded sequences of given lengths, exportable with lengths.

    Args:
        rnn: a ``torch.nn.LSTM/GRU/RNN`` with ``batch_first=True`` (:func:`rnn_graph_module`).
    """

    def __init__(self, rnn: nn.RNNBase) -> None:
        super().__init__()
        self.rnn = rnn

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Run the layer on the real steps only.

        Args:
            x: (B, T, I) inputs, padded after each sequence's end.
            lengths: (B,) int64 real lengths in [1, T].

        Returns:
            out (B, T, D*H), zero past each end; h_n (L*D, B, H); c_n (L*D, B, H) for the LSTM,
            else None.
        """
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed)
        padded, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        if isinstance(final, tuple):
            return padded, final[0], final[1]
        return padded, final, None
