"""All SQL of the pump area: equipment, mirrored fuelling points, sales, commands, alerts.

Row locks are always taken in the same order, so concurrent units of work never deadlock:
gateway row, then fuelling-point rows (in id order), then sale rows, then command rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.pump.models import (
    Dispenser,
    FuellingPointRow,
    Gateway,
    Nozzle,
    PumpCommand,
    PumpSale,
    StationAlert,
    Tank,
    TankDelivery,
)
from forecourt.station.models import Station

OPEN_COMMAND = ("pending", "sent")

# -- stations and gateways --------------------------------------------------------------------


async def station_id_by_code(session: AsyncSession, code: str) -> int | None:
    """The id of the station with this code."""
    return (await session.scalars(select(Station.id).where(Station.code == code))).first()


async def station_code(session: AsyncSession, station_id: int) -> str | None:
    """The code of a station (the third MQTT topic level)."""
    return (await session.scalars(select(Station.code).where(Station.id == station_id))).first()


async def gateway(session: AsyncSession, station_id: int) -> Gateway | None:
    """The station's gateway row, if a gateway ever reported."""
    return await session.get(Gateway, station_id)


async def gateway_for_update(session: AsyncSession, station_id: int) -> Gateway:
    """The gateway row, row-locked; created (offline) when missing."""
    stmt = select(Gateway).where(Gateway.station_id == station_id).with_for_update()
    row = (await session.scalars(stmt)).first()
    if row is None:
        row = Gateway(station_id=station_id, online=False, last_event_seq=0, volume_resolution_ml=1)
        row.price_version = 0
        session.add(row)
        await session.flush()
    return row


# -- equipment --------------------------------------------------------------------------------


async def dispensers(session: AsyncSession, station_id: int) -> list[Dispenser]:
    """Dispensers of a station by number."""
    stmt = select(Dispenser).where(Dispenser.station_id == station_id).order_by(Dispenser.number)
    return list((await session.scalars(stmt)).all())


async def dispenser(session: AsyncSession, station_id: int, dispenser_id: int) -> Dispenser | None:
    """One dispenser of a station."""
    stmt = select(Dispenser).where(Dispenser.station_id == station_id, Dispenser.id == dispenser_id)
    return (await session.scalars(stmt)).first()


async def dispenser_by_number(
    session: AsyncSession, station_id: int, number: int
) -> Dispenser | None:
    """A dispenser by its number at the station."""
    stmt = select(Dispenser).where(Dispenser.station_id == station_id, Dispenser.number == number)
    return (await session.scalars(stmt)).first()


async def fuelling_points(
    session: AsyncSession, station_id: int, *, for_update: bool = False
) -> list[FuellingPointRow]:
    """Fuelling points of a station (row-locked in id order when asked)."""
    stmt = select(FuellingPointRow).where(FuellingPointRow.station_id == station_id)
    if for_update:
        stmt = stmt.order_by(FuellingPointRow.id).with_for_update()
    else:
        stmt = stmt.order_by(FuellingPointRow.number)
    return list((await session.scalars(stmt)).all())


async def fuelling_point(
    session: AsyncSession, station_id: int, number: int, *, for_update: bool = False
) -> FuellingPointRow | None:
    """A fuelling point by number (row-locked when asked)."""
    stmt = select(FuellingPointRow).where(
        FuellingPointRow.station_id == station_id, FuellingPointRow.number == number
    )
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).first()


async def fuelling_point_by_id(
    session: AsyncSession, fp_id: int, *, for_update: bool = False
) -> FuellingPointRow | None:
    """A fuelling point by id (row-locked when asked)."""
    stmt = select(FuellingPointRow).where(FuellingPointRow.id == fp_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).first()


async def fuelling_points_of_dispenser(
    session: AsyncSession, dispenser_id: int
) -> list[FuellingPointRow]:
    """Fuelling points on one dispenser."""
    stmt = (
        select(FuellingPointRow)
        .where(FuellingPointRow.dispenser_id == dispenser_id)
        .order_by(FuellingPointRow.number)
    )
    return list((await session.scalars(stmt)).all())


async def nozzles(session: AsyncSession, station_id: int) -> list[Nozzle]:
    """Nozzles of a station by number."""
    stmt = select(Nozzle).where(Nozzle.station_id == station_id).order_by(Nozzle.number)
    return list((await session.scalars(stmt)).all())


async def nozzles_of_fp(session: AsyncSession, fp_id: int) -> list[Nozzle]:
    """Nozzles of one fuelling point by number."""
    stmt = select(Nozzle).where(Nozzle.fp_id == fp_id).order_by(Nozzle.number)
    return list((await session.scalars(stmt)).all())


