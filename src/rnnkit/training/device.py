"""Where and in what precision the trainer computes: :class:`Device`.

One object answers every "where and how" question of the loop: which ``torch.device``, how a
model and a batch get there, the autocast context and GradScaler of reduced precision, the thread
count, and denormal flushing. The loop never calls ``.to(...)``, ``torch.autocast`` or
``torch.set_num_threads`` itself, so a data-parallel variant (DDP: one process per GPU, the model
wrapped, batches sharded, files written by rank 0) can replace this object without touching the
loop.

Precision (``train.precision``):

* ``fp32`` -- plain float32 everywhere, the default and the only choice on CPU;
* ``bf16`` -- ``torch.autocast(dtype=torch.bfloat16)`` around every step and evaluation on
  CUDA; weights, optimiser state and gradients stay float32;
* ``fp16`` -- as bf16 with float16, plus a ``GradScaler`` that scales the loss before
  ``backward`` and skips steps whose gradients overflow (lowering its scale).

Denormal (subnormal) floats are values below float32's smallest normal number, 1.2e-38.
Recurrent networks make them as a matter of course: vanishing gradients, saturated gates and
attention weights far from the focus underflow towards zero, and x86 CPUs handle arithmetic on
denormals up to a hundred times slower than on normal numbers. With them flushed to zero, a
training step of the Bible translation model (bi-LSTM 256 + LSTM 512 with attention, batch 64)
took 1.4 s instead of 6 to 21 s. The flushed values are below 1.2e-38, so no result changes
measurably.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.training.checkpoint import map_tensors

Precision = Literal["fp32", "bf16", "fp16"]
DEVICES = ("cpu", "cuda", "auto")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@contextlib.contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[None]:
    """Flush denormal floats to zero on the CPU inside the block (``torch.set_flush_denormal``).

    The setting is process-wide; it is switched off again on exit (torch's default). Where the
    CPU does not support it (not x86 with SSE3), nothing changes.
    """
    if not enabled:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def resolve_device(name: str) -> torch.device:
    """``cpu`` | ``cuda`` | ``auto`` (CUDA when available) as a device; ValueError if unavailable."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device is 'cuda' but CUDA is not available; use cpu or auto")
        return torch.device("cuda")
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown train.device '{name}'; valid devices: {', '.join(DEVICES)}")


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors in a batch (nested tuples, named tuples, lists, dicts) moved to ``device``."""
    return map_tensors(batch, lambda t: t.to(device, non_blocking=True))


class Device:
    """The device, precision and process settings one training run computes with.

    Args:
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when available).
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast (CUDA only).
        threads: ``torch.set_num_threads`` value applied by :meth:`configure_threads`; None
            leaves torch's default.
        flush_denormal: flush denormal floats to zero inside :meth:`session`.

    Raises:
        ValueError: CUDA asked for but not available, or reduced precision on CPU.
    """

    def __init__(
        self,
        device: str = "cpu",
        precision: Precision = "fp32",
        *,
        threads: int | None = None,
        flush_denormal: bool = True,
    ) -> None:
        self.torch_device = resolve_device(device)
        if precision not in ("fp32", *_AMP_DTYPES):
            raise ValueError(f"unknown train.precision '{precision}'; valid: fp32, bf16, fp16")
        if precision != "fp32" and self.torch_device.type != "cuda":
            raise ValueError(
                f"train.precision '{precision}' needs a CUDA device; on CPU use precision: fp32"
            )
        self.precision: Precision = precision
        self.threads = threads
        self.flush_denormal = flush_denormal

    @classmethod
    def from_config(cls, config: TrainConfig) -> Device:
        """The device of ``train.device``, ``train.precision``, ``threads`` and ``flush_denormal``."""
        return cls(
            config.device,
            config.precision,
            threads=config.threads,
            flush_denormal=config.flush_denormal,
        )

    @property
    def is_cuda(self) -> bool:
        """True when computing on a CUDA device."""
        return self.torch_device.type == "cuda"

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype (``torch.bfloat16`` / ``torch.float16``), None for fp32."""
        return _AMP_DTYPES.get(self.precision)

    def configure_threads(self) -> None:
        """Apply ``threads`` with ``torch.set_num_threads`` (process-wide; nothing when None)."""
        if self.threads is not None:
            torch.set_num_threads(self.threads)

    def session(self) -> contextlib.AbstractContextManager[None]:
        """The context a whole :meth:`~rnnkit.training.Trainer.fit` runs in (denormal flushing)."""
        return flush_denormals(self.flush_denormal)

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """``model`` moved to the device (the same object; a DDP device would wrap it here)."""
        return model.to(self.torch_device)

    def to_device(self, batch: Any) -> Any:
        """A batch's tensors (in nested tuples, named tuples, lists, dicts) on the device."""
        return move_to_device(batch, self.torch_device)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """``torch.autocast`` for bf16/fp16 on CUDA; a no-op context for fp32."""
        dtype = self.amp_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.torch_device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A ``GradScaler``, enabled only for fp16 (disabled, it passes everything through)."""
        return torch.amp.GradScaler("cuda", enabled=self.is_cuda and self.precision == "fp16")

    def __repr__(self) -> str:
        return f"Device({str(self.torch_device)!r}, precision={self.precision!r})"
