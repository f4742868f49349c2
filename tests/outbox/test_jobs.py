"""Scheduled jobs: the nightly purge, cron labels in business time, the in-process scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from taskiq.cli.scheduler.run import is_cron_task_now
from taskiq.schedule_sources import LabelScheduleSource

from forecourt.db import Database
from forecourt.outbox.models import OutboxEvent, ProcessedEvent
from forecourt.outbox.registry import HandlerRegistry
from forecourt.outbox.tasks import Purged, purge
from forecourt.runtime import Runtime
from forecourt.worker.jobs import JobRegistry
from forecourt.worker.task_runtime import TaskRuntime
from tests.outbox.conftest import T0, FrozenClock, wait_until

DAY = timedelta(days=1)


async def seed_history(db: Database) -> dict[str, int]:
    """Events and markers of various ages; returns the event ids by role."""
    async with db.unit_of_work() as session:
        rows = {
            "old_done": OutboxEvent(
                topic="a", payload={}, created_at=T0 - 9 * DAY, available_at=T0 - 9 * DAY,
                dispatched_at=T0 - 8 * DAY, attempts=0,
            ),
            "recent_done": OutboxEvent(
                topic="a", payload={}, created_at=T0 - 6 * DAY, available_at=T0 - 6 * DAY,
                dispatched_at=T0 - 6 * DAY, attempts=0,
            ),
            "old_retrying": OutboxEvent(
                topic="a", payload={}, created_at=T0 - 10 * DAY, available_at=T0 + DAY,
                dispatched_at=None, attempts=40, last_error="b: Boom",
            ),
        }  # fmt: skip
        session.add_all(rows.values())
        await session.flush()
        ids = {role: row.id for role, row in rows.items()}
        session.add_all(
            [
                ProcessedEvent(handler="h", event_id=ids["old_done"], processed_at=T0 - 8 * DAY),
                ProcessedEvent(handler="h", event_id=ids["recent_done"], processed_at=T0 - 6 * DAY),
                ProcessedEvent(
                    handler="h", event_id=ids["old_retrying"], processed_at=T0 - 9 * DAY
                ),
                ProcessedEvent(handler="h", event_id=999_999, processed_at=T0 - 8 * DAY),
                ProcessedEvent(handler="h", event_id=999_998, processed_at=T0 - 6 * DAY),
            ]
        )
    return ids


async def remaining(db: Database) -> tuple[list[int], list[int]]:
    """Ids of the events and of the markers' events still stored."""
    async with db.sessions() as session:
        events = (await session.execute(select(OutboxEvent.id).order_by(OutboxEvent.id))).all()
        marks = await session.execute(select(ProcessedEvent.event_id).order_by("event_id"))
        return [r.id for r in events], [r.event_id for r in marks]


async def test_purge_drops_week_old_dispatched_events_and_orphan_markers(
    db: Database, frozen: FrozenClock
) -> None:
    ids = await seed_history(db)
    assert await purge(db, batch=1) == Purged(events=1, markers=2)
    events, marks = await remaining(db)
    assert events == [ids["recent_done"], ids["old_retrying"]]
    assert marks == sorted([ids["recent_done"], ids["old_retrying"], 999_998])
    assert await purge(db) == Purged(events=0, markers=0)


async def test_nightly_purge_runs_as_a_task(
    runtime: Runtime, db: Database, frozen: FrozenClock
) -> None:
    tasks = TaskRuntime(runtime)  # the real registries, found by discovery
    runtime.tasks = tasks
    ids = await seed_history(db)
    await tasks.start(dispatcher=False, scheduler=False)
    try:
        await tasks.run_job("outbox.purge")
        await tasks.drain()
    finally:
        await tasks.stop()
    events, _ = await remaining(db)
    assert events == [ids["recent_done"], ids["old_retrying"]]


async def test_scheduler_sends_the_nightly_purge_at_0330_shanghai(runtime: Runtime) -> None:
    tasks = TaskRuntime(runtime)
    source = LabelScheduleSource(tasks.broker)
    await source.startup()
    schedules = {s.schedule_id: s for s in await source.get_schedules()}
    purge_schedule = schedules["outbox.purge"]
    assert purge_schedule.task_name == "forecourt.job.outbox.purge"
    assert (purge_schedule.cron, purge_schedule.cron_offset) == ("30 3 * * *", "Asia/Shanghai")
    assert (purge_schedule.args, purge_schedule.kwargs) == ([], {})
    assert schedules["outbox.trim_queue"].cron == "*/10 * * * *"

    # 03:30 in Shanghai is 19:30 UTC the day before; 03:30 UTC is not the moment.
    at_shanghai = datetime(2026, 3, 1, 19, 30, tzinfo=UTC)
    assert is_cron_task_now("30 3 * * *", at_shanghai, offset="Asia/Shanghai")
    assert not is_cron_task_now(
        "30 3 * * *", datetime(2026, 3, 2, 3, 30, tzinfo=UTC), "Asia/Shanghai"
    )


async def test_in_process_scheduler_runs_a_declared_job(
    runtime: Runtime, jobs: JobRegistry
) -> None:
    runs: list[Runtime] = []

    @jobs.scheduled("test.every_minute", cron="* * * * *")
    async def every_minute(rt: Runtime) -> None:
        runs.append(rt)

    with_job = TaskRuntime(runtime, handlers=HandlerRegistry(), jobs=jobs)
    task = with_job.broker.find_task("forecourt.job.test.every_minute")
    assert task is not None
    assert task.labels["schedule"] == [
        {"cron": "* * * * *", "cron_offset": "Asia/Shanghai", "schedule_id": "test.every_minute"}
    ]
    await with_job.start(dispatcher=False, scheduler=True)
    try:
        await wait_until(lambda: len(runs) == 1, within=5)
    finally:
        await with_job.stop()
    assert runs == [runtime]


@pytest.mark.parametrize("cron", ["0 2 * *", "0 2 * * * *", "0 2 ? * *"])
def test_job_cron_must_have_five_fields(cron: str) -> None:
    async def job(rt: Runtime) -> None:
        return None

    with pytest.raises(ValueError, match="5 fields"):
        JobRegistry().add("a.job", job, cron=cron)


def test_job_name_belongs_to_one_function() -> None:
    registry = JobRegistry()

    async def job(rt: Runtime) -> None:
        return None

    async def other(rt: Runtime) -> None:
        return None

    registry.add("a.job", job, cron="0 2 * * *")
    registry.add("a.job", job, cron="0 2 * * *")  # the same module imported again
    with pytest.raises(ValueError, match="already"):
        registry.add("a.job", other, cron="0 2 * * *")
    assert [(j.name, j.fn) for j in registry.all()] == [("a.job", job)]
