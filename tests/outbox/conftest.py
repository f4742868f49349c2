"""Fixtures for background work: fresh registries, a frozen clock, a TaskRuntime per test."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from forecourt.db import Database
from forecourt.kit import clock
from forecourt.outbox.models import OutboxEvent
from forecourt.outbox.registry import HandlerRegistry
from forecourt.outbox.retry import RetryPolicy
from forecourt.runtime import Runtime
from forecourt.worker.jobs import JobRegistry
from forecourt.worker.task_runtime import TaskRuntime

T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


class FrozenClock:
    """clock.now() that only moves when told."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        """The frozen moment."""
        return self.at

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta`; returns the new moment."""
        self.at += delta
        return self.at


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """Freeze clock.now() at T0 for the test."""
    fake = FrozenClock(T0)
    monkeypatch.setattr(clock, "now", fake.now)
    return fake


@pytest.fixture
def handlers() -> HandlerRegistry:
    """An empty handler registry (tests register their own)."""
    return HandlerRegistry()


@pytest.fixture
def jobs() -> JobRegistry:
    """An empty job registry."""
    return JobRegistry()


@pytest.fixture
async def tasks(
    runtime: Runtime, handlers: HandlerRegistry, jobs: JobRegistry
) -> AsyncIterator[TaskRuntime]:
    """An in-process TaskRuntime on the test database, started (no loops) and stopped after."""
    task_runtime = TaskRuntime(runtime, handlers=handlers, jobs=jobs, policy=RetryPolicy())
    runtime.tasks = task_runtime
    await task_runtime.start(dispatcher=False, scheduler=False)
    yield task_runtime
    await task_runtime.stop()


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]], *, within: float = 5.0, every: float = 0.01
) -> None:
    """Poll `check` until it is true; fail after `within` seconds."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(every)


async def count_events(db: Database, topic: str) -> int:
    """How many outbox rows have `topic`."""
    async with db.sessions() as session:
        stmt = select(func.count()).select_from(OutboxEvent).where(OutboxEvent.topic == topic)
        return (await session.execute(stmt)).scalar_one()


async def load_event(db: Database, event_id: int) -> OutboxEvent:
    """A fresh copy of one outbox row."""
    async with db.sessions() as session:
        row = await session.get(OutboxEvent, event_id)
        assert row is not None
        return row
