"""One ordered, bounded queue and one worker task per station, for the link loop.

Messages of one station are handled one at a time in arrival order; different stations are
handled concurrently (on PostgreSQL their units of work use the connection pool in parallel).
`put` waits while the station's queue is full, so a slow station holds up reading (and the
broker's window of unacknowledged messages bounds what is in hand). The first exception a
worker raises stops the whole set: `wait` raises it and the caller drops the connection.

`StationBatches` is the same with a worker that takes everything queued for its station (up to
`batch` items, in order) at once: the link's group commit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

CLOSE_SECONDS = 10.0


class StationQueues(Generic[T]):
    """Per-station FIFO queues, each drained by its own worker calling `work`."""

    def __init__(self, work: Callable[[T], Awaitable[None]], *, maxsize: int) -> None:
        self.work = work
        self.batch = 1
        self.maxsize = maxsize
        self._queues: dict[str, asyncio.Queue[T | None]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def stations(self) -> int:
        """How many stations have a worker."""
        return len(self._workers)

    async def put(self, station: str, item: T) -> None:
        """Queue an item for its station's worker (waits while that queue is full)."""
        if self._failed.done():
            self._failed.result()
        queue = self._queues.get(station)
        if queue is None:
            queue = self._queues[station] = asyncio.Queue(self.maxsize)
            self._workers[station] = asyncio.create_task(
                self._run(queue), name=f"pump-link-{station}"
            )
        await queue.put(item)

    async def _handle(self, items: list[T]) -> None:
        for item in items:
            await self.work(item)

    async def _run(self, queue: asyncio.Queue[T | None]) -> None:
        while True:
            items: list[T] = []
            stop = False
            item = await queue.get()
            while True:
                if item is None:
                    stop = True
                    break
                items.append(item)
                if len(items) >= self.batch or queue.empty():
                    break
                item = queue.get_nowait()
            try:
                if items:
                    await self._handle(items)
            except Exception as exc:
                if not self._failed.done():
                    self._failed.set_exception(exc)
                return
            if stop:
                return

    async def wait(self, reader: asyncio.Task[None], *others: StationQueues[Any]) -> None:
        """Until `reader` ends or a worker (here or in `others`) fails; re-raises that error."""
        failures = [self._failed, *(o._failed for o in others)]
        await asyncio.wait({reader, *failures}, return_when=asyncio.FIRST_COMPLETED)
        for failed in failures:
            if failed.done():
                failed.result()
        reader.result()

    async def close(self) -> None:
        """Stop every worker after its current item; queued items are dropped (not handled)."""
        for queue in self._queues.values():
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)
        workers = list(self._workers.values())
        if workers:
            _, late = await asyncio.wait(workers, timeout=CLOSE_SECONDS)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if not self._failed.done():
            self._failed.cancel()
        elif not self._failed.cancelled():
            self._failed.exception()  # retrieved: asyncio must not log it as unhandled
        self._queues.clear()
        self._workers.clear()


class StationBatches(StationQueues[T]):
    """Per-station FIFO queues whose workers take what is queued (up to `batch`) at once."""

    def __init__(
        self, work: Callable[[list[T]], Awaitable[None]], *, maxsize: int, batch: int
    ) -> None:
        super().__init__(self._unused, maxsize=maxsize)
        self.work_batch = work
        self.batch = max(1, batch)

    @staticmethod
    async def _unused(item: T) -> None:
        raise AssertionError("StationBatches hands whole batches to its worker")

    async def _handle(self, items: list[T]) -> None:
        await self.work_batch(items)
