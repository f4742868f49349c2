"""SQL of the back office: audit entries and shifts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.models import Staff
from forecourt.backoffice.models import OPEN_ONLY, AuditEntry, Shift
from forecourt.db import upsert_insert


async def audit_page(
    session: AsyncSession,
    *,
    station_ids: Sequence[int] | None,
    action: str | None,
    staff_id: int | None,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
    limit: int,
) -> Sequence[tuple[AuditEntry, str | None]]:
    """Audit entries (of some stations, or all when None), newest first, with staff names."""
    stmt = select(AuditEntry, Staff.display_name).outerjoin(Staff, Staff.id == AuditEntry.staff_id)
    if station_ids is not None:
        stmt = stmt.where(AuditEntry.station_id.in_(station_ids))
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action)
    if staff_id is not None:
        stmt = stmt.where(AuditEntry.staff_id == staff_id)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    stmt = stmt.order_by(AuditEntry.id.desc()).limit(limit)
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def open_shift(
    session: AsyncSession, *, station_id: int, staff_id: int, now: datetime, note: str | None
) -> int | None:
    """Insert an open shift unless the station has one; the new id, or None when it had."""
    stmt = (
        upsert_insert(session, Shift)
        .values(station_id=station_id, opened_by=staff_id, opened_at=now, status="open", note=note)
        .on_conflict_do_nothing(index_elements=["station_id"], index_where=OPEN_ONLY)
        .returning(Shift.id)
    )
    new_id = (await session.execute(stmt)).scalar_one_or_none()
    return int(new_id) if new_id is not None else None


async def close_shift(
    session: AsyncSession,
    *,
    shift_id: int,
    staff_id: int,
    now: datetime,
    cash_counted_fen: int,
    expected: dict[str, Any],
    note: str | None,
) -> bool:
    """open -> closed, exactly once; True for the call that closed it."""
    values: dict[str, Any] = {
        "status": "closed",
        "closed_by": staff_id,
        "closed_at": now,
        "cash_counted_fen": cash_counted_fen,
        "expected": expected,
    }
    if note is not None:
        values["note"] = note
    stmt = (
        update(Shift)
        .where(Shift.id == shift_id, Shift.status == "open")
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return int((await session.execute(stmt)).rowcount or 0) == 1  # type: ignore[attr-defined]


async def shift(session: AsyncSession, shift_id: int) -> Shift | None:
    """A shift by id (fresh from the database)."""
    return await session.get(Shift, shift_id, populate_existing=True)


async def current_shift(session: AsyncSession, station_id: int) -> Shift | None:
    """The station's open shift, if any."""
    stmt = select(Shift).where(Shift.station_id == station_id, Shift.status == "open")
    return (await session.scalars(stmt)).first()


async def shifts(
    session: AsyncSession, *, station_id: int, before_id: int | None, limit: int
) -> Sequence[Shift]:
    """A station's shifts, newest first."""
    stmt = select(Shift).where(Shift.station_id == station_id)
    if before_id is not None:
        stmt = stmt.where(Shift.id < before_id)
    return (await session.scalars(stmt.order_by(Shift.id.desc()).limit(limit))).all()


async def staff_names(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    """Display names of some staff accounts."""
    if not ids:
        return {}
    rows = await session.execute(select(Staff.id, Staff.display_name).where(Staff.id.in_(ids)))
    return {int(r[0]): str(r[1]) for r in rows.all()}
