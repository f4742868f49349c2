"""One ordered, bounded queue and one worker task per station, for the link loop.

Messages of one station are handled one at a time in arrival order; different stations are
handled concurrently (on PostgreSQL their units of work use the connection pool in parallel).
`put` waits while the station's queue is full, so a slow station holds up reading (and the
broker's window of unacknowledged messages bounds what is in hand). The first exception a
worker raises stops the whole set: `wait` raises it and the caller drops the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

CLOSE_SECONDS = 10.0


class StationQueues(Generic[T]):
    """Per-station FIFO queues, each drained by its own worker calling `work`."""

    def __init__(self, work: Callable[[T], Awaitable[None]], *, maxsize: int) -> None:
        self.work = work
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

    async def _run(self, queue: asyncio.Queue[T | None]) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            try:
                await self.work(item)
            except Exception as exc:
                if not self._failed.done():
                    self._failed.set_exception(exc)
                return

    async def wait(self, reader: asyncio.Task[None]) -> None:
        """Until `reader` ends or a worker fails; re-raises whichever error came first."""
        await asyncio.wait({reader, self._failed}, return_when=asyncio.FIRST_COMPLETED)
        if self._failed.done():
            self._failed.result()
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