async def nozzle(session: AsyncSession, station_id: int, number: int) -> Nozzle | None:
    """A nozzle by its number (枪号) at the station."""
    stmt = select(Nozzle).where(Nozzle.station_id == station_id, Nozzle.number == number)
    return (await session.scalars(stmt)).first()


@dataclass(frozen=True)
class NozzleSite:
    """A nozzle, its fuelling point and whether the station's gateway is online."""

    nozzle: Nozzle
    fp: FuellingPointRow
    gateway_online: bool
    authorise_open: bool = False


async def nozzle_site(
    session: AsyncSession,
    station_id: int,
    number: int,
    *,
    lock_fp: bool = False,
    open_authorise_at: datetime | None = None,
) -> NozzleSite | None:
    """The nozzle with its fuelling point (row-locked when asked) and gateway state, at once.

    With `open_authorise_at`, also whether an authorise command for that fuelling point is
    still unanswered and valid then.
    """
    pending = (
        select(PumpCommand.id)
        .where(
            PumpCommand.station_id == station_id,
            PumpCommand.fp_number == FuellingPointRow.number,
            PumpCommand.type == "authorise",
            PumpCommand.status.in_(OPEN_COMMAND),
            or_(PumpCommand.valid_until.is_(None), PumpCommand.valid_until > open_authorise_at),
        )
        .exists()
        if open_authorise_at is not None
        else literal(False)
    )
    stmt = (
        select(Nozzle, FuellingPointRow, Gateway.online, pending)
        .join(FuellingPointRow, FuellingPointRow.id == Nozzle.fp_id)
        .outerjoin(Gateway, Gateway.station_id == Nozzle.station_id)
        .where(Nozzle.station_id == station_id, Nozzle.number == number)
    )
    if lock_fp:
        stmt = stmt.with_for_update(of=FuellingPointRow).execution_options(populate_existing=True)
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    return NozzleSite(
        nozzle=row[0], fp=row[1], gateway_online=bool(row[2]), authorise_open=bool(row[3])
    )


async def tanks(session: AsyncSession, station_id: int) -> list[Tank]:
    """Tanks of a station by number."""
    stmt = select(Tank).where(Tank.station_id == station_id).order_by(Tank.number)
    return list((await session.scalars(stmt)).all())


async def tank_by_number(session: AsyncSession, station_id: int, number: int) -> Tank | None:
    """A tank by its number at the station."""
    stmt = select(Tank).where(Tank.station_id == station_id, Tank.number == number)
    return (await session.scalars(stmt)).first()


async def delivery_exists(session: AsyncSession, *, tank_id: int, delivery_ref: str) -> bool:
    """Whether a delivery with this gateway id was already recorded for the tank."""
    stmt = select(TankDelivery.id).where(
        TankDelivery.tank_id == tank_id, TankDelivery.delivery_ref == delivery_ref
    )
    return (await session.scalars(stmt)).first() is not None


async def count_sales(session: AsyncSession, *, fp_ids: Sequence[int]) -> int:
    """How many sales the fuelling points hold (equipment with history is not deleted)."""
    if not fp_ids:
        return 0
    stmt = select(func.count()).select_from(PumpSale).where(PumpSale.fp_id.in_(fp_ids))
    return int((await session.scalar(stmt)) or 0)


async def count_nozzle_sales(session: AsyncSession, *, station_id: int, number: int) -> int:
    """How many sales were made on a nozzle."""
    stmt = (
        select(func.count())
        .select_from(PumpSale)
        .where(PumpSale.station_id == station_id, PumpSale.nozzle_number == number)
    )
    return int((await session.scalar(stmt)) or 0)


async def add(session: AsyncSession, row: object) -> None:
    """Insert a row and flush it."""
    session.add(row)
    await session.flush()


async def delete(session: AsyncSession, row: object) -> None:
    """Delete a row and flush."""
    await session.delete(row)
    await session.flush()


# -- sales ------------------------------------------------------------------------------------


async def sale(
    session: AsyncSession, *, fp_id: int, seq: int, for_update: bool = False
) -> PumpSale | None:
    """The sale with this TTC on the fuelling point."""
    stmt = select(PumpSale).where(PumpSale.fp_id == fp_id, PumpSale.seq == seq)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).first()


