"""Process-wide objects built once at start-up: database, secrets, providers, background work."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.kit import secrets


@dataclass
class Runtime:
    """Everything a request or a task needs besides its own unit of work."""

    settings: Settings
    db: Database
    secrets: secrets.Secrets
    background: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Start background loops (outbox dispatcher, scheduler) when enabled."""

    async def stop(self) -> None:
        """Stop background loops and close connections."""
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.background.clear()
        await self.db.dispose()


def build(settings: Settings) -> Runtime:
    """Build the runtime from settings (no I/O yet)."""
    db = Database(
        settings.database_url,
        replica_url=settings.database_replica_url,
        pool_size=settings.database_pool_size,
    )
    return Runtime(settings=settings, db=db, secrets=secrets.load(settings))
