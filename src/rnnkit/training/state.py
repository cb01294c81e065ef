"""The position of a training run (what a checkpoint carries besides tensors) and its summary.

:class:`RunState` is shared by the loop (:mod:`rnnkit.training.trainer`), which advances it, and
the callbacks (:mod:`rnnkit.training.callbacks`), which read it and keep early stopping's part of
it. Its :meth:`~RunState.to_dict` form is the checkpoint layout read by every rnnkit since
checkpoints exist, so older run folders resume. :class:`TrainResult` is what
:meth:`~rnnkit.training.Trainer.fit` returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

StopReason = Literal["max_steps", "epochs", "max_time_s", "early_stopping", "target_reached"]


def new_accumulator(row_elapsed: float = 0.0) -> dict[str, Any]:
    """Empty sums of the training steps since the last metrics row (plain data, checkpointed)."""
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


@dataclass
class RunState:
    """Everything about the run's position that a checkpoint must carry (plain data only).

    Attributes:
        step: optimiser steps taken (batches consumed), over all sessions.
        epoch / batch_index: the epoch (0-based) and the batches of it already consumed.
        elapsed_s: wall clock over all sessions, as of the last checkpoint or the end.
        target_tokens / skipped_steps: cumulative ``StepOutput.num_tokens`` and skipped steps
            (non-finite ones and fp16 GradScaler overflows).
        overflow_steps: the skipped steps of those that were fp16 overflows (the GradScaler
            lowered its scale); they do not count towards ``train.max_nonfinite``.
        best / best_step / bad_evals: the tracked validation metric's best value, its step, and
            the evaluations since without improvement (early stopping).
        target_reached: the ``stop_when`` callback said stop.
        last_eval_step / last_valid: the last evaluation's step and results.
        acc: sums since the last metrics row (:func:`new_accumulator`).
    """

    step: int = 0
    epoch: int = 0
    batch_index: int = 0
    elapsed_s: float = 0.0
    target_tokens: int = 0
    skipped_steps: int = 0
    overflow_steps: int = 0
    best: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    target_reached: bool = False
    last_eval_step: int | None = None
    last_valid: dict[str, float] = field(default_factory=dict)
    acc: dict[str, Any] = field(default_factory=new_accumulator)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint form (top-level keys of the checkpoint file)."""
        return {
            "step": self.step,
            "epoch": self.epoch,
            "batch_index": self.batch_index,
            "elapsed_s": self.elapsed_s,
            "target_tokens": self.target_tokens,
            "skipped_steps": self.skipped_steps,
            "overflow_steps": self.overflow_steps,
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
    def from_dict(cls, state: dict[str, Any]) -> RunState:
        """Inverse of :meth:`to_dict` (keys added later default, so old checkpoints load)."""
        stopping = state.get("early_stopping", {})
        return cls(
            step=int(state["step"]),
            epoch=int(state["epoch"]),
            batch_index=int(state["batch_index"]),
            elapsed_s=float(state["elapsed_s"]),
            target_tokens=int(state.get("target_tokens", 0)),
            skipped_steps=int(state.get("skipped_steps", 0)),
            overflow_steps=int(state.get("overflow_steps", 0)),
            best=stopping.get("best"),
            best_step=stopping.get("best_step"),
            bad_evals=int(stopping.get("bad_evals", 0)),
            target_reached=bool(stopping.get("target_reached", False)),
            last_eval_step=stopping.get("last_eval_step"),
            last_valid=dict(stopping.get("last_valid", {})),
            acc=dict(state.get("log") or new_accumulator(float(state["elapsed_s"]))),
        )

    def record_update(
        self, loss: float, grad_norm: float, clipped: bool, metrics: Mapping[str, Any]
    ) -> None:
        """Add a taken optimiser step to the row sums: its loss, its gradient norm before
        clipping (left out when not finite, as fp16 overflow steps are), whether it was clipped,
        and the task's per-step ``metrics`` (floats or 0-dim tensors)."""
        acc = self.acc
        acc["loss_sum"] += loss
        acc["loss_n"] += 1
        if math.isfinite(grad_norm):
            acc["grad_norm_sum"] += grad_norm
            acc["grad_norm_n"] += 1
            acc["clipped"] += int(clipped)
        for name, value in metrics.items():
            total = acc["metrics"].setdefault(str(name), [0.0, 0])
            total[0] += float(value)
            total[1] += 1

    def record_batch(self, tokens: int, lr: float, seconds: float) -> None:
        """Count a consumed batch, taken or skipped: its target tokens, the lr it was trained
        with, and the seconds its step took."""
        self.target_tokens += tokens
        acc = self.acc
        acc["tokens"] += tokens
        acc["steps"] += 1
        acc["lr"] = lr
        acc["train_time"] += seconds

    def take_row(self, elapsed: float, metric_names: Sequence[str]) -> dict[str, Any]:
        """The metrics row of the steps since the last one, and a fresh accumulator.

        Training columns average those steps (NaN when there were none, or none finite);
        ``valid_<name>`` columns are filled when this step was just evaluated.
        """
        acc = self.acc
        loss_n, norm_n = acc["loss_n"], acc["grad_norm_n"]
        train_time = acc["train_time"]
        row: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch,
            "elapsed_s": round(elapsed, 3),
            "lr": acc["lr"],
            "train_loss": acc["loss_sum"] / loss_n if loss_n else math.nan,
            "grad_norm": acc["grad_norm_sum"] / norm_n if norm_n else math.nan,
            "clip_rate": acc["clipped"] / norm_n if norm_n else math.nan,
            "skipped_steps": self.skipped_steps,
            "target_tokens": self.target_tokens,
            "tokens_per_s": acc["tokens"] / train_time if train_time > 0 else math.nan,
        }
        for name, (total, count) in acc["metrics"].items():
            if name != "loss":
                row[f"train_{name}"] = total / count
        if self.last_eval_step == self.step:
            for name in metric_names:
                row[f"valid_{name}"] = self.last_valid.get(name)
        self.acc = new_accumulator(elapsed)
        return row


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