async def sale_neighbours(
    session: AsyncSession, *, fp_id: int, nozzle: int, seq: int
) -> tuple[PumpSale | None, PumpSale | None]:
    """The nearest sales of the same nozzle before and after `seq` (totalizer checks)."""
    base = select(PumpSale).where(PumpSale.fp_id == fp_id, PumpSale.nozzle_number == nozzle)
    below = (
        await session.scalars(base.where(PumpSale.seq < seq).order_by(PumpSale.seq.desc()).limit(1))
    ).first()
    above = (
        await session.scalars(base.where(PumpSale.seq > seq).order_by(PumpSale.seq).limit(1))
    ).first()
    return below, above


async def open_sales(
    session: AsyncSession, *, station_id: int, nozzle_number: int | None = None
) -> list[tuple[PumpSale, int]]:
    """Sales not yet cleared, with their fuelling-point number, oldest first."""
    stmt = (
        select(PumpSale, FuellingPointRow.number)
        .join(FuellingPointRow, FuellingPointRow.id == PumpSale.fp_id)
        .where(PumpSale.station_id == station_id, PumpSale.status != "cleared")
        .order_by(PumpSale.ended_at, PumpSale.id)
    )
    if nozzle_number is not None:
        stmt = stmt.where(PumpSale.nozzle_number == nozzle_number)
    return [(sale, number) for sale, number in (await session.execute(stmt)).all()]


async def expired_locks(session: AsyncSession, *, now: datetime, limit: int) -> list[PumpSale]:
    """Sales whose server lock ran out, row-locked (others skip them)."""
    stmt = (
        select(PumpSale)
        .where(
            PumpSale.status == "locked",
            PumpSale.lock_expires_at.is_not(None),
            PumpSale.lock_expires_at <= now,
        )
        .order_by(PumpSale.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(stmt)).all())


# -- commands ---------------------------------------------------------------------------------


async def command(
    session: AsyncSession, command_id: str, *, for_update: bool = False
) -> PumpCommand | None:
    """A command by id (row-locked when asked)."""
    stmt = select(PumpCommand).where(PumpCommand.id == command_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.scalars(stmt)).first()


async def open_commands(
    session: AsyncSession,
    *,
    station_id: int,
    now: datetime,
    fp_number: int | None = None,
    type_: str | None = None,
) -> list[PumpCommand]:
    """Commands not yet answered and still valid, oldest first."""
    stmt = select(PumpCommand).where(
        PumpCommand.station_id == station_id,
        PumpCommand.status.in_(OPEN_COMMAND),
        or_(PumpCommand.valid_until.is_(None), PumpCommand.valid_until > now),
    )
    if fp_number is not None:
        stmt = stmt.where(PumpCommand.fp_number == fp_number)
    if type_ is not None:
        stmt = stmt.where(PumpCommand.type == type_)
    return list((await session.scalars(stmt.order_by(PumpCommand.created_at))).all())


# -- alerts -----------------------------------------------------------------------------------


async def open_alert(
    session: AsyncSession, *, station_id: int, kind: str, code: str
) -> StationAlert | None:
    """The unresolved alert of this kind and code, row-locked."""
    stmt = (
        select(StationAlert)
        .where(
            StationAlert.station_id == station_id,
            StationAlert.kind == kind,
            StationAlert.code == code,
            StationAlert.resolved_at.is_(None),
        )
        .order_by(StationAlert.id)
        .limit(1)
        .with_for_update()
    )
    return (await session.scalars(stmt)).first()


async def alerts(
    session: AsyncSession, *, station_id: int, open_only: bool, limit: int
) -> list[StationAlert]:
    """Alerts of a station, most recently seen first."""
    stmt = select(StationAlert).where(StationAlert.station_id == station_id)
    if open_only:
        stmt = stmt.where(StationAlert.resolved_at.is_(None))
    stmt = stmt.order_by(StationAlert.last_seen_at.desc(), StationAlert.id.desc()).limit(limit)
    return list((await session.scalars(stmt)).all())


async def alert(session: AsyncSession, *, station_id: int, alert_id: int) -> StationAlert | None:
    """One alert of a station, row-locked."""
    stmt = (
        select(StationAlert)
        .where(StationAlert.station_id == station_id, StationAlert.id == alert_id)
        .with_for_update()
    )
    return (await session.scalars(stmt)).first()


# -- publishing commands ----------------------------------------------------------------------


async def command_to_publish(
    session: AsyncSession, command_id: str
) -> tuple[PumpCommand, Gateway | None, str] | None:
    """A command (row-locked) with its station's gateway row and code, in one statement."""
    stmt = (
        select(PumpCommand, Gateway, Station.code)
        .join(Station, Station.id == PumpCommand.station_id)
        .outerjoin(Gateway, Gateway.station_id == PumpCommand.station_id)
        .where(PumpCommand.id == command_id)
        .with_for_update(of=PumpCommand)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1], row[2])
