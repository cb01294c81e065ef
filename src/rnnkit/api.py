"""The public Python API behind every CLI verb: train, evaluate, compare, predict, load a run.

A run folder holds ``config.yaml`` (the resolved config), what the task's ``prepare()`` saved
(tokenisers, scalers), ``model.safetensors`` (final weights), ``best.safetensors`` (best on
validation), ``metrics.csv`` and ``checkpoints/``. Weights load with safetensors, so opening a run
never executes code from it. ``cli/`` (and the server) call only this module.

Every function that computes sets torch's intra-op thread count first (process-wide, like
``train.threads`` in training): ``threads`` when given, else the auto policy of
:func:`rnnkit.training.device.choose_threads` for the run's model, which is one thread for the
small recurrent models that a second thread only slows down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from rnnkit.config import ConfigError, RunConfig
from rnnkit.decoding.search import SamplingConfig
from rnnkit.export.folder import export_run, read_export_config
from rnnkit.tasks.base import Predictor, Report, Task, TextGenerator
from rnnkit.tasks.registry import get_task, task_names
from rnnkit.tasks.run import (
    LoadedRun,
    Weights,
    build_run_config,
    load_config,
    load_run,
    read_run_config,
    write_config,
)
from rnnkit.tasks.run import load_predictor as _load_predictor
from rnnkit.training import TrainResult, list_checkpoints, train_task
from rnnkit.training.device import apply_threads, step_work
from rnnkit.training.distributed import process_group, restarted

__all__ = [
    "LoadedRun",
    "Weights",
    "build_run_config",
    "compare",
    "evaluate",
    "export",
    "generate",
    "load_config",
    "load_predictor",
    "load_run",
    "load_runtime",
    "predict",
    "read_run_config",
    "run_task",
    "set_threads",
    "task_names",
    "train",
    "write_config",
]

# Keys that may change between a run and its resumption: the budget can be extended, and the
# thread count follows the machine (a resumed run is bit-exact only with the same count).
_RESUMABLE_CHANGES = {
    "train.max_steps",
    "train.epochs",
    "train.max_time_s",
    "train.progress",
    "train.threads",
}


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


_SPLIT_FILES = ("data.train", "data.valid", "data.test")


def _data_keys(config: RunConfig) -> dict[str, Any]:
    """The run's ``data`` section as flat ``data.KEY`` values, less where its split files lie."""
    flat = _flatten(config.data.model_dump(mode="json"), "data.")
    return {k: v for k, v in flat.items() if k not in _SPLIT_FILES}


def _has_progress(run_dir: Path) -> bool:
    """True once a run wrote a checkpoint or its final weights: from then on it is a run to resume,
    not a folder to start over in."""
    return bool(list_checkpoints(run_dir)) or (run_dir / "model.safetensors").is_file()


def train(config: RunConfig, out: Path, *, resume: bool = False) -> TrainResult:
    """Train ``config``'s task into the run folder ``out``.

    A new run calls the task's ``prepare()`` (tokenisers, scalers), then writes ``config.yaml``
    and trains. With ``resume=True`` the run continues from its newest valid checkpoint; the
    config must equal the stored one except for the budget (``train.max_steps``, ``train.epochs``,
    ``train.max_time_s``). A folder whose run stopped before its first checkpoint (killed, or
    failed while setting up) holds nothing worth keeping: ``resume=True`` starts it again from
    step 0 with its stored config, and a new run may start over in it.

    Under ``torchrun`` every process calls this: they join one process group (``gloo`` on CPU,
    ``nccl`` on CUDA; see :mod:`rnnkit.training.distributed`), rank 0 alone runs ``prepare()``
    and writes ``config.yaml`` while the others wait, then all train the one model together and
    only rank 0 writes into ``out``. The group is left when training ends. A group torchrun
    restarts (``--max-restarts``) resumes the run its first attempt started, as with ``resume``.
    """
    with process_group(config.train.device) as group:
        started = _check_train_folder(config, out, resume)
        if group.is_main:
            out.mkdir(parents=True, exist_ok=True)
        task = get_task(config.task)(config, out)
        if not started and group.is_main:  # a new run, or one without a checkpoint: step 0
            task.prepare()
            write_config(config, out)
        group.barrier()  # the others read what prepare() wrote
        return train_task(task, out, resume=started)


