"""What every task is: :class:`Task` (data, model, loss, evaluation) and :class:`Predictor`.

A task is one file in :mod:`rnnkit.tasks` that subclasses :class:`Task` and is declared as an
entry point in the ``rnnkit.tasks`` group (see :mod:`rnnkit.tasks.registry`). It owns:

- its config sections: ``DataConfig`` and ``ModelConfig`` (and ``ObjectiveConfig`` for loss
  options such as label smoothing), frozen pydantic models;
- :meth:`Task.prepare`, run once when training starts: it fits what is learnt from the training
  data before the model (tokenisers, vocabularies, scalers) and saves it in the run folder, so
  that :meth:`Task.build_model` and loading a run only ever read files;
- batches, the model factory, one training step and evaluation, which the trainer reads through
  :class:`~rnnkit.training.protocol.TrainableTask`;
- its command-line options (:class:`Option`, declared as data, so ``rnnkit evaluate`` /
  ``predict`` and the HTTP server offer them without knowing the task);
- :meth:`Task.evaluate_file` (``rnnkit evaluate``), :meth:`Task.compare` (``rnnkit compare``) and
  its :class:`Predictor` (``rnnkit predict`` and the server).

Errors a user can cause are :class:`TaskError` (a ``ValueError``): the CLI prints them as one
line and exits with status 2.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    runtime_checkable,
)

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from rnnkit.config import EmptySection, FrozenConfig, RunConfig
from rnnkit.training.protocol import StepOutput

if TYPE_CHECKING:
    from rnnkit.decoding.search import SamplingConfig

__all__ = [
    "JSONModel",
    "NoObjective",
    "Option",
    "Predictor",
    "Report",
    "StepOutput",
    "Task",
    "TaskError",
    "attention_plot_folder",
    "json_kind",
    "to_json",
]


class JSONModel(BaseModel):
    """The base of the pydantic models that describe a predictor's :meth:`Predictor.to_json`
    (the server's OpenAPI schema): unknown keys are refused, so a model that drifts from what
    ``to_json`` writes fails its test."""

    model_config = ConfigDict(extra="forbid")


class TaskError(ValueError):
    """A problem with the user's input to a task (data file, option, run folder), in one line."""


NoObjective = EmptySection
"""The ``objective`` section of a task that has no loss options: it must be empty."""


@dataclass(frozen=True)
class Option:
    """A command-line option of a task's ``evaluate``, ``predict`` or ``compare`` verb.

    The CLI adds ``flag`` to the verb's parser when the run's task declares it, and passes the
    parsed value to the task as ``options[name]`` (None when not given: the task's own default).

    Attributes:
        name: the keyword the task reads, e.g. ``"beam_size"``.
        flag: the command-line flag, e.g. ``"--beam"``.
        type: ``int``, ``float``, ``str``, ``Path`` or ``bool`` (a switch, False unless given).
        help: one line for ``--help``, with the default.
        metavar: the value's placeholder in ``--help``.
        choices: the allowed values, if limited.
        files_only: the option only shapes files :meth:`Predictor.write_files` writes, so the
            server does not offer it (file paths themselves never are).
    """

    name: str
    flag: str
    type: type = str
    help: str = ""
    metavar: str | None = None
    choices: tuple[Any, ...] | None = None
    files_only: bool = False


@dataclass(frozen=True)
class Report:
    """What :meth:`Task.evaluate_file` and :meth:`Task.compare` return.

    Attributes:
        metrics: plain data (numbers, strings, lists, dicts) printed by ``--json``.
        text: the human-readable form; None prints ``metrics`` as ``key<TAB>value`` lines.
        files: files the call wrote (each written atomically).
    """

    metrics: dict[str, Any]
    text: str | None = None
    files: tuple[Path, ...] = ()


def to_json(value: Any) -> Any:
    """Plain JSON data of a dataclass, NamedTuple, tensor, array, Path or nesting of them.

    Non-finite floats become None (JSON has no NaN), tensors and arrays nested lists.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {k: to_json(v) for k, v in value._asdict().items()}
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, torch.Tensor):
        return to_json(value.tolist())
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        return to_json(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


In = TypeVar("In")
Out = TypeVar("Out")


class Task(ABC):
    """A trainable task: data, model factory, loss, evaluation, prediction.

    Class attributes:
        name: the config's ``task:`` value (the entry point's name).
        DataConfig / ModelConfig / ObjectiveConfig: frozen config classes of the ``data``,
            ``model`` and ``objective`` sections.
        metric_names: names returned by :meth:`evaluate` (columns ``valid_<name>`` in metrics.csv).
        best_metric: (name, "min" | "max") for ``best.safetensors`` and early stopping.
        stateful: True when the recurrent state is carried from batch to batch (truncated BPTT).
        evaluate_options / predict_options / compare_options: the task's options of those verbs.
        input_option: the name of a predict option whose value is one more input (forecasting's
            ``--data FILE``), or None.
        predictor: the task's :class:`Predictor` class.
        train_defaults: ``train`` keys the task sets when a config leaves them out (a budget
            among them applies only when the config gives no budget of its own:
            ``max_steps``, ``epochs`` or ``max_time_s``).
    """

    name: ClassVar[str]
    DataConfig: ClassVar[type[FrozenConfig]]
    ModelConfig: ClassVar[type[FrozenConfig]]
    ObjectiveConfig: ClassVar[type[FrozenConfig]] = NoObjective
    metric_names: ClassVar[tuple[str, ...]] = ("loss",)
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("loss", "min")
    stateful: ClassVar[bool] = False
    evaluate_options: ClassVar[tuple[Option, ...]] = ()
    predict_options: ClassVar[tuple[Option, ...]] = ()
    compare_options: ClassVar[tuple[Option, ...]] = ()
    input_option: ClassVar[str | None] = None
    predictor: ClassVar[type[Predictor[Any, Any]]]
    train_defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, config: RunConfig, run_dir: Path | None = None) -> None:
        self.config = config
        self.run_dir = run_dir
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    def folder(self) -> Path:
        """Where :meth:`prepare` saves what it fits and later calls read it: ``run_dir``, or for
        a task without a run folder (tests, notebooks) a temporary folder kept for its life."""
        if self.run_dir is not None:
            return self.run_dir
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix=f"rnnkit-{self.name}-")
        return Path(self._scratch.name)

    # -------------------------------------------------------------------- training

    def prepare(self) -> None:
        """Fit what the model needs from the training data (tokenisers, scalers) and save it in
        ``run_dir``. Called once before training starts (not on resume); the default does
        nothing. Everything else, :meth:`build_model` included, only reads what this wrote."""
        return None

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model for this task's config (weights drawn from torch's RNG)."""

    @abstractmethod
    def train_batches(self, epoch: int) -> Iterator[Any]:
        """Training batches of ``epoch``, deterministic in (seed, epoch)."""

    @abstractmethod
    def valid_batches(self) -> Iterable[Any]:
        """Validation batches (the same every call)."""

    def load_data(self) -> None:
        """Read and precompute what the batches need (data files, tokenised text, cached image
        features) before the clock of ``train.max_time_s`` starts. The trainer calls it once per
        ``fit``; the default does nothing (the batches then read their data when first asked)."""
        return None

    def begin_step(self, step: int) -> None:
        """Called by the trainer before training step ``step`` (1-based); for step schedules."""
        return None

    @abstractmethod
    def step(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        """Loss and metrics of ``model`` on one batch (called under ``model.train()``)."""

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Token-weighted mean of :meth:`step`'s loss and metrics over ``batches``, without grads."""
        totals: dict[str, float] = {}
        weight = 0.0
        with torch.no_grad():
            for batch in batches:
                out = self.step(model, batch)
                w = float(max(out.num_tokens, 1))
                weight += w
                totals["loss"] = totals.get("loss", 0.0) + w * float(out.loss)
                for key, value in out.metrics.items():
                    totals[key] = totals.get(key, 0.0) + w * float(value)
        return {k: v / max(weight, 1.0) for k, v in totals.items()}

    # ------------------------------------------------------------ the CLI's verbs

    def load_examples(self, path: Path) -> list[Any]:
        """Read a user's data file into batches for :meth:`evaluate`; errors name file and line."""
        raise TaskError(f"task '{self.name}' cannot read data files")

    def evaluate_file(self, model: nn.Module, path: Path, options: Mapping[str, Any]) -> Report:
        """``rnnkit evaluate``: metrics of ``model`` on a user's data file.

        The default reads :meth:`load_examples` and reports :meth:`evaluate`; tasks with their
        own scores (BLEU, MASE) override it. ``options`` holds :attr:`evaluate_options`' values.
        """
        return Report(self.evaluate(model, self.load_examples(path)))

    def compare(
        self,
        names: Sequence[str],
        models: Sequence[nn.Module],
        path: Path,
        options: Mapping[str, Any],
    ) -> Report:
        """``rnnkit compare``: several runs of this task on one data file, side by side.

        The default evaluates each and puts their metrics in one table, a column per run.
        """
        results = {
            n: self.evaluate_file(m, path, options).metrics
            for n, m in zip(names, models, strict=True)
        }
        keys = sorted({k for metrics in results.values() for k in metrics})
        width = max((len(k) for k in keys), default=6)
        lines = ["\t".join(["metric".ljust(width), *names])]
        for key in keys:
            cells = [_cell(results[n].get(key)) for n in names]
            lines.append("\t".join([key.ljust(width), *cells]))
        return Report({"runs": results}, "\n".join(lines))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


def attention_plot_folder(options: Mapping[str, Any], missing: str | None) -> Path | None:
    """The folder of a predictor's ``--attention-plot`` option, checked before any work.

    Args:
        options: the parsed options (``attention_plot``: a path or None).
        missing: None when the run's model has attention weights to draw; else why not, e.g.
            ``"runs/x: --attention-plot needs a model with attention; this run has ..."``.

    Returns:
        The folder, or None when the option is not given.

    Raises:
        TaskError: ``missing`` is set, or the path is an existing file.
    """
    plots = options.get("attention_plot")
    if plots is None:
        return None
    if missing is not None:
        raise TaskError(missing)
    if Path(plots).exists() and not Path(plots).is_dir():
        raise TaskError(f"--attention-plot {plots} is a file; give a folder")
    return Path(plots)


@runtime_checkable
class TextGenerator(Protocol):
    """A predictor that also writes text after a prompt (``rnnkit generate``): language models."""

    def generate(
        self, prompt: str, max_tokens: int, sampling: SamplingConfig, seed: int | None = None
    ) -> str:
        """The prompt followed by ``max_tokens`` tokens sampled with ``sampling``."""
        ...


@dataclass
class Predictor(ABC, Generic[In, Out]):
    """A trained run ready to answer inputs: the one API behind ``rnnkit predict`` and the server.

    ``In`` and ``Out`` are the task's input and output types (dataclasses or strings); outputs
    turn into JSON with :func:`to_json`. Build one with ``Task.predictor.load(run_dir)``
    (see :func:`rnnkit.tasks.run.load_predictor`) or directly from a task and its model.

    Attributes:
        task: the run's task object.
        model: its model, in eval mode.
    """

    task: Task
    model: nn.Module

    input_kind: ClassVar[Literal["text", "image", "series"]] = "text"
    """What one input is, for the server and its page: a text, an image or a series."""
    json_input: ClassVar[Any] = str
    """The type of one input's JSON form (a type pydantic reads), for the server's schema."""
    json_output: ClassVar[Any] = dict[str, Any]
    """The type of :meth:`to_json`'s value (a :class:`JSONModel`), for the server's schema."""

    def parse(self, text: str) -> In:
        """An input from its text form (a command-line argument or a line of ``--input``)."""
        return text  # type: ignore[return-value]

    @abstractmethod
    def predict(self, inputs: Sequence[In], options: Mapping[str, Any]) -> list[Out]:
        """One output per input; ``options`` holds the task's :attr:`Task.predict_options`."""

    def from_json(self, value: Any, name: str) -> In:
        """An input from its JSON form: one element of an HTTP request's ``"inputs"``.

        The default takes a string through :meth:`parse`. Tasks whose inputs are files on the
        command line (images, series) override it to read the data itself (base64, numbers,
        CSV text): a request never names a file on the server.

        Args:
            value: the decoded JSON value.
            name: what to call it in errors (``inputs[2]``).

        Raises:
            TaskError: the value is not an input of this task.
        """
        if not isinstance(value, str):
            raise TaskError(f"{name}: expected a string, got {json_kind(value)}")
        return self.parse(value)

    def input_tokens(self, inp: In) -> int | None:
        """How many tokens the model reads for ``inp`` (the server's ``--max-tokens`` limit);
        None when the input is not text (the default)."""
        return None

    def export_onnx(self, folder: Path) -> dict[str, Any]:
        """Write the model as ONNX graphs (and what inference needs beside them) into
        ``folder``; return the task's entries of the export's ``config.json``.

        The default refuses: a task opts in by overriding it (see :mod:`rnnkit.export`).

        Raises:
            TaskError: the task cannot be exported.
        """
        raise TaskError(f"task '{self.task.name}' cannot be exported to ONNX")

    def format(self, output: Out) -> str:
        """The text ``rnnkit predict`` prints for one output (no trailing newline)."""
        return str(output)

    def to_json(self, inp: In, output: Out) -> Any:
        """The JSON object ``rnnkit predict --json`` prints for one input and its output."""
        return {"input": to_json(inp), "output": to_json(output)}

    def write_files(
        self, inputs: Sequence[In], outputs: Sequence[Out], options: Mapping[str, Any]
    ) -> list[Path]:
        """Files that options ask for (plots, CSVs), written atomically; returns their paths."""
        return []


def json_kind(value: Any) -> str:
    """The JSON type name of a decoded value, for errors: ``a number``, ``an object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def dumps(value: Any) -> str:
    """One line of JSON of ``value`` (through :func:`to_json`), non-ASCII kept."""
    return json.dumps(to_json(value), ensure_ascii=False)
