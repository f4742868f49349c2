"""Engines, sessions and the unit of work: the one place that commits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator, event, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for both engines."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC datetimes."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(
    url: str, *, pool_size: int = 10, pre_ping: bool = False, recycle_seconds: int = 1800
) -> AsyncEngine:
    """Create an async engine; SQLite gets WAL, foreign keys and a busy timeout.

    PostgreSQL connections are not pinged at check-out (that is three round trips per unit of
    work); they are recycled after `recycle_seconds`, and a connection found dead invalidates
    the pool so only the statement that found it fails. `pre_ping` turns the ping back on.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=recycle_seconds,
    )


class Database:
    """The primary engine (and an optional read replica) with their session factories."""

    def __init__(
        self,
        url: str,
        *,
        replica_url: str | None = None,
        pool_size: int = 10,
        pre_ping: bool = False,
        recycle_seconds: int = 1800,
    ) -> None:
        self.url = url
        options: dict[str, Any] = {
            "pool_size": pool_size,
            "pre_ping": pre_ping,
            "recycle_seconds": recycle_seconds,
        }
        self.engine = make_engine(url, **options)
        self.replica = make_engine(replica_url, **options) if replica_url else self.engine
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self.read_sessions = async_sessionmaker(
            self.replica, expire_on_commit=False, autoflush=False
        )

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """One transaction: commit when the block succeeds, roll back when it raises."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def read_only(self) -> AsyncIterator[AsyncSession]:
        """A session on the replica (or the primary) that never commits."""
        async with self.read_sessions() as session:
            try:
                yield session
            finally:
                await session.rollback()

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self.replica is not self.engine:
            await self.replica.dispose()


def upsert_insert(session: AsyncSession, model: type[Any]) -> Any:
    """A dialect INSERT that supports ON CONFLICT on both engines."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


async def lock_row(session: AsyncSession, model: type[Any], key: Any) -> Any:
    """Load a row for update: FOR UPDATE on PostgreSQL; on SQLite, take the write lock first.

    Pending changes are flushed first, so re-reading the row never discards them.
    """
    await session.flush()
    if session.get_bind().dialect.name == "sqlite":
        table = model.__table__
        pk = next(iter(table.primary_key.columns))
        await session.execute(update(table).where(pk == key).values({pk.name: pk}))
        return await session.get(model, key, populate_existing=True)
    return await session.get(model, key, with_for_update=True, populate_existing=True)
