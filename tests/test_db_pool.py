"""Pooled PostgreSQL connections are not pinged: a dead one costs one failed statement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from forecourt.db import Database
from forecourt.kit.prepared import Prepared

PID = Prepared(select(func.pg_backend_pid()))


async def _backend_pid(db: Database) -> int:
    async with db.read_only() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _prepared_pid(db: Database) -> int:
    async with db.read_only() as session:
        return int(await PID.scalar(session))


@pytest.mark.parametrize("read_pid", [_backend_pid, _prepared_pid], ids=["sqlalchemy", "prepared"])
async def test_a_killed_connection_fails_once_then_the_pool_recovers(
    database: Database, read_pid: Callable[[Database], Awaitable[int]]
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("connection loss is a PostgreSQL matter")
    db = Database(database.url, pool_size=2)
    try:
        pid = await read_pid(db)
        async with database.engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await admin.commit()
        with pytest.raises(DBAPIError) as caught:
            await read_pid(db)
        assert caught.value.connection_invalidated
        assert await read_pid(db) != pid  # a new connection, no error
    finally:
        await db.dispose()
