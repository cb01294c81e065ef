"""What the training loop reports to: metrics.csv, TensorBoard, progress, early stopping, checkpoints.

The :class:`~rnnkit.training.Trainer` runs the loop and owns the run's state; a :class:`Callback`
reacts at fixed points of it and may end it::

    on_fit_start(trainer)                once per fit, after a resume's restore
    per step:
        on_evaluate(trainer, results)    after each validation (every eval_every steps)
        on_row(trainer, row)             after each metrics row (every log_every steps and
                                         at every evaluation)
        on_step_end(trainer)             after the step's evaluation and row
        stop_reason(trainer)             the first callback answering non-None ends the run
    on_evaluate / on_row                 once more for the final evaluation and row
    on_fit_end(trainer)                  after them, before model.safetensors is written
    close()                              always, after an error too

    on_save(trainer)                     before every checkpoint: write what you hold, so the
                                         run folder agrees with the checkpoint

The trainer passes itself: a callback reads ``trainer.run_state`` (a
:class:`~rnnkit.training.state.RunState`), ``trainer.config``, ``trainer.task``,
``trainer.run_dir`` and ``trainer.elapsed()``, and writes files through ``trainer.save_weights``
and ``trainer.save_checkpoint``. The built-in callbacks, in the order the trainer calls them:

* :class:`MetricsCSV` -- ``metrics.csv``, kept in memory and rewritten atomically;
* :class:`EarlyStopping` -- the tracked validation metric: ``best.safetensors``, patience and
  ``stop_when``;
* :class:`ProgressReporter` -- a tqdm bar on a terminal, log lines through :mod:`logging`
  otherwise;
* :class:`TensorBoard` -- scalars under ``run_dir/tensorboard`` when tensorboard is installed;
* :class:`Checkpointing` -- a checkpoint every ``checkpoint_every`` steps and at the end.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rnnkit.config import TrainConfig
from rnnkit.io import write_text_atomic
from rnnkit.training.protocol import TrainableTask
from rnnkit.training.state import StopReason

if TYPE_CHECKING:
    from rnnkit.training.trainer import Trainer

logger = logging.getLogger("rnnkit.training")

METRICS_FILE = "metrics.csv"
BEST_FILE = "best.safetensors"
BASE_COLUMNS = (
    "step",
    "epoch",
    "elapsed_s",
    "lr",
    "train_loss",
    "grad_norm",
    "clip_rate",
    "skipped_steps",
    "target_tokens",
    "tokens_per_s",
)
METRICS_FLUSH_S = 5.0  # rewrite metrics.csv at least this often (also at evals and checkpoints)
_MIN_METRIC_WORDS = ("loss", "perplexity", "ppl", "error", "err", "cer", "wer", "nll", "mse", "mae")


class Callback:
    """A listener of the training loop; every hook does nothing unless overridden.

    See the module docstring for when each hook is called.
    """

    def on_fit_start(self, trainer: Trainer) -> None:
        """Once per fit, before the first step (after a resume's restore)."""

    def on_evaluate(self, trainer: Trainer, results: dict[str, float]) -> None:
        """After each validation; ``results`` maps each of the task's metric names to a float."""

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """After each metrics row; ``row`` maps column names to numbers (None/NaN when empty)."""

    def on_step_end(self, trainer: Trainer) -> None:
        """After each training step's evaluation and row."""

    def on_save(self, trainer: Trainer) -> None:
        """Before a checkpoint is written: write out what the callback holds."""

    def on_fit_end(self, trainer: Trainer) -> None:
        """After the final evaluation and row, before ``model.safetensors`` is written."""

    def stop_reason(self, trainer: Trainer) -> StopReason | None:
        """A reason to end the run now, asked after every step; None to go on."""
        return None

    def close(self) -> None:
        """Release resources (files, bars); called once when fit ends, also on an error."""


def format_cell(value: Any) -> str:
    """A metrics.csv cell: '' for None, 0/1 for bools, floats in the shortest exact form."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return str(value)


def metric_mode(name: str, task: TrainableTask) -> Literal["min", "max"]:
    """Whether lower or higher ``name`` is better: the task's ``best_metric`` mode for its own
    metric, otherwise "min" for names made of loss/perplexity/error-like words and "max" else."""
    best_name, best_mode = task.best_metric
    if name == best_name:
        return best_mode
    words = name.lower().replace("-", "_").split("_")
    return "min" if any(w in _MIN_METRIC_WORDS for w in words) else "max"


# --------------------------------------------------------------------------- metrics.csv


class MetricsCSV(Callback):
    """``run_dir/metrics.csv``: a row per :meth:`on_row`, rewritten atomically.

    The table lives in memory and is written at every evaluation, before every checkpoint, at the
    end, and at least every :data:`METRICS_FLUSH_S` seconds. On resume the rows after the
    checkpoint's step are dropped. Columns: :data:`BASE_COLUMNS`, then ``train_<metric>`` in the
    order the task's step first returns them, then ``valid_<name>`` for the task's metrics.
    """

    def __init__(self, run_dir: Path, metric_names: Sequence[str], *, writes: bool = True) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self.writes = writes  # False on the ranks other than 0 of a distributed run
        self.metric_names = tuple(metric_names)
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []
        self._dirty = True
        self._eval_pending = False
        self._last_write = time.perf_counter()

    @property
    def last_row_step(self) -> int | None:
        """The step of the newest row, None before the first."""
        return int(self.rows[-1]["step"]) if self.rows else None

    def on_fit_start(self, trainer: Trainer) -> None:
        """Start the table; on resume, read the file up to the checkpoint's step."""
        self.columns = [*BASE_COLUMNS, *(f"valid_{m}" for m in self.metric_names)]
        self.rows = []
        self._dirty = True  # a fresh run has no file yet; a resumed one may hold later rows
        self._eval_pending = False
        self._last_write = time.perf_counter()
        if trainer.resumed_from is not None:
            self._load(trainer.resumed_from)

    def on_evaluate(self, trainer: Trainer, results: dict[str, float]) -> None:
        """Note the evaluation; a row already written for this step gets its valid columns."""
        step = trainer.run_state.step
        if self.last_row_step == step:
            last = self.rows[-1]
            for name in self.metric_names:
                last[f"valid_{name}"] = format_cell(results.get(name))
        self._eval_pending = self._dirty = True

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """Append ``row``; a new column goes before the first ``valid_`` one."""
        for column in row:
            self._add_column(column)
        self.rows.append({k: format_cell(v) for k, v in row.items()})
        self._dirty = True

    def on_step_end(self, trainer: Trainer) -> None:
        """Write after an evaluation, or when the last write is older than METRICS_FLUSH_S."""
        due = time.perf_counter() - self._last_write >= METRICS_FLUSH_S
        if self._dirty and (self._eval_pending or due):
            self.write()

    def on_save(self, trainer: Trainer) -> None:
        """Write before a checkpoint: the file must cover the checkpoint's step."""
        if self._dirty:
            self.write()

    def on_fit_end(self, trainer: Trainer) -> None:
        """Write the final table."""
        if self._dirty:
            self.write()

    def write(self) -> None:
        """Rewrite ``metrics.csv`` atomically from the table in memory (unless ``writes`` is
        False: then the table only stays in memory)."""
        if not self.writes:
            self._dirty = self._eval_pending = False
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.path, buffer.getvalue())
        self._last_write = time.perf_counter()
        self._dirty = self._eval_pending = False

    def _add_column(self, column: str) -> None:
        if column not in self.columns:
            first_valid = next(
                (i for i, c in enumerate(self.columns) if c.startswith("valid_")),
                len(self.columns),
            )
            self.columns.insert(first_valid, column)

    def _load(self, step: int) -> None:
        """Read metrics.csv, dropping rows after ``step`` (the checkpoint resumed from)."""
        if not self.path.is_file():
            return
        try:
            with self.path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                header = list(reader.fieldnames or [])
                rows = [dict(r) for r in reader if int(r["step"]) <= step]
        except (ValueError, KeyError, csv.Error) as err:
            warnings.warn(f"{self.path}: unreadable ({err}); starting a new one", stacklevel=4)
            return
        for column in header:
            self._add_column(column)
        self.rows = rows


