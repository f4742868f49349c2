"""All SQL of the pump area: equipment, mirrored fuelling points, sales, commands, alerts.

Row locks are always taken in the same order, so concurrent units of work never deadlock:
gateway row, then fuelling-point rows (in id order), then sale rows, then command rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import attributes, util
from sqlalchemy.sql.expression import ColumnElement

from forecourt.db import Base
from forecourt.kit.prepared import Prepared
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
_OPEN = [literal(status) for status in OPEN_COMMAND]  # a constant IN list (Prepared)


class PointState(Protocol):
    """What is read of a fuelling point to refuse a command (ORM or result row)."""

    @property
    def number(self) -> int: ...
    @property
    def state(self) -> int: ...


class CommandRow(Protocol):
    """A pump_commands row as the prepared statements return it (read-only)."""

    @property
    def id(self) -> str: ...
    @property
    def station_id(self) -> int: ...
    @property
    def fp_number(self) -> int | None: ...
    @property
    def type(self) -> str: ...
    @property
    def payload(self) -> dict[str, Any]: ...
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def valid_until(self) -> datetime | None: ...
    @property
    def resend_event_id(self) -> int | None: ...


def _sync(session: AsyncSession, model: type[Base], key: object, values: dict[str, Any]) -> None:
    """Give a row the session already holds the values a prepared statement just wrote."""
    held = session.identity_map.get(util.identity_key(model, key))
    if held is not None:
        for name, value in values.items():
            attributes.set_committed_value(held, name, value)


# -- stations and gateways --------------------------------------------------------------------


STATION_ID_BY_CODE = Prepared(select(Station.id).where(Station.code == bindparam("code")))


async def station_id_by_code(session: AsyncSession, code: str) -> int | None:
    """The id of the station with this code."""
    found: int | None = await STATION_ID_BY_CODE.scalar(session, code=code)
    return found


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


class NozzleState(Protocol):
    """What `nozzle_site` reads of the nozzle."""

    @property
    def active(self) -> bool: ...


class SitePoint(PointState, Protocol):
    """What `nozzle_site` reads of the fuelling point."""

    @property
    def id(self) -> int: ...
    @property
    def nozzle_out(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class NozzleSite:
    """A nozzle, its fuelling point and whether the station's gateway is online."""

    nozzle: NozzleState
    fp: SitePoint
    gateway_online: bool
    authorise_open: bool = False


def _nozzle_site(lock_fp: bool, open_authorise: bool) -> Prepared:
    """The `nozzle_site` statement (FOR UPDATE OF fuelling_points is left out on SQLite)."""
    pending: ColumnElement[bool] = (
        select(PumpCommand.id)
        .where(
            PumpCommand.station_id == bindparam("station_id"),
            PumpCommand.fp_number == FuellingPointRow.number,
            PumpCommand.type == "authorise",
            PumpCommand.status.in_(_OPEN),
            or_(PumpCommand.valid_until.is_(None), PumpCommand.valid_until > bindparam("at")),
        )
        .exists()
        if open_authorise
        else literal(False)
    )
    stmt = (
        select(
            Nozzle.active,
            FuellingPointRow.id,
            FuellingPointRow.number,
            FuellingPointRow.state,
            FuellingPointRow.nozzle_out,
            Gateway.online,
            pending.label("authorise_open"),
        )
        .join(FuellingPointRow, FuellingPointRow.id == Nozzle.fp_id)
        .outerjoin(Gateway, Gateway.station_id == Nozzle.station_id)
        .where(Nozzle.station_id == bindparam("station_id"), Nozzle.number == bindparam("number"))
    )
    return Prepared(stmt.with_for_update(of=FuellingPointRow) if lock_fp else stmt)


