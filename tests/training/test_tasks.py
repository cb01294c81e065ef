"""Tiny tasks the trainer tests train, plus checks of the determinism exact resume relies on.

They implement only :class:`rnnkit.training.TrainableTask` (the trainer knows no task class):
:class:`ToyTask` gives them the plain parts (config, ``begin_step``, a token-weighted
``evaluate``).

* :class:`LinearTask` -- regression ``y = x w + b + noise`` with an MLP (optional dropout); batches
  carry their global ``step_id`` so faults (NaN loss, NaN gradient, poisoned weights, a crash, a
  slow step) can be injected at exact steps, the same way before and after a resume.
* :class:`StreamTask` -- a stateful next-token stream for an LSTM trained with truncated BPTT.

Other test modules (and the subprocess script of the SIGKILL test) import these.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.config import FrozenConfig, RunConfig, TrainConfig
from rnnkit.training import StepOutput


class NoConfig(FrozenConfig):
    """Empty data/model section for test tasks."""


def run_config(**train: Any) -> RunConfig:
    """A RunConfig for a test task with ``train`` overrides (progress off, one thread)."""
    train.setdefault("progress", False)
    return RunConfig(task="test", data=NoConfig(), model=NoConfig(), train=TrainConfig(**train))


class CrashError(RuntimeError):
    """Raised by a task to simulate the process dying mid-run."""


class ToyTask:
    """The plain parts of a :class:`~rnnkit.training.TrainableTask` for the test tasks."""

    name: ClassVar[str] = "toy"
    metric_names: ClassVar[tuple[str, ...]] = ("loss",)
    best_metric: ClassVar[tuple[str, Literal["min", "max"]]] = ("loss", "min")
    stateful: ClassVar[bool] = False

    def __init__(self, config: RunConfig, run_dir: Path | None = None) -> None:
        self.config = config
        self.run_dir = run_dir

    def load_data(self) -> None:
        return None

    def begin_step(self, step: int) -> None:
        return None

    def step(self, model: nn.Module, batch: Any, state: Any = None) -> StepOutput:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        """Token-weighted mean of :meth:`step`'s loss and metrics over ``batches``."""
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


# --------------------------------------------------------------------------- linear regression


