"""SQL for speaker announcements."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import UTCDateTime
from forecourt.kit import clock
from forecourt.kit.prepared import Prepared
from forecourt.pump.models import Announcement
from forecourt.station.models import Station

T = TypeVar("T")

OPEN = ("pending", "sent")
# Core table for executemany updates (ORM bulk updates would want primary keys only).
TABLE: Table = Announcement.__table__  # type: ignore[assignment]


def _open() -> ColumnElement[bool]:
    """Still waiting for an ack (no IN list: executemany cannot expand one)."""
    return or_(TABLE.c.status == OPEN[0], TABLE.c.status == OPEN[1])


def _due(*where: ColumnElement[bool]) -> Prepared:
    """Open announcements due at `now`, oldest first, up to `limit`, row-locked."""
    return Prepared(
        select(
            Announcement.id,
            Announcement.station_id,
            Station.code,
            Announcement.speaker,
            Announcement.text,
            Announcement.created_at,
            Announcement.attempts,
        )
        .join(Station, Station.id == Announcement.station_id)
        .where(
            Announcement.status.in_([literal(s) for s in OPEN]),
            Announcement.next_attempt_at <= bindparam("now"),
            *where,
        )
        .order_by(Announcement.next_attempt_at, Announcement.id)
        .limit(bindparam("limit"))
        .with_for_update(of=Announcement, skip_locked=True)
    )


DUE = _due()
DUE_RESENDS = _due(Announcement.attempts > 0)
DUE_FRESH = _due(Announcement.attempts == 0)
ADD = Prepared(
    insert(Announcement).values(
        id=bindparam("id"),
        station_id=bindparam("station_id"),
        speaker=bindparam("speaker"),
        text=bindparam("text"),
        status=bindparam("status"),
        attempts=bindparam("attempts"),
        created_at=bindparam("created_at"),
        next_attempt_at=bindparam("next_attempt_at"),
        acked_at=bindparam("acked_at"),
    )
)
# PostgreSQL only: one row per announcement from parallel arrays (SQLite uses executemany).
_SENT = (
    func.unnest(
        bindparam("ids", type_=ARRAY(String)),
        bindparam("attempts", type_=ARRAY(Integer)),
        bindparam("next_at", type_=ARRAY(UTCDateTime)),
    )
    .table_valued("id", "attempts", "next_at")
    .render_derived(name="sent")
)
MARK_ATTEMPTS = Prepared(
    update(TABLE)
    .where(TABLE.c.id == _SENT.c.id, _open())
    .values(status="sent", attempts=_SENT.c.attempts, next_attempt_at=_SENT.c.next_at)
)
_ACKS = (
    func.unnest(
        bindparam("ids", type_=ARRAY(String)),
        bindparam("statuses", type_=ARRAY(String)),
        bindparam("at", type_=ARRAY(UTCDateTime)),
    )
    .table_valued("id", "status", "at")
    .render_derived(name="ack")
)
MARK_ACKED = Prepared(
    update(TABLE)
    .where(TABLE.c.id == _ACKS.c.id, _open())
    .values(status=_ACKS.c.status, acked_at=_ACKS.c.at)
    .returning(TABLE.c.id, TABLE.c.station_id, TABLE.c.speaker)
)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _or(value: T | None, default: T) -> T:
    return default if value is None else value


@dataclass(frozen=True)
class Due:
    """An announcement due for (re)sending, with what the wire message needs."""

    id: str
    station_id: int
    station_code: str
    speaker: int
    text: str
    created_at: datetime
    attempts: int


async def add(session: AsyncSession, row: Announcement) -> None:
    """Insert an announcement."""
    now = clock.now()
    await ADD.run(
        session,
        id=row.id,
        station_id=row.station_id,
        speaker=_or(row.speaker, 1),
        text=row.text,
        status=_or(row.status, "pending"),
        attempts=_or(row.attempts, 0),
        created_at=_or(row.created_at, now),
        next_attempt_at=_or(row.next_attempt_at, now),
        acked_at=row.acked_at,
    )


async def due(
    session: AsyncSession, *, now: datetime, limit: int, new_limit: int | None = None
) -> list[Due]:
    """Open announcements whose next attempt is due, oldest first: up to `limit`, of which at
    most `new_limit` first sends (default `limit`). Row-locked on PostgreSQL with SKIP LOCKED,
    so two senders never take the same rows at once."""
    fresh_limit = limit if new_limit is None else min(new_limit, limit)
    if fresh_limit >= limit:  # first sends not held back: one statement for both kinds
        return [Due(*row) for row in await DUE.all(session, now=now, limit=limit)]
    # The in-flight window holds first sends back: resends first, then what room is left.
    found = [Due(*row) for row in await DUE_RESENDS.all(session, now=now, limit=limit)]
    fresh_limit = min(fresh_limit, limit - len(found))
    if fresh_limit > 0:
        found += [Due(*row) for row in await DUE_FRESH.all(session, now=now, limit=fresh_limit)]
    return found


async def mark_attempts(
    session: AsyncSession, attempts: Iterable[tuple[str, int, datetime]]
) -> None:
    """Record a publication: (id, attempts so far, next attempt time) per announcement."""
    latest = {i: (a, t) for i, a, t in attempts}  # a repeated id: the last one, as before
    if not latest:
        return
    if _dialect(session) == "postgresql":
        await MARK_ATTEMPTS.run(
            session,
            ids=list(latest),
            attempts=[a for a, _t in latest.values()],
            next_at=[t for _a, t in latest.values()],
        )
        return
    params = [{"_id": i, "_attempts": a, "_next": t} for i, (a, t) in latest.items()]
    stmt = (
        update(TABLE)
        .where(TABLE.c.id == bindparam("_id"), _open())
        .values(status="sent", attempts=bindparam("_attempts"), next_attempt_at=bindparam("_next"))
    )
    await session.execute(stmt, params)


async def mark_failed(session: AsyncSession, ids: Iterable[str]) -> None:
    """Give up on announcements (still open)."""
    id_list = list(ids)
    if not id_list:
        return
    await session.execute(
        update(Announcement)
        .where(Announcement.id.in_(id_list), Announcement.status.in_(OPEN))
        .values(status="failed")
        .execution_options(synchronize_session=False)
    )


async def mark_acked(
    session: AsyncSession, acks: Iterable[tuple[str, str, datetime]]
) -> list[tuple[str, int, int]]:
    """Apply first acks (id, status, time) to open announcements; repeats change nothing.
    Returns (id, station_id, speaker) of those that were open until now."""
    by_id = {a[0]: a for a in acks}  # a repeated id: the last one, as before
    if not by_id:
        return []
    if _dialect(session) == "postgresql":  # lock, check and update in one statement
        rows = await MARK_ACKED.all(
            session,
            ids=list(by_id),
            statuses=[a[1] for a in by_id.values()],
            at=[a[2] for a in by_id.values()],
        )
        return [(r.id, r.station_id, r.speaker) for r in rows]
    ids = list(by_id)
    open_rows = (
        await session.execute(
            select(Announcement.id, Announcement.station_id, Announcement.speaker)
            .where(Announcement.id.in_(ids), Announcement.status.in_(OPEN))
            .with_for_update()
        )
    ).all()
    applied = [(row[0], row[1], row[2]) for row in open_rows]
    if not applied:
        return []
    params = [
        {"_id": i, "_status": by_id[i][1], "_at": by_id[i][2]} for i, _station, _speaker in applied
    ]
    await session.execute(
        update(TABLE)
        .where(TABLE.c.id == bindparam("_id"), _open())
        .values(status=bindparam("_status"), acked_at=bindparam("_at")),
        params,
    )
    return applied


async def recent(
    session: AsyncSession, *, station_id: int, limit: int, status: str | None = None
) -> list[Announcement]:
    """A station's announcements, newest first."""
    stmt = select(Announcement).where(Announcement.station_id == station_id)
    if status is not None:
        stmt = stmt.where(Announcement.status == status)
    stmt = stmt.order_by(Announcement.created_at.desc(), Announcement.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def get(session: AsyncSession, message_id: str) -> Announcement | None:
    """One announcement by id."""
    return await session.get(Announcement, message_id)
