"""Station routes: public reads for drivers, scoped CRUD for staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from forecourt.deps import AnyStaff, HqAdmin, Manager, Public, ReadSession, Session
from forecourt.station import service
from forecourt.station.schemas import Coord, StationCreate, StationOut, StationPage, StationUpdate

public = APIRouter(prefix="/stations", tags=["stations"], dependencies=[Public])
admin = APIRouter(prefix="/admin/stations", tags=["stations (staff)"])

CoordQ = Annotated[Coord, Query(description="coordinate system of lat/lng in the response")]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=200)]


@public.get("", response_model=StationPage)
async def list_stations(
    session: ReadSession,
    city: str | None = None,
    brand: str | None = None,
    coord: CoordQ = "gcj02",
    offset: Offset = 0,
    limit: Limit = 50,
) -> StationPage:
    """Active stations, filtered by city and brand (anyone)."""
    return await service.list_public(
        session, city=city, brand=brand, coord=coord, offset=offset, limit=limit
    )


@public.get("/{station_id}", response_model=StationOut)
async def get_station(session: ReadSession, station_id: int, coord: CoordQ = "gcj02") -> StationOut:
    """One station with its current prices (anyone)."""
    return await service.get_public(session, station_id=station_id, coord=coord)


@admin.get("", response_model=StationPage)
async def list_my_stations(
    session: ReadSession,
    principal: AnyStaff,
    city: str | None = None,
    status: str | None = None,
    coord: CoordQ = "gcj02",
    offset: Offset = 0,
    limit: Limit = 50,
) -> StationPage:
    """Stations the caller works at (head office: all)."""
    return await service.list_for_staff(
        session,
        principal=principal,
        city=city,
        status=status,
        coord=coord,
        offset=offset,
        limit=limit,
    )


@admin.get("/{station_id}", response_model=StationOut)
async def get_my_station(
    session: ReadSession, principal: AnyStaff, station_id: int, coord: CoordQ = "gcj02"
) -> StationOut:
    """One station within the caller's scope."""
    return await service.get_for_staff(
        session, principal=principal, station_id=station_id, coord=coord
    )


@admin.post("", response_model=StationOut, status_code=status.HTTP_201_CREATED)
async def create_station(
    session: Session, principal: HqAdmin, body: StationCreate, coord: CoordQ = "gcj02"
) -> StationOut:
    """Create a station (head office)."""
    station = await service.create(session, principal=principal, data=body)
    return (await service.render(session, [station], coord=coord))[0]


@admin.patch("/{station_id}", response_model=StationOut)
async def update_station(
    session: Session,
    principal: Manager,
    station_id: int,
    body: StationUpdate,
    coord: CoordQ = "gcj02",
) -> StationOut:
    """Change a station (head office: anything; managers: hours, services, phone, status)."""
    station = await service.update(session, principal=principal, station_id=station_id, data=body)
    return (await service.render(session, [station], coord=coord))[0]


@admin.delete("/{station_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_station(session: Session, principal: HqAdmin, station_id: int) -> Response:
    """Delete a station (head office)."""
    await service.delete(session, principal=principal, station_id=station_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
