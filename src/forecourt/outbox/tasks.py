"""The outbox's own scheduled jobs: nightly purge, queue trimming."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import Database
from forecourt.kit import clock
from forecourt.outbox import metrics, repository
from forecourt.worker.jobs import scheduled

if TYPE_CHECKING:
    from forecourt.runtime import Runtime

log = logging.getLogger("forecourt.outbox")

KEEP = timedelta(days=7)
BATCH = 5000


class _PurgeBatch(Protocol):
    def __call__(
        self, session: AsyncSession, *, before: datetime, limit: int
    ) -> Awaitable[int]: ...


@dataclass(frozen=True)
class Purged:
    """Rows deleted by one purge."""

    events: int
    markers: int


async def purge(db: Database, *, keep: timedelta = KEEP, batch: int = BATCH) -> Purged:
    """Delete events dispatched more than `keep` ago, then the markers of deleted events."""
    before = clock.now() - keep
    events = await _in_batches(db, repository.purge_dispatched, before, batch)
    markers = await _in_batches(db, repository.purge_processed, before, batch)
    metrics.PURGED.labels("outbox_events").inc(events)
    metrics.PURGED.labels("processed_events").inc(markers)
    return Purged(events=events, markers=markers)


async def _in_batches(db: Database, purge_batch: _PurgeBatch, before: datetime, batch: int) -> int:
    total = 0
    while True:
        async with db.unit_of_work() as session:
            deleted = await purge_batch(session, before=before, limit=batch)
        total += deleted
        if deleted < batch:
            return total


@scheduled("outbox.purge", cron="30 3 * * *")
async def nightly_purge(runtime: Runtime) -> None:
    """Every night at 03:30 (Asia/Shanghai): drop week-old dispatched events and markers."""
    purged = await purge(runtime.db)
    log.info("outbox purged", extra={"events": purged.events, "markers": purged.markers})


@scheduled("outbox.trim_queue", cron="*/10 * * * *")
async def trim_queue(runtime: Runtime) -> None:
    """Every 10 minutes: drop acknowledged messages from the Redis stream (no-op in-process)."""
    await runtime.tasks.trim_queue()
