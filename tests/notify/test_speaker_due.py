"""Finding due announcements in one statement, and waking the sender with no database work."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.notify import repository
from forecourt.notify import tasks as notify_tasks
from forecourt.notify.speaker import CREATED, SpeakerSender
from forecourt.outbox import Event, handlers
from forecourt.outbox.processor import process_event
from forecourt.outbox.registry import LightHandler
from forecourt.outbox.retry import RetryPolicy
from forecourt.pump.link.inprocess import InProcessBroker
from forecourt.pump.models import Announcement
from forecourt.pump.simulator.links import inprocess_connector
from forecourt.runtime import Runtime
from tests.fixtures.auth import insert_station

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


@pytest.fixture
def selects(db: Database) -> Iterator[list[str]]:
    """Every SELECT sent while the test runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            seen.append(sql)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


async def _announcements(runtime: Runtime, attempts: list[int]) -> list[str]:
    """Open announcements due a second apart, oldest first, with these attempts so far."""
    station_id = await insert_station(runtime)
    ids = [f"ann_{n}" for n in range(len(attempts))]
    async with runtime.db.unit_of_work() as session:
        for n, (message_id, tries) in enumerate(zip(ids, attempts, strict=True)):
            due_at = NOW - timedelta(seconds=len(attempts) - n)
            session.add(
                Announcement(
                    id=message_id,
                    station_id=station_id,
                    speaker=1,
                    text=f"第{n}条",
                    status="sent" if tries else "pending",
                    attempts=tries,
                    created_at=due_at,
                    next_attempt_at=due_at,
                )
            )
    return ids


async def _due(runtime: Runtime, limit: int, new_limit: int | None = None) -> list[str]:
    async with runtime.db.unit_of_work() as session:
        found = await repository.due(session, now=NOW, limit=limit, new_limit=new_limit)
    return [d.id for d in found]


async def test_due_announcements_of_both_kinds_come_in_one_statement(
    runtime: Runtime, selects: list[str]
) -> None:
    ids = await _announcements(runtime, [1, 0, 2, 0])
    selects.clear()
    assert await _due(runtime, limit=10) == ids
    assert len(selects) == 1
    assert await _due(runtime, limit=3) == ids[:3]  # oldest due first


async def test_a_full_window_holds_first_sends_back_but_never_resends(
    runtime: Runtime, selects: list[str]
) -> None:
    resend_a, first_b, resend_c, first_d = await _announcements(runtime, [1, 0, 2, 0])
    assert await _due(runtime, limit=10, new_limit=1) == [resend_a, resend_c, first_b]
    assert await _due(runtime, limit=10, new_limit=0) == [resend_a, resend_c]
    selects.clear()
    assert await _due(runtime, limit=2, new_limit=1) == [resend_a, resend_c]  # no room left
    assert len(selects) == 1
    assert first_d not in await _due(runtime, limit=3, new_limit=1)


async def test_the_outbox_wakes_the_sender_with_no_database_work(
    runtime: Runtime, settings: Settings, selects: list[str]
) -> None:
    [handler] = handlers.for_topic(CREATED)
    assert isinstance(handler, LightHandler)
    assert handler.fn is notify_tasks.wake_speaker_sender
    sender = SpeakerSender(
        db=runtime.db, settings=settings, connect=inprocess_connector(InProcessBroker())
    )
    created = Event(1, CREATED, {"message_id": "ann_1", "station_id": 1}, NOW, 0)
    outcomes = await process_event(runtime.db, handlers, RetryPolicy(), created.id, created)
    assert outcomes == {"notify.speaker_wake": "done"}
    assert sender._wake.is_set()
    assert selects == []
