"""One trainer for every task: budgets, clipping, truncated BPTT, evaluation, checkpoints, resume.

The :class:`Trainer` knows no model and no batch layout. A :class:`~rnnkit.training.task.Task`
builds the model, yields batches and turns one batch into a :class:`StepOutput` (loss, metrics,
target tokens, carried state); the trainer owns everything else::

    for each step:                                   # s = global step, 1-based in files
        out = task.step(model, batch, state)         # under model.train() (+ autocast on CUDA)
        if loss or grad norm is not finite: skip or stop (train.nonfinite)
        g = ||grad||_2 before clipping;  clip to train.clip_grad_norm;  optimizer.step()
        state = detach(out.state)                    # truncated BPTT, reset to None each epoch
        every log_every / eval_every / checkpoint_every steps: row / validation / checkpoint

Files written into ``run_dir`` (each one atomically, see :mod:`rnnkit.io`):

* ``metrics.csv`` -- a row every ``log_every`` steps and at every evaluation,
* ``best.safetensors`` -- weights at the best validation score,
* ``checkpoints/step_XXXXXXXX.pt`` -- everything needed to resume bit-exactly,
* ``model.safetensors`` -- final weights.

A resumed run (``fit(resume=True)``) continues from the newest checkpoint that loads and, on CPU,
produces byte-identical ``model.safetensors`` to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.config import TrainConfig
from rnnkit.io import (
    NonFiniteError,
    clean_temp_files,
    save_checkpoint,
    save_safetensors,
    write_text_atomic,
)
from rnnkit.runtime import flush_denormals
from rnnkit.training.checkpoint import (
    capture_rng_state,
    checkpoint_dir,
    checkpoint_path,
    detach_state,
    find_resume_checkpoint,
    list_checkpoints,
    map_tensors,
    preserved_rng,
    prune_checkpoints,
    restore_rng_state,
    to_plain,
)
from rnnkit.training.optim import build_optimizer, build_scheduler
from rnnkit.training.task import StepOutput, Task

logger = logging.getLogger("rnnkit.training")

StopReason = Literal["max_steps", "epochs", "max_time_s", "early_stopping", "target_reached"]

METRICS_FILE = "metrics.csv"
MODEL_FILE = "model.safetensors"
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
_METRICS_FLUSH_S = 5.0  # rewrite metrics.csv at least this often (also at evals and checkpoints)
_MIN_METRIC_WORDS = ("loss", "perplexity", "ppl", "error", "err", "cer", "wer", "nll", "mse", "mae")


class TrainingError(RuntimeError):
    """Training cannot continue (non-finite loss/gradients/weights); the message names the step."""


@dataclass(frozen=True)
class TrainResult:
    """Summary of a finished :meth:`Trainer.fit`.

    Attributes:
        step: global steps taken (batches consumed), over all resumed sessions.
        epoch: 0-based epoch the run stopped in (equals ``train.epochs`` after full epochs).
        elapsed_s: wall-clock seconds over all sessions.
        stop_reason: which budget ended the run, or "early_stopping", or "target_reached"
            (the ``stop_when`` callback returned True).
        best_metric_name / best_mode: the validation metric tracked for best.safetensors and
            early stopping, and whether lower ("min") or higher ("max") is better.
        best_metric / best_step: its best value and the step it was reached at (None without
            any finite evaluation).
        valid_metrics: the last evaluation's results.
        target_tokens: cumulative ``StepOutput.num_tokens``.
        skipped_steps: steps skipped for non-finite loss or gradients.
        resumed_from: the step of the checkpoint this session resumed from, else None.
        run_dir: the run folder.
    """

    step: int
    epoch: int
    elapsed_s: float
    stop_reason: StopReason
    best_metric_name: str
    best_mode: Literal["min", "max"]
    best_metric: float | None
    best_step: int | None
    valid_metrics: dict[str, float]
    target_tokens: int
    skipped_steps: int
    resumed_from: int | None
    run_dir: Path


def metric_mode(name: str, task: Task) -> Literal["min", "max"]:
    """Whether lower or higher ``name`` is better: the task's ``best_metric`` mode for its own
    metric, otherwise "min" for names made of loss/perplexity/error-like words and "max" else."""
    best_name, best_mode = task.best_metric
    if name == best_name:
        return best_mode
    words = name.lower().replace("-", "_").split("_")
    return "min" if any(w in _MIN_METRIC_WORDS for w in words) else "max"


def resolve_device(device: str) -> torch.device:
    """``cpu`` | ``cuda`` | ``auto`` (CUDA when available) as a device; ValueError if unavailable."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device is 'cuda' but CUDA is not available; use cpu or auto")
        return torch.device("cuda")
    if device == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown train.device '{device}'; valid devices: cpu, cuda, auto")


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors in a batch (nested tuples, named tuples, lists, dicts) moved to ``device``."""
    return map_tensors(batch, lambda t: t.to(device, non_blocking=True))


def validate_train_config(config: TrainConfig, task: Task) -> None:
    """Raise ValueError naming the first train.* setting the trainer cannot honour."""
    if config.max_steps is None and config.epochs is None and config.max_time_s is None:
        raise ValueError(
            "no training budget: set at least one of train.max_steps, train.epochs, "
            "train.max_time_s"
        )
    positive_ints = {
        "max_steps": config.max_steps,
        "epochs": config.epochs,
        "eval_every": config.eval_every,
        "log_every": config.log_every,
        "checkpoint_every": config.checkpoint_every,
        "keep_checkpoints": config.keep_checkpoints,
        "max_nonfinite": config.max_nonfinite,
        "early_stopping_patience": config.early_stopping_patience,
        "threads": config.threads,
    }
    for key, value in positive_ints.items():
        if value is not None and value < 1:
            raise ValueError(f"train.{key} must be >= 1, got {value}")
    if config.max_time_s is not None and not config.max_time_s > 0:
        raise ValueError(f"train.max_time_s must be > 0, got {config.max_time_s}")
    if config.clip_grad_norm is not None and not config.clip_grad_norm > 0:
        raise ValueError(f"train.clip_grad_norm must be > 0 or null, got {config.clip_grad_norm}")
    if config.warmup_steps < 0:
        raise ValueError(f"train.warmup_steps must be >= 0, got {config.warmup_steps}")
    for key in ("label_smoothing", "scheduled_sampling"):
        value = getattr(config, key)
        if not 0.0 <= value < 1.0 + (key == "scheduled_sampling"):
            bound = "[0, 1]" if key == "scheduled_sampling" else "[0, 1)"
            raise ValueError(f"train.{key} must be in {bound}, got {value}")
        if value and key not in task.train_options:
            raise ValueError(f"train.{key} is not used by task '{task.name}'")
    if config.scheduled_sampling_steps < 1:
        raise ValueError(
            f"train.scheduled_sampling_steps must be >= 1, got {config.scheduled_sampling_steps}"
        )
    names = tuple(task.metric_names)
    metric = config.early_stopping_metric or task.best_metric[0]
    if metric not in names:
        source = "train.early_stopping_metric" if config.early_stopping_metric else "best_metric"
        raise ValueError(
            f"{source} '{metric}' is not a metric of task '{task.name}'; "
            f"valid metrics: {', '.join(names)}"
        )


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return str(value)


@dataclass
class _Progress:
    """Everything about the run's position that a checkpoint must carry (plain data only)."""

    step: int = 0
    epoch: int = 0
    batch_index: int = 0  # batches of `epoch` already consumed
    elapsed_s: float = 0.0
    target_tokens: int = 0
    skipped_steps: int = 0
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    target_reached: bool = False
    last_eval_step: int | None = None
    last_valid: dict[str, float] = field(default_factory=dict)
    acc: dict[str, Any] = field(default_factory=dict)  # sums since the last metrics row

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "elapsed_s": self.elapsed_s,
            "target_tokens": self.target_tokens,
            "skipped_steps": self.skipped_steps,
            "early_stopping": {
                "best": self.best,
                "best_step": self.best_step,
                "bad_evals": self.bad_evals,
                "target_reached": self.target_reached,
                "last_eval_step": self.last_eval_step,
                "last_valid": dict(self.last_valid),
            },
            "log": dict(self.acc),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> _Progress:
        stopping = state.get("early_stopping", {})
        return cls(
            step=int(state["step"]),
            epoch=int(state["epoch"]),
            batch_index=int(state["batch_index"]),
            elapsed_s=float(state["elapsed_s"]),
            target_tokens=int(state.get("target_tokens", 0)),
            skipped_steps=int(state.get("skipped_steps", 0)),
            best=stopping.get("best"),
            best_step=stopping.get("best_step"),
            bad_evals=int(stopping.get("bad_evals", 0)),
            target_reached=bool(stopping.get("target_reached", False)),
            last_eval_step=stopping.get("last_eval_step"),
            last_valid=dict(stopping.get("last_valid", {})),
            acc=dict(state.get("log", {})),
        )


