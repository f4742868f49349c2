"""Pooled PostgreSQL connections are not pinged: a dead one costs one failed statement."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from forecourt.db import Database
from forecourt.kit.prepared import Prepared


async def _backend_pid(db: Database) -> int:
    async with db.read_only() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_killed_connection_fails_once_then_the_pool_recovers(database: Database) -> None:
    if database.dialect != "postgresql":
        pytest.skip("connection loss is a PostgreSQL matter")
    db = Database(database.url, pool_size=2)
    try:
        pid = await _backend_pid(db)
        async with database.engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await admin.commit()
        with pytest.raises(DBAPIError) as caught:
            await _backend_pid(db)
        assert caught.value.connection_invalidated
        assert await _backend_pid(db) != pid  # a new connection, no error
    finally:
        await db.dispose()


PID = Prepared(select(func.pg_backend_pid()))


async def _prepared_pid(db: Database) -> int:
    async with db.read_only() as session:
        return int(await PID.scalar(session))


async def test_a_killed_connection_under_a_prepared_statement_is_dropped(
    database: Database,
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("connection loss is a PostgreSQL matter")
    db = Database(database.url, pool_size=2)
    try:
        pid = await _prepared_pid(db)
        async with database.engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await admin.commit()
        with pytest.raises(DBAPIError) as caught:
            await _prepared_pid(db)
        assert caught.value.connection_invalidated
        assert await _prepared_pid(db) != pid
    finally:
        await db.dispose()
