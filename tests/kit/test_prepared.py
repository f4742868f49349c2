"""Prepared statements: same results, transaction and errors as SQLAlchemy's own path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, event, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from forecourt.db import Database
from forecourt.kit.prepared import Prepared
from forecourt.outbox.models import OutboxEvent, ProcessedEvent

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)

ADD = Prepared(
    insert(OutboxEvent)
    .values(
        topic=bindparam("topic"),
        payload=bindparam("payload"),
        created_at=bindparam("at"),
        available_at=bindparam("at"),
        attempts=0,
    )
    .returning(OutboxEvent.id, OutboxEvent.payload, OutboxEvent.created_at)
)
BUMP = Prepared(
    update(OutboxEvent)
    .where(
        OutboxEvent.topic.in_([literal("a"), literal("b")]),
        OutboxEvent.attempts < bindparam("below"),
    )
    .values(attempts=OutboxEvent.attempts + 1)
)
COUNT = Prepared(select(OutboxEvent.id).where(OutboxEvent.topic == bindparam("topic")))
MARK = Prepared(
    insert(ProcessedEvent).values(
        handler=bindparam("handler"), event_id=bindparam("event_id"), processed_at=bindparam("at")
    )
)


async def _topics(db: Database) -> list[str]:
    async with db.read_only() as session:
        return list((await session.scalars(select(OutboxEvent.topic))).all())


async def test_rows_keep_their_types_and_column_names(db: Database) -> None:
    async with db.unit_of_work() as session:
        row = await ADD.first(session, topic="a", payload={"n": 1, "s": "x"}, at=T0)
        assert row is not None
        assert row.payload == {"n": 1, "s": "x"}
        assert row.created_at == T0
        assert row.created_at.tzinfo is not None
        assert isinstance(row.id, int)
        assert row.id == row[0]
        assert await COUNT.scalar(session, topic="a") == row.id
        assert await COUNT.all(session, topic="nothing") == []
        assert await COUNT.first(session, topic="nothing") is None
    async with db.read_only() as session:
        event_ = await session.get(OutboxEvent, row.id)
        assert event_ is not None
        assert (event_.created_at, event_.payload["n"]) == (T0, 1)


async def test_it_runs_inside_the_session_transaction(db: Database) -> None:
    async def undone() -> None:
        async with db.unit_of_work() as session:
            await ADD.first(session, topic="a", payload={}, at=T0)  # the unit's first statement
            session.add(OutboxEvent(topic="b", payload={}))
            await session.flush()
            assert await COUNT.all(session, topic="a") != []
            raise RuntimeError("undo")

    with pytest.raises(RuntimeError):
        await undone()
    assert await _topics(db) == []
    async with db.unit_of_work() as session:
        session.add(OutboxEvent(topic="b", payload={}))
        await session.flush()  # SQLAlchemy first, then the prepared statement, one commit
        await ADD.first(session, topic="a", payload={}, at=T0)
    assert sorted(await _topics(db)) == ["a", "b"]


async def test_run_counts_matched_rows_and_fixed_values_apply(db: Database) -> None:
    async with db.unit_of_work() as session:
        for topic in ("a", "b", "c"):
            await ADD.first(session, topic=topic, payload={}, at=T0)
        assert await BUMP.run(session, below=1) == 2
        assert await BUMP.run(session, below=1) == 0
        assert await BUMP.run(session, below=5) == 2


async def test_a_constraint_violation_is_sqlalchemys_integrity_error(db: Database) -> None:
    async with db.unit_of_work() as session:
        await MARK.run(session, handler="h", event_id=1, at=T0)
    with pytest.raises(IntegrityError):
        async with db.unit_of_work() as session:
            await MARK.run(session, handler="h", event_id=1, at=T0)
    async with db.unit_of_work() as session:  # the pool's connection is still good
        assert await MARK.run(session, handler="h", event_id=2, at=T0 + timedelta(1)) == 1


async def test_bind_processing_refuses_a_naive_datetime(db: Database) -> None:
    with pytest.raises(Exception, match="naive"):
        async with db.unit_of_work() as session:
            await MARK.run(session, handler="h", event_id=3, at=datetime(2026, 1, 1))


async def test_engine_events_see_each_statement(db: Database) -> None:
    seen: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        seen.append(("before", sql))

    def after(_conn: Any, cursor: Any, sql: str, params: Any, *_: Any) -> None:
        seen.append(("after", cursor.rowcount))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        async with db.unit_of_work() as session:
            await ADD.first(session, topic="a", payload={}, at=T0)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    assert seen[0][0] == "before"
    assert "INSERT INTO outbox_events" in seen[0][1]
    assert seen[1] == ("after", 1)


async def test_unknown_parameters_are_refused(db: Database) -> None:
    with pytest.raises(Exception, match="unknown parameters"):
        async with db.unit_of_work() as session:
            await COUNT.all(session, topic="a", other=1)


async def test_statements_it_cannot_run_faithfully_are_refused(db: Database) -> None:
    expanding = Prepared(select(OutboxEvent.id).where(OutboxEvent.topic.in_(["a", "b"])))
    defaults = Prepared(insert(OutboxEvent).values(topic=bindparam("t"), payload={}))
    reserved = Prepared(
        update(OutboxEvent).where(OutboxEvent.id == bindparam("id")).values(attempts=1)
    )
    async with db.unit_of_work() as session:
        with pytest.raises(TypeError, match="expanding"):
            await expanding.all(session)
        with pytest.raises(TypeError, match="defaults"):
            await defaults.run(session, t="a")
        with pytest.raises(TypeError, match="reserved"):
            await reserved.run(session, id=1)
