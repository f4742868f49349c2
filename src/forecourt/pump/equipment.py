"""Forecourt equipment of a station: dispensers, fuelling points and nozzles (staff CRUD).

Nozzle numbers (枪号) are unique per station; a nozzle's grade must exist and its tank, when
given, must be one of the station's tanks holding that grade. Equipment that has sales is
never deleted (the history would go with it): deactivate a nozzle instead.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.errors import Conflict, FieldError, NotFound, Unprocessable
from forecourt.fuel import repository as fuel_repository
from forecourt.kit import clock
from forecourt.kit.scope import require_station
from forecourt.pump import messages, repository
from forecourt.pump.domain import FPState
from forecourt.pump.models import Dispenser, FuellingPointRow, Nozzle
from forecourt.pump.schemas import (
    DispenserIn,
    DispenserOut,
    DispenserUpdate,
    EquipmentOut,
    FuellingPointIn,
    FuellingPointOut,
    NozzleIn,
    NozzleOut,
    NozzleUpdate,
)


class EquipmentInUse(Conflict):
    """Equipment with sales cannot be deleted."""

    code, title = "equipment_in_use", "Equipment has sales"


class NumberTaken(Conflict):
    """Another dispenser, fuelling point or nozzle of the station has this number."""

    code, title = "number_taken", "Number already used at this station"


async def scoped_station(session: AsyncSession, *, principal: Principal, station_id: int) -> None:
    """404 for a station outside the caller's scope or that does not exist."""
    require_station(principal, station_id)
    if await repository.station_code(session, station_id) is None:
        raise NotFound(f"station {station_id} not found")


def _nozzle_out(row: Nozzle, fp_number: int, tank_number: int | None) -> NozzleOut:
    return NozzleOut(
        number=row.number,
        fp=fp_number,
        grade=row.grade_code,
        tank_number=tank_number,
        active=row.active,
        totalizer_volume_ml=row.totalizer_volume_ml,
        totalizer_amount_fen=row.totalizer_amount_fen,
    )


async def equipment(
    session: AsyncSession, *, principal: Principal, station_id: int
) -> EquipmentOut:
    """The station's dispensers, fuelling points (with mirrored state) and nozzles."""
    await scoped_station(session, principal=principal, station_id=station_id)
    gateway = await repository.gateway(session, station_id)
    tank_numbers = {t.id: t.number for t in await repository.tanks(session, station_id)}
    fps = await repository.fuelling_points(session, station_id)
    fp_numbers = {fp.id: fp.number for fp in fps}
    by_fp: dict[int, list[NozzleOut]] = {}
    for nozzle in await repository.nozzles(session, station_id):
        tank = tank_numbers.get(nozzle.tank_id) if nozzle.tank_id is not None else None
        by_fp.setdefault(nozzle.fp_id, []).append(
            _nozzle_out(nozzle, fp_numbers[nozzle.fp_id], tank)
        )
    fps_by_dispenser: dict[int, list[FuellingPointOut]] = {}
    for fp in fps:
        fps_by_dispenser.setdefault(fp.dispenser_id, []).append(
            FuellingPointOut(
                id=fp.id,
                number=fp.number,
                dispenser_id=fp.dispenser_id,
                state=messages.state_name(fp.state),
                state_code=fp.state,
                nozzle_out=fp.nozzle_out,
                error_code=fp.error_code,
                last_seq=fp.last_seq,
                nozzles=by_fp.get(fp.id, []),
            )
        )
    return EquipmentOut(
        station_id=station_id,
        gateway_online=bool(gateway and gateway.online),
        gateway_last_seen_at=gateway.last_seen_at if gateway else None,
        dispensers=[
            DispenserOut(
                id=d.id,
                number=d.number,
                model=d.model,
                fuelling_points=fps_by_dispenser.get(d.id, []),
            )
            for d in await repository.dispensers(session, station_id)
        ],
    )


# -- dispensers ---------------------------------------------------------------------------------


async def _dispenser(session: AsyncSession, station_id: int, dispenser_id: int) -> Dispenser:
    row = await repository.dispenser(session, station_id, dispenser_id)
    if row is None:
        raise NotFound(f"dispenser {dispenser_id} not found")
    return row


