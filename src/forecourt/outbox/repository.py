"""All SQL of the outbox: claim, mark dispatched, reschedule after failure, dedupe, purge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CursorResult,
    Executable,
    any_,
    bindparam,
    delete,
    exists,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.kit.prepared import Prepared
from forecourt.outbox.models import OutboxEvent, ProcessedEvent
from forecourt.outbox.retry import RetryPolicy

ERROR_MAX = 2000
_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True)
class Claimed:
    """An event this dispatcher holds until `lease_until`, as it was when claimed."""

    id: int
    topic: str
    attempts: int
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Backlog:
    """Undispatched events: how many, how many have failed before, the oldest one's age."""

    pending: int
    failing: int
    oldest_created_at: datetime | None


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def _claim(dialect: str) -> Executable:
    due = (
        select(OutboxEvent.id)
        .where(OutboxEvent.dispatched_at.is_(None), OutboxEvent.available_at <= bindparam("now"))
        .order_by(OutboxEvent.id)
        .limit(bindparam("limit"))
    )
    target: ColumnElement[bool]
    if dialect == "postgresql":
        # A CTE, not `id IN (subquery)`: PostgreSQL may rescan such a subquery per row
        # (nested-loop semi join), which ignores the LIMIT and defeats SKIP LOCKED.
        locked = due.with_for_update(skip_locked=True).cte("due")
        target = OutboxEvent.id == locked.c.id
    else:
        target = OutboxEvent.id.in_(due.scalar_subquery())
    return (
        update(OutboxEvent)
        .where(
            target,
            OutboxEvent.dispatched_at.is_(None),
            OutboxEvent.available_at <= bindparam("now"),
        )
        .values(available_at=bindparam("lease_until"))
        .returning(
            OutboxEvent.id,
            OutboxEvent.topic,
            OutboxEvent.attempts,
            OutboxEvent.payload,
            OutboxEvent.created_at,
        )
    )


def _mark_processed(dialect: str) -> Executable:
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(ProcessedEvent)
        .values(
            handler=bindparam("handler"),
            event_id=bindparam("event_id"),
            processed_at=bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=["handler", "event_id"])
        .returning(ProcessedEvent.event_id)
    )


CLAIM = Prepared(_claim)
# PostgreSQL only (an array of ids); SQLite runs the same UPDATE with an IN list.
MARK_DISPATCHED = Prepared(
    update(OutboxEvent)
    .where(
        OutboxEvent.id == any_(bindparam("ids", type_=ARRAY(BigInteger))),
        OutboxEvent.dispatched_at.is_(None),
        OutboxEvent.available_at == bindparam("lease_until"),
    )
    .values(dispatched_at=bindparam("now"))
)
CANCEL = Prepared(
    delete(OutboxEvent).where(
        OutboxEvent.id == bindparam("event_id"), OutboxEvent.dispatched_at.is_(None)
    )
)
MARK_PROCESSED = Prepared(_mark_processed)


