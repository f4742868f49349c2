"""Tank routes: staff CRUD, deliveries, readings, reconciliation; public availability."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Path, Query, Response, status
from pydantic import AwareDatetime

from forecourt.deps import AnyStaff, Manager, Public, ReadSession, RuntimeDep, Session
from forecourt.tank import service
from forecourt.tank.schemas import (
    DeliveryIn,
    DeliveryOut,
    DeliveryResult,
    ReadingOut,
    ReconcileIn,
    StationAvailability,
    TankIn,
    TankOut,
    TankUpdate,
)

public = APIRouter(tags=["tanks"], dependencies=[Public])
admin = APIRouter(prefix="/admin/stations/{station_id}/tanks", tags=["tanks (staff)"])

TankNo = Annotated[int, Path(ge=1, le=9999)]
Since = Annotated[AwareDatetime | None, Query(description="from this time (inclusive)")]
Until = Annotated[AwareDatetime | None, Query(description="up to this time (inclusive)")]
Limit = Annotated[int, Query(ge=1, le=10_000)]


@public.get("/stations/{station_id}/tanks/availability", response_model=StationAvailability)
async def station_availability(session: ReadSession, station_id: int) -> StationAvailability:
    """Whether each grade is in stock, low or out at a station (anyone; no volumes)."""
    return await service.station_availability(session, station_id=station_id)


def _publish_later(
    tasks: BackgroundTasks, runtime: RuntimeDep, station_id: int, message: dict[str, Any] | None
) -> None:
    # Background tasks run after the response, so after the unit of work has committed.
    if message is not None:
        tasks.add_task(runtime.live.publish, station_id, message)


@admin.get("", response_model=list[TankOut])
async def list_tanks(session: ReadSession, principal: AnyStaff, station_id: int) -> list[TankOut]:
    """A station's tanks with measured and book stock (staff of the station)."""
    return await service.list_tanks(session, principal=principal, station_id=station_id)


@admin.post("", response_model=TankOut, status_code=status.HTTP_201_CREATED)
async def create_tank(
    session: Session, principal: Manager, station_id: int, body: TankIn
) -> TankOut:
    """Add a tank with its opening book stock (head office, manager)."""
    return await service.create_tank(session, principal=principal, station_id=station_id, data=body)


@admin.get("/{number}", response_model=TankOut)
async def get_tank(
    session: ReadSession, principal: AnyStaff, station_id: int, number: TankNo
) -> TankOut:
    """One tank's status (staff of the station)."""
    return await service.get_tank(
        session, principal=principal, station_id=station_id, number=number
    )


@admin.patch("/{number}", response_model=TankOut)
async def update_tank(
    session: Session, principal: Manager, station_id: int, number: TankNo, body: TankUpdate
) -> TankOut:
    """Change capacity, thresholds or the active flag (head office, manager)."""
    return await service.update_tank(
        session, principal=principal, station_id=station_id, number=number, data=body
    )


@admin.delete("/{number}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_tank(
    session: Session, principal: Manager, station_id: int, number: TankNo
) -> Response:
    """Delete a tank without history (head office, manager)."""
    await service.delete_tank(session, principal=principal, station_id=station_id, number=number)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin.post(
    "/{number}/deliveries",
    response_model=DeliveryResult,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": DeliveryResult, "description": "replay of a known client_ref"}},
)
async def add_delivery(
    session: Session,
    principal: Manager,
    runtime: RuntimeDep,
    tasks: BackgroundTasks,
    response: Response,
    station_id: int,
    number: TankNo,
    body: DeliveryIn,
) -> DeliveryResult:
    """Record a delivery from the delivery note, once per client_ref (head office, manager)."""
    result, message = await service.add_delivery(
        session, principal=principal, station_id=station_id, number=number, data=body
    )
    if result.replayed:
        response.status_code = status.HTTP_200_OK
    _publish_later(tasks, runtime, station_id, message)
    return result


@admin.get("/{number}/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    session: ReadSession,
    principal: AnyStaff,
    station_id: int,
    number: TankNo,
    since: Since = None,
    until: Until = None,
    limit: Limit = 200,
) -> list[DeliveryOut]:
    """Deliveries and reconciliations, newest first (staff of the station)."""
    return await service.list_deliveries(
        session,
        principal=principal,
        station_id=station_id,
        number=number,
        since=since,
        until=until,
        limit=limit,
    )


@admin.get("/{number}/readings", response_model=list[ReadingOut])
async def list_readings(
    session: ReadSession,
    principal: AnyStaff,
    station_id: int,
    number: TankNo,
    since: Since = None,
    until: Until = None,
    limit: Limit = 1440,
) -> list[ReadingOut]:
    """Gauge readings with book stock, oldest first, for a chart (staff of the station)."""
    return await service.list_readings(
        session,
        principal=principal,
        station_id=station_id,
        number=number,
        since=since,
        until=until,
        limit=limit,
    )


@admin.post("/{number}/reconcile", response_model=TankOut)
async def reconcile(
    session: Session,
    principal: Manager,
    runtime: RuntimeDep,
    tasks: BackgroundTasks,
    station_id: int,
    number: TankNo,
    body: ReconcileIn,
) -> TankOut:
    """Reset book stock to the latest measured stock, recording the correction (manager)."""
    out, message = await service.reconcile(
        session, principal=principal, station_id=station_id, number=number, data=body
    )
    _publish_later(tasks, runtime, station_id, message)
    return out