async def create_dispenser(
    session: AsyncSession, *, principal: Principal, station_id: int, data: DispenserIn
) -> Dispenser:
    """Add a dispenser (409 number_taken)."""
    await scoped_station(session, principal=principal, station_id=station_id)
    if await repository.dispenser_by_number(session, station_id, data.number) is not None:
        raise NumberTaken(
            f"dispenser {data.number} exists",
            errors=[FieldError("body.number", "already used at this station")],
        )
    row = Dispenser(station_id=station_id, number=data.number, model=data.model)
    await repository.add(session, row)
    return row


async def update_dispenser(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    dispenser_id: int,
    data: DispenserUpdate,
) -> Dispenser:
    """Renumber a dispenser or change its model."""
    await scoped_station(session, principal=principal, station_id=station_id)
    row = await _dispenser(session, station_id, dispenser_id)
    if data.number is not None and data.number != row.number:
        if await repository.dispenser_by_number(session, station_id, data.number) is not None:
            raise NumberTaken(
                f"dispenser {data.number} exists",
                errors=[FieldError("body.number", "already used at this station")],
            )
        row.number = data.number
    if "model" in data.model_fields_set:
        row.model = data.model
    await session.flush()
    return row


async def delete_dispenser(
    session: AsyncSession, *, principal: Principal, station_id: int, dispenser_id: int
) -> None:
    """Remove a dispenser with its fuelling points and nozzles (409 when it has sales)."""
    await scoped_station(session, principal=principal, station_id=station_id)
    row = await _dispenser(session, station_id, dispenser_id)
    fps = await repository.fuelling_points_of_dispenser(session, row.id)
    if await repository.count_sales(session, fp_ids=[fp.id for fp in fps]):
        raise EquipmentInUse(f"dispenser {row.number} has sales; it cannot be deleted")
    await repository.delete(session, row)


# -- fuelling points ----------------------------------------------------------------------------


async def create_fuelling_point(
    session: AsyncSession, *, principal: Principal, station_id: int, data: FuellingPointIn
) -> FuellingPointRow:
    """Add a fuelling point to a dispenser; Offline until its gateway reports its state."""
    await scoped_station(session, principal=principal, station_id=station_id)
    if await repository.dispenser(session, station_id, data.dispenser_id) is None:
        raise Unprocessable(
            f"dispenser {data.dispenser_id} not found",
            errors=[FieldError("body.dispenser_id", "no such dispenser at this station")],
        )
    if await repository.fuelling_point(session, station_id, data.number) is not None:
        raise NumberTaken(
            f"fuelling point {data.number} exists",
            errors=[FieldError("body.number", "already used at this station")],
        )
    row = FuellingPointRow(
        station_id=station_id,
        dispenser_id=data.dispenser_id,
        number=data.number,
        state=int(FPState.OFFLINE),
        last_seq=0,
        missing_seqs=[],
        last_event_seq=0,
        updated_at=clock.now(),
    )
    await repository.add(session, row)
    return row


async def delete_fuelling_point(
    session: AsyncSession, *, principal: Principal, station_id: int, fp_number: int
) -> None:
    """Remove a fuelling point and its nozzles (409 when it has sales)."""
    await scoped_station(session, principal=principal, station_id=station_id)
    row = await repository.fuelling_point(session, station_id, fp_number)
    if row is None:
        raise NotFound(f"fuelling point {fp_number} not found")
    if await repository.count_sales(session, fp_ids=[row.id]):
        raise EquipmentInUse(f"fuelling point {fp_number} has sales; it cannot be deleted")
    await repository.delete(session, row)


# -- nozzles ------------------------------------------------------------------------------------


async def _check_grade(session: AsyncSession, grade: str) -> None:
    found = await fuel_repository.get_grade(session, grade)
    if found is None or not found.active:
        raise Unprocessable(
            f"grade {grade} not found",
            errors=[FieldError("body.grade", f"no active grade {grade}")],
        )


