"""Speaker rules for staff: scope checks around `speaker.announce` and the history."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.errors import NotFound
from forecourt.kit.scope import require_station
from forecourt.notify import repository
from forecourt.notify import speaker as speakers
from forecourt.notify.schemas import AnnouncementList, AnnouncementOut
from forecourt.pump import repository as pump_repository
from forecourt.pump.models import Announcement


def _out(row: Announcement) -> AnnouncementOut:
    return AnnouncementOut(
        message_id=row.id,
        station_id=row.station_id,
        speaker=row.speaker,
        text=row.text,
        status=row.status,
        attempts=row.attempts,
        created_at=row.created_at,
        acked_at=row.acked_at,
    )


async def _require(session: AsyncSession, principal: Principal, station_id: int) -> None:
    require_station(principal, station_id)
    if await pump_repository.station_code(session, station_id) is None:
        raise NotFound(f"station {station_id} not found")


async def announce_for_staff(
    session: AsyncSession, *, principal: Principal, station_id: int, text: str, speaker: int
) -> AnnouncementOut:
    """Queue an announcement at a station in the caller's scope."""
    await _require(session, principal, station_id)
    message_id = await speakers.announce(session, station_id=station_id, text=text, speaker=speaker)
    row = await repository.get(session, message_id)
    assert row is not None
    return _out(row)


async def recent_for_staff(
    session: AsyncSession, *, principal: Principal, station_id: int, limit: int
) -> AnnouncementList:
    """Recent announcements of a station in the caller's scope, newest first."""
    await _require(session, principal, station_id)
    rows = await repository.recent(session, station_id=station_id, limit=limit)
    return AnnouncementList(items=[_out(r) for r in rows])
