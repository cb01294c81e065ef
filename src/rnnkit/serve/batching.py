"""Dynamic batching: concurrent requests to one run, gathered and answered as one batch.

The first request to arrive waits up to ``wait_s`` for others with the same options (a request
that asks for beam 5 is never decoded with one that asks for beam 1); the gathered inputs, up to
``max_batch``, go to the run's work function in one call, on the run's own worker thread, and
each request gets its slice of the outputs. While a batch is computed, new requests queue, so a
loaded server forms large batches by itself and an idle one answers after ``wait_s`` at most.

A batch that fails with a user's error (:class:`~rnnkit.tasks.base.TaskError`) is run again one
request at a time, so the error reaches only the request that caused it. Batching is written
here rather than taken from a library: the serving libraries that batch (Ray Serve, TorchServe,
Triton) are whole servers, and the loop needs only asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from rnnkit.tasks.base import TaskError

__all__ = ["Batcher", "Work"]

Work = Callable[[Sequence[Any], Mapping[str, Any]], list[Any]]
"""A run's work function: inputs and options to one JSON-ready output per input."""


@dataclass
class _Request:
    key: str
    inputs: Sequence[Any]
    options: Mapping[str, Any]
    future: asyncio.Future[list[Any]]


@dataclass
class Batcher:
    """Gathers requests to one run and answers them in batches (see the module docstring).

    Attributes:
        work: the run's work function, called on the worker thread.
        wait_s: how long a batch's first request waits for company (0: no waiting).
        max_batch: the most inputs per call of ``work``.
        on_batch: called with each batch's input count (the server's metrics).
    """

    work: Work
    wait_s: float
    max_batch: int
    on_batch: Callable[[int], None] = lambda n: None
    _queue: asyncio.Queue[_Request] | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _bound: asyncio.AbstractEventLoop | None = field(default=None, init=False)
    _pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="rnnkit-run"),
        init=False,
    )

    async def submit(self, inputs: Sequence[Any], options: Mapping[str, Any]) -> list[Any]:
        """The outputs of ``inputs`` under ``options``, computed in a batch with others."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._bound is not loop:  # first call, or a new event loop
            self._queue, self._bound = asyncio.Queue(), loop
            self._task = None
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._loop())
        future: asyncio.Future[list[Any]] = loop.create_future()
        key = json.dumps(dict(options), sort_keys=True, default=str)
        await self._queue.put(_Request(key, inputs, options, future))
        return await future

    async def close(self) -> None:
        """Stop the loop and the worker thread (requests still queued get an error)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue is not None and not self._queue.empty():
            request = self._queue.get_nowait()
            if not request.future.done():
                request.future.set_exception(RuntimeError("the server is shutting down"))
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].inputs)
            deadline = loop.time() + self.wait_s
            while size < self.max_batch:
                remaining = deadline - loop.time()
                try:
                    if remaining > 0:
                        request = await asyncio.wait_for(self._queue.get(), remaining)
                    else:
                        request = self._queue.get_nowait()  # whatever queued meanwhile
                except (TimeoutError, asyncio.QueueEmpty):
                    break
                batch.append(request)
                size += len(request.inputs)
            for group in _groups(batch, self.max_batch):
                await self._run(group)

    async def _run(self, group: list[_Request]) -> None:
        live = [r for r in group if not r.future.done()]  # a timed-out client left
        if not live:
            return
        inputs = [x for r in live for x in r.inputs]
        loop = asyncio.get_running_loop()
        self.on_batch(len(inputs))
        try:
            outputs = await loop.run_in_executor(self._pool, self.work, inputs, live[0].options)
        except TaskError as err:
            if len(live) == 1:
                _fail(live[0], err)
                return
            for request in live:  # find whose input it was
                await self._run([request])
            return
        except Exception as err:
            for request in live:
                _fail(request, err)
            return
        start = 0
        for request in live:
            end = start + len(request.inputs)
            if not request.future.done():
                request.future.set_result(outputs[start:end])
            start = end


def _fail(request: _Request, err: BaseException) -> None:
    if not request.future.done():
        request.future.set_exception(err)


def _groups(batch: list[_Request], max_batch: int) -> list[list[_Request]]:
    """``batch`` split by options, in arrival order, each group at most ``max_batch`` inputs
    (a single request larger than that is a group of its own)."""
    by_key: dict[str, list[list[_Request]]] = {}
    for request in batch:
        groups = by_key.setdefault(request.key, [[]])
        current = groups[-1]
        if current and sum(len(r.inputs) for r in current) + len(request.inputs) > max_batch:
            groups.append(current := [])
        current.append(request)
    return [g for groups in by_key.values() for g in groups]