async def _fp_id(session: AsyncSession, station_id: int, fp_number: int) -> FuellingPointRow:
    fp = await repository.fuelling_point(session, station_id, fp_number)
    if fp is None:
        raise Unprocessable(
            f"fuelling point {fp_number} not found",
            errors=[FieldError("body.fp_number", "no such fuelling point at this station")],
        )
    return fp


async def _tank_id(
    session: AsyncSession, station_id: int, tank_number: int | None, grade: str
) -> int | None:
    if tank_number is None:
        return None
    tank = await repository.tank_by_number(session, station_id, tank_number)
    if tank is None:
        raise Unprocessable(
            f"tank {tank_number} not found",
            errors=[FieldError("body.tank_number", "no such tank at this station")],
        )
    if tank.grade_code != grade:
        raise Unprocessable(
            f"tank {tank_number} holds {tank.grade_code}",
            errors=[FieldError("body.tank_number", f"holds {tank.grade_code}, not {grade}")],
        )
    return tank.id


async def render_nozzle(session: AsyncSession, row: Nozzle) -> NozzleOut:
    """The response model of a nozzle."""
    fp = await repository.fuelling_point_by_id(session, row.fp_id)
    assert fp is not None
    tank_number = None
    if row.tank_id is not None:
        tanks = {t.id: t.number for t in await repository.tanks(session, row.station_id)}
        tank_number = tanks.get(row.tank_id)
    return _nozzle_out(row, fp.number, tank_number)


async def create_nozzle(
    session: AsyncSession, *, principal: Principal, station_id: int, data: NozzleIn
) -> Nozzle:
    """Add a nozzle (422 naming a bad grade, fp or tank; 409 when the number is taken)."""
    await scoped_station(session, principal=principal, station_id=station_id)
    if await repository.nozzle(session, station_id, data.number) is not None:
        raise NumberTaken(
            f"nozzle {data.number} exists",
            errors=[FieldError("body.number", "already used at this station")],
        )
    await _check_grade(session, data.grade)
    fp = await _fp_id(session, station_id, data.fp_number)
    tank_id = await _tank_id(session, station_id, data.tank_number, data.grade)
    row = Nozzle(
        station_id=station_id,
        fp_id=fp.id,
        number=data.number,
        grade_code=data.grade,
        tank_id=tank_id,
        totalizer_volume_ml=0,
        totalizer_amount_fen=0,
        active=True,
    )
    await repository.add(session, row)
    return row


async def update_nozzle(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    number: int,
    data: NozzleUpdate,
) -> Nozzle:
    """Move a nozzle to another fp, change its grade or tank, or (de)activate it."""
    await scoped_station(session, principal=principal, station_id=station_id)
    row = await repository.nozzle(session, station_id, number)
    if row is None:
        raise NotFound(f"nozzle {number} not found")
    grade = data.grade or row.grade_code
    if data.grade is not None:
        await _check_grade(session, data.grade)
    if data.fp_number is not None:
        row.fp_id = (await _fp_id(session, station_id, data.fp_number)).id
    if "tank_number" in data.model_fields_set:
        row.tank_id = await _tank_id(session, station_id, data.tank_number, grade)
    elif data.grade is not None and row.tank_id is not None:
        tanks = {t.id: t for t in await repository.tanks(session, station_id)}
        tank = tanks.get(row.tank_id)
        if tank is not None and tank.grade_code != grade:
            raise Unprocessable(
                f"tank {tank.number} holds {tank.grade_code}",
                errors=[FieldError("body.grade", f"the nozzle's tank holds {tank.grade_code}")],
            )
    row.grade_code = grade
    if data.active is not None:
        row.active = data.active
    await session.flush()
    return row


async def delete_nozzle(
    session: AsyncSession, *, principal: Principal, station_id: int, number: int
) -> None:
    """Remove a nozzle that never sold anything (409: deactivate it instead)."""
    await scoped_station(session, principal=principal, station_id=station_id)
    row = await repository.nozzle(session, station_id, number)
    if row is None:
        raise NotFound(f"nozzle {number} not found")
    if await repository.count_nozzle_sales(session, station_id=station_id, number=number):
        raise EquipmentInUse(f"nozzle {number} has sales; deactivate it instead")
    await repository.delete(session, row)
