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
  ``backward`` and skips steps whose gradients overflow (lowering its scale); the trainer counts
  those steps in ``skipped_steps``.

Under bf16 and fp16 the recurrent cores stay in float32 (:func:`keep_recurrent_fp32`): every
recurrent layer (``torch.nn.RNNBase``, so rnnkit's ``RNN``/``GRU``/``LSTM`` with either backend
and torch's own) and every rnnkit cell runs with autocast switched off and its floating inputs
cast to float32. cuDNN's RNN under autocast fails with ``CUDNN_STATUS_BAD_PARAM`` for some
dtype/length combinations, rnnkit's layers refuse inputs whose dtype differs from their weights',
and a long recurrence in float16 accumulates rounding error step after step. What runs in the
reduced precision is everything around the recurrence: embeddings' consumers, attention, the
output projections and the loss's softmax, which hold most of the FLOPs of a large vocabulary.

Denormal (subnormal) floats are values below float32's smallest normal number, 1.2e-38.
Recurrent networks make them as a matter of course: vanishing gradients, saturated gates and
attention weights far from the focus underflow towards zero, and x86 CPUs handle arithmetic on
denormals up to a hundred times slower than on normal numbers. With them flushed to zero, a
training step of the Bible translation model (bi-LSTM 256 + LSTM 512 with attention, batch 64)
took 1.4 s instead of 6 to 21 s. The flushed values are below 1.2e-38, so no result changes
measurably.

Freed memory (``train.keep_freed_memory``, :func:`keep_freed_memory`): while training, glibc is
told to keep large freed buffers for the next step instead of unmapping them (every page of a
freshly mapped buffer costs a page fault on first touch).

Threads (``train.threads``, ``--threads``; :func:`choose_threads`): a number is used as given;
``None`` ("auto", the default) chooses from the work of one step and the cores this process may
run on (``os.sched_getaffinity``). The work is :func:`step_work`, the parameters outside
embedding tables times the batch size (about the multiply-adds of one position of a forward
pass). Auto gives one thread per :data:`WORK_PER_THREAD` of it, at least one and at most the
cores available. Small recurrent models gain nothing from a second thread, whose hand-off at
every time step costs as much as it saves, and lose badly when another process holds a core:
each step then waits for the thread that shares its core (a small translation model ran 10x
slower with 2 threads on 2 cores, one of them busy). ``benchmarks/threads.py`` measures it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, Literal

import torch
from torch import nn

from rnnkit.config import TrainConfig
from rnnkit.training.checkpoint import map_tensors

Precision = Literal["fp32", "bf16", "fp16"]
DEVICES = ("cpu", "cuda", "auto")
_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
_LOG = logging.getLogger("rnnkit.training")

WORK_PER_THREAD = 100_000_000
"""Work of one step (:func:`step_work`) per thread of the auto policy. A small translation model
(E 32, H 64, 2 000 tokens a side, batch 64: work 1.3e7) gets one thread: ``benchmarks/threads.py``
measured it 15x slower with 2 threads than with 1 on the 2-core development machine while
another process was running, and 3x slower with a core busy. The Bible model (E 256, encoder
2 x 256, decoder 512, 8 000 tokens a side, batch 64: 4.2e8) gets up to 4: its matmuls are
large enough to share, as torch's default assumes. On a busy machine it loses with 2 threads
too (4x slower in the same run); ``train.threads: 1`` or ``--threads 1`` is the setting there."""


def available_cores() -> int:
    """The CPU cores this process may run on: its affinity mask (``os.sched_getaffinity``), or
    ``os.cpu_count()`` where there is none (not Linux); at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


def step_work(model: nn.Module, batch_size: int) -> int:
    """The work of one step of ``model`` on a batch of ``batch_size`` examples, for the policy.

    The number of parameters outside ``nn.Embedding`` tables (a lookup costs nothing to speak
    of; a weight shared with another module counts) times ``batch_size``: about the
    multiply-adds of one position (time step) of a forward pass.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    seen: dict[int, int] = {}
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            continue
        for param in module.parameters(recurse=False):
            seen[id(param)] = param.numel()
    return sum(seen.values()) * batch_size


def choose_threads(requested: int | None, work: int | None) -> int:
    """The intra-op thread count to compute with.

    Args:
        requested: the user's count (``train.threads``, ``--threads``); it wins when given. Above
            the cores available it is still used, with a warning (oversubscribed threads wait for
            each other).
        work: :func:`step_work` of the model to run, or None when unknown (then 1 thread).

    Returns:
        ``requested``, else ``work // WORK_PER_THREAD`` clamped to [1, :func:`available_cores`].

    Raises:
        ValueError: ``requested`` below 1.
    """
    available = available_cores()
    if requested is not None:
        if requested < 1:
            raise ValueError(f"threads must be >= 1, got {requested}")
        if requested > available:
            _LOG.warning(
                "threads: %d asked for, but this process may run on %d core(s); the threads "
                "will share cores and wait for each other",
                requested,
                available,
            )
        return requested
    if work is None:
        return 1
    return max(1, min(available, work // WORK_PER_THREAD))


def apply_threads(requested: int | None, work: int | None) -> int:
    """Choose the thread count (:func:`choose_threads`), set it (``torch.set_num_threads``,
    process-wide) and log the choice at INFO on the ``rnnkit.training`` logger (not again when
    the next call logs the same); returns it."""
    threads = choose_threads(requested, work)
    torch.set_num_threads(threads)
    if requested is not None:
        message = f"threads: {threads} (asked for)"
    else:
        shown = "unknown" if work is None else f"{work:.2g}"
        message = (
            f"threads: {threads} (auto: work {shown} per step, {available_cores()} core(s) "
            f"available, a thread per {WORK_PER_THREAD:.0e})"
        )
    if message != _logged[0]:  # a verb running several models logs its choice once
        _LOG.info(message)
        _logged[0] = message
    return threads


_logged = [""]  # the last message apply_threads logged


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


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_GLIBC_DEFAULTS = ((_M_TRIM_THRESHOLD, 128 * 1024), (_M_MMAP_MAX, 65536))


def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's ``mallopt``, or None on another C library (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        mallopt: Callable[[int, int], int] = libc.mallopt
        gnu_get_libc_version = libc.gnu_get_libc_version  # glibc only
    except (OSError, AttributeError):
        return None
    del gnu_get_libc_version
    return mallopt


@contextlib.contextmanager
def keep_freed_memory(enabled: bool = True) -> Iterator[None]:
    """Keep large freed buffers in the process for reuse inside the block (glibc only).

    glibc's ``malloc`` serves every request over its mmap threshold (at most 32 MB) with a fresh
    ``mmap`` and gives it back with ``munmap`` when freed, so a training step that allocates
    its logits (B T x V floats: 86 MB for 64 x 42 x 8000), their log-softmax and their
    gradient gets new pages every time, and the kernel zero-fills each 4 KB page on first touch:
    about 40 ms per 86 MB buffer on the development machine, several per step. Inside the block
    ``mallopt(M_MMAP_MAX, 0)`` serves every request from the heap and ``M_TRIM_THRESHOLD`` keeps
    freed memory there, as PyTorch's caching allocator does on a GPU; the process keeps the peak
    of what it used. On exit glibc's defaults are set again (memory already held stays until
    trimmed). Elsewhere than glibc nothing changes.
    """
    mallopt = _mallopt() if enabled else None
    if mallopt is None:
        yield
        return
    mallopt(_M_MMAP_MAX, 0)
    mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    try:
        yield
    finally:
        for parameter, value in _GLIBC_DEFAULTS:
            mallopt(parameter, value)


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


def _float32(value: Any) -> Any:
    """Floating tensors in ``value`` (nested containers too) as float32; the rest unchanged."""
    return map_tensors(value, lambda t: t.float() if t.is_floating_point() else t)


def keep_recurrent_fp32(model: nn.Module, device_type: str = "cuda") -> list[str]:
    """Make ``model``'s recurrent layers and cells compute in float32 under autocast.

    Each ``torch.nn.RNNBase`` (rnnkit's layers included) and each rnnkit cell gets a forward
    pre-hook that switches ``torch.autocast(device_type)`` off and casts its floating inputs (x
    (B, T, I) or (B, I), the initial state) to float32, and a forward hook that restores autocast
    after it (also when the forward raises). Outputs are float32; the ops after them autocast as
    usual. A module inside another one of these is left alone (it already runs in float32).

    Returns:
        The names of the modules changed (``""`` for ``model`` itself).
    """
    from rnnkit.nn.cells import GRUCell, LSTMCell, RNNCell

    kinds = (nn.RNNBase, nn.RNNCellBase, RNNCell, LSTMCell, GRUCell)
    changed: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, kinds):
            continue
        if any(name.startswith(f"{outer}.") or outer == "" for outer in changed):
            continue
        _hook_fp32(module, device_type)
        changed.append(name)
    return changed


def _hook_fp32(module: nn.Module, device_type: str) -> None:
    contexts: list[contextlib.ExitStack] = []

    def before(_: nn.Module, args: Any, kwargs: Any) -> tuple[Any, Any]:
        context = contextlib.ExitStack()
        context.enter_context(torch.autocast(device_type=device_type, enabled=False))
        contexts.append(context)
        return _float32(args), _float32(kwargs)

    def after(_: nn.Module, args: Any, kwargs: Any, output: Any) -> Any:
        if contexts:  # always_call: also after a forward that raised
            contexts.pop().close()
        return output

    module.register_forward_pre_hook(before, with_kwargs=True)
    module.register_forward_hook(after, with_kwargs=True, always_call=True)


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors in a batch (nested tuples, named tuples, lists, dicts) moved to ``device``."""
    return map_tensors(batch, lambda t: t.to(device, non_blocking=True))


class Device:
    """The device, precision and process settings one training run computes with.

    Args:
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when available).
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast (CUDA only).
        threads: intra-op threads; None chooses them from the model and the cores
            (:func:`choose_threads`) once :meth:`prepare_model` has the model.
        flush_denormal: flush denormal floats to zero inside :meth:`session`.
        keep_freed_memory: keep large freed buffers for reuse inside :meth:`session`
            (:func:`keep_freed_memory`).
        batch_size: B of a training step, for the work of the auto policy (default 1).

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
        keep_freed_memory: bool = True,
        batch_size: int = 1,
    ) -> None:
        self.torch_device = resolve_device(device)
        if precision not in ("fp32", *_AMP_DTYPES):
            raise ValueError(f"unknown train.precision '{precision}'; valid: fp32, bf16, fp16")
        if precision != "fp32" and self.torch_device.type != "cuda":
            raise ValueError(
                f"train.precision '{precision}' needs a CUDA device; on CPU use precision: fp32"
            )
        self.precision: Precision = precision
        if threads is not None and threads < 1:
            raise ValueError(f"train.threads must be >= 1, got {threads}")
        self.threads = threads
        self.flush_denormal = flush_denormal
        self.keep_freed_memory = keep_freed_memory
        self.batch_size = batch_size
        self.num_threads: int | None = None
        """The thread count applied, once :meth:`configure_threads` chose it."""
        self.fp32_modules: list[str] = []
        """The modules :meth:`prepare_model` keeps in float32 under reduced precision."""

    @classmethod
    def from_config(cls, config: TrainConfig) -> Device:
        """The device of ``train.device``, ``train.precision``, ``threads``, ``flush_denormal``,
        ``keep_freed_memory`` and ``batch_size``."""
        return cls(
            config.device,
            config.precision,
            threads=config.threads,
            flush_denormal=config.flush_denormal,
            keep_freed_memory=config.keep_freed_memory,
            batch_size=config.batch_size,
        )

    @property
    def is_cuda(self) -> bool:
        """True when computing on a CUDA device."""
        return self.torch_device.type == "cuda"

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype (``torch.bfloat16`` / ``torch.float16``), None for fp32."""
        return _AMP_DTYPES.get(self.precision)

    def configure_threads(self, model: nn.Module | None = None) -> int | None:
        """Set the thread count once (process-wide, :func:`apply_threads`); returns it.

        A requested ``threads`` is applied at once. The auto policy needs the model's work, so
        without ``model`` it waits (returns None) for :meth:`prepare_model`, which calls this
        again with the model.
        """
        if self.num_threads is None and (self.threads is not None or model is not None):
            work = None if model is None else step_work(model, self.batch_size)
            self.num_threads = apply_threads(self.threads, work)
        return self.num_threads

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """The context a whole :meth:`~rnnkit.training.Trainer.fit` runs in (denormal flushing,
        freed memory kept)."""
        with flush_denormals(self.flush_denormal), keep_freed_memory(self.keep_freed_memory):
            yield

    def prepare_model(self, model: nn.Module) -> nn.Module:
        """``model`` moved to the device (the same object), its recurrent cores kept in float32
        under bf16/fp16 (:func:`keep_recurrent_fp32`; :attr:`fp32_modules` names them).

        Applies the auto thread policy for this model if no thread count was set yet.
        """
        self.configure_threads(model)
        model = model.to(self.torch_device)
        if self.amp_dtype is not None:
            self.fp32_modules = keep_recurrent_fp32(model, self.torch_device.type)
        return model

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
