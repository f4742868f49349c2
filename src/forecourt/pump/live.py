"""Live nozzle-state fan-out: in-process, or across API nodes through Redis pub/sub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol


class LiveHub(Protocol):
    """Publishes station changes to every WebSocket subscriber on every API node."""

    async def publish(self, station_id: int, message: dict[str, Any]) -> None:
        """Send a change to the station's subscribers."""
        ...

    def subscribe(self, station_id: int) -> Any:
        """An async context manager yielding an async iterator of messages."""
        ...


class InProcessHub:
    """Fan-out inside one process (the embedded default)."""

    def __init__(self) -> None:
        self._subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = {}

    async def publish(self, station_id: int, message: dict[str, Any]) -> None:
        """Queue the message for each local subscriber of the station."""
        for queue in self._subscribers.get(station_id, set()):
            queue.put_nowait(message)

    @asynccontextmanager
    async def subscribe(self, station_id: int) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        """Subscribe for the duration of the block."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)
        self._subscribers.setdefault(station_id, set()).add(queue)

        async def messages() -> AsyncIterator[dict[str, Any]]:
            while True:
                yield await queue.get()

        try:
            yield messages()
        finally:
            self._subscribers[station_id].discard(queue)