async def claim(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> list[Claimed]:
    """Take up to `limit` due events in id order by pushing their available_at to the lease end.

    PostgreSQL skips rows another dispatcher has locked (FOR UPDATE SKIP LOCKED); SQLite runs
    the statement as one conditional write, which its single writer makes atomic. Either way
    each due event goes to one dispatcher, and comes back by itself if that one dies.
    """
    rows = await CLAIM.all(session, now=now, lease_until=lease_until, limit=limit)
    claimed = (
        Claimed(
            id=r.id,
            topic=r.topic,
            attempts=r.attempts,
            payload=dict(r.payload),
            created_at=r.created_at,
        )
        for r in rows
    )
    return sorted(claimed, key=_id)


def _id(claimed: Claimed) -> int:
    return claimed.id


async def mark_dispatched(
    session: AsyncSession, ids: Sequence[int], *, lease_until: datetime, now: datetime
) -> int:
    """Record that the events were handed to the queue, unless a retry was scheduled meanwhile.

    The lease end works as the claim token: a handler failure that already rescheduled the
    event (new available_at), or another claim after the lease ran out, must not be overwritten.
    `now` is when they were handed on (the dispatcher marks them with its next claim).
    """
    if not ids:
        return 0
    if _dialect(session) == "postgresql":
        return await MARK_DISPATCHED.run(session, ids=list(ids), lease_until=lease_until, now=now)
    stmt = (
        update(OutboxEvent)
        .where(
            OutboxEvent.id.in_(list(ids)),
            OutboxEvent.dispatched_at.is_(None),
            OutboxEvent.available_at == lease_until,
        )
        .values(dispatched_at=now)
    )
    return _rowcount(await session.execute(stmt, execution_options=_NO_SYNC))


async def reschedule(
    session: AsyncSession,
    event_id: int,
    *,
    attempts: int,
    error: str,
    now: datetime,
    policy: RetryPolicy,
    lease_until: datetime | None = None,
) -> datetime | None:
    """After a failure: attempts + 1, available_at pushed back by the policy, last_error set.

    With `lease_until` (the queue refused the event) only while this dispatcher still holds the
    claim; without it (a handler failed) the event is reopened even if already dispatched.
    Returns the new available_at, or None when nothing was changed.
    """
    retry_at = now + policy.delay(attempts + 1)
    conditions = [OutboxEvent.id == event_id]
    if lease_until is not None:
        conditions += [
            OutboxEvent.dispatched_at.is_(None),
            OutboxEvent.available_at == lease_until,
        ]
    stmt = (
        update(OutboxEvent)
        .where(*conditions)
        .values(
            dispatched_at=None,
            available_at=retry_at,
            attempts=OutboxEvent.attempts + 1,
            last_error=error[:ERROR_MAX],
        )
    )
    changed = _rowcount(await session.execute(stmt, execution_options=_NO_SYNC))
    return retry_at if changed else None


async def cancel(session: AsyncSession, event_id: int) -> bool:
    """Delete an event that has not been handed on yet; False when it was (or is gone)."""
    return await CANCEL.run(session, event_id=event_id) > 0


async def get(session: AsyncSession, event_id: int) -> OutboxEvent | None:
    """One event by id."""
    return await session.get(OutboxEvent, event_id)


async def mark_processed(
    session: AsyncSession, *, handler: str, event_id: int, now: datetime
) -> bool:
    """Insert the (handler, event) marker; False when it exists (the handler already ran).

    Run it as the transaction's first statement: on PostgreSQL a concurrent delivery waits on
    the uncommitted marker and then sees it; on SQLite the write lock is taken before any read.
    """
    return (
        await MARK_PROCESSED.first(session, handler=handler, event_id=event_id, now=now) is not None
    )


async def backlog(session: AsyncSession, *, handed_on: Sequence[int] = ()) -> Backlog:
    """Count undispatched events (for the metrics), leaving out those handed on but not marked."""
    stmt = select(
        func.count(),
        func.count().filter(OutboxEvent.attempts > 0),
        func.min(OutboxEvent.created_at),
    ).where(OutboxEvent.dispatched_at.is_(None))
    if handed_on:
        stmt = stmt.where(OutboxEvent.id.not_in(list(handed_on)))
    pending, failing, oldest = (await session.execute(stmt)).one()
    return Backlog(pending=pending, failing=failing, oldest_created_at=oldest)


async def purge_dispatched(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` events dispatched before `before`; returns how many."""
    victims = (
        select(OutboxEvent.id)
        .where(OutboxEvent.dispatched_at < before)
        .order_by(OutboxEvent.id)
        .limit(limit)
    )
    stmt = delete(OutboxEvent).where(OutboxEvent.id.in_(victims.scalar_subquery()))
    return _rowcount(await session.execute(stmt, execution_options=_NO_SYNC))


async def purge_processed(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` markers older than `before` whose event is gone; returns how many.

    A marker outlives its age while the event still exists (e.g. another handler is still
    retrying it), so a late redelivery never repeats a handler.
    """
    event_gone = ~exists().where(OutboxEvent.id == ProcessedEvent.event_id)
    victims = (
        select(ProcessedEvent.handler, ProcessedEvent.event_id)
        .where(ProcessedEvent.processed_at < before, event_gone)
        .limit(limit)
        .correlate(None)
    )
    stmt = delete(ProcessedEvent).where(
        tuple_(ProcessedEvent.handler, ProcessedEvent.event_id).in_(victims)
    )
    return _rowcount(await session.execute(stmt, execution_options=_NO_SYNC))
