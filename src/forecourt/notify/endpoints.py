"""Staff routes for station speakers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from forecourt.deps import AnyStaff, ReadSession, Session
from forecourt.notify import service
from forecourt.notify.schemas import AnnounceIn, AnnouncementList, AnnouncementOut

router = APIRouter(prefix="/admin/stations", tags=["speakers (staff)"])


@router.post(
    "/{station_id}/speaker/announce",
    response_model=AnnouncementOut,
    status_code=status.HTTP_202_ACCEPTED,
)
async def announce(
    session: Session, principal: AnyStaff, station_id: int, body: AnnounceIn
) -> AnnouncementOut:
    """Have a station speaker read a text (staff of that station; head office anywhere)."""
    return await service.announce_for_staff(
        session, principal=principal, station_id=station_id, text=body.text, speaker=body.speaker
    )


@router.get("/{station_id}/speaker/announcements", response_model=AnnouncementList)
async def recent_announcements(
    session: ReadSession,
    principal: AnyStaff,
    station_id: int,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AnnouncementList:
    """Recent announcements of a station and whether each was played."""
    return await service.recent_for_staff(
        session, principal=principal, station_id=station_id, limit=limit
    )
