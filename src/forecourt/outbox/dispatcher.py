"""The dispatcher: claims committed events from the outbox and hands them to the task queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import Database
from forecourt.kit import clock
from forecourt.outbox import metrics, repository, service
from forecourt.outbox.retry import RetryPolicy

log = logging.getLogger("forecourt.outbox")

Kick = Callable[[repository.Claimed], Awaitable[None]]


@dataclass(frozen=True)
class Handed:
    """Events one pass handed on, not yet marked dispatched (`lease_until` is the token)."""

    ids: tuple[int, ...]
    lease_until: datetime
    at: datetime


class Dispatcher:
    """Poll the outbox (and wake on commits that published) and kick one task per event.

    Several dispatchers may run against one database: a claim is a lease, so each due event
    is handed on by exactly one of them, and by another one if its holder dies mid-way.
    Events handed on are marked dispatched by the next pass, in the unit of work of its claim
    (the loop makes a pass at every poll, due events or not), or by `stop`.
    """

    def __init__(
        self,
        db: Database,
        kick: Kick,
        *,
        poll_seconds: float = 0.5,
        batch_size: int = 100,
        lease: timedelta = timedelta(seconds=60),
        policy: RetryPolicy | None = None,
        kick_timeout: float = 10.0,
        metrics_every: float = 5.0,
    ) -> None:
        self.db = db
        self.kick = kick
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.lease = lease
        self.policy = policy or RetryPolicy()
        self.kick_timeout = kick_timeout
        self.metrics_every = metrics_every
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._undo_subscription: Callable[[], None] | None = None
        self._metrics_at = 0.0
        self._handed: list[Handed] = []

    def notify(self) -> None:
        """Look at the outbox now instead of at the next poll."""
        self._wake.set()

    async def run_once(self, *, now: datetime | None = None) -> int:
        """Mark the last pass's events, claim one batch of due events, kick each; how many."""
        now = now or clock.now()
        lease_until = now + self.lease
        async with self._unit_of_work() as session:
            claimed = await repository.claim(
                session, now=now, lease_until=lease_until, limit=self.batch_size
            )
        if not claimed:
            return 0
        results = await asyncio.gather(
            *(asyncio.wait_for(self.kick(event), self.kick_timeout) for event in claimed),
            return_exceptions=True,
        )
        sent = [event.id for event, result in zip(claimed, results, strict=True) if result is None]
        failed = [
            (event, result)
            for event, result in zip(claimed, results, strict=True)
            if isinstance(result, BaseException)
        ]
        if sent:
            self._handed.append(Handed(tuple(sent), lease_until, now))
        if failed:  # rescheduled at once (and what was handed on is marked with them)
            async with self._unit_of_work() as session:
                for event, exc in failed:
                    await repository.reschedule(
                        session,
                        event.id,
                        attempts=event.attempts,
                        error=f"dispatch: {type(exc).__name__}: {exc}",
                        now=now,
                        policy=self.policy,
                        lease_until=lease_until,
                    )
        metrics.DISPATCHED.inc(len(sent))
        if failed:
            metrics.DISPATCH_FAILED.inc(len(failed))
            log.warning(
                "task queue refused outbox events; retrying later",
                extra={"events": [event.id for event, _ in failed], "error": str(failed[0][1])},
            )
        return len(claimed)

    async def flush(self) -> None:
        """Mark what was handed on since the last pass, in a unit of work without a claim."""
        if self._handed:
            async with self._unit_of_work():
                pass

    @contextlib.asynccontextmanager
    async def _unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that first marks what was handed on (kept for later if it fails).

        Marks go before a claim, so an event whose lease ran out meanwhile is not taken again;
        each mark keeps its lease end as the token, so a retry scheduled meanwhile stays.
        """
        handed, self._handed = self._handed, []
        try:
            async with self.db.unit_of_work() as session:
                for batch in handed:
                    await repository.mark_dispatched(
                        session, batch.ids, lease_until=batch.lease_until, now=batch.at
                    )
                yield session
        except BaseException:
            self._handed[:0] = handed
            raise

    async def update_metrics(self) -> repository.Backlog:
        """Refresh the backlog gauges from the database."""
        handed = [i for batch in self._handed for i in batch.ids]
        async with self.db.read_only() as session:
            backlog = await repository.backlog(session, handed_on=handed)
        metrics.BACKLOG.set(backlog.pending)
        metrics.FAILING.set(backlog.failing)
        oldest = backlog.oldest_created_at
        metrics.OLDEST_AGE.set((clock.now() - oldest).total_seconds() if oldest else 0)
        return backlog

    async def run(self) -> None:
        """Dispatch until stopped: a full batch goes round again at once, else wait for a wake.

        Every poll makes a pass, due events or not, so what the last one handed on is marked.
        """
        failures = 0
        while not self._stopping:
            self._wake.clear()
            claimed = 0
            try:
                claimed = await self.run_once()
                if time.monotonic() - self._metrics_at >= self.metrics_every:
                    self._metrics_at = time.monotonic()
                    await self.update_metrics()
                failures = 0
            except Exception:
                failures += 1
                log.exception("outbox dispatcher pass failed", extra={"failures": failures})
            if claimed >= self.batch_size and not failures:
                continue
            wait = self.poll_seconds * min(2**failures, 60)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def start(self) -> None:
        """Run the loop in a background task and wake it after commits that publish."""
        if self._task is not None:
            return
        self._stopping = False
        self._undo_subscription = service.on_commit(self.db.engine.sync_engine, self.notify)
        self._task = asyncio.create_task(self.run(), name="outbox-dispatcher")

    async def stop(self, *, grace: float = 5.0) -> None:
        """Finish the current pass (up to `grace` seconds), stop, mark what was handed on."""
        if self._undo_subscription is not None:
            self._undo_subscription()
            self._undo_subscription = None
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), grace)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            await self.flush()
        except Exception:
            # Not lost: their leases run out and they are handed on again (handlers skip).
            log.exception("outbox events handed on but not marked dispatched")