# --------------------------------------------------------------------------- early stopping


class EarlyStopping(Callback):
    """Tracks one validation metric: ``best.safetensors``, patience and ``stop_when``.

    The metric is ``train.early_stopping_metric`` or the task's ``best_metric``; its direction
    comes from :func:`metric_mode`. After each evaluation a finite value better than the best so
    far writes ``best.safetensors`` (metadata: step, metric, value) and resets the count of
    evaluations without improvement; the run stops with "early_stopping" when that count
    reaches ``train.early_stopping_patience``, and with "target_reached" once ``stop_when(value)``
    returned True. Its counters live in ``trainer.run_state``, so checkpoints carry them.

    Raises:
        ValueError: the metric is not one of the task's ``metric_names``.
    """

    def __init__(
        self,
        task: TrainableTask,
        config: TrainConfig,
        stop_when: Callable[[float], bool] | None = None,
    ) -> None:
        names = tuple(task.metric_names)
        metric = config.early_stopping_metric or task.best_metric[0]
        if metric not in names:
            source = (
                "train.early_stopping_metric" if config.early_stopping_metric else "best_metric"
            )
            raise ValueError(
                f"{source} '{metric}' is not a metric of task '{task.name}'; "
                f"valid metrics: {', '.join(names)}"
            )
        self.metric_name = metric
        self.mode = metric_mode(metric, task)
        self.patience = config.early_stopping_patience
        self.stop_when = stop_when

    def on_evaluate(self, trainer: Trainer, results: dict[str, float]) -> None:
        """Update the best value (writing ``best.safetensors``) and the patience count."""
        state = trainer.run_state
        value = results[self.metric_name]
        better = math.isfinite(value) and (
            state.best is None or (value < state.best if self.mode == "min" else value > state.best)
        )
        if better:
            state.best, state.best_step, state.bad_evals = value, state.step, 0
            trainer.save_weights(
                trainer.run_dir / BEST_FILE,
                state.step,
                {"metric": self.metric_name, "value": repr(value)},
            )
        else:
            state.bad_evals += 1
        if self.stop_when is not None and math.isfinite(value) and self.stop_when(value):
            state.target_reached = True

    def stop_reason(self, trainer: Trainer) -> StopReason | None:
        """ "early_stopping" when patience ran out, "target_reached" after ``stop_when``."""
        state = trainer.run_state
        if self.patience is not None and state.bad_evals >= self.patience:
            return "early_stopping"
        if state.target_reached:
            return "target_reached"
        return None


