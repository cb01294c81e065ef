"""Several processes, one run: the process group, sharded batches, rank-0 files.

``torchrun --nproc-per-node N -m rnnkit train CONFIG --out RUN`` starts N copies of the command;
torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and the rendezvous) in each one's
environment. :func:`init_process_group` joins that group (``gloo`` on CPU, ``nccl`` on CUDA, one
GPU per process: ``cuda:LOCAL_RANK``); without torchrun (``WORLD_SIZE`` unset or 1) everything
here is a no-op and the run is the single-process one.

What the trainer does with N processes (:class:`~rnnkit.training.Trainer`):

* the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (:func:`wrap`),
  which starts every rank from rank 0's weights and averages the gradients in ``backward``; the
  task still receives its own model object (its ``forward`` is routed through the wrapper during
  a training step, :func:`routed`), so ``isinstance`` checks and helper methods keep working;
* every rank reads the task's deterministic epoch iterator and keeps its own share of it
  (:func:`shard_batches`): batch ``k`` of rank ``r`` is batch ``k N + r`` of the epoch, and the
  last ``n mod N`` batches are dropped so that every rank takes the same number of steps. A
  stateful task (truncated BPTT, the state carried from batch to batch) gets contiguous blocks
  instead, ``[r n/N, (r + 1) n/N)``, so that each rank's stream stays in order. One optimiser
  step consumes N batches: the global batch is N x ``train.batch_size``;
* the loss, target tokens and per-step metrics are summed over the ranks each step, so
  ``metrics.csv`` reports the global batch; validation runs on rank 0 and its results are sent to
  the others; rank 0's stop decision (budgets, early stopping, callbacks) is sent to every rank
  after each step, so all stop at the same step;
* only rank 0 (:attr:`Distributed.is_main`) writes files: ``config.yaml`` and what ``prepare()``
  fits (the others wait at a :meth:`Distributed.barrier`), checkpoints, ``metrics.csv``, weights,
  TensorBoard. A checkpoint also holds every rank's RNG state, so a resumed group continues each
  rank's random stream exactly.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed import PrefixStore, rendezvous  # type: ignore[attr-defined]
from torch.nn.parallel import DistributedDataParallel

from rnnkit.training.device import resolve_device

T = TypeVar("T")


def launched() -> bool:
    """True when this process is one of several started by torchrun (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def restarted() -> bool:
    """True in a group torchrun started again after a process died (``--max-restarts``)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


@dataclass(frozen=True)
class Distributed:
    """This process's place in the group: ``rank`` of ``world_size`` (0 of 1 when alone).

    Attributes:
        rank: global rank, 0 .. world_size - 1; rank 0 writes every file.
        world_size: number of processes training together.
        local_rank: rank on this machine (the GPU index with nccl).
        backend: ``gloo`` or ``nccl``; None for a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @classmethod
    def current(cls) -> Distributed:
        """The initialised default process group's view, or a single process without one."""
        if not (dist.is_available() and dist.is_initialized()):
            return cls()
        return cls(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
            backend=str(dist.get_backend()),
        )

    @property
    def enabled(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one process that writes files."""
        return self.rank == 0

    @property
    def _tensor_device(self) -> torch.device:
        """Where collectives' tensors live: the process's GPU with nccl, else the CPU."""
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def barrier(self) -> None:
        """Wait until every rank got here (nothing without a group)."""
        if self.enabled:
            dist.barrier()

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` (any picklable object), on every rank."""
        if not self.enabled:
            return value
        box: list[Any] = [value]
        dist.broadcast_object_list(box, src=0, device=self._tensor_device)
        return box[0]  # type: ignore[no-any-return]

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        if not self.enabled:
            return [value]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, value)
        return out

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over the ranks of ``values`` (the same length on every rank)."""
        if not self.enabled:
            return [float(v) for v in values]
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._tensor_device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return [float(v) for v in tensor.tolist()]

    def __repr__(self) -> str:
        return f"Distributed(rank={self.rank}, world_size={self.world_size}, {self.backend})"


def init_process_group(device: str = "cpu") -> Distributed:
    """Join torchrun's process group when launched by it; this process's :class:`Distributed`.

    ``device`` is ``train.device`` (``cpu``, ``cuda``, ``auto``): ``nccl`` with one GPU per
    process (``cuda:LOCAL_RANK`` made the current device) when it resolves to CUDA, ``gloo``
    otherwise. Idempotent: a group already initialised (by this or by the caller) is used as it
    is. Without torchrun it returns a single process and initialises nothing.

    Raises:
        ValueError: CUDA asked for but not available, or fewer GPUs than local ranks.
    """
    if not launched():
        return Distributed.current()
    if dist.is_initialized():
        return Distributed.current()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = resolve_device(device).type == "cuda"
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"local rank {local_rank} needs GPU {local_rank}, but this machine has "
                f"{torch.cuda.device_count()}; start at most that many processes per node"
            )
        torch.cuda.set_device(local_rank)
    # torchrun's store outlives a restart of the group: the keys of each attempt get their own
    # prefix, or the restarted ranks would read the addresses of the killed ones
    store, rank, world_size = next(rendezvous("env://"))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        store=PrefixStore(f"rnnkit/attempt_{attempt}/", store),
        rank=rank,
        world_size=world_size,
    )
    return Distributed.current()


@contextlib.contextmanager
def process_group(device: str = "cpu") -> Iterator[Distributed]:
    """:func:`init_process_group` for the block; a group it initialised is destroyed on exit."""
    owned = launched() and not dist.is_initialized()
    group = init_process_group(device)
    try:
        yield group
    finally:
        if owned and dist.is_initialized():
            dist.destroy_process_group()


def shard_batches(
    batches: Iterable[T],
    rank: int,
    world_size: int,
    *,
    total: int | None = None,
) -> Iterator[T]:
    """Rank ``rank``'s share of an epoch's batches; every rank gets ``n // world_size`` of them.

    Without ``total``: interleaved, batch ``k`` of this rank is batch ``k * world_size + rank``
    (the last ``n mod world_size`` batches are dropped). With ``total`` (the epoch's batch count
    ``n``, for stateful tasks): the contiguous block ``[rank * m, (rank + 1) * m)``,
    ``m = n // world_size``, so a carried state follows the stream in order.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    if world_size == 1:
        yield from batches
        return
    if total is not None:
        per_rank = total // world_size
        yield from itertools.islice(batches, rank * per_rank, (rank + 1) * per_rank)
        return
    group: list[T] = []
    for batch in batches:
        group.append(batch)
        if len(group) == world_size:
            yield group[rank]
            group = []


def wrap(module: nn.Module, group: Distributed) -> DistributedDataParallel | None:
    """``module`` (already on its device) wrapped in DDP, or None for a single process.

    ``find_unused_parameters=True``: the trainer knows no model, and a task may leave some
    parameters out of a step's graph (an unused embedding row is fine either way; a whole unused
    module is not without it). It costs one traversal of the graph per step.
    """
    if not group.enabled:
        return None
    on_gpu = group.backend == "nccl"
    return DistributedDataParallel(
        module,
        device_ids=[torch.cuda.current_device()] if on_gpu else None,
        find_unused_parameters=True,
    )


class _Routed:
    """``module.forward`` while routed: the outer call goes through DDP, DDP's own call of the
    module runs the original forward."""

    def __init__(self, wrapper: DistributedDataParallel, forward: Any) -> None:
        self.wrapper = wrapper
        self.forward = forward
        self.inside = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.inside:
            return self.forward(*args, **kwargs)
        self.inside = True
        try:
            return self.wrapper(*args, **kwargs)
        finally:
            self.inside = False


@contextlib.contextmanager
def routed(module: nn.Module, wrapper: DistributedDataParallel | None) -> Iterator[nn.Module]:
    """Inside the block, calling ``module`` goes through its DDP ``wrapper`` (gradient
    averaging and the wrapper's bookkeeping), while the task still holds ``module`` itself."""
    if wrapper is None:
        yield module
        return
    module.forward = _Routed(wrapper, module.forward)
    try:
        yield module
    finally:
        del module.forward  # the class's forward again
