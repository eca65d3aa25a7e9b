"""Request batching: concurrent requests for one model gathered into one worker call.

Requests queue on the event loop. A collector task takes the first waiting request, waits up to
``max_wait_s`` for company (not at all when the queue already holds a full batch, or when
requests are not arriving together), and hands the gathered jobs to the model's single worker
thread. While the worker computes, new requests keep queueing, so under load the next batch is
ready the moment the worker is free: the batch size adapts to the arrival rate.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Callable, Generic, Optional, Sequence, TypeVar, Union

Job = TypeVar("Job")
Result = TypeVar("Result")


@dataclass
class _Pending(Generic[Job]):
    job: Job
    size: int
    future: "asyncio.Future[Any]"


class RequestBatcher(Generic[Job, Result]):
    """Gathers jobs into batches and runs each batch with one call in ``executor``.

    Args:
        process: ``process(jobs) -> results`` (same order, same length); an item of the result
            may be an exception, which is raised in that job's caller only.
        executor: Where ``process`` runs (one thread per model keeps calls serialised).
        max_batch_size: Most units (samples) in one call; a job larger than this runs alone.
        max_wait_s: How long a batch waits for more jobs after its first.
        max_jobs: Most jobs per call (1 turns batching off: one call per request).
        size_of: Units of a job (default 1 per job).
    """

    def __init__(self, process: Callable[[list[Job]], Sequence[Union[Result, BaseException]]], executor: Executor,
                 max_batch_size: int = 64, max_wait_s: float = 0.002, max_jobs: Optional[int] = None,
                 size_of: Callable[[Job], int] = lambda job: 1) -> None:
        self.process = process
        self.executor = executor
        self.max_batch_size = max(1, int(max_batch_size))
        self.max_wait_s = max(0.0, float(max_wait_s))
        self.max_jobs = max_jobs
        self.size_of = size_of
        self._queue: deque[_Pending[Job]] = deque()
        self._arrived: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task[None]] = None
        self.batches = 0
        self.jobs = 0
        self._last_jobs = 0
        self._last_arrival = float("-inf")
        self._close_arrivals = False

    async def submit(self, job: Job) -> Result:
        """Queue ``job`` and wait for its result (cancelling the wait withdraws a queued job)."""
        loop = asyncio.get_running_loop()
        if self._arrived is None:
            self._arrived = asyncio.Event()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._collect(), name="cgan-batcher")
        now = loop.time()
        self._close_arrivals = now - self._last_arrival < self.max_wait_s
        self._last_arrival = now
        pending = _Pending(job, max(1, self.size_of(job)), loop.create_future())
        self._queue.append(pending)
        self._arrived.set()
        return await pending.future

    def _queued_size(self) -> int:
        return sum(p.size for p in self._queue if not p.future.done())

    def _full(self) -> bool:
        live = [p for p in self._queue if not p.future.done()]
        if self.max_jobs is not None and len(live) >= self.max_jobs:
            return True
        return sum(p.size for p in live) >= self.max_batch_size

    def _take(self) -> list[_Pending[Job]]:
        batch: list[_Pending[Job]] = []
        size = 0
        while self._queue:
            pending = self._queue[0]
            if pending.future.done():  # its caller gave up (timeout or disconnect)
                self._queue.popleft()
                continue
            if batch and (size + pending.size > self.max_batch_size
                          or (self.max_jobs is not None and len(batch) >= self.max_jobs)):
                break
            batch.append(self._queue.popleft())
            size += pending.size
        return batch

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._arrived is not None
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            # Wait for company only when requests are arriving together (the previous batch was
            # shared, several are queued, or the last two came within max_wait of each other):
            # a lone client is served at once, without the max_wait delay.
            together = self._last_jobs > 1 or len(self._queue) > 1 or self._close_arrivals
            deadline = loop.time() + (self.max_wait_s if together else 0.0)
            while not self._full():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = self._take()
            if not batch:
                continue
            self.batches += 1
            self.jobs += len(batch)
            self._last_jobs = len(batch)
            try:
                results = await loop.run_in_executor(self.executor, self.process, [p.job for p in batch])
            except Exception as exc:  # the whole call failed: every job in it gets the error
                results = [exc] * len(batch)
            for pending, result in zip(batch, results):
                if pending.future.done():
                    continue
                if isinstance(result, BaseException):
                    pending.future.set_exception(result)
                else:
                    pending.future.set_result(result)

    async def close(self) -> None:
        """Stop the collector task and fail jobs still queued."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("the server is shutting down"))
