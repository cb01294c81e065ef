"""Export a trained run as ONNX graphs that run without torch (``rnnkit export``).

The interface, shared by every task:

- **The hook.** :meth:`rnnkit.tasks.base.Predictor.export_onnx` ``(folder) -> dict`` writes the
  task's graphs (``*.onnx``) and what inference needs beside them (tokeniser models, vocabularies,
  scalers) into ``folder`` and returns the task's entries of ``config.json``. The default refuses
  with ``TaskError("task '<name>' cannot be exported to ONNX")``. A task overrides it in its
  predictor with one call into ``rnnkit.tasks.<task>_export``, where the export code lives.
- **Helpers** (:mod:`rnnkit.export.graphs`, a layer below :mod:`rnnkit.tasks`, so the tasks'
  ``<task>_export.py`` import them; :mod:`rnnkit.export.folder` sits above the tasks, beside
  :mod:`rnnkit.diagnostics`): :func:`export_graph` ``(module, args, path,
  input_names, output_names, dynamic_axes)`` wraps ``torch.onnx.export`` (the TorchScript
  exporter, ``dynamo=False``), writes the file atomically and checks it with ``onnx.checker``;
  :func:`rnn_graph_module` builds a plain ``torch.nn.LSTM/GRU/RNN`` carrying the weights of an
  rnnkit recurrent layer, so that an encoder exports to the ONNX LSTM/GRU/RNN op and takes a
  ``sequence_lens`` input (exact padding, bidirectional included).
- **The folder** (:func:`export_run` ``(run_dir, out, weights="best") -> list[Path]``): loads the
  run's predictor, calls ``export_onnx`` into a temporary folder beside ``out``, writes
  ``config.json`` = ``{"format": "rnnkit-onnx", "version": 1, "task": <task name>, "runtime":
  "rnnkit.runtime.<module>", "weights": ..., "flags": {option name: flag}, **task entries}``
  (``<module>`` is the entries' ``"runtime"``, default the task's name) and renames the folder into place: nothing is
  left half written. An existing ``out`` is replaced only when it is an earlier export (its
  ``config.json`` has ``"format": "rnnkit-onnx"``) or empty; a file, or a non-empty folder that
  is not an export, is refused with a :class:`~rnnkit.tasks.base.TaskError`.
- **The runtime** (:mod:`rnnkit.runtime`, imports only numpy, onnxruntime, sentencepiece, Pillow
  and the standard library; no torch, no other rnnkit package): ``rnnkit.runtime.load(folder,
  threads=None)`` reads ``config.json``, imports ``config["runtime"]`` and calls its
  ``load(folder, config, threads) -> RuntimePredictor``. A runtime predictor has ``parse(text)``, ``predict(inputs, options) ->
  list[output]``, ``to_json(inp, out) -> dict`` (exactly the JSON of the torch predictor's
  ``to_json``, up to float rounding) and ``format(out) -> str`` (the same text). ``options`` are
  the task's predict options, by ``Option.name``; one the runtime does not support raises
  ``ValueError("--flag is not supported by the onnx engine")`` (see
  :func:`rnnkit.runtime.base.unsupported`). NumPy softmax, log-softmax, greedy and beam search
  over a ``step`` callable live in :mod:`rnnkit.runtime.search`.

A task's entries in ``config.json`` name its graph files and what the runtime needs (special
ids, sizes, options defaults); the keys are the task's own business, shared only between its
``<task>_export.py`` and its ``rnnkit.runtime.<task>`` module.
"""

from __future__ import annotations

from typing import Any

from rnnkit.export.graphs import PackedRNN, export_graph, rnn_graph_module

__all__ = ["PackedRNN", "export_graph", "export_run", "rnn_graph_module"]


def __getattr__(name: str) -> Any:
    # export_run reads run folders (rnnkit.tasks), which import the graph helpers above: it is
    # loaded when first asked for, so that `import rnnkit.export.graphs` from a task is no cycle.
    if name == "export_run":
        from rnnkit.export.folder import export_run

        return export_run
    raise AttributeError(f"module 'rnnkit.export' has no attribute {name!r}")
