"""Applying one decoded gateway message in the link loop's unit of work.

`apply` changes rows only through the domain (FuellingPoint rebuilt from its rows) and returns
the effects to send after the commit (live messages, SaleAck/DeliveryAck). It raises an
`AppError` (a `PumpError` from the domain, or one of ours) when the message is refused; the
link loop then rolls back and calls `refuse` in a fresh unit of work, which counts, logs and
raises a station alert, and answers a refused sale or delivery so the gateway stops resending.

Deduplication (docs/pump-protocol.md section 9): state, progress and sale-status reports by
the fuelling point's highest applied `event_seq`; sales by (fuelling point, `seq`) in the
domain's sale buffer; deliveries by `delivery_id`; command acks by `command_id`.

`progress_in_memory` is the fast path for progress reports that only move the running totals
(no unit of work; `pump.progress_cache` stores them later); `state_in_memory` applies a state
report to the same in-memory view so the link can publish it before its unit of work stores
it. Every unit of work here first puts the fuelling point's older in-memory progress on the
locked row (`ProgressUnit.overlay`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt import outbox
from forecourt.errors import AppError, Unprocessable
from forecourt.pump import alerts, commands, messages, mirror, protocol, repository
from forecourt.pump.domain import (
    AuthorisationEnded,
    ErrorReported,
    Event,
    FPState,
    FuellingPoint,
    FuellingProgressed,
    GradeMismatch,
    IllegalTransition,
    InvalidInput,
    PresetExceeded,
    PresetReached,
    SaleAlreadyCleared,
    SaleBuffer,
    SaleDuplicate,
    SaleGap,
    SaleRecorded,
    SalesBehind,
    UnknownNozzle,
    UnknownSale,
)
from forecourt.pump.effects import Effects, Publish
from forecourt.pump.models import FuellingPointRow, PumpSale
from forecourt.pump.progress_cache import PointView, ProgressCache, ProgressUnit
from forecourt.pump.protocol import TopicKind
from forecourt.tank import service as tank_service

log = logging.getLogger("forecourt.pump")

SALE_RECORDED = "pump.sale_recorded"  # outbox: a new sale is in the buffer
SALE_STATUS_CHANGED = "pump.sale_status_changed"  # outbox: kiosk/cash changed a sale
AUTHORISATION_ENDED = "pump.authorisation_ended"  # outbox: an order's authorisation is over

SALE_ACK_REASONS = frozenset(
    {
        "sequence_conflict",
        "totalizer_regression",
        "totalizer_mismatch",
        "amount_mismatch",
        "unknown_nozzle",
        "grade_mismatch",
        "invalid",
    }
)
DELIVERY_ACK_REASONS = frozenset({"invalid", "unknown_tank", "grade_mismatch"})
REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class UnknownStation(Unprocessable):
    """A message for a station code this server does not know."""

    code, title = "unknown_station", "Unknown station"


class UnknownFuellingPoint(InvalidInput):
    """A message for a fuelling point that is not configured at the station."""

    code, title = "unknown_fp", "Unknown fuelling point"


def _ack_topic(kind: TopicKind, station: str, number: int | None) -> str:
    return protocol.build_topic(kind, station, number)


def sale_ack(
    station: str, fp: int, seq: int, status: str, reason: str | None, now: datetime
) -> Publish:
    """A SaleAck to publish after the commit."""
    ack = protocol.SaleAck.model_validate(
        {"seq": seq, "status": status, "reason": reason, "ts": now}
    )
    return Publish(_ack_topic(TopicKind.FP_SALE_ACK, station, fp), protocol.encode(ack))


def delivery_ack(
    station: str, tank: int, delivery_id: str, status: str, reason: str | None, now: datetime
) -> Publish:
    """A DeliveryAck to publish after the commit."""
    ack = protocol.DeliveryAck.model_validate(
        {"delivery_id": delivery_id, "status": status, "reason": reason, "ts": now}
    )
    return Publish(_ack_topic(TopicKind.TANK_DELIVERY_ACK, station, tank), protocol.encode(ack))


async def station_id(session: AsyncSession, code: str) -> int | None:
    """The id of the station with this code (the third topic level), if there is one."""
    return await repository.station_id_by_code(session, code)


async def _station(session: AsyncSession, code: str) -> int:
    station_id = await repository.station_id_by_code(session, code)
    if station_id is None:
        raise UnknownStation(f"no station with code {code!r}")
    return station_id


async def _fp(
    session: AsyncSession, station_id: int, number: int, unit: ProgressUnit
) -> FuellingPointRow:
    row = await repository.fuelling_point(session, station_id, number, for_update=True)
    if row is None:
        raise UnknownFuellingPoint(f"fuelling point {number} is not configured")
    unit.overlay(row)  # the progress kept in memory comes first (docs/pumps.md, progress)
    return row


async def _resolution(session: AsyncSession, station_id: int) -> int:
    gateway = await repository.gateway(session, station_id)
    return gateway.volume_resolution_ml if gateway is not None else 1


async def apply(
    session: AsyncSession,
    decoded: protocol.Decoded,
    *,
    now: datetime,
    progress: ProgressUnit | None = None,
    station_id: int | None = None,
) -> Effects:
    """Apply one gateway message; the effects to send after commit (raises when refused).

    `station_id`: the id of the topic's station when the caller already knows it.
    """
    topic, message = decoded.topic, decoded.message
    unit = progress if progress is not None else ProgressUnit(None, topic.station)
    if station_id is None:
        station_id = await _station(session, topic.station)
    number = topic.number
    match message:
        case protocol.DeviceStatus() if topic.kind is TopicKind.GATEWAY_ONLINE:
            unit.forget()
            return await _gateway_status(session, station_id, message, unit, now=now)
        case protocol.StateReport():
            assert number is not None
            return await _state(session, station_id, number, message, unit, now=now)
        case protocol.FuellingProgress():
            assert number is not None
            return await _progress(session, station_id, number, message, unit, now=now)
        case protocol.SaleReport():
            assert number is not None
            return await _sale(session, station_id, topic.station, number, message, unit, now=now)
        case protocol.SaleStatusReport():
            assert number is not None
            unit.forget(number)
            return await _sale_status(session, station_id, number, message, unit, now=now)
        case protocol.TankReading():
            assert number is not None
            return await _tank_reading(session, station_id, number, message)
        case protocol.TankDelivery():
            assert number is not None
            return await _tank_delivery(session, station_id, topic.station, number, message, now)
        case protocol.CommandAck():
            unit.forget()  # an authorise ack may give a fuelling point its order and preset
            return await commands.apply_ack(session, station_id=station_id, ack=message, now=now)
    return Effects(station_id=station_id, outcome="ignored")


@dataclass
class Early:
    """A state report applied to the in-memory view ahead of its unit of work."""

    effects: Effects
    expected: FuellingPoint | None
    """The fuelling point its unit of work must arrive at (None: a duplicate, no unit needed)."""


def _memory_view(
    cache: ProgressCache, decoded: protocol.Decoded, kind: type[Any]
) -> tuple[tuple[str, int], PointView] | None:
    """The view a report of `kind` can be applied to in memory, with its key."""
    topic = decoded.topic
    if not isinstance(decoded.message, kind) or topic.number is None:
        return None
    key = (topic.station, topic.number)
    view = cache.view(key)
    return None if view is None else (key, view)


def _live(point: FuellingPoint, *, now: datetime) -> dict[str, Any]:
    """The live `fp` message of an in-memory fuelling point."""
    row = FuellingPointRow(
        number=point.number,
        state=int(point.state),
        nozzle_out=point.nozzle,
        progress=mirror.progress_to_json(point.progress),
    )
    return messages.fp_message(row, now=now)


def progress_in_memory(
    cache: ProgressCache, decoded: protocol.Decoded, *, now: datetime, order: int | None = None
) -> Effects | None:
    """Apply a progress report in memory when it only moves the running totals, else None."""
    found = _memory_view(cache, decoded, protocol.FuellingProgress)
    if found is None:
        return None
    key, view = found
    report = decoded.message
    assert isinstance(report, protocol.FuellingProgress)
    effects = Effects(station_id=view.station_id)
    if report.event_seq <= view.event_seq:
        effects.outcome = "duplicate"
        return effects
    point = dataclasses.replace(view.point)  # flow() replaces attributes, never mutates them
    nozzle = point.nozzles.get(report.nozzle)
    if nozzle is None or nozzle.grade != report.grade:
        return None  # refused by the unit of work, against the stored row
    try:
        events = point.flow(
            volume_ml=report.volume_ml,
            amount_fen=report.amount_fen,
            unit_price_fen=report.unit_price_fen,
        )
    except AppError:
        return None
    if not all(isinstance(e, FuellingProgressed | PresetReached) for e in events):
        return None  # a state change or an alert: the unit of work decides and stores it
    cache.applied(key, view, point, report.event_seq, order=order)
    if not events:
        effects.outcome = "duplicate"  # an older progress than the one applied
        return effects
    effects.add_live(_live(point, now=now))
    return effects


def state_in_memory(
    cache: ProgressCache, decoded: protocol.Decoded, *, now: datetime, order: int
) -> Early | None:
    """Apply a state report to the in-memory view (for the live message), else None.

    The caller still stores it through `apply` in a unit of work, which must arrive at
    `Early.expected`; a refusal (or any other outcome) is left to that unit of work.
    """
    found = _memory_view(cache, decoded, protocol.StateReport)
    if found is None:
        return None
    key, view = found
    report = decoded.message
    assert isinstance(report, protocol.StateReport)
    effects = Effects(station_id=view.station_id)
    if report.event_seq <= view.event_seq:
        effects.outcome = "duplicate"
        return Early(effects, expected=None)
    point = dataclasses.replace(view.point, buffer=SaleBuffer())
    try:
        point.apply_state_report(
            report.fp_state,
            nozzle=report.nozzle,
            error_code=report.error_code,
            last_seq=report.last_seq,
        )
    except AppError:
        return None
    cache.applied(key, view, point, report.event_seq, order=order, pending=False)
    effects.add_live(_live(point, now=now))
    return Early(effects, expected=point)


# -- gateway presence ---------------------------------------------------------------------------


async def _gateway_status(
    session: AsyncSession,
    station_id: int,
    status: protocol.DeviceStatus,
    unit: ProgressUnit,
    *,
    now: datetime,
) -> Effects:
    effects = Effects(station_id=station_id)
    gateway = await repository.gateway_for_update(session, station_id)
    gateway.last_seen_at = now
    if status.online:
        gateway.firmware = status.firmware
        gateway.volume_resolution_ml = status.volume_resolution_ml or 1
        if gateway.online:
            effects.outcome = "duplicate"
            return effects
        gateway.online = True
        await alerts.resolve_open(
            session,
            station_id=station_id,
            kind=alerts.GATEWAY_OFFLINE,
            code=alerts.GATEWAY_OFFLINE,
            now=now,
        )
        await commands.requeue(session, station_id=station_id, now=now)
        effects.add_live(messages.gateway_message(online=True, now=now))
        return effects
    points = await repository.fuelling_points(session, station_id, for_update=True)
    for row in points:
        unit.overlay(row)
    if not gateway.online and all(p.state == FPState.OFFLINE for p in points):
        effects.outcome = "duplicate"
        return effects
    gateway.online = False
    for row in points:
        # FuellingPoint.go_offline: remember the state, keep authorisation, progress, sales.
        if row.state != FPState.OFFLINE:
            row.state_before_offline = row.state
            row.state = int(FPState.OFFLINE)
            row.state_changed_at = now
            row.updated_at = now
            effects.add_live(messages.fp_message(row, now=now))
    await alerts.raise_alert(
        session,
        station_id=station_id,
        kind=alerts.GATEWAY_OFFLINE,
        code=alerts.GATEWAY_OFFLINE,
        detail="the forecourt gateway went offline (last will); fuelling points are Offline",
        now=now,
    )
    effects.add_live(messages.gateway_message(online=False, now=now))
    return effects


# -- fuelling points ----------------------------------------------------------------------------


async def _report_point(
    session: AsyncSession,
    station_id: int,
    number: int,
    event_seq: int,
    unit: ProgressUnit,
) -> tuple[FuellingPointRow, FuellingPoint] | None:
    """The locked row and its domain point for a state or progress report; None: duplicate."""
    row = await _fp(session, station_id, number, unit)
    if event_seq <= row.last_event_seq:
        return None
    nozzles = await repository.nozzles_of_fp(session, row.id)
    point = mirror.load_point(
        row, nozzles, volume_resolution_ml=await _resolution(session, station_id)
    )
    return row, point


async def _state(
    session: AsyncSession,
    station_id: int,
    number: int,
    report: protocol.StateReport,
    unit: ProgressUnit,
    *,
    now: datetime,
) -> Effects:
    effects = Effects(station_id=station_id)
    loaded = await _report_point(session, station_id, number, report.event_seq, unit)
    if loaded is None:
        effects.outcome = "duplicate"
        return effects
    row, point = loaded
    events = point.apply_state_report(
        report.fp_state,
        nozzle=report.nozzle,
        error_code=report.error_code,
        last_seq=report.last_seq,
    )
    await _store_report(
        session,
        row,
        point,
        events,
        effects,
        unit,
        event_seq=report.event_seq,
        stored=False,
        now=now,
    )
    effects.add_live(messages.fp_message(row, now=now))
    return effects


async def _progress(
    session: AsyncSession,
    station_id: int,
    number: int,
    report: protocol.FuellingProgress,
    unit: ProgressUnit,
    *,
    now: datetime,
) -> Effects:
    effects = Effects(station_id=station_id)
    loaded = await _report_point(session, station_id, number, report.event_seq, unit)
    if loaded is None:
        effects.outcome = "duplicate"
        return effects
    row, point = loaded
    nozzle = point.nozzles.get(report.nozzle)
    if nozzle is None:
        raise UnknownNozzle(report.nozzle)
    if nozzle.grade != report.grade:
        raise GradeMismatch(f"nozzle {report.nozzle} dispenses {nozzle.grade}, not {report.grade}")
    events = point.flow(
        volume_ml=report.volume_ml,
        amount_fen=report.amount_fen,
        unit_price_fen=report.unit_price_fen,
    )
    await _store_report(
        session, row, point, events, effects, unit, event_seq=report.event_seq, stored=True, now=now
    )
    if any(isinstance(e, FuellingProgressed) for e in events):
        effects.add_live(messages.fp_message(row, now=now))
    else:
        effects.outcome = "duplicate"  # an older progress than the one applied
    return effects


async def _store_report(
    session: AsyncSession,
    row: FuellingPointRow,
    point: FuellingPoint,
    events: list[Event],
    effects: Effects,
    unit: ProgressUnit,
    *,
    event_seq: int,
    stored: bool,
    now: datetime,
) -> None:
    """Write an applied state or progress report back (`stored`: its progress is written)."""
    mirror.save_point(row, point, now=now)
    row.last_event_seq = event_seq
    unit.seen(row.station_id, row, point, stored=stored)
    await _fp_effects(session, row.station_id, row, events, effects, now=now)


async def _fp_effects(
    session: AsyncSession,
    station_id: int,
    row: FuellingPointRow,
    events: list[Event],
    effects: Effects,
    *,
    now: datetime,
) -> None:
    for event in events:
        match event:
            case SalesBehind(from_seq=low, to_seq=high):
                await commands.reread_sales(
                    session,
                    station_id=station_id,
                    fp_number=row.number,
                    from_seq=low,
                    to_seq=high,
                    now=now,
                )
            case AuthorisationEnded(order_id=order_id, reason=reason) if order_id is not None:
                outbox.publish(
                    session,
                    AUTHORISATION_ENDED,
                    {
                        "station_id": station_id,
                        "fp": row.number,
                        "order_id": order_id,
                        "reason": reason,
                    },
                )
            case ErrorReported(code=code):
                await alerts.raise_alert(
                    session,
                    station_id=station_id,
                    kind=alerts.PUMP_FAULT,
                    code=code,
                    detail=f"fuelling point {row.number} reports error {code}",
                    now=now,
                )
            case PresetExceeded(preset=preset, over_by=over):
                await alerts.raise_alert(
                    session,
                    station_id=station_id,
                    kind=alerts.BAD_INPUT,
                    code="preset_exceeded",
                    detail=(
                        f"fuelling point {row.number} ran {over} {preset.kind.value} past its "
                        f"preset of {preset.value}"
                    ),
                    now=now,
                )
            case _:
                pass


# -- sales --------------------------------------------------------------------------------------


async def _sale(
    session: AsyncSession,
    station_id: int,
    station: str,
    number: int,
    report: protocol.SaleReport,
    unit: ProgressUnit,
    *,
    now: datetime,
) -> Effects:
    effects = Effects(station_id=station_id)
    row = await _fp(session, station_id, number, unit)
    nozzles = await repository.nozzles_of_fp(session, row.id)
    same = await repository.sale(session, fp_id=row.id, seq=report.seq)
    below, above = await repository.sale_neighbours(
        session, fp_id=row.id, nozzle=report.nozzle, seq=report.seq
    )
    point = mirror.load_point(
        row,
        nozzles,
        sales=(same, below, above),
        volume_resolution_ml=await _resolution(session, station_id),
    )
    events = point.record_sale(report.to_sale())
    mirror.save_point(row, point, now=now)
    unit.seen(station_id, row, point, stored=False)
    status = "accepted"
    for event in events:
        match event:
            case SaleRecorded(sale=sale):
                sale_row = PumpSale(
                    station_id=station_id,
                    fp_id=row.id,
                    seq=sale.seq,
                    nozzle_number=sale.nozzle,
                    grade_code=sale.grade,
                    volume_ml=sale.volume_ml,
                    amount_fen=sale.amount_fen,
                    unit_price_fen=sale.unit_price_fen,
                    totalizer_volume_ml=sale.totalizer_volume_ml,
                    totalizer_amount_fen=sale.totalizer_amount_fen,
                    ended_at=sale.ended_at,
                    received_at=now,
                    auth_ref=sale.auth_ref,
                )
                mirror.apply_sale_status(sale_row, sale)
                await repository.add(session, sale_row)
                if above is None:  # the newest sale of its nozzle: its meters are current
                    for nozzle in nozzles:
                        if nozzle.number == sale.nozzle:
                            nozzle.totalizer_volume_ml = sale.totalizer_volume_ml
                            nozzle.totalizer_amount_fen = sale.totalizer_amount_fen
                outbox.publish(
                    session,
                    SALE_RECORDED,
                    {
                        "station_id": station_id,
                        "fp": number,
                        "seq": sale.seq,
                        "sale_id": sale_row.id,
                        "nozzle": sale.nozzle,
                        "auth_ref": sale.auth_ref,
                        "volume_ml": sale.volume_ml,
                        "amount_fen": sale.amount_fen,
                    },
                )
                effects.add_live(messages.sale_message(sale_row, fp_number=number, now=now))
            case SaleDuplicate():
                status = "duplicate"
                effects.outcome = "duplicate"
            case SaleGap(missing=missing):
                log.info(
                    "sale sequence gap; re-reading",
                    extra={"station_id": station_id, "fp": number, "missing": len(missing)},
                )
                await commands.reread_sales(
                    session,
                    station_id=station_id,
                    fp_number=number,
                    from_seq=min(missing),
                    to_seq=max(missing),
                    now=now,
                )
            case _:
                pass
    effects.publish.append(sale_ack(station, number, report.seq, status, None, now))
    return effects


async def _sale_status(
    session: AsyncSession,
    station_id: int,
    number: int,
    report: protocol.SaleStatusReport,
    unit: ProgressUnit,
    *,
    now: datetime,
) -> Effects:
    effects = Effects(station_id=station_id)
    row = await _fp(session, station_id, number, unit)
    if report.event_seq <= row.last_event_seq:
        effects.outcome = "duplicate"
        return effects
    sale = await repository.sale(session, fp_id=row.id, seq=report.seq, for_update=True)
    if sale is None:
        raise UnknownSale(report.seq)
    if sale.status == "cleared" and report.status != "cleared":
        raise SaleAlreadyCleared(report.seq)
    sale.status = report.status
    sale.locked_by = report.lock_ref
    sale.lock_expires_at = None
    if report.status == "cleared" and sale.cleared_at is None:
        sale.cleared_at = report.ts
        sale.cleared_by = report.lock_ref
    row.last_event_seq = report.event_seq
    outbox.publish(
        session,
        SALE_STATUS_CHANGED,
        {
            "station_id": station_id,
            "fp": number,
            "seq": report.seq,
            "status": report.status,
            "lock_ref": report.lock_ref,
        },
    )
    effects.add_live(messages.sale_message(sale, fp_number=number, now=now))
    return effects


# -- tanks --------------------------------------------------------------------------------------


async def _tank_reading(
    session: AsyncSession, station_id: int, number: int, reading: protocol.TankReading
) -> Effects:
    effects = Effects(station_id=station_id)
    live = await tank_service.record_reading(
        session, station_id=station_id, tank_number=number, reading=reading
    )
    if not live:
        effects.outcome = "duplicate"
    for message in live:
        effects.add_live(message)
    return effects


async def _tank_delivery(
    session: AsyncSession,
    station_id: int,
    station: str,
    number: int,
    delivery: protocol.TankDelivery,
    now: datetime,
) -> Effects:
    effects = Effects(station_id=station_id)
    live = await tank_service.record_delivery(
        session, station_id=station_id, tank_number=number, delivery=delivery
    )
    status = "accepted" if live else "duplicate"
    if not live:
        effects.outcome = "duplicate"
    for message in live:
        effects.add_live(message)
    effects.publish.append(delivery_ack(station, number, delivery.delivery_id, status, None, now))
    return effects


# -- refusals -----------------------------------------------------------------------------------


def _raw_field(payload: bytes, name: str) -> Any:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return data.get(name) if isinstance(data, dict) else None


async def refuse(
    session: AsyncSession,
    *,
    topic: str,
    payload: bytes,
    code: str,
    detail: str,
    now: datetime,
) -> Effects:
    """Record a refused message: alert (per station and code), refused ack, state re-read."""
    effects = Effects(outcome="refused")
    try:
        parsed = protocol.parse_topic(topic)
    except protocol.ProtocolError:
        return effects
    station_id = await repository.station_id_by_code(session, parsed.station)
    if station_id is None:
        return effects
    effects.station_id = station_id
    await alerts.raise_alert(
        session,
        station_id=station_id,
        kind=alerts.BAD_INPUT,
        code=code,
        detail=f"{topic}: {detail}",
        now=now,
    )
    number = parsed.number
    if parsed.kind is TopicKind.FP_SALE and number is not None:
        seq = _raw_field(payload, "seq")
        if isinstance(seq, int) and not isinstance(seq, bool) and 1 <= seq <= 2**32 - 1:
            reason = code if code in SALE_ACK_REASONS else "invalid"
            effects.publish.append(sale_ack(parsed.station, number, seq, "refused", reason, now))
    elif parsed.kind is TopicKind.TANK_DELIVERY and number is not None:
        ref = _raw_field(payload, "delivery_id")
        if isinstance(ref, str) and REF_RE.fullmatch(ref):
            reason = code if code in DELIVERY_ACK_REASONS else "invalid"
            effects.publish.append(
                delivery_ack(parsed.station, number, ref, "refused", reason, now)
            )
    elif code == IllegalTransition.code and parsed.kind is TopicKind.FP_STATE:
        await commands.report_state(session, station_id=station_id, fp_number=number, now=now)
    return effects


def refusal_code(exc: AppError) -> str:
    """The stable code a refusal is counted and alerted under."""
    return exc.code