# --------------------------------------------------------------------------- progress


def format_duration(seconds: float) -> str:
    """``"1h02m03s"``, ``"4m05s"`` or ``"12s"``."""
    s = max(round(seconds), 0)
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class ProgressReporter(Callback):
    """Progress for a person: a tqdm bar on a terminal, else a log line per metrics row.

    ``train.progress``: None shows the bar when stderr is a terminal, True / False always /
    never. Without the bar, each metrics row (every ``train.log_every`` steps) is logged at INFO
    on the ``rnnkit.training`` logger, so ``nohup`` and CI logs show progress::

        step 200/3000 (6.7%) epoch 1: train_loss 0.4123, 1.52e+04 tokens/s, ETA 3m05s

    The ETA is the sooner of the step budget (``max_steps``, or ``epochs`` x batches per epoch
    once known) at the session's step rate and the remaining ``max_time_s``; it is left out when
    neither is known. Validation results are logged at INFO in either case.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.show_bar = False
        self._bar: Any = None
        self._start = (0.0, 0)  # (perf_counter, step) when this session started

    def on_fit_start(self, trainer: Trainer) -> None:
        """Open the bar (disabled unless shown) and start the step-rate clock."""
        from tqdm.auto import tqdm

        setting = self.config.progress
        self.show_bar = setting if setting is not None else sys.stderr.isatty()
        self._bar = tqdm(
            total=self.config.max_steps,
            initial=trainer.run_state.step,
            disable=not self.show_bar,
            file=sys.stderr,
            unit="step",
            dynamic_ncols=True,
        )
        self._start = (time.perf_counter(), trainer.run_state.step)

    def on_step_end(self, trainer: Trainer) -> None:
        """Advance the bar."""
        if self._bar is not None:
            self._bar.update(1)

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """Show the row's loss and speed on the bar, or log them as one line."""
        if self.show_bar:
            if self._bar is not None:
                self._bar.set_postfix(
                    loss=f"{row['train_loss']:.4g}", tok_s=f"{row['tokens_per_s']:.4g}"
                )
            return
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s", self.progress_line(trainer, row))

    def on_evaluate(self, trainer: Trainer, results: dict[str, float]) -> None:
        """Log the validation results."""
        logger.info(
            "step %d: %s",
            trainer.run_state.step,
            ", ".join(f"valid_{k}={v:.6g}" for k, v in results.items()),
        )

    def progress_line(self, trainer: Trainer, row: dict[str, Any]) -> str:
        """The log line for ``row``: step (of the budget), epoch, loss, tokens/s and ETA."""
        step = trainer.run_state.step
        total = trainer.planned_steps
        where = f"step {step}"
        if total:
            where += f"/{total} ({100.0 * step / total:.1f}%)"
        parts = [f"{where} epoch {trainer.run_state.epoch}: train_loss {row['train_loss']:.4g}"]
        tokens_per_s = row["tokens_per_s"]
        if isinstance(tokens_per_s, float) and math.isfinite(tokens_per_s):
            parts.append(f"{tokens_per_s:.3g} tokens/s")
        eta = self.eta(trainer)
        if eta is not None:
            parts.append(f"ETA {format_duration(eta)}")
        return ", ".join(parts)

    def eta(self, trainer: Trainer) -> float | None:
        """Seconds until the first budget ends, or None when no budget gives an estimate."""
        started, first_step = self._start
        seconds = time.perf_counter() - started
        steps = trainer.run_state.step - first_step
        estimates: list[float] = []
        total = trainer.planned_steps
        if total is not None and steps > 0 and seconds > 0:
            estimates.append(max(total - trainer.run_state.step, 0) * seconds / steps)
        if self.config.max_time_s is not None:
            estimates.append(max(self.config.max_time_s - trainer.elapsed(), 0.0))
        return min(estimates) if estimates else None

    def close(self) -> None:
        """Close the bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# --------------------------------------------------------------------------- tensorboard


class TensorBoard(Callback):
    """Each metrics row's numbers as scalars in ``run_dir/tensorboard`` (if tensorboard imports).

    TensorBoard event files are the one thing in a run folder not written atomically: they are
    append-only logs written by ``torch.utils.tensorboard.SummaryWriter``.
    """

    def __init__(self) -> None:
        self._writer: Any = None

    def on_fit_start(self, trainer: Trainer) -> None:
        """Open a SummaryWriter when tensorboard is installed."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self._writer = SummaryWriter(log_dir=str(trainer.run_dir / "tensorboard"))

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """Add the row's numbers (all but ``step``) at its step."""
        if self._writer is None:
            return
        for key, value in row.items():
            if key != "step" and isinstance(value, int | float):
                self._writer.add_scalar(key, value, trainer.run_state.step)

    def close(self) -> None:
        """Close the writer."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# --------------------------------------------------------------------------- checkpoints


class Checkpointing(Callback):
    """When to write a checkpoint: every ``checkpoint_every`` steps, and at the end.

    What goes into one is the trainer's (:meth:`~rnnkit.training.Trainer.save_checkpoint`);
    the final one is written unless the newest checkpoint already holds the final state.
    """

    def __init__(self, every: int) -> None:
        self.every = every
        self.last_saved_step: int | None = None
        self._changed = False  # an evaluation or row since the last checkpoint

    def on_fit_start(self, trainer: Trainer) -> None:
        """A resumed run's newest checkpoint is its starting point."""
        self.last_saved_step = trainer.resumed_from
        self._changed = False

    def on_evaluate(self, trainer: Trainer, results: dict[str, float]) -> None:
        """Note the change."""
        self._changed = True

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """Note the change."""
        self._changed = True

    def on_step_end(self, trainer: Trainer) -> None:
        """Write a checkpoint every ``every`` steps."""
        if trainer.run_state.step % self.every == 0:
            self._save(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        """Write the final checkpoint unless the newest one already holds this state."""
        if self._changed or self.last_saved_step != trainer.run_state.step:
            self._save(trainer)

    def _save(self, trainer: Trainer) -> None:
        trainer.save_checkpoint()
        self.last_saved_step = trainer.run_state.step
        self._changed = False