def _new_acc(row_elapsed: float) -> dict[str, Any]:
    return {
        "loss_sum": 0.0,
        "loss_n": 0,
        "grad_norm_sum": 0.0,
        "grad_norm_n": 0,
        "clipped": 0,
        "steps": 0,
        "tokens": 0,
        "train_time": 0.0,
        "lr": None,
        "metrics": {},
        "row_elapsed": row_elapsed,
    }


class Trainer:
    """Trains ``task``'s model under ``train_config``, writing into ``run_dir``.

    Args:
        task: the task (batches in, loss and metrics out); see :class:`Task`.
        train_config: the ``train`` section (optimiser, schedule, budget, checkpoints, ...).
        run_dir: the run folder; created if missing.
        model: the model to train; when None, ``torch.manual_seed(train.seed)`` is called and
            ``task.build_model()`` builds it.
        stop_when: optional ``f(value) -> bool`` called after every evaluation with the tracked
            validation metric (``train.early_stopping_metric`` or the task's ``best_metric``);
            True ends the run with stop reason "target_reached" (e.g. "task solved").

    Construction seeds torch, ``random`` and numpy with ``train.seed``, applies
    ``train.threads``, resolves the device and validates every setting (ValueError naming the
    key); it writes nothing. :meth:`fit` trains.
    """

    def __init__(
        self,
        task: Task,
        train_config: TrainConfig,
        run_dir: str | Path,
        model: nn.Module | None = None,
        *,
        stop_when: Callable[[float], bool] | None = None,
    ) -> None:
        validate_train_config(train_config, task)
        self.stop_when = stop_when
        self.task = task
        self.config = train_config
        self.run_dir = Path(run_dir)
        self.device = resolve_device(train_config.device)
        self._cuda = self.device.type == "cuda"
        if train_config.precision != "fp32" and self.device.type != "cuda":
            raise ValueError(
                f"train.precision '{train_config.precision}' needs a CUDA device; "
                "on CPU use precision: fp32"
            )
        self.metric_name = train_config.early_stopping_metric or task.best_metric[0]
        self.metric_mode = metric_mode(self.metric_name, task)
        if train_config.threads is not None:
            torch.set_num_threads(train_config.threads)
        _seed_everything(train_config.seed)
        if model is None:
            model = task.build_model()
        self.model = model.to(self.device)

    # ------------------------------------------------------------------ public

    def fit(self, resume: bool = False) -> TrainResult:
        """Train until a budget or early stopping ends the run; return a :class:`TrainResult`.

        With ``resume=True`` the run continues from the newest checkpoint in ``run_dir`` that
        loads cleanly (ValueError when there is none); with ``resume=False`` a ``run_dir`` that
        already holds checkpoints is refused (ValueError) rather than overwritten.

        Raises:
            TrainingError: on a non-finite loss or gradient with ``nonfinite: stop``, after
                ``max_nonfinite`` skipped steps, or when the weights themselves become
                non-finite (nothing is written from such weights).
        """
        cfg = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            existing = list_checkpoints(self.run_dir)
            if existing:
                raise ValueError(
                    f"{self.run_dir} already holds checkpoints (newest: {existing[-1].name}); "
                    "pass --resume to continue that run, or choose a new run folder"
                )
            clean_temp_files(self.run_dir)
            clean_temp_files(checkpoint_dir(self.run_dir))

        self.optimizer = build_optimizer(self.model.parameters(), cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self._total_steps())
        self.scaler = torch.amp.GradScaler("cuda", enabled=self._cuda and cfg.precision == "fp16")
        self._amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(cfg.precision)

        resumed_from: int | None = None
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] = [*BASE_COLUMNS, *(f"valid_{m}" for m in self.task.metric_names)]
        state: Any = None
        if resume:
            prog, state = self._restore()
            resumed_from = prog.step
            self._load_rows(prog.step)
            logger.info("resumed %s from step %d", self.run_dir, prog.step)
        else:
            prog = _Progress(acc=_new_acc(0.0))
        self._last_saved_step = resumed_from
        self._last_flush = time.perf_counter()

        t0 = time.perf_counter()
        base = prog.elapsed_s

        def elapsed() -> float:
            return base + (time.perf_counter() - t0)

        show = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
        with contextlib.ExitStack() as stack:
            from tqdm.auto import tqdm

            stack.enter_context(flush_denormals(cfg.flush_denormal))

            bar = stack.enter_context(
                tqdm(
                    total=cfg.max_steps,
                    initial=prog.step,
                    disable=not show,
                    file=sys.stderr,
                    unit="step",
                    dynamic_ncols=True,
                )
            )
            self._tb = self._open_tensorboard()
            if self._tb is not None:
                stack.callback(self._tb.close)
            stop, state = self._run(prog, state, elapsed, bar)
            self._finish(prog, state, elapsed, bar)
        return TrainResult(
            step=prog.step,
            epoch=prog.epoch,
            elapsed_s=prog.elapsed_s,
            stop_reason=stop,
            best_metric_name=self.metric_name,
            best_mode=self.metric_mode,
            best_metric=prog.best,
            best_step=prog.best_step,
            valid_metrics=dict(prog.last_valid),
            target_tokens=prog.target_tokens,
            skipped_steps=prog.skipped_steps,
            resumed_from=resumed_from,
            run_dir=self.run_dir,
        )

    # ------------------------------------------------------------------ loop

    def _stop_reason(self, prog: _Progress, elapsed: float) -> StopReason | None:
        cfg = self.config
        if cfg.max_steps is not None and prog.step >= cfg.max_steps:
            return "max_steps"
        if cfg.epochs is not None and prog.epoch >= cfg.epochs:
            return "epochs"
        if cfg.max_time_s is not None and elapsed >= cfg.max_time_s:
            return "max_time_s"
        patience = cfg.early_stopping_patience
        if patience is not None and prog.bad_evals >= patience:
            return "early_stopping"
        if prog.target_reached:
            return "target_reached"
        return None

    def _run(
        self, prog: _Progress, state: Any, elapsed: Callable[[], float], bar: Any
    ) -> tuple[StopReason, Any]:
        """The epoch/batch loop; returns why it stopped and the carried stream state."""
        cfg = self.config
        stop = self._stop_reason(prog, elapsed())
        while stop is None:
            seen = 0
            for index, batch in enumerate(self.task.train_batches(prog.epoch)):
                seen += 1
                if index < prog.batch_index:  # consumed before the checkpoint we resumed from
                    continue
                state = self._train_step(prog, batch, state)
                prog.step += 1
                prog.batch_index += 1
                bar.update(1)
                evaluated = prog.step % cfg.eval_every == 0
                if evaluated:
                    self._evaluate(prog)
                if evaluated or prog.step % cfg.log_every == 0:
                    self._add_row(prog, elapsed(), bar)
                if prog.step % cfg.checkpoint_every == 0:
                    self._checkpoint(prog, state, elapsed())
                elif evaluated or time.perf_counter() - self._last_flush >= _METRICS_FLUSH_S:
                    self._write_metrics()
                stop = self._stop_reason(prog, elapsed())
                if stop is not None:
                    break
            else:
                if seen == 0:
                    raise ValueError(
                        f"task '{self.task.name}' yielded no training batches for epoch "
                        f"{prog.epoch}"
                    )
                if seen < prog.batch_index:
                    raise ValueError(
                        f"task '{self.task.name}' yielded {seen} batches in epoch {prog.epoch}, "
                        f"but the checkpoint had consumed {prog.batch_index}: the training data "
                        "is not deterministic per epoch"
                    )
                prog.epoch += 1
                prog.batch_index = 0
                state = None  # the stream restarts with every epoch
                stop = self._stop_reason(prog, elapsed())
        return stop, state

    def _train_step(self, prog: _Progress, batch: Any, state: Any) -> Any:
        """One optimiser step on ``batch``; returns the state to carry into the next batch."""
        cfg = self.config
        model, optimizer = self.model, self.optimizer
        step = prog.step + 1
        started = time.perf_counter()
        model.train()
        batch = move_to_device(batch, self.device)
        self.task.begin_step(step)
        with self._autocast():
            if self.task.stateful:
                out = self.task.step(model, batch, state)
            else:
                out = self.task.step(model, batch)
        loss = self._check_output(out, step)
        lr = float(optimizer.param_groups[0]["lr"])
        loss_value = float(loss.detach())
        acc = prog.acc
        new_state: Any = None
        if not math.isfinite(loss_value):
            self._nonfinite(prog, step, f"non-finite loss ({loss_value})")
        else:
            scaled: Tensor = self.scaler.scale(loss)
            torch.autograd.backward(scaled)
            self.scaler.unscale_(optimizer)
            max_norm = cfg.clip_grad_norm if cfg.clip_grad_norm is not None else math.inf
            grad_norm = float(nn.utils.clip_grad_norm_(self._params(), max_norm=max_norm))
            if not math.isfinite(grad_norm) and not self.scaler.is_enabled():
                self._nonfinite(prog, step, f"non-finite gradient norm ({grad_norm})")
            else:
                # with fp16 the GradScaler skips overflowing steps itself and lowers its scale
                self.scaler.step(optimizer)
                self.scaler.update()
                if self.task.stateful:
                    new_state = detach_state(out.state)
                acc["loss_sum"] += loss_value
                acc["loss_n"] += 1
                if math.isfinite(grad_norm):
                    acc["grad_norm_sum"] += grad_norm
                    acc["grad_norm_n"] += 1
                    acc["clipped"] += int(cfg.clip_grad_norm is not None and grad_norm > max_norm)
                for name, value in out.metrics.items():
                    total = acc["metrics"].setdefault(str(name), [0.0, 0])
                    total[0] += float(value)
                    total[1] += 1
        optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():
            # a skipped first step leaves the optimizer unstepped; the lr still follows the step
            warnings.filterwarnings(
                "ignore", message="Detected call of `lr_scheduler.step", category=UserWarning
            )
            self.scheduler.step()
        tokens = int(out.num_tokens)
        prog.target_tokens += tokens
        acc["tokens"] += tokens
        acc["steps"] += 1
        acc["lr"] = lr
        acc["train_time"] += time.perf_counter() - started
        return new_state

    def _check_output(self, out: Any, step: int) -> Tensor:
        if not isinstance(out, StepOutput):
            raise TypeError(
                f"task '{self.task.name}'.step must return a StepOutput, got {type(out).__name__}"
            )
        if not isinstance(out.loss, Tensor) or out.loss.dim() != 0:
            raise TypeError(
                f"task '{self.task.name}'.step must return a scalar (0-dim) loss tensor "
                f"(step {step})"
            )
        return out.loss

    def _nonfinite(self, prog: _Progress, step: int, what: str) -> None:
        cfg = self.config
        self.optimizer.zero_grad(set_to_none=True)
        if cfg.nonfinite == "stop":
            raise TrainingError(f"{what} at step {step} (train.nonfinite: stop)")
        prog.skipped_steps += 1
        logger.warning("step %d: %s; step skipped (%d so far)", step, what, prog.skipped_steps)
        if prog.skipped_steps >= cfg.max_nonfinite:
            raise TrainingError(
                f"{what} at step {step}: {prog.skipped_steps} steps skipped for non-finite "
                f"values, reaching train.max_nonfinite ({cfg.max_nonfinite})"
            )

    def _params(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.grad is not None]

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self._amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self._amp_dtype)

    def _total_steps(self) -> int | None:
        """Steps the schedule spans: max_steps, or epochs x batches per epoch (counted once)."""
        cfg = self.config
        if cfg.schedule not in ("linear", "cosine") or cfg.epochs is None:
            return cfg.max_steps
        with preserved_rng(self.device.type == "cuda"):
            per_epoch = sum(1 for _ in self.task.train_batches(0))
        total = per_epoch * cfg.epochs
        return total if cfg.max_steps is None else min(total, cfg.max_steps)

    # ------------------------------------------------------------------ evaluation

    def _evaluate(self, prog: _Progress) -> None:
        """Validation under ``model.eval()`` (RNG untouched); updates best and early stopping."""
        model = self.model
        batches: Iterable[Any] = (move_to_device(b, self.device) for b in self.task.valid_batches())
        model.eval()
        try:
            with preserved_rng(self._cuda), torch.no_grad(), self._autocast():
                results = self.task.evaluate(model, batches)
        finally:
            model.train()
        results = {str(k): float(v) for k, v in results.items()}
        if self.metric_name not in results:
            raise TrainingError(
                f"task '{self.task.name}'.evaluate returned no '{self.metric_name}' "
                f"(got: {', '.join(results) or 'nothing'})"
            )
        prog.last_valid = results
        prog.last_eval_step = prog.step
        value = results[self.metric_name]
        better = math.isfinite(value) and (
            prog.best is None
            or (value < prog.best if self.metric_mode == "min" else value > prog.best)
        )
        if better:
            prog.best, prog.best_step, prog.bad_evals = value, prog.step, 0
            self._save_weights(
                self.run_dir / BEST_FILE,
                prog.step,
                {"metric": self.metric_name, "value": repr(value)},
            )
        else:
            prog.bad_evals += 1
        if self.stop_when is not None and math.isfinite(value) and self.stop_when(value):
            prog.target_reached = True
        logger.info(
            "step %d: %s",
            prog.step,
            ", ".join(f"valid_{k}={v:.6g}" for k, v in results.items()),
        )

    # ------------------------------------------------------------------ metrics.csv

    def _add_row(self, prog: _Progress, elapsed: float, bar: Any) -> None:
        acc = prog.acc
        loss_n, norm_n = acc["loss_n"], acc["grad_norm_n"]
        train_time = acc["train_time"]
        row: dict[str, Any] = {
            "step": prog.step,
            "epoch": prog.epoch,
            "elapsed_s": round(elapsed, 3),
            "lr": acc["lr"],
            "train_loss": acc["loss_sum"] / loss_n if loss_n else math.nan,
            "grad_norm": acc["grad_norm_sum"] / norm_n if norm_n else math.nan,
            "clip_rate": acc["clipped"] / norm_n if norm_n else math.nan,
            "skipped_steps": prog.skipped_steps,
            "target_tokens": prog.target_tokens,
            "tokens_per_s": acc["tokens"] / train_time if train_time > 0 else math.nan,
        }
        for name, (total, count) in acc["metrics"].items():
            if name == "loss":
                continue
            column = f"train_{name}"
            if column not in self._columns:
                first_valid = next(
                    (i for i, c in enumerate(self._columns) if c.startswith("valid_")),
                    len(self._columns),
                )
                self._columns.insert(first_valid, column)
            row[column] = total / count
        if prog.last_eval_step == prog.step:
            for name in self.task.metric_names:
                row[f"valid_{name}"] = prog.last_valid.get(name)
        self._rows.append({k: _fmt(v) for k, v in row.items()})
        prog.acc = _new_acc(elapsed)
        bar.set_postfix(loss=f"{row['train_loss']:.4g}", tok_s=f"{row['tokens_per_s']:.4g}")
        if self._tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, int | float):
                    self._tb.add_scalar(key, value, prog.step)

    def _load_rows(self, step: int) -> None:
        """Read metrics.csv, dropping rows after ``step`` (the checkpoint resumed from)."""
        path = self.run_dir / METRICS_FILE
        if not path.is_file():
            return
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                header = list(reader.fieldnames or [])
                rows = [dict(r) for r in reader if int(r["step"]) <= step]
        except (ValueError, KeyError, csv.Error) as err:
            warnings.warn(f"{path}: unreadable ({err}); starting a new one", stacklevel=3)
            return
        for column in header:
            if column not in self._columns:
                first_valid = next(
                    (i for i, c in enumerate(self._columns) if c.startswith("valid_")),
                    len(self._columns),
                )
                self._columns.insert(first_valid, column)
        self._rows = rows

    def _write_metrics(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self._columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(self._rows)
        write_text_atomic(self.run_dir / METRICS_FILE, buffer.getvalue())
        self._last_flush = time.perf_counter()

    # ------------------------------------------------------------------ files

    def _save_weights(self, path: Path, step: int, extra: dict[str, str] | None = None) -> None:
        metadata = {"format": "pt", "step": str(step), **(extra or {})}
        try:
            save_safetensors(self.model.state_dict(), path, metadata)
        except NonFiniteError as err:
            raise TrainingError(f"step {step}: model weights are not finite: {err}") from None

    def _checkpoint(self, prog: _Progress, state: Any, elapsed: float) -> None:
        """metrics.csv first (it must cover the checkpoint's step), then the checkpoint, prune."""
        self._write_metrics()
        prog.elapsed_s = elapsed
        body = {
            **prog.to_dict(),
            "model": dict(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": capture_rng_state(self._cuda),
            "stream_state": to_plain(state),
            "train_config": self.config.model_dump(mode="json"),
        }
        path = checkpoint_path(self.run_dir, prog.step)
        try:
            save_checkpoint(body, path)
        except NonFiniteError as err:
            raise TrainingError(
                f"step {prog.step}: training state is not finite, checkpoint not written: {err}"
            ) from None
        self._last_saved_step = prog.step
        prune_checkpoints(self.run_dir, self.config.keep_checkpoints)

    def _restore(self) -> tuple[_Progress, Any]:
        point = find_resume_checkpoint(self.run_dir)
        if point is None:
            raise ValueError(
                f"cannot resume: no usable checkpoint in {checkpoint_dir(self.run_dir)}; "
                "start a new run without --resume"
            )
        ckpt = point.state
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ValueError(f"{point.path} does not match this model/optimizer: {err}") from None
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler.is_enabled() and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        rng = dict(ckpt["rng"])
        if not self._cuda:
            rng["cuda"] = None
        restore_rng_state(rng)
        prog = _Progress.from_dict(ckpt)
        if not prog.acc:
            prog.acc = _new_acc(prog.elapsed_s)
        state = map_tensors(ckpt.get("stream_state"), lambda t: t.to(self.device))
        return prog, state

    def _finish(self, prog: _Progress, state: Any, elapsed: Callable[[], float], bar: Any) -> None:
        """Final evaluation (unless this step was just evaluated), row, checkpoint, model file."""
        changed = False
        if prog.step > 0 and prog.last_eval_step != prog.step:
            self._evaluate(prog)
            changed = True
            if self._rows and self._last_row_step() == prog.step:
                # this step already has its training row: add the validation columns to it
                last = self._rows[-1]
                for name in self.task.metric_names:
                    last[f"valid_{name}"] = _fmt(prog.last_valid.get(name))
        if prog.acc.get("steps", 0) or (changed and self._last_row_step() != prog.step):
            self._add_row(prog, elapsed(), bar)
            changed = True
        if changed or self._last_saved_step != prog.step:
            self._checkpoint(prog, state, elapsed())
        else:
            self._write_metrics()
        prog.elapsed_s = elapsed()
        self._save_weights(self.run_dir / MODEL_FILE, prog.step)

    def _last_row_step(self) -> int:
        return int(self._rows[-1]["step"]) if self._rows else -1

    def _open_tensorboard(self) -> Any:
        """A SummaryWriter in ``run_dir/tensorboard`` when tensorboard is installed, else None."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))


def train_task(
    task: Task,
    run_dir: str | Path,
    resume: bool = False,
    *,
    stop_when: Callable[[float], bool] | None = None,
) -> TrainResult:
    """Train ``task`` with its config's ``train`` section into ``run_dir``; the API entry point.

    Equivalent to ``Trainer(task, task.config.train, run_dir, stop_when=stop_when)
    .fit(resume=resume)``; ``stop_when`` is described in :class:`Trainer`. The caller
    writes ``config.yaml``; this writes ``metrics.csv``, ``best.safetensors``,
    ``checkpoints/`` and ``model.safetensors``.
    """
    return Trainer(task, task.config.train, run_dir, stop_when=stop_when).fit(resume=resume)