NOZZLE_SITE = {
    (lock_fp, open_authorise): _nozzle_site(lock_fp, open_authorise)
    for lock_fp in (False, True)
    for open_authorise in (False, True)
}


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
    still unanswered and valid then. `nozzle` and `fp` are read-only result rows.
    """
    params: dict[str, Any] = {"station_id": station_id, "number": number}
    if open_authorise_at is not None:
        params["at"] = open_authorise_at
    statement = NOZZLE_SITE[lock_fp, open_authorise_at is not None]
    row = await statement.first(session, **params)
    if row is None:
        return None
    return NozzleSite(
        nozzle=row, fp=row, gateway_online=bool(row.online), authorise_open=bool(row.authorise_open)
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

# In an UPDATE, a WHERE bind is never named like a column: on SQLite (executed by SQLAlchemy)
# a parameter named like a column would be SET as well.
_COMMAND_COLUMNS = (
    PumpCommand.id,
    PumpCommand.station_id,
    PumpCommand.fp_number,
    PumpCommand.type,
    PumpCommand.payload,
    PumpCommand.status,
    PumpCommand.reason,
    PumpCommand.attempts,
    PumpCommand.valid_until,
    PumpCommand.resend_event_id,
)
_COMMAND = select(*_COMMAND_COLUMNS).where(PumpCommand.id == bindparam("command_id"))
COMMAND = Prepared(_COMMAND)
COMMAND_FOR_UPDATE = Prepared(_COMMAND.with_for_update())
ADD_COMMAND = Prepared(
    insert(PumpCommand).values(
        id=bindparam("id"),
        station_id=bindparam("station_id"),
        fp_number=bindparam("fp_number"),
        type=bindparam("type"),
        payload=bindparam("payload"),
        status="pending",
        attempts=0,
        created_at=bindparam("created_at"),
        valid_until=bindparam("valid_until"),
    )
)
MARK_SENT = Prepared(
    update(PumpCommand)
    .where(PumpCommand.id == bindparam("command_id"))
    .values(
        status="sent",
        attempts=bindparam("attempts"),
        sent_at=bindparam("sent_at"),
        resend_event_id=bindparam("resend_event_id"),
    )
)
ANSWERED = Prepared(
    update(PumpCommand)
    .where(PumpCommand.id == bindparam("command_id"))
    .values(status=bindparam("status"), acked_at=bindparam("acked_at"), resend_event_id=None)
)
REFUSED = Prepared(
    update(PumpCommand)
    .where(PumpCommand.id == bindparam("command_id"))
    .values(
        status=bindparam("status"),
        reason=bindparam("reason"),
        acked_at=bindparam("acked_at"),
        resend_event_id=None,
    )
)
TIMED_OUT = Prepared(
    update(PumpCommand)
    .where(PumpCommand.id == bindparam("command_id"))
    .values(status="timed_out", reason=bindparam("reason"))
)


async def command(
    session: AsyncSession, command_id: str, *, for_update: bool = False
) -> CommandRow | None:
    """A command by id (row-locked when asked)."""
    statement = COMMAND_FOR_UPDATE if for_update else COMMAND
    row: CommandRow | None = await statement.first(session, command_id=command_id)
    return row


async def add_command(
    session: AsyncSession,
    *,
    command_id: str,
    station_id: int,
    fp_number: int | None,
    type_: str,
    payload: dict[str, Any],
    created_at: datetime,
    valid_until: datetime | None,
) -> None:
    """Insert a pending command (after flushing what the session holds, as `add` would)."""
    await session.flush()
    await ADD_COMMAND.run(
        session,
        id=command_id,
        station_id=station_id,
        fp_number=fp_number,
        type=type_,
        payload=payload,
        created_at=created_at,
        valid_until=valid_until,
    )


async def mark_sent(
    session: AsyncSession, command_id: str, *, attempts: int, now: datetime, resend_event_id: int
) -> None:
    """A command went on the wire (again): sent, with its attempts and resend check."""
    await MARK_SENT.run(
        session,
        command_id=command_id,
        attempts=attempts,
        sent_at=now,
        resend_event_id=resend_event_id,
    )
    values = {"attempts": attempts, "sent_at": now, "resend_event_id": resend_event_id}
    _sync(session, PumpCommand, command_id, {"status": "sent", **values})


async def mark_answered(
    session: AsyncSession, command_id: str, *, status: str, reason: str | None, now: datetime
) -> None:
    """The gateway answered: done (reason kept) or failed with its reason; no resend check."""
    values: dict[str, Any] = {"status": status, "acked_at": now, "resend_event_id": None}
    if status == "done":
        await ANSWERED.run(session, command_id=command_id, status=status, acked_at=now)
    else:
        await REFUSED.run(
            session, command_id=command_id, status=status, reason=reason, acked_at=now
        )
        values["reason"] = reason
    _sync(session, PumpCommand, command_id, values)


async def mark_timed_out(session: AsyncSession, command_id: str, *, reason: str) -> None:
    """No answer came before valid_until."""
    await TIMED_OUT.run(session, command_id=command_id, reason=reason)
    _sync(session, PumpCommand, command_id, {"status": "timed_out", "reason": reason})


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


COMMAND_TO_PUBLISH = Prepared(
    select(*_COMMAND_COLUMNS, Gateway.online, Station.code)
    .join(Station, Station.id == PumpCommand.station_id)
    .outerjoin(Gateway, Gateway.station_id == PumpCommand.station_id)
    .where(PumpCommand.id == bindparam("command_id"))
    .with_for_update(of=PumpCommand)
)


async def command_to_publish(
    session: AsyncSession, command_id: str
) -> tuple[CommandRow, bool, str] | None:
    """A command (row-locked), whether its gateway is online, and its station's code, at once."""
    row = await COMMAND_TO_PUBLISH.first(session, command_id=command_id)
    return None if row is None else (row, bool(row.online), str(row.code))


