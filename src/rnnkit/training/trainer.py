"""One trainer for every task: the loop of budgets, clipping, truncated BPTT, evaluation, resume.

The :class:`Trainer` knows no model and no batch layout. A task (anything satisfying
:class:`~rnnkit.training.protocol.TrainableTask`) builds the model, yields batches and turns one
batch into a :class:`StepOutput` (loss, metrics, target tokens, carried state); the trainer owns
everything else::

    for each step:                                   # s = global step, 1-based in files
        out = task.step(model, batch, state)         # under model.train() (+ autocast on CUDA)
        if loss or grad norm is not finite: skip or stop (train.nonfinite)
        g = ||grad||_2 before clipping;  clip to train.clip_grad_norm;  optimizer.step()
        state = detach(out.state)                    # truncated BPTT, reset to None each epoch
        every eval_every / log_every steps: validation / metrics row  -> callbacks
        callbacks: metrics.csv, best.safetensors, progress, checkpoint every checkpoint_every

Around the loop: the device and precision (:class:`~rnnkit.training.device.Device`), the
callbacks that write files and report (:mod:`rnnkit.training.callbacks`), checkpoint files
(:mod:`rnnkit.training.checkpoint`) and the run's plain-data position
(:class:`~rnnkit.training.state.RunState`). Files written into ``run_dir`` (each one atomically,
see :mod:`rnnkit.io`):

* ``metrics.csv`` -- a row every ``log_every`` steps and at every evaluation,
* ``best.safetensors`` -- weights at the best validation score,
* ``checkpoints/step_XXXXXXXX.pt`` -- everything needed to resume bit-exactly,
* ``model.safetensors`` -- final weights.

A resumed run (``fit(resume=True)``) continues from the newest checkpoint that loads and, on CPU,
produces byte-identical ``model.safetensors`` to an uninterrupted run.

Under ``torchrun`` the same loop runs in every process (:mod:`rnnkit.training.distributed`): the
model in DDP, each rank on its shard of every epoch, rank 0 evaluating, deciding when to stop and
writing every file.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from rnnkit.config import TrainConfig
from rnnkit.io import (
    NonFiniteError,
    clean_temp_files,
    load_checkpoint,
    save_checkpoint,
    save_safetensors,
)
from rnnkit.training.callbacks import (
    Callback,
    Checkpointing,
    EarlyStopping,
    MetricsCSV,
    ProgressReporter,
    TensorBoard,
)
from rnnkit.training.checkpoint import (
    capture_rng_state,
    checkpoint_dir,
    checkpoint_path,
    detach_state,
    find_resume_checkpoint,
    list_checkpoints,
    preserved_rng,
    prune_checkpoints,
    restore_rng_state,
    to_plain,
)
from rnnkit.training.device import Device
from rnnkit.training.distributed import init_process_group, routed, shard_batches, wrap
from rnnkit.training.optim import build_optimizer, build_scheduler
from rnnkit.training.protocol import StepOutput, TrainableTask
from rnnkit.training.state import RunState, StopReason, TrainResult

_STOP_REASONS: tuple[StopReason, ...] = (
    "max_steps",
    "epochs",
    "max_time_s",
    "early_stopping",
    "target_reached",
)

logger = logging.getLogger("rnnkit.training")

MODEL_FILE = "model.safetensors"


class TrainingError(RuntimeError):
    """Training cannot continue (non-finite loss/gradients/weights); the message names the step."""


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), Python's ``random`` and numpy's global RNG with ``seed``."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


class Trainer:
    """Trains ``task``'s model under ``train_config``, writing into ``run_dir``.

    Args:
        task: the task (batches in, loss and metrics out); see
            :class:`~rnnkit.training.protocol.TrainableTask`.
        train_config: the ``train`` section (optimiser, schedule, budget, checkpoints, ...),
            validated on its construction.
        run_dir: the run folder; created if missing.
        model: the model to train; when None, ``torch.manual_seed(train.seed)`` is called and
            ``task.build_model()`` builds it.
        stop_when: optional ``f(value) -> bool`` called after every evaluation with the tracked
            validation metric (``train.early_stopping_metric`` or the task's ``best_metric``);
            True ends the run with stop reason "target_reached" (e.g. "task solved").
        callbacks: more :class:`~rnnkit.training.callbacks.Callback` objects, called after the
            built-in ones (metrics.csv, early stopping, progress, TensorBoard, checkpoints).

    Construction checks what the config alone cannot (the early-stopping metric is one of the
    task's, the device exists, reduced precision has CUDA; ValueError naming the key), applies
    ``train.threads``, seeds torch, ``random`` and numpy with ``train.seed`` and builds the
    model; it writes nothing. :meth:`fit` trains.

    Launched by ``torchrun`` (``WORLD_SIZE`` > 1), construction joins the process group
    (:func:`~rnnkit.training.distributed.init_process_group`; ``distributed`` is this process's
    place in it) and wraps the model in DDP; ranks other than 0 are seeded with
    ``train.seed + rank`` after the model is built (their own dropout masks), write no file and
    run no progress bar or TensorBoard writer. Callbacks passed in run on every rank: write
    files only where ``trainer.distributed.is_main``.

    During :meth:`fit`, callbacks read ``run_state`` (the run's position), ``resumed_from``,
    ``planned_steps`` and :meth:`elapsed`, and write through :meth:`save_weights` and
    :meth:`save_checkpoint`.
    """

    def __init__(
        self,
        task: TrainableTask,
        train_config: TrainConfig,
        run_dir: str | Path,
        model: nn.Module | None = None,
        *,
        stop_when: Callable[[float], bool] | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> None:
        self.task = task
        self.config = train_config
        self.run_dir = Path(run_dir)
        self.early_stopping = EarlyStopping(task, train_config, stop_when)
        self.metric_name = self.early_stopping.metric_name
        self.metric_mode = self.early_stopping.mode
        self.device = Device.from_config(train_config)
        self.distributed = init_process_group(train_config.device)
        self.device.configure_threads()
        seed_everything(train_config.seed)
        if model is None:
            model = task.build_model()
        self.model = self.device.prepare_model(model)
        self._ddp = wrap(self.model, self.distributed)  # None for a single process
        if self.distributed.rank > 0:
            seed_everything(train_config.seed + self.distributed.rank)
        main = self.distributed.is_main
        self.metrics = MetricsCSV(self.run_dir, task.metric_names, writes=main)
        self.callbacks: list[Callback] = [
            self.metrics,
            self.early_stopping,
            *([ProgressReporter(train_config), TensorBoard()] if main else []),
            Checkpointing(train_config.checkpoint_every),
            *callbacks,
        ]
        self.run_state = RunState()
        self.stream_state: Any = None  # the recurrent state carried between batches
        self.resumed_from: int | None = None
        self.planned_steps: int | None = None  # the step budget, when known (for an ETA)
        self._clock = (time.perf_counter(), 0.0)

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
        cfg, main = self.config, self.distributed.is_main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            existing = list_checkpoints(self.run_dir)
            if existing:
                raise ValueError(
                    f"{self.run_dir} already holds checkpoints (newest: {existing[-1].name}); "
                    "pass --resume to continue that run, or choose a new run folder"
                )
            if main:
                clean_temp_files(self.run_dir)
                clean_temp_files(checkpoint_dir(self.run_dir))

        # the data's one-off work (reading files, computing cached features) is not training
        # time: done before the clock starts, on rank 0 first so the others read its cache
        if main:
            self.task.load_data()
        self.distributed.barrier()
        if not main:
            self.task.load_data()
        self.optimizer = build_optimizer(self._parameters(), cfg)
        total_steps = self._total_steps()
        self.scheduler = build_scheduler(self.optimizer, cfg, total_steps)
        self.scaler = self.device.grad_scaler()
        self.planned_steps = total_steps

        self.resumed_from = None
        self.stream_state = None
        if resume:
            self.run_state, self.stream_state = self._restore()
            self.resumed_from = self.run_state.step
            logger.info("resumed %s from step %d", self.run_dir, self.run_state.step)
        else:
            self.run_state = RunState()
        self._clock = (time.perf_counter(), self.run_state.elapsed_s)

        with contextlib.ExitStack() as stack:
            stack.enter_context(self.device.session())
            for callback in self.callbacks:
                stack.callback(callback.close)
                callback.on_fit_start(self)
            stop = self._run()
            self._finish()
        self.distributed.barrier()  # the others return once rank 0 has written the final files
        state = self.run_state
        return TrainResult(
            step=state.step,
            epoch=state.epoch,
            elapsed_s=state.elapsed_s,
            stop_reason=stop,
            best_metric_name=self.metric_name,
            best_mode=self.metric_mode,
            best_metric=state.best,
            best_step=state.best_step,
            valid_metrics=dict(state.last_valid),
            target_tokens=state.target_tokens,
            skipped_steps=state.skipped_steps,
            resumed_from=self.resumed_from,
            run_dir=self.run_dir,
        )

    def _parameters(self) -> Any:
        """What the optimiser trains: the task's parameter groups when it declares them
        (``parameter_groups(model, lr)``: a CNN fine-tuned at its own rate), else every
        parameter of the model."""
        groups = getattr(self.task, "parameter_groups", None)
        if groups is None:
            return self.model.parameters()
        return groups(self.model, self.config.lr)

    def elapsed(self) -> float:
        """Wall-clock seconds of the run so far, over all resumed sessions."""
        started, before = self._clock
        return before + (time.perf_counter() - started)

    def save_weights(self, path: Path, step: int, extra: dict[str, str] | None = None) -> None:
        """Write the model's weights to ``path`` (safetensors, metadata ``step`` and ``extra``);
        on rank 0 only (every rank holds the same weights).

        Raises:
            TrainingError: a weight is not finite (nothing is written).
        """
        if not self.distributed.is_main:
            return
        metadata = {"format": "pt", "step": str(step), **(extra or {})}
        try:
            save_safetensors(self.model.state_dict(), path, metadata)
        except NonFiniteError as err:
            raise TrainingError(f"step {step}: model weights are not finite: {err}") from None

    def save_checkpoint(self) -> None:
        """Checkpoint the current step (callbacks' files first, then the checkpoint, then prune).

        Every rank calls it at the same steps (it gathers their RNG states); rank 0 writes.

        Raises:
            TrainingError: some tensor of the training state is not finite (nothing is written).
        """
        for callback in self.callbacks:
            callback.on_save(self)
        state = self.run_state
        state.elapsed_s = self.elapsed()
        group = self.distributed
        rng = group.gather(capture_rng_state(self.device.is_cuda))
        if not group.is_main:
            return
        body = {
            **state.to_dict(),
            "model": dict(self.model.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": rng[0],
            "rng_ranks": rng if group.enabled else None,
            "world_size": group.world_size,
            "stream_state": to_plain(self.stream_state),
            "train_config": self.config.model_dump(mode="json"),
        }
        try:
            save_checkpoint(body, checkpoint_path(self.run_dir, state.step))
        except NonFiniteError as err:
            raise TrainingError(
                f"step {state.step}: training state is not finite, checkpoint not written: {err}"
            ) from None
        prune_checkpoints(self.run_dir, self.config.keep_checkpoints)

    # ------------------------------------------------------------------ loop

    def _stop_reason(self) -> StopReason | None:
        cfg, state = self.config, self.run_state
        if cfg.max_steps is not None and state.step >= cfg.max_steps:
            return "max_steps"
        if cfg.epochs is not None and state.epoch >= cfg.epochs:
            return "epochs"
        if cfg.max_time_s is not None and self.elapsed() >= cfg.max_time_s:
            return "max_time_s"
        for callback in self.callbacks:
            reason = callback.stop_reason(self)
            if reason is not None:
                return reason
        return None

    def _agreed_stop(self) -> StopReason | None:
        """Rank 0's :meth:`_stop_reason`, on every rank (their clocks and callbacks may differ)."""
        group = self.distributed
        reason = self._stop_reason() if group.is_main else None
        if not group.enabled:
            return reason
        code = group.sum([_STOP_REASONS.index(reason) + 1 if reason is not None else 0])[0]
        return _STOP_REASONS[int(code) - 1] if code else None

    def _epoch_batches(self, epoch: int) -> Iterable[Any]:
        """This rank's batches of ``epoch`` (all of them for a single process)."""
        group = self.distributed
        batches = self.task.train_batches(epoch)
        if not group.enabled:
            return batches
        total = None
        if self.task.stateful:  # contiguous blocks keep each rank's stream in order
            with preserved_rng(self.device.is_cuda):
                total = sum(1 for _ in self.task.train_batches(epoch))
        return shard_batches(batches, group.rank, group.world_size, total=total)

    def _run(self) -> StopReason:
        """The epoch/batch loop; returns why it stopped."""
        cfg, state = self.config, self.run_state
        stop = self._agreed_stop()
        while stop is None:
            seen = 0
            for index, batch in enumerate(self._epoch_batches(state.epoch)):
                seen += 1
                if index < state.batch_index:  # consumed before the checkpoint we resumed from
                    continue
                self.stream_state = self._train_step(batch, self.stream_state)
                state.step += 1
                state.batch_index += 1
                evaluated = state.step % cfg.eval_every == 0
                if evaluated:
                    self._evaluate()
                if evaluated or state.step % cfg.log_every == 0:
                    self._add_row()
                for callback in self.callbacks:
                    callback.on_step_end(self)
                stop = self._agreed_stop()
                if stop is not None:
                    break
            else:
                if seen == 0:
                    world = self.distributed.world_size
                    raise ValueError(
                        f"task '{self.task.name}' yielded no training batches for epoch "
                        f"{state.epoch}"
                        + (f" (fewer than the {world} processes, one each)" if world > 1 else "")
                    )
                if seen < state.batch_index:
                    raise ValueError(
                        f"task '{self.task.name}' yielded {seen} batches in epoch {state.epoch}, "
                        f"but the checkpoint had consumed {state.batch_index}: the training data "
                        "is not deterministic per epoch"
                    )
                if self.planned_steps is None and cfg.epochs is not None:
                    by_epochs = seen * cfg.epochs
                    self.planned_steps = min(by_epochs, cfg.max_steps or by_epochs)
                state.epoch += 1
                state.batch_index = 0
                self.stream_state = None  # the stream restarts with every epoch
                stop = self._agreed_stop()
        return stop

    def _train_step(self, batch: Any, carried: Any) -> Any:
        """One optimiser step on ``batch``; returns the state to carry into the next batch."""
        cfg, run = self.config, self.run_state
        model, optimizer = self.model, self.optimizer
        step = run.step + 1
        started = time.perf_counter()
        model.train()
        batch = self.device.to_device(batch)
        self.task.begin_step(step)
        with self.device.autocast(), routed(model, self._ddp):
            if self.task.stateful:
                out = self.task.step(model, batch, carried)
            else:
                out = self.task.step(model, batch)
        loss = self._check_output(out, step)
        lr = float(optimizer.param_groups[0]["lr"])
        loss_value, num_tokens, metrics = self._global_step_values(loss, out)
        new_state: Any = None
        if not math.isfinite(loss_value):
            self._nonfinite(step, f"non-finite loss ({loss_value})")
        else:
            scaled: Tensor = self.scaler.scale(loss)
            torch.autograd.backward(scaled)
            self.scaler.unscale_(optimizer)
            max_norm = cfg.clip_grad_norm if cfg.clip_grad_norm is not None else math.inf
            grad_norm = float(nn.utils.clip_grad_norm_(self._params(), max_norm=max_norm))
            if not math.isfinite(grad_norm) and not self.scaler.is_enabled():
                self._nonfinite(step, f"non-finite gradient norm ({grad_norm})")
            else:
                # with fp16 the GradScaler skips overflowing steps itself and lowers its scale
                scale = self.scaler.get_scale() if self.scaler.is_enabled() else 0.0
                self.scaler.step(optimizer)
                self.scaler.update()
                if self.task.stateful:
                    new_state = detach_state(out.state)
                if self.scaler.is_enabled() and self.scaler.get_scale() < scale:
                    run.skipped_steps += 1
                    run.overflow_steps += 1
                    logger.debug("step %d: fp16 gradients overflowed; step skipped", step)
                else:
                    clipped = cfg.clip_grad_norm is not None and grad_norm > max_norm
                    run.record_update(loss_value, grad_norm, clipped, metrics)
        optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():
            # a skipped first step leaves the optimizer unstepped; the lr still follows the step
            warnings.filterwarnings(
                "ignore", message="Detected call of `lr_scheduler.step", category=UserWarning
            )
            self.scheduler.step()
        run.record_batch(num_tokens, lr, time.perf_counter() - started)
        return new_state

    def _global_step_values(
        self, loss: Tensor, out: StepOutput
    ) -> tuple[float, int, dict[str, float | Tensor]]:
        """The step's loss, target tokens and metrics over the global batch: this process's
        own, or with several processes the mean loss and metrics and the summed tokens of all
        ranks (so that a non-finite loss on any rank skips the step on every rank)."""
        group = self.distributed
        if not group.enabled:
            return float(loss.detach()), int(out.num_tokens), out.metrics
        names = sorted(out.metrics)
        values = [float(loss.detach()), float(out.num_tokens)]
        values += [float(out.metrics[name]) for name in names]
        total = group.sum(values)
        world = group.world_size
        metrics: dict[str, float | Tensor] = {
            name: total[2 + i] / world for i, name in enumerate(names)
        }
        return total[0] / world, int(total[1]), metrics

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

    def _nonfinite(self, step: int, what: str) -> None:
        cfg, run = self.config, self.run_state
        self.optimizer.zero_grad(set_to_none=True)
        if cfg.nonfinite == "stop":
            raise TrainingError(f"{what} at step {step} (train.nonfinite: stop)")
        run.skipped_steps += 1
        logger.warning("step %d: %s; step skipped (%d so far)", step, what, run.skipped_steps)
        nonfinite = run.skipped_steps - run.overflow_steps
        if nonfinite >= cfg.max_nonfinite:
            raise TrainingError(
                f"{what} at step {step}: {nonfinite} steps skipped for non-finite "
                f"values, reaching train.max_nonfinite ({cfg.max_nonfinite})"
            )

    def _params(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.grad is not None]

    def _total_steps(self) -> int | None:
        """Steps the schedule spans: max_steps, or epochs x batches per epoch (counted once)."""
        cfg = self.config
        if cfg.schedule not in ("linear", "cosine") or cfg.epochs is None:
            return cfg.max_steps
        with preserved_rng(self.device.is_cuda):
            per_epoch = sum(1 for _ in self.task.train_batches(0))
        per_epoch //= self.distributed.world_size  # each rank's share (shard_batches)
        total = per_epoch * cfg.epochs
        return total if cfg.max_steps is None else min(total, cfg.max_steps)

    # ------------------------------------------------------------------ evaluation and rows

    def _evaluate(self) -> None:
        """Validation under ``model.eval()`` (RNG untouched), then the callbacks' on_evaluate.

        With several processes rank 0 evaluates and the others receive its results."""
        model, state = self.model, self.run_state
        results: dict[str, float] = {}
        if self.distributed.is_main:
            batches: Iterable[Any] = (self.device.to_device(b) for b in self.task.valid_batches())
            model.eval()
            try:
                with preserved_rng(self.device.is_cuda), torch.no_grad(), self.device.autocast():
                    found = self.task.evaluate(model, batches)
            finally:
                model.train()
            results = {str(k): float(v) for k, v in found.items()}
        results = self.distributed.broadcast(results)
        if self.metric_name not in results:
            raise TrainingError(
                f"task '{self.task.name}'.evaluate returned no '{self.metric_name}' "
                f"(got: {', '.join(results) or 'nothing'})"
            )
        state.last_valid = results
        state.last_eval_step = state.step
        for callback in self.callbacks:
            callback.on_evaluate(self, results)

    def _add_row(self) -> None:
        row = self.run_state.take_row(self.elapsed(), self.task.metric_names)
        for callback in self.callbacks:
            callback.on_row(self, row)

    # ------------------------------------------------------------------ resume and end

    def _restore(self) -> tuple[RunState, Any]:
        group = self.distributed
        # rank 0 chooses (setting aside files that do not load); the others read its choice
        point = find_resume_checkpoint(self.run_dir) if group.is_main else None
        path = group.broadcast(None if point is None else point.path)
        if path is None:
            raise ValueError(
                f"cannot resume: no usable checkpoint in {checkpoint_dir(self.run_dir)}; "
                "start a new run without --resume"
            )
        ckpt = point.state if point is not None else load_checkpoint(path)
        written_by = int(ckpt.get("world_size", 1))
        if written_by != group.world_size:
            raise ValueError(
                f"{path} was written by a run of {written_by} process(es), this one has "
                f"{group.world_size}; resume it with torchrun --nproc-per-node (x nodes) "
                f"= {written_by}"
            )
        try:
            self.model.load_state_dict(ckpt["model"])
            self.optimizer.load_state_dict(ckpt["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise ValueError(f"{path} does not match this model/optimizer: {err}") from None
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler.is_enabled() and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        ranks = ckpt.get("rng_ranks")
        rng = dict(ranks[group.rank] if ranks else ckpt["rng"])
        if not self.device.is_cuda:
            rng["cuda"] = None
        restore_rng_state(rng)
        return RunState.from_dict(ckpt), self.device.to_device(ckpt.get("stream_state"))

    def _finish(self) -> None:
        """Final evaluation (unless this step was just evaluated) and row, callbacks' on_fit_end
        (metrics.csv, the final checkpoint), then ``model.safetensors``."""
        state = self.run_state
        evaluated = False
        if state.step > 0 and state.last_eval_step != state.step:
            self._evaluate()
            evaluated = True
        if state.acc.get("steps", 0) or (evaluated and self.metrics.last_row_step != state.step):
            self._add_row()
        for callback in self.callbacks:
            callback.on_fit_end(self)
        state.elapsed_s = self.elapsed()
        self.save_weights(self.run_dir / MODEL_FILE, state.step)


def train_task(
    task: TrainableTask,
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