class MLP(nn.Module):
    """x (B, D) -> y (B,): Linear(D, W) -> tanh -> dropout -> Linear(W, 1)."""

    def __init__(self, d: int, width: int, dropout: float) -> None:
        super().__init__()
        self.hidden = nn.Linear(d, width)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(width, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.drop(torch.tanh(self.hidden(x)))  # (B, W)
        return self.out(h).squeeze(-1)  # (B,)


class LinearTask(ToyTask):
    """Regression on D=4 features, B=3 examples a batch, ``n_batches`` batches an epoch."""

    name = "test_linear"
    metric_names = ("loss", "mae")
    best_metric = ("loss", "min")

    def __init__(
        self,
        config: RunConfig,
        *,
        d: int = 4,
        width: int = 7,
        dropout: float = 0.0,
        batch_size: int = 3,
        n_batches: int = 5,
        nan_loss_at: Iterable[int] = (),
        nan_grad_at: Iterable[int] = (),
        poison_at: Iterable[int] = (),
        crash_at: int | None = None,
        sleep_s: float = 0.0,
    ) -> None:
        super().__init__(config)
        self.d, self.width, self.dropout = d, width, dropout
        self.batch_size, self.n_batches = batch_size, n_batches
        self.nan_loss_at = set(nan_loss_at)
        self.nan_grad_at = set(nan_grad_at)
        self.poison_at = set(poison_at)
        self.crash_at = crash_at
        self.sleep_s = sleep_s
        g = torch.Generator().manual_seed(1234)
        self.w_true = torch.randn(d, generator=g)  # (D,)
        self.train_losses: list[float] = []  # every training step's loss, in order
        self.eval_modes: list[bool] = []  # model.training seen by evaluation calls
        self.train_modes: list[bool] = []

    def build_model(self) -> nn.Module:
        return MLP(self.d, self.width, self.dropout)

    def _batch(self, g: torch.Generator, step_id: int) -> dict[str, Any]:
        x = torch.randn(self.batch_size, self.d, generator=g)  # (B, D)
        y = x @ self.w_true + 0.1 * torch.randn(self.batch_size, generator=g)  # (B,)
        return {"x": x, "y": y, "step_id": step_id}

    def train_batches(self, epoch: int) -> Iterator[dict[str, Any]]:
        g = torch.Generator().manual_seed(self.config.train.seed * 1000 + epoch)
        for i in range(self.n_batches):
            yield self._batch(g, epoch * self.n_batches + i + 1)

    def valid_batches(self) -> Iterable[dict[str, Any]]:
        g = torch.Generator().manual_seed(99)
        return [self._batch(g, -1) for _ in range(2)]

    def step(self, model: nn.Module, batch: dict[str, Any], state: Any = None) -> StepOutput:
        step_id = batch["step_id"]
        training = model.training
        (self.train_modes if training else self.eval_modes).append(training)
        if training and step_id == self.crash_at:
            raise CrashError(f"simulated crash at step {step_id}")
        if training and self.sleep_s:
            time.sleep(self.sleep_s)
        pred = model(batch["x"])  # (B,)
        loss = F.mse_loss(pred, batch["y"])
        if training and step_id in self.nan_loss_at:
            loss = loss * float("nan")
        if training and step_id in self.nan_grad_at:
            # value sqrt(0) = 0 keeps the loss finite; its gradient 0 * inf is NaN
            first = next(model.parameters())
            loss = loss + torch.sqrt(first.sum() * 0.0)
        if training and step_id in self.poison_at:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        if training:
            self.train_losses.append(float(loss.detach()))
        mae = (pred - batch["y"]).abs().mean()
        return StepOutput(loss=loss, metrics={"mae": mae.detach()}, num_tokens=len(batch["y"]))


class ScriptedValidTask(LinearTask):
    """LinearTask whose validation loss follows a given script (for early stopping)."""

    def __init__(self, config: RunConfig, script: list[float], **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.script = list(script)
        self.evaluations = 0

    def evaluate(self, model: nn.Module, batches: Iterable[Any]) -> dict[str, float]:
        real = super().evaluate(model, batches)
        value = self.script[min(self.evaluations, len(self.script) - 1)]
        self.evaluations += 1
        return {**real, "loss": value}


# --------------------------------------------------------------------------- LSTM stream


class StreamLM(nn.Module):
    """Embedding(V, E) -> LSTM(E, H) -> dropout -> Linear(H, V), batch_first, state in and out."""

    def __init__(self, vocab: int = 11, emb: int = 5, hidden: int = 7, dropout: float = 0.3):
        super().__init__()
        self.emb = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        out, state = self.lstm(self.drop(self.emb(x)), state)  # (B, T, H)
        return self.head(self.drop(out)), state  # (B, T, V)


class StreamTask(ToyTask):
    """Next-token prediction on a deterministic stream: B=3 rows, T=5 tokens a batch.

    Each epoch's stream is cut into B contiguous rows; batch k holds columns [kT, (k+1)T) so the
    LSTM state carried from batch k is the right context for batch k+1.
    """

    name = "test_stream"
    metric_names = ("loss", "accuracy")
    best_metric = ("accuracy", "max")
    stateful = True

    def __init__(
        self,
        config: RunConfig,
        *,
        vocab: int = 11,
        batch_size: int = 3,
        bptt: int = 5,
        n_batches: int = 7,
        crash_at: int | None = None,
        run_dir: Path | None = None,
    ) -> None:
        super().__init__(config, run_dir)
        self.vocab, self.batch_size, self.bptt, self.n_batches = vocab, batch_size, bptt, n_batches
        self.crash_at = crash_at
        self.calls = 0
        # (epoch, batch index, state was None, state detached) for every training step
        self.seen: list[tuple[int, int, bool, bool]] = []

    def build_model(self) -> nn.Module:
        return StreamLM(self.vocab)

    def _stream(self, seed: int) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        n = self.batch_size * (self.n_batches * self.bptt + 1)
        # a learnable stream: next token = (token + small step) mod V
        steps = torch.randint(1, 3, (n,), generator=g)
        return torch.cumsum(steps, 0).remainder(self.vocab).view(self.batch_size, -1)  # (B, L)

    def _batches(self, data: Tensor, epoch: int) -> Iterator[dict[str, Any]]:
        for k in range(self.n_batches):
            cols = slice(k * self.bptt, (k + 1) * self.bptt)
            x = data[:, cols]  # (B, T)
            y = data[:, k * self.bptt + 1 : (k + 1) * self.bptt + 1]  # (B, T)
            yield {"x": x, "y": y, "epoch": epoch, "index": k}

    def train_batches(self, epoch: int) -> Iterator[dict[str, Any]]:
        return self._batches(self._stream(self.config.train.seed * 1000 + epoch), epoch)

    def valid_batches(self) -> Iterable[dict[str, Any]]:
        return list(self._batches(self._stream(7), -1))[:2]

    def step(self, model: nn.Module, batch: dict[str, Any], state: Any = None) -> StepOutput:
        if model.training:
            self.calls += 1
            epoch, index = batch["epoch"], batch["index"]
            step_id = epoch * self.n_batches + index + 1
            if step_id == self.crash_at:
                raise CrashError(f"simulated crash at step {step_id}")
            detached = state is None or all(
                t.grad_fn is None and not t.requires_grad for t in state
            )
            self.seen.append((epoch, index, state is None, detached))
        logits, new_state = model(batch["x"], state)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, self.vocab), batch["y"].reshape(-1))
        accuracy = (logits.argmax(-1) == batch["y"]).float().mean()
        return StepOutput(
            loss=loss,
            metrics={"accuracy": accuracy.detach()},
            num_tokens=batch["y"].numel(),
            state=new_state,
        )


# --------------------------------------------------------------------------- tests of the tasks


def test_linear_batches_are_deterministic_per_epoch() -> None:
    task = LinearTask(run_config(max_steps=1))
    first = list(task.train_batches(2))
    again = list(task.train_batches(2))
    other = list(task.train_batches(3))
    assert len(first) == 5
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a["x"], b["x"], rtol=0, atol=0)
        assert a["step_id"] == b["step_id"]
    assert [b["step_id"] for b in first] == [11, 12, 13, 14, 15]
    assert not torch.equal(first[0]["x"], other[0]["x"])


def test_stream_batches_continue_row_by_row() -> None:
    task = StreamTask(run_config(max_steps=1))
    batches = list(task.train_batches(0))
    assert len(batches) == 7
    assert batches[0]["x"].shape == (3, 5)
    for prev, nxt in itertools.pairwise(batches):
        # the target of the last position is the next batch's first input
        torch.testing.assert_close(prev["y"][:, -1], nxt["x"][:, 0], rtol=0, atol=0)
    again = list(task.train_batches(0))
    torch.testing.assert_close(batches[4]["y"], again[4]["y"], rtol=0, atol=0)