# -- applying an authorise acknowledgement ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointToAuthorise:
    """A fuelling point and its nozzles (transient copies of the rows) and volume resolution."""

    fp: FuellingPointRow
    nozzles: list[Nozzle]
    volume_resolution_ml: int


_POINT_COLUMNS = (
    FuellingPointRow.id,
    FuellingPointRow.station_id,
    FuellingPointRow.dispenser_id,
    FuellingPointRow.number,
    FuellingPointRow.state,
    FuellingPointRow.nozzle_out,
    FuellingPointRow.error_code,
    FuellingPointRow.authorisation,
    FuellingPointRow.progress,
    FuellingPointRow.last_seq,
    FuellingPointRow.missing_seqs,
    FuellingPointRow.state_before_offline,
    FuellingPointRow.last_event_seq,
    FuellingPointRow.state_changed_at,
    FuellingPointRow.updated_at,
)
POINT_TO_AUTHORISE = Prepared(
    select(
        *_POINT_COLUMNS,
        Gateway.volume_resolution_ml,
        Nozzle.number.label("nozzle_number"),
        Nozzle.grade_code,
        Nozzle.tank_id,
    )
    .select_from(FuellingPointRow)
    .outerjoin(Gateway, Gateway.station_id == FuellingPointRow.station_id)
    .outerjoin(Nozzle, Nozzle.fp_id == FuellingPointRow.id)
    .where(
        FuellingPointRow.station_id == bindparam("station_id"),
        FuellingPointRow.number == bindparam("number"),
    )
    .order_by(Nozzle.number)
    .with_for_update(of=FuellingPointRow)
)
_SAVED = (  # what mirror.save_point writes
    "state",
    "state_changed_at",
    "nozzle_out",
    "error_code",
    "authorisation",
    "progress",
    "state_before_offline",
    "last_seq",
    "missing_seqs",
    "updated_at",
)
SAVE_POINT = Prepared(
    update(FuellingPointRow)
    .where(FuellingPointRow.id == bindparam("fp_id"))
    .values({name: bindparam(name) for name in _SAVED})
)


async def point_to_authorise(
    session: AsyncSession, station_id: int, number: int
) -> PointToAuthorise | None:
    """A fuelling point (row-locked), its nozzles and resolution, read after a flush, at once."""
    await session.flush()
    rows = await POINT_TO_AUTHORISE.all(session, station_id=station_id, number=number)
    if not rows:
        return None
    first = rows[0]
    fp = FuellingPointRow(**{column.key: getattr(first, column.key) for column in _POINT_COLUMNS})
    nozzles = [
        Nozzle(fp_id=fp.id, number=r.nozzle_number, grade_code=r.grade_code, tank_id=r.tank_id)
        for r in rows
        if r.nozzle_number is not None
    ]
    resolution = first.volume_resolution_ml
    return PointToAuthorise(fp, nozzles, resolution if resolution is not None else 1)


async def save_point(session: AsyncSession, fp: FuellingPointRow) -> None:
    """Write what `mirror.save_point` put on a transient fuelling point (and its session copy)."""
    values = {name: getattr(fp, name) for name in _SAVED}
    await SAVE_POINT.run(session, fp_id=fp.id, **values)
    _sync(session, FuellingPointRow, fp.id, values)
