"""Pump routes: public nozzle snapshot; staff equipment CRUD, alerts, sales and commands."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Protocol

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.backoffice import audit
from forecourt.deps import AnyStaff, Manager, Public, ReadSession, RuntimeDep, Session
from forecourt.kit import clock
from forecourt.pump import equipment, sales, service
from forecourt.pump.equipment import scoped_station
from forecourt.pump.schemas import (
    AlertOut,
    CommandAccepted,
    DispenserIn,
    DispenserOut,
    DispenserUpdate,
    EquipmentOut,
    FuellingPointIn,
    FuellingPointOut,
    NozzleIn,
    NozzleOut,
    NozzleUpdate,
    SaleOut,
    StationNozzles,
)

public = APIRouter(tags=["pumps"])
admin = APIRouter(prefix="/admin/stations/{station_id}", tags=["pumps (staff)"])

FpNumber = Annotated[int, Path(ge=1, le=9999)]
Seq = Annotated[int, Path(ge=1, le=2**32 - 1)]
NozzleNumber = Annotated[int, Path(ge=1, le=9999)]


def _sale_out(view: sales.SaleView) -> SaleOut:
    return SaleOut(
        fp=view.fp,
        seq=view.seq,
        nozzle=view.nozzle,
        grade=view.grade,
        volume_ml=view.volume_ml,
        amount_fen=view.amount_fen,
        unit_price_fen=view.unit_price_fen,
        ended_at=view.ended_at,
        status=view.status,
        locked_by=view.locked_by,
        lock_expires_at=view.lock_expires_at,
    )


def _audit_sale(
    session: AsyncSession,
    principal: Principal,
    action: audit.Action,
    sale: sales.SaleView | SaleOut,
    *,
    station_id: int | None = None,
) -> None:
    """Audit a staff action on a pump sale."""
    station = sale.station_id if isinstance(sale, sales.SaleView) else station_id
    audit.record(
        session,
        principal,
        action,
        subject_type="pump_sale",
        subject_id=f"{sale.fp}/{sale.seq}",
        station_id=station,
        details={"fp": sale.fp, "seq": sale.seq, "amount_fen": sale.amount_fen},
    )


def _staff_ref(principal_id: int) -> str:
    """The lock holder of a sale settled at the counter by a staff member."""
    return f"staff:{principal_id}"


@public.get("/stations/{station_id}/nozzles", response_model=StationNozzles, dependencies=[Public])
async def station_nozzles(session: ReadSession, station_id: int) -> StationNozzles:
    """Nozzles of a station: grade, price, pump state, payable sales (anyone; no payer data)."""
    return await service.nozzle_snapshot(session, station_id=station_id)


# -- equipment (managers) -----------------------------------------------------------------------


@admin.get("/equipment", response_model=EquipmentOut)
async def get_equipment(session: ReadSession, principal: AnyStaff, station_id: int) -> EquipmentOut:
    """Dispensers, fuelling points (with live state) and nozzles of a station in scope."""
    return await equipment.equipment(session, principal=principal, station_id=station_id)


@admin.post("/dispensers", response_model=DispenserOut, status_code=status.HTTP_201_CREATED)
async def create_dispenser(
    session: Session, principal: Manager, station_id: int, body: DispenserIn
) -> DispenserOut:
    """Add a dispenser (head office, station manager)."""
    row = await equipment.create_dispenser(
        session, principal=principal, station_id=station_id, data=body
    )
    return DispenserOut(id=row.id, number=row.number, model=row.model, fuelling_points=[])


@admin.patch("/dispensers/{dispenser_id}", response_model=DispenserOut)
async def update_dispenser(
    session: Session, principal: Manager, station_id: int, dispenser_id: int, body: DispenserUpdate
) -> DispenserOut:
    """Renumber a dispenser or change its model (head office, station manager)."""
    row = await equipment.update_dispenser(
        session, principal=principal, station_id=station_id, dispenser_id=dispenser_id, data=body
    )
    full = await equipment.equipment(session, principal=principal, station_id=station_id)
    return next(d for d in full.dispensers if d.id == row.id)


@admin.delete(
    "/dispensers/{dispenser_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def delete_dispenser(
    session: Session, principal: Manager, station_id: int, dispenser_id: int
) -> Response:
    """Remove a dispenser that never sold anything (head office, station manager)."""
    await equipment.delete_dispenser(
        session, principal=principal, station_id=station_id, dispenser_id=dispenser_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin.post(
    "/fuelling-points", response_model=FuellingPointOut, status_code=status.HTTP_201_CREATED
)
async def create_fuelling_point(
    session: Session, principal: Manager, station_id: int, body: FuellingPointIn
) -> FuellingPointOut:
    """Add a fuelling point to a dispenser (head office, station manager)."""
    row = await equipment.create_fuelling_point(
        session, principal=principal, station_id=station_id, data=body
    )
    return FuellingPointOut(
        id=row.id,
        number=row.number,
        dispenser_id=row.dispenser_id,
        state="Offline",
        state_code=row.state,
        nozzle_out=None,
        error_code=None,
        last_seq=0,
        nozzles=[],
    )


@admin.delete(
    "/fuelling-points/{fp_number}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_fuelling_point(
    session: Session, principal: Manager, station_id: int, fp_number: FpNumber
) -> Response:
    """Remove a fuelling point that never sold anything (head office, station manager)."""
    await equipment.delete_fuelling_point(
        session, principal=principal, station_id=station_id, fp_number=fp_number
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@admin.post("/nozzles", response_model=NozzleOut, status_code=status.HTTP_201_CREATED)
async def create_nozzle(
    session: Session, principal: Manager, station_id: int, body: NozzleIn
) -> NozzleOut:
    """Add a nozzle: number unique per station, existing grade, optional tank of that grade."""
    row = await equipment.create_nozzle(
        session, principal=principal, station_id=station_id, data=body
    )
    return await equipment.render_nozzle(session, row)


@admin.patch("/nozzles/{number}", response_model=NozzleOut)
async def update_nozzle(
    session: Session, principal: Manager, station_id: int, number: NozzleNumber, body: NozzleUpdate
) -> NozzleOut:
    """Move, regrade, retank or (de)activate a nozzle (head office, station manager)."""
    row = await equipment.update_nozzle(
        session, principal=principal, station_id=station_id, number=number, data=body
    )
    return await equipment.render_nozzle(session, row)


@admin.delete("/nozzles/{number}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_nozzle(
    session: Session, principal: Manager, station_id: int, number: NozzleNumber
) -> Response:
    """Remove a nozzle that never sold anything (head office, station manager)."""
    await equipment.delete_nozzle(
        session, principal=principal, station_id=station_id, number=number
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- alerts -------------------------------------------------------------------------------------


@admin.get("/alerts", response_model=list[AlertOut])
async def list_alerts(
    session: ReadSession,
    principal: Manager,
    station_id: int,
    open_only: bool = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlertOut]:
    """Alerts of a station, most recently seen first (head office, station manager)."""
    rows = await service.list_alerts(
        session, principal=principal, station_id=station_id, open_only=open_only, limit=limit
    )
    return [AlertOut.model_validate(r) for r in rows]


@admin.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
async def resolve_alert(
    session: Session, principal: Manager, station_id: int, alert_id: int
) -> AlertOut:
    """Mark an alert handled (head office, station manager)."""
    row = await service.resolve_alert(
        session, principal=principal, station_id=station_id, alert_id=alert_id
    )
    return AlertOut.model_validate(row)


# -- sales and commands (any staff of the station) ----------------------------------------------


@admin.get("/pump-sales", response_model=list[SaleOut])
async def open_sales(session: ReadSession, principal: AnyStaff, station_id: int) -> list[SaleOut]:
    """Sales not yet cleared, oldest first (staff of the station)."""
    views = await service.open_sales(session, principal=principal, station_id=station_id)
    return [_sale_out(v) for v in views]


@admin.post(
    "/fuelling-points/{fp_number}/stop",
    response_model=CommandAccepted,
    status_code=status.HTTP_202_ACCEPTED,
)
async def stop_pump(
    session: Session, principal: AnyStaff, station_id: int, fp_number: FpNumber
) -> CommandAccepted:
    """Stop a fuelling point now (409 pump_offline when its gateway is offline)."""
    await scoped_station(session, principal=principal, station_id=station_id)
    command_id = await service.stop(session, station_id=station_id, fp_number=fp_number)
    audit.record(
        session,
        principal,
        "pump.stopped",
        subject_type="fuelling_point",
        subject_id=fp_number,
        station_id=station_id,
        details={"command_id": command_id},
    )
    return CommandAccepted(command_id=command_id)


class _StaffSaleAction(Protocol):
    async def __call__(
        self,
        session: AsyncSession,
        *,
        station_id: int,
        fp_number: int,
        seq: int,
        order_id: str,
        now: datetime | None = None,
    ) -> sales.SaleView: ...


async def _staff_sale(
    action: _StaffSaleAction,
    session: AsyncSession,
    principal: Principal,
    *,
    station_id: int,
    fp_number: int,
    seq: int,
) -> SaleOut:
    """Unlock or clear a sale on behalf of the staff member who holds it."""
    await scoped_station(session, principal=principal, station_id=station_id)
    view = await action(
        session,
        station_id=station_id,
        fp_number=fp_number,
        seq=seq,
        order_id=_staff_ref(principal.id),
    )
    return _sale_out(view)


@admin.post("/fuelling-points/{fp_number}/sales/{seq}/lock", response_model=SaleOut)
async def lock_sale(
    session: Session,
    runtime: RuntimeDep,
    principal: AnyStaff,
    station_id: int,
    fp_number: FpNumber,
    seq: Seq,
) -> SaleOut:
    """Hold a sale for payment at the counter (409 when offline or held by an order)."""
    await scoped_station(session, principal=principal, station_id=station_id)
    view = await service.lock_sale(
        session,
        station_id=station_id,
        fp_number=fp_number,
        seq=seq,
        order_id=_staff_ref(principal.id),
        ttl_seconds=runtime.settings.pump_lock_ttl_seconds,
        now=clock.now(),
    )
    _audit_sale(session, principal, "sale.locked", view)
    return _sale_out(view)


@admin.post("/fuelling-points/{fp_number}/sales/{seq}/unlock", response_model=SaleOut)
async def unlock_sale(
    session: Session, principal: AnyStaff, station_id: int, fp_number: FpNumber, seq: Seq
) -> SaleOut:
    """Release a sale this staff member locked."""
    return await _staff_sale(
        service.unlock_sale,
        session,
        principal,
        station_id=station_id,
        fp_number=fp_number,
        seq=seq,
    )


@admin.post("/fuelling-points/{fp_number}/sales/{seq}/clear", response_model=SaleOut)
async def clear_sale(
    session: Session, principal: AnyStaff, station_id: int, fp_number: FpNumber, seq: Seq
) -> SaleOut:
    """Paid at the counter: clear a sale this staff member locked."""
    out = await _staff_sale(
        service.clear_sale, session, principal, station_id=station_id, fp_number=fp_number, seq=seq
    )
    _audit_sale(session, principal, "sale.cleared", out, station_id=station_id)
    return out


@admin.post("/price-table", response_model=CommandAccepted, status_code=status.HTTP_202_ACCEPTED)
async def send_price_table(
    session: Session, principal: Manager, station_id: int
) -> CommandAccepted:
    """Send the current prices to the station's pumps (head office, station manager)."""
    await scoped_station(session, principal=principal, station_id=station_id)
    command_id = await service.send_price_table(session, station_id=station_id)
    return CommandAccepted(command_id=command_id)