def _check_train_folder(config: RunConfig, out: Path, resume: bool) -> bool:
    """Whether ``out`` holds a started run (to resume); ConfigError for a folder ``train`` with
    ``resume`` may not use."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; give a folder for the run")
    started = out.is_dir() and _has_progress(out)
    resume = resume or (started and restarted())  # torchrun started the group again
    if not resume and started:
        raise ConfigError(
            f"{out} already holds a run; pass --resume to continue it or choose a new folder"
        )
    if resume:
        if not out.is_dir():
            raise ConfigError(f"cannot resume {out}: no such run folder")
        stored = _flatten(read_run_config(out).to_dict())
        given = _flatten(config.to_dict())
        changed = sorted(k for k in stored.keys() | given.keys() if stored.get(k) != given.get(k))
        changed = [k for k in changed if k not in _RESUMABLE_CHANGES]
        if changed:
            raise ConfigError(
                f"cannot resume {out}: config differs from the run's config.yaml in '{changed[0]}'"
            )
    return started


def set_threads(model: nn.Module, threads: int | None, batch_size: int) -> int:
    """Set torch's thread count for computing with ``model`` on batches of ``batch_size``.

    ``threads`` when given (>= 1), else the auto policy for the model's
    :func:`~rnnkit.training.device.step_work`; process-wide, logged at INFO. Returns the count.
    """
    return apply_threads(threads, step_work(model, batch_size))


def _set_run_threads(run: LoadedRun, threads: int | None) -> None:
    # The training batch size bounds the batches evaluation and prediction use.
    set_threads(run.model, threads, run.config.train.batch_size)


def run_task(run_dir: Path) -> type[Task]:
    """The task class of a run folder (read from its ``config.yaml``) or of an ONNX export."""
    exported = read_export_config(run_dir)
    if exported is not None and not (run_dir / "config.yaml").is_file():
        return get_task(str(exported.get("task")))
    return get_task(read_run_config(run_dir).task)


def _check_data_file(data: Path) -> None:
    """A data file must not be a folder (the task's reader would fail with a traceback)."""
    if data.is_dir():
        raise ConfigError(f"{data}: is a folder; give the data file")


def evaluate(
    run_dir: Path,
    data: Path,
    options: Mapping[str, Any] | None = None,
    *,
    weights: Weights = "best",
    threads: int | None = None,
) -> Report:
    """Metrics of a trained run on a user's data file (format and options defined by its task);
    ``threads``: torch's thread count (None: auto, see :func:`set_threads`)."""
    _check_data_file(data)
    run = load_run(run_dir, weights)
    _set_run_threads(run, threads)
    return run.task.evaluate_file(run.model, data, options or {})


def compare(
    runs: Sequence[Path],
    names: Sequence[str],
    data: Path,
    options: Mapping[str, Any] | None = None,
    *,
    weights: Weights = "best",
    threads: int | None = None,
) -> Report:
    """Several runs of one task on the same data file, side by side (the task's ``compare``);
    ``threads``: torch's thread count (None: auto for the largest model, see
    :func:`set_threads`)."""
    _check_data_file(data)
    configs = [read_run_config(run) for run in runs]  # refuse a wrong run before any work
    kinds = {c.task for c in configs}
    if len(kinds) > 1:
        listed = ", ".join(f"{run} ({c.task})" for run, c in zip(runs, configs, strict=True))
        raise ConfigError(f"compare needs runs of one task, got {listed}")
    # the first run's task reads the data file for all of them (its tokeniser, vocabulary,
    # labels, scaler): runs whose data sections differ would be scored through the wrong one.
    # Where the split files lie is not compared (copies of one corpus may sit anywhere).
    first = _data_keys(configs[0])
    for run, config in zip(runs[1:], configs[1:], strict=True):
        other = _data_keys(config)
        differ = sorted(k for k in first.keys() | other.keys() if first.get(k) != other.get(k))
        if differ:
            raise ConfigError(
                f"compare reads the data file through {runs[0]}'s data pipeline, but {run} "
                f"differs in {', '.join(repr(k) for k in differ)}; compare runs trained on "
                "the same data section"
            )
    loaded = [load_run(run, weights) for run in runs]
    largest = max(loaded, key=lambda r: step_work(r.model, r.config.train.batch_size))
    _set_run_threads(largest, threads)
    return loaded[0].task.compare(names, [r.model for r in loaded], data, options or {})


def predict(
    run_dir: Path,
    inputs: Sequence[Any],
    options: Mapping[str, Any] | None = None,
    *,
    weights: Weights = "best",
    threads: int | None = None,
) -> list[Any]:
    """The run's predictions for ``inputs`` (the task's input type, or text it parses);
    ``threads``: torch's thread count (None: auto, see :func:`set_threads`)."""
    predictor = load_predictor(run_dir, weights, threads=threads)
    parsed = [predictor.parse(i) if isinstance(i, str) else i for i in inputs]
    return predictor.predict(parsed, options or {})


def generate(
    run_dir: Path,
    prompt: str,
    max_tokens: int,
    sampling: SamplingConfig | None = None,
    *,
    weights: Weights = "best",
    threads: int | None = None,
) -> str:
    """``prompt`` and ``max_tokens`` tokens the run's model samples after it (temperature,
    top-k, top-p and seed of ``sampling``; the defaults when None).

    Raises:
        ValueError: the run's task writes no text (only language models do).
    """
    predictor = load_predictor(run_dir, weights, threads=threads)
    if not isinstance(predictor, TextGenerator):
        raise ValueError(
            f"{run_dir}: {predictor.task.name} runs do not generate text; "
            "rnnkit generate needs a language_model run"
        )
    return predictor.generate(prompt, max_tokens, sampling or SamplingConfig())


def load_predictor(
    run_dir: Path, weights: Weights = "best", *, threads: int | None = None
) -> Predictor[Any, Any]:
    """The run's task :class:`~rnnkit.tasks.base.Predictor`, ready for ``predict``, with torch's
    thread count set for its model (``threads``; None: auto, see :func:`set_threads`)."""
    predictor: Predictor[Any, Any] = _load_predictor(run_dir, weights)
    set_threads(predictor.model, threads, predictor.task.config.train.batch_size)
    return predictor


def export(
    run_dir: Path, out: Path, weights: Weights = "best", *, format: str = "onnx"
) -> list[Path]:
    """Export a run as ONNX graphs into ``out`` (:func:`rnnkit.export.export_run`); returns
    the files written, ``config.json`` first.

    Raises:
        ValueError: an unknown format, a task that cannot be exported, or a bad ``out``.
    """
    if format != "onnx":
        raise ValueError(f"unknown export format {format!r}; valid formats: onnx")
    return export_run(run_dir, out, weights)


def load_runtime(folder: Path, weights: Weights = "best", *, threads: int | None = None) -> Any:
    """The torch-free predictor (:mod:`rnnkit.runtime`) of an export folder, or of a run folder,
    exported first into ``RUN/onnx`` when that is missing (``weights`` picks the weights then).
    """
    from rnnkit import runtime

    if read_export_config(folder) is None and (folder / "config.yaml").is_file():
        target = folder / "onnx"
        if read_export_config(target) is None:
            export_run(folder, target, weights)
        folder = target
    return runtime.load(folder, threads)
