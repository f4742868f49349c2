"""SQL for speaker announcements."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Table, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.pump.models import Announcement
from forecourt.station.models import Station

OPEN = ("pending", "sent")
# Core table for executemany updates (ORM bulk updates would want primary keys only).
TABLE: Table = Announcement.__table__  # type: ignore[assignment]


def _open() -> ColumnElement[bool]:
    """Still waiting for an ack (no IN list: executemany cannot expand one)."""
    return or_(TABLE.c.status == OPEN[0], TABLE.c.status == OPEN[1])


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
    session.add(row)
    await session.flush()


async def due(
    session: AsyncSession, *, now: datetime, limit: int, new_limit: int | None = None
) -> list[Due]:
    """Open announcements whose next attempt is due, oldest first: up to `limit`, of which at
    most `new_limit` first sends (default `limit`). Row-locked on PostgreSQL with SKIP LOCKED,
    so two senders never take the same rows at once."""
    base = (
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
        .where(Announcement.status.in_(OPEN), Announcement.next_attempt_at <= now)
        .order_by(Announcement.next_attempt_at, Announcement.id)
        .with_for_update(of=Announcement, skip_locked=True)
    )
    fresh_limit = limit if new_limit is None else min(new_limit, limit)
    if fresh_limit >= limit:  # first sends not held back: one statement for both kinds
        return [Due(*row) for row in (await session.execute(base.limit(limit))).all()]
    # The in-flight window holds first sends back: resends first, then what room is left.
    resends = base.where(Announcement.attempts > 0).limit(limit)
    found = [Due(*row) for row in (await session.execute(resends)).all()]
    fresh_limit = min(fresh_limit, limit - len(found))
    if fresh_limit > 0:
        fresh = base.where(Announcement.attempts == 0).limit(fresh_limit)
        found += [Due(*row) for row in (await session.execute(fresh)).all()]
    return found


async def mark_attempts(
    session: AsyncSession, attempts: Iterable[tuple[str, int, datetime]]
) -> None:
    """Record a publication: (id, attempts so far, next attempt time) per announcement."""
    params = [{"_id": i, "_attempts": a, "_next": t} for i, a, t in attempts]
    if not params:
        return
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
    acks = list(acks)
    if not acks:
        return []
    ids = [a[0] for a in acks]
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
    by_id = {a[0]: a for a in acks}
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
