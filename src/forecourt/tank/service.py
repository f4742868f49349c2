"""Tank rules: gauge readings and deliveries, derived book stock, variance, availability.

Book stock is derived, never incremented: for a tank,
``book(t) = book_ml + deliveries(book_since, t] - sales(book_since, t]`` where deliveries are
`tank_deliveries` rows by `ended_at` and sales are `pump_sales` rows by `ended_at`, joined to the
tank through `nozzles.tank_id` on (station, nozzle number). A reconciliation moves the opening
(`book_ml`, `book_since`) to the latest gauge reading and records the correction it made as a
`tank_deliveries` row with source `reconcile` (its `ended_at` equals the new `book_since`, so it
is never counted twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Gauge
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.errors import Conflict, FieldError, NotFound, Unprocessable
from forecourt.fuel import repository as fuel_repo
from forecourt.fuel.models import Grade
from forecourt.kit import clock
from forecourt.kit.scope import require_station
from forecourt.pump import alerts, protocol
from forecourt.pump.domain.errors import GradeMismatch, InvalidInput
from forecourt.pump.models import Tank, TankDelivery, TankReading
from forecourt.station import repository as station_repo
from forecourt.tank import repository
from forecourt.tank.schemas import (
    Availability,
    DeliveryIn,
    DeliveryOut,
    DeliveryResult,
    GradeAvailability,
    ReadingOut,
    ReconcileIn,
    StationAvailability,
    TankIn,
    TankOut,
    TankUpdate,
)

VARIANCE_KIND = "tank_variance"
STAFF_PREFIX = "staff/"  # '/' never appears in a gateway delivery_id, so the refs cannot clash
RECONCILE_PREFIX = "reconcile/"
FUTURE_SKEW = timedelta(minutes=5)

VARIANCE_ML = Gauge(
    "forecourt_tank_variance_ml",
    "Measured minus book stock at the latest gauge reading, per tank (negative = loss)",
    ["station_id", "tank"],
)


class UnknownTank(InvalidInput):
    """A gauge reported a tank number the station does not have."""

    code, title = "unknown_tank", "Unknown tank"


class InvalidTankValue(InvalidInput):
    """A gauge value out of range for the tank (volume above capacity, negative, reused id)."""

    code, title = "invalid", "Invalid tank value"


# -- stock arithmetic ------------------------------------------------------------------------


async def book_stock(
    session: AsyncSession, tanks: Sequence[Tank], *, at: datetime | None = None
) -> dict[int, int]:
    """Book stock per tank id at `at` (now, counting everything recorded, when None)."""
    ids = [t.id for t in tanks]
    delivered = await repository.delivered_since_book(session, tank_ids=ids, until=at)
    sold = await repository.sold_since_book(session, tank_ids=ids, until=at)
    return {t.id: t.book_ml + delivered.get(t.id, 0) - sold.get(t.id, 0) for t in tanks}


async def _book_at(session: AsyncSession, tank: Tank, at: datetime | None) -> int:
    return (await book_stock(session, [tank], at=at))[tank.id]


def classify(stock_ml: int, *, low_ml: int, out_ml: int) -> Availability:
    """`out` at or below `out_ml`, `low` at or below `low_ml`, else `in_stock`."""
    if stock_ml <= out_ml:
        return "out"
    if stock_ml <= low_ml:
        return "low"
    return "in_stock"


def _grade_status(tanks: Sequence[Tank], book: dict[int, int]) -> Availability:
    active = [t for t in tanks if t.active]
    if not active:
        return "out"  # the grade's tanks are all out of service
    stock = sum(t.measured_ml if t.measured_ml is not None else book[t.id] for t in active)
    return classify(
        stock, low_ml=sum(t.low_ml for t in active), out_ml=sum(t.out_ml for t in active)
    )


async def availability(
    session: AsyncSession, *, station_ids: Sequence[int]
) -> dict[tuple[int, str], str]:
    """`in_stock` / `low` / `out` per (station, grade) that has tanks; absent means unknown.

    The stock of a grade is the sum over its active tanks of the latest measured stock (book
    stock for a tank never read), compared with the sums of their `low_ml` and `out_ml`. A
    grade whose tanks are all inactive is `out`.
    """
    tanks = await repository.tanks_of(session, station_ids=station_ids)
    unread = [t for t in tanks if t.active and t.measured_ml is None]
    book = await book_stock(session, unread) if unread else {}
    groups: dict[tuple[int, str], list[Tank]] = {}
    for tank in tanks:
        groups.setdefault((tank.station_id, tank.grade_code), []).append(tank)
    return {key: _grade_status(group, book) for key, group in groups.items()}


AVAILABILITY_CHUNK = 500
"""Stations per availability query when many are read at once (bound parameter limits)."""


async def availability_of(
    session: AsyncSession, *, station_ids: Iterable[int] | None = None
) -> dict[tuple[int, str], str]:
    """`availability` for many stations (every station with tanks when None), in chunks."""
    ids = sorted(
        await repository.stations_with_tanks(session) if station_ids is None else set(station_ids)
    )
    found: dict[tuple[int, str], str] = {}
    for start in range(0, len(ids), AVAILABILITY_CHUNK):
        chunk = ids[start : start + AVAILABILITY_CHUNK]
        found.update(await availability(session, station_ids=chunk))
    return found


async def _grade_availability(session: AsyncSession, tank: Tank) -> str:
    found = await availability(session, station_ids=[tank.station_id])
    return found.get((tank.station_id, tank.grade_code), "unknown")


def tank_message(tank: Tank, *, book_ml: int, availability: str, ts: datetime) -> dict[str, Any]:
    """The live `tank` change message (interface 3); `availability` is the grade's."""
    return {
        "type": "tank",
        "tank": tank.number,
        "grade": tank.grade_code,
        "measured_ml": tank.measured_ml,
        "book_ml": book_ml,
        "availability": availability,
        "ts": _iso(ts),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- variance ----------------------------------------------------------------------------------


def _alert_code(tank: Tank) -> str:
    return f"tank_{tank.number}"


async def _check_variance(
    session: AsyncSession, tank: Tank, *, measured_ml: int, book_ml: int
) -> int:
    variance = measured_ml - book_ml
    VARIANCE_ML.labels(station_id=str(tank.station_id), tank=str(tank.number)).set(variance)
    code = _alert_code(tank)
    if abs(variance) > tank.variance_alert_ml:
        kind = "loss or leak" if variance < 0 else "gain"
        detail = (
            f"tank {tank.number} ({tank.grade_code}): measured {measured_ml} ml, book {book_ml} ml,"
            f" variance {variance:+d} ml ({kind}) beyond ±{tank.variance_alert_ml} ml"
        )
        await alerts.raise_alert(
            session,
            station_id=tank.station_id,
            kind=VARIANCE_KIND,
            code=code,
            detail=detail,
            now=clock.now(),
        )
    else:
        await alerts.resolve_open(
            session, station_id=tank.station_id, kind=VARIANCE_KIND, code=code, now=clock.now()
        )
    return variance


# -- gauge ingest (called by the pump link inside its unit of work) ---------------------------


async def _gauge_tank(session: AsyncSession, *, station_id: int, tank_number: int) -> Tank:
    tank = await repository.get(session, station_id=station_id, number=tank_number, for_update=True)
    if tank is None:
        raise UnknownTank(f"station {station_id} has no tank {tank_number}")
    return tank


async def record_reading(
    session: AsyncSession, *, station_id: int, tank_number: int, reading: protocol.TankReading
) -> list[dict[str, Any]]:
    """Apply a gauge reading; the live messages to publish after commit ([] for a repeat).

    A reading whose `event_seq` is not above the tank's newest reading is a duplicate or late
    and changes nothing. Raises `UnknownTank`, `GradeMismatch` or `InvalidTankValue`.
    """
    tank = await _gauge_tank(session, station_id=station_id, tank_number=tank_number)
    if reading.grade != tank.grade_code:
        raise GradeMismatch(
            f"tank {tank_number} holds {tank.grade_code}, the reading says {reading.grade}"
        )
    volume = reading.product_volume_ml
    if volume < 0 or volume > tank.capacity_ml:
        raise InvalidTankValue(
            f"tank {tank_number}: product_volume_ml {volume} outside 0..{tank.capacity_ml}"
        )
    latest = await repository.latest_reading(session, tank_id=tank.id)
    if (
        latest is not None
        and latest.event_seq is not None
        and reading.event_seq <= latest.event_seq
    ):
        return []
    book_then = await _book_at(session, tank, reading.ts)
    await repository.add(
        session,
        TankReading(
            tank_id=tank.id,
            measured_at=reading.ts,
            volume_ml=volume,
            level_mm=round(reading.product_height_mm),
            water_mm=round(reading.water_height_mm),
            temperature_dc=round(reading.temperature_c * 10),
            book_ml=book_then,
            event_seq=reading.event_seq,
        ),
    )
    if tank.measured_at is None or reading.ts >= tank.measured_at:
        tank.measured_ml = volume
        tank.measured_at = reading.ts
        tank.level_mm = round(reading.product_height_mm)
        tank.water_mm = round(reading.water_height_mm)
        tank.temperature_dc = round(reading.temperature_c * 10)
        await session.flush()
    await _check_variance(session, tank, measured_ml=volume, book_ml=book_then)
    book_now = await _book_at(session, tank, None)
    status = await _grade_availability(session, tank)
    return [tank_message(tank, book_ml=book_now, availability=status, ts=reading.ts)]


async def record_delivery(
    session: AsyncSession, *, station_id: int, tank_number: int, delivery: protocol.TankDelivery
) -> list[dict[str, Any]]:
    """Apply a gauge-detected delivery once per `delivery_id`; the live messages to publish.

    An accepted delivery always yields exactly one `tank` message; a repeat of a known
    `delivery_id` on the same tank yields `[]` (acknowledge it `duplicate`). Raises
    `UnknownTank`, `GradeMismatch` or `InvalidTankValue` (refuse with that code).
    """
    tank = await _gauge_tank(session, station_id=station_id, tank_number=tank_number)
    if delivery.grade != tank.grade_code:
        raise GradeMismatch(
            f"tank {tank_number} holds {tank.grade_code}, the delivery says {delivery.grade}"
        )
    for name in ("volume_ml", "start_volume_ml", "end_volume_ml"):
        value: int = getattr(delivery, name)
        if value < 0 or value > tank.capacity_ml:
            raise InvalidTankValue(
                f"tank {tank_number}: {name} {value} outside 0..{tank.capacity_ml}"
            )
    known = await repository.delivery_by_ref(
        session, station_id=station_id, delivery_ref=delivery.delivery_id
    )
    if known is not None:
        if known[1] != tank_number:
            raise InvalidTankValue(
                f"delivery_id {delivery.delivery_id} already recorded for tank {known[1]}"
            )
        return []
    await repository.add(
        session,
        TankDelivery(
            tank_id=tank.id,
            delivery_ref=delivery.delivery_id,
            volume_ml=delivery.volume_ml,
            started_at=delivery.started_at,
            ended_at=delivery.ended_at,
            source="gauge",
            created_at=clock.now(),
        ),
    )
    book_now = await _book_at(session, tank, None)
    status = await _grade_availability(session, tank)
    return [tank_message(tank, book_ml=book_now, availability=status, ts=delivery.ended_at)]


# -- staff -------------------------------------------------------------------------------------


async def _station_tank(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    number: int,
    for_update: bool = False,
) -> Tank:
    require_station(principal, station_id)
    tank = await repository.get(
        session, station_id=station_id, number=number, for_update=for_update
    )
    if tank is None:
        raise NotFound(f"station {station_id} has no tank {number}")
    return tank


async def _existing_station(
    session: AsyncSession, *, principal: Principal, station_id: int
) -> None:
    require_station(principal, station_id)
    if await station_repo.get(session, station_id) is None:
        raise NotFound(f"station {station_id} not found")


async def _render(session: AsyncSession, tanks: Sequence[Tank]) -> list[TankOut]:
    now_book = await book_stock(session, tanks)
    out = []
    for tank in tanks:
        at_measured = (
            await _book_at(session, tank, tank.measured_at)
            if tank.measured_at is not None
            else None
        )
        variance = (
            tank.measured_ml - at_measured
            if tank.measured_ml is not None and at_measured is not None
            else None
        )
        stock = tank.measured_ml if tank.measured_ml is not None else now_book[tank.id]
        out.append(
            TankOut(
                number=tank.number,
                grade=tank.grade_code,
                capacity_ml=tank.capacity_ml,
                low_ml=tank.low_ml,
                out_ml=tank.out_ml,
                variance_alert_ml=tank.variance_alert_ml,
                active=tank.active,
                measured_ml=tank.measured_ml,
                measured_at=tank.measured_at,
                level_mm=tank.level_mm,
                water_mm=tank.water_mm,
                temperature_c=tank.temperature_dc / 10 if tank.temperature_dc is not None else None,
                book_ml=now_book[tank.id],
                book_since=tank.book_since,
                book_at_measured_ml=at_measured,
                variance_ml=variance,
                variance_alert=variance is not None and abs(variance) > tank.variance_alert_ml,
                availability=(
                    classify(stock, low_ml=tank.low_ml, out_ml=tank.out_ml)
                    if tank.active
                    else "out"
                ),
            )
        )
    return out


async def list_tanks(
    session: AsyncSession, *, principal: Principal, station_id: int
) -> list[TankOut]:
    """Every tank of a station in the caller's scope, with measured and book stock."""
    await _existing_station(session, principal=principal, station_id=station_id)
    return await _render(session, await repository.tanks_of(session, station_ids=[station_id]))


async def get_tank(
    session: AsyncSession, *, principal: Principal, station_id: int, number: int
) -> TankOut:
    """One tank's full status."""
    tank = await _station_tank(session, principal=principal, station_id=station_id, number=number)
    return (await _render(session, [tank]))[0]


async def create_tank(
    session: AsyncSession, *, principal: Principal, station_id: int, data: TankIn
) -> TankOut:
    """Add a tank with its opening book stock."""
    await _existing_station(session, principal=principal, station_id=station_id)
    if await session.get(Grade, data.grade) is None:
        raise Unprocessable(
            f"unknown grade {data.grade!r}", errors=[FieldError("grade", "unknown grade")]
        )
    if await repository.get(session, station_id=station_id, number=data.number) is not None:
        raise Conflict(
            f"station {station_id} already has tank {data.number}",
            errors=[FieldError("number", "already used at this station")],
        )
    tank = Tank(
        station_id=station_id,
        number=data.number,
        grade_code=data.grade,
        capacity_ml=data.capacity_ml,
        low_ml=data.low_ml,
        out_ml=data.out_ml,
        variance_alert_ml=data.variance_alert_ml,
        book_ml=data.opening_ml,
        book_since=data.opening_at or clock.now(),
        active=data.active,
    )
    try:
        async with session.begin_nested():
            await repository.add(session, tank)
    except IntegrityError as exc:
        raise Conflict(
            f"station {station_id} already has tank {data.number}",
            errors=[FieldError("number", "already used at this station")],
        ) from exc
    return (await _render(session, [tank]))[0]


async def update_tank(
    session: AsyncSession, *, principal: Principal, station_id: int, number: int, data: TankUpdate
) -> TankOut:
    """Change a tank's capacity, thresholds or active flag."""
    tank = await _station_tank(
        session, principal=principal, station_id=station_id, number=number, for_update=True
    )
    changes = data.model_dump(exclude_unset=True)
    nulls = [FieldError(k, "may not be null") for k, v in changes.items() if v is None]
    if nulls:
        raise Unprocessable("; ".join(f"{e.field}: {e.reason}" for e in nulls), errors=nulls)
    capacity = changes.get("capacity_ml", tank.capacity_ml)
    low = changes.get("low_ml", tank.low_ml)
    out = changes.get("out_ml", tank.out_ml)
    errors = []
    if low > capacity:
        errors.append(FieldError("low_ml", f"must not exceed capacity_ml ({capacity})"))
    if out > low:
        errors.append(FieldError("out_ml", f"must not exceed low_ml ({low})"))
    if tank.measured_ml is not None and capacity < tank.measured_ml:
        errors.append(
            FieldError("capacity_ml", f"below the measured stock ({tank.measured_ml} ml)")
        )
    if errors:
        raise Unprocessable("; ".join(f"{e.field}: {e.reason}" for e in errors), errors=errors)
    for key, value in changes.items():
        setattr(tank, key, value)
    await session.flush()
    return (await _render(session, [tank]))[0]


async def delete_tank(
    session: AsyncSession, *, principal: Principal, station_id: int, number: int
) -> None:
    """Delete a tank that has no readings or deliveries (deactivate it otherwise)."""
    tank = await _station_tank(
        session, principal=principal, station_id=station_id, number=number, for_update=True
    )
    if await repository.has_history(session, tank_id=tank.id):
        raise Conflict(f"tank {number} has readings or deliveries; set active=false instead")
    await repository.delete(session, tank)


def _delivery_out(row: TankDelivery, *, tank: int) -> DeliveryOut:
    ref = row.delivery_ref.removeprefix(STAFF_PREFIX)
    return DeliveryOut(
        id=row.id,
        tank=tank,
        ref=ref,
        source=row.source,
        volume_ml=row.volume_ml,
        started_at=row.started_at,
        ended_at=row.ended_at,
        entered_by=row.entered_by,
        note=row.note,
        created_at=row.created_at,
    )


async def add_delivery(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    number: int,
    data: DeliveryIn,
) -> tuple[DeliveryResult, dict[str, Any] | None]:
    """Record a delivery entered by staff, once per `client_ref`; the row and a live message.

    Repeating a `client_ref` with the same volume and time returns the stored delivery
    (`replayed`); with other values it is a conflict.
    """
    tank = await _station_tank(
        session, principal=principal, station_id=station_id, number=number, for_update=True
    )
    ref = STAFF_PREFIX + data.client_ref
    known = await repository.delivery_by_ref(session, station_id=station_id, delivery_ref=ref)
    if known is not None:
        row, tank_number = known
        if (tank_number, row.volume_ml, row.ended_at) != (
            number,
            data.volume_ml,
            data.delivered_at,
        ):
            raise Conflict(
                f"client_ref {data.client_ref} was already used for another delivery",
                errors=[FieldError("client_ref", "already used with other values")],
            )
        out = _delivery_out(row, tank=tank_number)
        return DeliveryResult(**out.model_dump(), replayed=True), None
    errors = []
    if data.volume_ml > tank.capacity_ml:
        errors.append(FieldError("volume_ml", f"above the tank capacity ({tank.capacity_ml} ml)"))
    now = clock.now()
    if data.delivered_at > now + FUTURE_SKEW:
        errors.append(FieldError("delivered_at", "in the future"))
    if data.delivered_at <= tank.book_since:
        errors.append(
            FieldError(
                "delivered_at",
                f"not after the book opening ({_iso(tank.book_since)}); it would not count",
            )
        )
    if errors:
        raise Unprocessable("; ".join(f"{e.field}: {e.reason}" for e in errors), errors=errors)
    row = TankDelivery(
        tank_id=tank.id,
        delivery_ref=ref,
        volume_ml=data.volume_ml,
        started_at=None,
        ended_at=data.delivered_at,
        source="staff",
        entered_by=principal.id,
        note=data.note,
        created_at=now,
    )
    await repository.add(session, row)
    out = _delivery_out(row, tank=number)
    book_now = await _book_at(session, tank, None)
    status = await _grade_availability(session, tank)
    message = tank_message(tank, book_ml=book_now, availability=status, ts=now)
    return DeliveryResult(**out.model_dump(), replayed=False), message


async def list_deliveries(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    number: int,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[DeliveryOut]:
    """Deliveries and reconciliations of a tank, newest first."""
    tank = await _station_tank(session, principal=principal, station_id=station_id, number=number)
    rows = await repository.deliveries(
        session, tank_id=tank.id, since=since, until=until, limit=limit
    )
    return [_delivery_out(r, tank=number) for r in rows]


async def list_readings(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    number: int,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> list[ReadingOut]:
    """Gauge readings of a tank for a chart, oldest first, with book stock at each."""
    tank = await _station_tank(session, principal=principal, station_id=station_id, number=number)
    rows = await repository.readings(
        session, tank_id=tank.id, since=since, until=until, limit=limit
    )
    return [
        ReadingOut(
            measured_at=r.measured_at,
            volume_ml=r.volume_ml,
            book_ml=r.book_ml,
            variance_ml=r.volume_ml - r.book_ml,
            level_mm=r.level_mm,
            water_mm=r.water_mm,
            temperature_c=r.temperature_dc / 10 if r.temperature_dc is not None else None,
            event_seq=r.event_seq,
        )
        for r in rows
    ]


async def reconcile(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    number: int,
    data: ReconcileIn,
) -> tuple[TankOut, dict[str, Any]]:
    """Reset book stock to the latest measured stock; the correction is kept as a ledger row."""
    tank = await _station_tank(
        session, principal=principal, station_id=station_id, number=number, for_update=True
    )
    if tank.measured_ml is None or tank.measured_at is None:
        raise Conflict(f"tank {number} has no gauge reading to reconcile to")
    at = tank.measured_at
    book_then = await _book_at(session, tank, at)
    now = clock.now()
    await repository.add(
        session,
        TankDelivery(
            tank_id=tank.id,
            delivery_ref=f"{RECONCILE_PREFIX}{uuid.uuid4().hex}",
            volume_ml=tank.measured_ml - book_then,
            started_at=None,
            ended_at=at,
            source="reconcile",
            entered_by=principal.id,
            note=data.note,
            created_at=now,
        ),
    )
    tank.book_ml = tank.measured_ml
    tank.book_since = at
    await session.flush()
    VARIANCE_ML.labels(station_id=str(tank.station_id), tank=str(tank.number)).set(0)
    await alerts.resolve_open(
        session, station_id=station_id, kind=VARIANCE_KIND, code=_alert_code(tank), now=now
    )
    out = (await _render(session, [tank]))[0]
    status = await _grade_availability(session, tank)
    return out, tank_message(tank, book_ml=out.book_ml, availability=status, ts=now)


async def station_availability(session: AsyncSession, *, station_id: int) -> StationAvailability:
    """Public per-grade availability: grades with tanks or a current price; no volumes."""
    if await station_repo.get(session, station_id) is None:
        raise NotFound(f"station {station_id} not found")
    found = await availability(session, station_ids=[station_id])
    priced = await fuel_repo.current_prices(session, station_ids=[station_id], at=clock.now())
    grades = {g for (_, g) in found} | {p.grade_code for p in priced}
    return StationAvailability(
        station_id=station_id,
        grades=[
            GradeAvailability(grade=g, availability=found.get((station_id, g), "unknown"))
            for g in sorted(grades, key=_grade_order)
        ],
    )


def _grade_order(code: str) -> tuple[int, str]:
    try:
        return (int(code), code)
    except ValueError:
        return (10**6, code)


async def live_tanks(session: AsyncSession, *, station_id: int) -> list[dict[str, Any]]:
    """A `tank` message per tank of the station, for the live snapshot."""
    rows = await repository.tanks_of(session, station_ids=[station_id])
    if not rows:
        return []
    book = await book_stock(session, rows)
    grades = await availability(session, station_ids=[station_id])
    now = clock.now()
    return [
        tank_message(
            t,
            book_ml=book[t.id],
            availability=grades.get((station_id, t.grade_code), "unknown"),
            ts=t.measured_at or now,
        )
        for t in rows
    ]
