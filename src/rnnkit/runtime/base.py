"""What every runtime predictor shares: the protocol, sessions, option checks, a step decoder.

A runtime predictor answers like the torch predictor of its task (:class:`RuntimePredictor`):
``parse``, ``predict``, ``to_json`` (the same JSON) and ``format`` (the same text).
:class:`StepDecoder` runs a decoder-step graph for :mod:`rnnkit.runtime.search`: state and
memory are dicts of arrays, the batch on axis 0 (state arrays named in ``state_axes`` may
carry it elsewhere, e.g. (L, N, H) hidden states on axis 1).

onnxruntime is imported when a session is made, not with this module: the torch side of rnnkit
imports the torch-free pieces of this package (tokenisers, calendar features, image decoding)
without the ``onnx`` extra installed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = [
    "FORMAT",
    "Arrays",
    "RuntimePredictor",
    "StepDecoder",
    "json_float",
    "read_json",
    "session",
    "unsupported",
]

FORMAT = "rnnkit-onnx"
Arrays = dict[str, np.ndarray]


def session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """An onnxruntime CPU session of the graph at ``path`` (``threads`` intra-op, default 1)."""
    import onnxruntime as ort

    if not path.is_file():
        raise ValueError(f"{path}: no such graph file")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1 if threads is None else threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def unsupported(options: Mapping[str, Any], names: Sequence[str], flags: Mapping[str, str]) -> None:
    """Refuse options the onnx engine does not implement.

    Args:
        options: the parsed predict options (None = not given).
        names: the option names this runtime cannot honour.
        flags: option name -> command-line flag (``config.json``'s ``flags``).

    Raises:
        ValueError: ``--attention-plot is not supported by the onnx engine; use --engine torch``.
    """
    for name in names:
        if options.get(name) not in (None, False):
            flag = flags.get(name, name)
            raise ValueError(f"{flag} is not supported by the onnx engine; use --engine torch")


def read_json(path: Path, what: str, kind: str | None = None) -> Any:
    """The JSON value of the file at ``path``.

    Raises:
        ValueError: ``{path}: no such {what}`` for a missing file, ``{path}: not a {kind} (...)``
            (``kind`` defaults to ``what``) for one that is not UTF-8 JSON.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such {what}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a {kind or what} ({err})") from None


def json_float(value: float) -> float | None:
    """A float for JSON: non-finite values become None (as the torch predictors' ``to_json``)."""
    value = float(value)
    return value if np.isfinite(value) else None


class RuntimePredictor:
    """An export ready to answer inputs; a task's runtime module subclasses it.

    Attributes:
        folder: the export folder.
        config: its ``config.json``.
        input_option: the name of a predict option whose value is one more input (as
            :attr:`rnnkit.tasks.base.Task.input_option`), or None.
    """

    input_option: str | None = None

    def __init__(self, folder: Path, config: dict[str, Any]) -> None:
        self.folder = folder
        self.config = config

    @property
    def flags(self) -> dict[str, str]:
        """Option name -> its command-line flag, as the task declares them."""
        return dict(self.config.get("flags", {}))

    def parse(self, text: str) -> Any:
        """An input from its text form (a command-line argument or a line of ``--input``)."""
        return text

    def predict(self, inputs: Sequence[Any], options: Mapping[str, Any]) -> list[Any]:
        """One output per input; ``options`` as the task's predict options (by name)."""
        raise NotImplementedError

    def to_json(self, inp: Any, output: Any) -> Any:
        """The JSON object ``rnnkit predict --json`` prints for one input and its output."""
        raise NotImplementedError

    def format(self, output: Any) -> str:
        """The text ``rnnkit predict`` prints for one output (no trailing newline)."""
        return str(output)


class StepDecoder:
    """A decoder-step graph as the ``step`` of :func:`rnnkit.runtime.search.beam_search`.

    The graph reads ``tokens`` (N,) int64, the state arrays and the memory arrays by name, and
    writes ``log_probs`` (N, V), the new state as ``<name>_out`` and, when ``attention``,
    ``attention`` (N, S) or (N, Hg, Wg).

    Args:
        sess: the step graph's session.
        state_axes: state name -> its batch axis.
        memory_names: the memory inputs, batch on axis 0.
        attention: whether the graph writes attention weights.
        pad_id, bos_id, eos_id: the special target ids.
    """

    def __init__(
        self,
        sess: ort.InferenceSession,
        state_axes: Mapping[str, int],
        memory_names: Sequence[str],
        attention: bool,
        pad_id: int,
        bos_id: int,
        eos_id: int,
    ) -> None:
        self.sess = sess
        self.state_axes = dict(state_axes)
        self.memory_names = list(memory_names)
        self.attention = attention
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self._inputs = {i.name for i in sess.get_inputs()}  # an unused input may be dropped
        self._outputs = [
            "log_probs",
            *(f"{n}_out" for n in self.state_axes),
            *(["attention"] if attention else []),
        ]

    @classmethod
    def from_config(
        cls, folder: Path, config: Mapping[str, Any], threads: int | None = None
    ) -> StepDecoder:
        """The step graph ``config["step"]`` of an export folder, with the state axes, memory
        names, attention flag and special ids its ``config.json`` gives."""
        return cls(
            session(folder / config["step"], threads),
            config["state"],
            config["memory"],
            bool(config["attention"]),
            config["pad_id"],
            config["bos_id"],
            config["eos_id"],
        )

    def step(
        self, tokens: np.ndarray, state: Arrays, memory: Arrays
    ) -> tuple[np.ndarray, Arrays, np.ndarray | None]:
        """One step for N rows: log-probs (N, V) float32, the new state, attention or None."""
        feeds: dict[str, np.ndarray] = {"tokens": tokens.astype(np.int64)}
        feeds.update({n: state[n] for n in self.state_axes})
        feeds.update({n: memory[n] for n in self.memory_names})
        feeds = {n: a for n, a in feeds.items() if n in self._inputs}
        results = self.sess.run(self._outputs, feeds)
        new = {n: results[1 + k] for k, n in enumerate(self.state_axes)}
        return results[0], new, results[-1] if self.attention else None

    def select_state(self, state: Arrays, rows: np.ndarray) -> Arrays:
        """The state of rows ``rows`` (N',) in that order."""
        return {n: np.take(a, rows, axis=self.state_axes[n]) for n, a in state.items()}

    def select_memory(self, memory: Arrays, rows: np.ndarray) -> Arrays:
        """The memory of rows ``rows`` (N',) in that order."""
        return {n: a[rows] for n, a in memory.items()}
