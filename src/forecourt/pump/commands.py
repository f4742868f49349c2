"""Commands to station gateways: written in the caller's unit of work, sent after its commit.

A command is a `pump_commands` row plus an outbox event `pump.command`; the handler
`pump.publish_command` (pump/tasks.py) publishes it once the unit of work has committed, so
a rolled-back change never reaches a pump. The handler resends an unanswered command every
`pump_command_resend_seconds` (same `command_id`) until `valid_until`, then marks it timed
out and raises an alert. Lifecycle: pending -> sent -> done | failed | timed_out.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt import outbox
from forecourt.errors import Conflict, NotFound
from forecourt.fuel import repository as fuel_repository
from forecourt.pump import alerts, messages, metrics, mirror, protocol, repository
from forecourt.pump.domain import (
    ACTIVE,
    UNAVAILABLE,
    Authorisation,
    FPState,
    InvalidInput,
    Preset,
)
from forecourt.pump.effects import Effects
from forecourt.pump.models import FuellingPointRow, PumpCommand

log = logging.getLogger("forecourt.pump")

COMMAND_EVENT = "pump.command"  # outbox topic: publish (or resend) one command
FINISHED_EVENT = "pump.command_finished"  # outbox topic: a command was answered or timed out
QUEUED_WHILE_OFFLINE = frozenset({"clear_sale", "unlock_sale"})
AFTER_KEY = "_after"  # payload key (not on the wire): send only after that command finished
WAIT_FOR_PREDECESSOR = timedelta(seconds=1)

_COMMAND: TypeAdapter[Any] = TypeAdapter(protocol.Command)


class PumpOffline(Conflict):
    """The station's gateway or the fuelling point is offline: nothing can be sent now."""

    code, title = "pump_offline", "Pump offline"


class PumpBusy(Conflict):
    """The fuelling point is in use (authorised, fuelling, or another order is pending)."""

    code, title = "pump_busy", "Pump busy"


class PumpUnavailable(Conflict):
    """The fuelling point is closed, out of service or in error."""

    code, title = "pump_unavailable", "Pump unavailable"


class NozzleNotFound(NotFound):
    """No active nozzle with this number at the station."""

    code, title = "nozzle_not_found", "Nozzle not found"


class FuellingPointNotFound(NotFound):
    """No fuelling point with this number at the station."""

    code, title = "fp_not_found", "Fuelling point not found"


@dataclass(frozen=True)
class Outgoing:
    """A command ready to go on the wire."""

    topic: str
    payload: bytes
    expiry_seconds: int
    command_id: str
    type: str
    station_id: int
    fp_number: int | None
    first: bool


def new_command_id() -> str:
    """A unique, roughly time-ordered id (26 characters, a valid protocol `id`)."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(7)}"


def wire(row: PumpCommand | repository.CommandRow, *, now: datetime) -> dict[str, Any]:
    """The command as it goes on the wire at `now` (internal keys dropped)."""
    body = {k: v for k, v in row.payload.items() if not k.startswith("_")}
    return {**body, "ts": messages.iso(now)}


async def create(
    session: AsyncSession,
    *,
    station_id: int,
    type_: str,
    fp_number: int | None,
    body: dict[str, Any],
    ttl: timedelta,
    now: datetime,
    after: str | None = None,
) -> PumpCommand:
    """Write a command and its outbox event in the caller's unit of work (never commits).

    The row returned is a transient copy of what was inserted (not in the session).
    """
    command_id = new_command_id()
    valid_until = now + ttl
    payload: dict[str, Any] = {
        "command_id": command_id,
        "type": type_,
        "valid_until": messages.iso(valid_until),
        **body,
    }
    _COMMAND.validate_json(orjson.dumps({**payload, "ts": messages.iso(now)}))
    if after is not None:
        payload[AFTER_KEY] = after
    row = PumpCommand(
        id=command_id,
        station_id=station_id,
        fp_number=fp_number,
        type=type_,
        payload=payload,
        status="pending",
        attempts=0,
        created_at=now,
        valid_until=valid_until,
    )
    await repository.add_command(
        session,
        command_id=command_id,
        station_id=station_id,
        fp_number=fp_number,
        type_=type_,
        payload=payload,
        created_at=now,
        valid_until=valid_until,
    )
    outbox.publish(session, COMMAND_EVENT, {"command_id": command_id})
    metrics.COMMANDS.labels(type_, "created").inc()
    return row


async def require_online(
    session: AsyncSession, *, station_id: int, fp: FuellingPointRow | None = None
) -> None:
    """409 pump_offline when the gateway (or the fuelling point) is offline."""
    gateway = await repository.gateway(session, station_id)
    check_online(station_id, gateway_online=gateway is not None and gateway.online, fp=fp)


def check_online(
    station_id: int, *, gateway_online: bool, fp: repository.PointState | None
) -> None:
    """409 pump_offline when the gateway (or the fuelling point) is offline."""
    if not gateway_online:
        raise PumpOffline(f"the gateway of station {station_id} is offline")
    if fp is not None and fp.state == FPState.OFFLINE:
        raise PumpOffline(f"fuelling point {fp.number} is offline")


async def locked_fp(session: AsyncSession, *, station_id: int, fp_number: int) -> FuellingPointRow:
    """A fuelling point of the station, row-locked; 404 fp_not_found."""
    row = await repository.fuelling_point(session, station_id, fp_number, for_update=True)
    if row is None:
        raise FuellingPointNotFound(f"fuelling point {fp_number} not found")
    return row


# -- order-facing commands ----------------------------------------------------------------------


async def authorise(
    session: AsyncSession,
    *,
    station_id: int,
    nozzle_number: int,
    preset: Preset | None,
    order_id: str,
    ttl_seconds: int,
    now: datetime,
) -> str:
    """Authorise the nozzle's fuelling point for an order (preset: stop there); the command id.

    Refused at once with 404 nozzle_not_found, 409 pump_offline (gateway or fp offline),
    409 pump_unavailable (closed, inoperative, error) or 409 pump_busy (already authorised,
    fuelling, another nozzle out, or another authorisation still unanswered).
    """
    if ttl_seconds <= 0:
        raise InvalidInput("ttl_seconds must be positive")
    site = await repository.nozzle_site(
        session, station_id, nozzle_number, lock_fp=True, open_authorise_at=now
    )
    if site is None or not site.nozzle.active:
        raise NozzleNotFound(f"nozzle {nozzle_number} not found")
    fp = site.fp
    check_online(station_id, gateway_online=site.gateway_online, fp=fp)
    state = FPState(fp.state)
    if state in UNAVAILABLE:
        raise PumpUnavailable(f"fuelling point {fp.number} is {messages.state_name(state)}")
    if state not in (FPState.IDLE, FPState.CALLING):
        raise PumpBusy(f"fuelling point {fp.number} is {messages.state_name(state)}")
    if fp.nozzle_out is not None and fp.nozzle_out != nozzle_number:
        raise PumpBusy(f"nozzle {fp.nozzle_out} is lifted on fuelling point {fp.number}")
    if site.authorise_open:
        raise PumpBusy(f"fuelling point {fp.number} has an authorisation pending")
    body: dict[str, Any] = {
        "fp": fp.number,
        "auth_ref": order_id,
        "preset": {"kind": preset.kind.value, "value": preset.value} if preset else None,
        "nozzle": nozzle_number,
    }
    row = await create(
        session,
        station_id=station_id,
        type_="authorise",
        fp_number=fp.number,
        body=body,
        ttl=timedelta(seconds=ttl_seconds),
        now=now,
    )
    return row.id


async def stop(
    session: AsyncSession, *, station_id: int, fp_number: int, now: datetime, ttl_seconds: int = 30
) -> str:
    """Stop a fuelling point now and end its authorisation; the command id (409 when offline)."""
    fp = await locked_fp(session, station_id=station_id, fp_number=fp_number)
    await require_online(session, station_id=station_id, fp=fp)
    row = await create(
        session,
        station_id=station_id,
        type_="stop",
        fp_number=fp_number,
        body={"fp": fp_number},
        ttl=timedelta(seconds=ttl_seconds),
        now=now,
    )
    return row.id


async def send_price_table(
    session: AsyncSession, *, station_id: int, now: datetime, ttl_seconds: int = 6 * 3600
) -> str:
    """Send the station's current prices of the grades its nozzles sell; the command id."""
    await require_online(session, station_id=station_id)
    grades = {n.grade_code for n in await repository.nozzles(session, station_id)}
    current = await fuel_repository.current_prices(session, station_ids=[station_id], at=now)
    prices = {p.grade_code: p.price_fen for p in current if p.grade_code in grades}
    if not prices:
        raise Conflict("the station has no current price for any grade its nozzles sell")
    gateway = await repository.gateway_for_update(session, station_id)
    gateway.price_version += 1
    row = await create(
        session,
        station_id=station_id,
        type_="price_table",
        fp_number=None,
        body={
            "version": gateway.price_version,
            "effective_at": messages.iso(now),
            "prices": dict(sorted(prices.items())),
        },
        ttl=timedelta(seconds=ttl_seconds),
        now=now,
    )
    return row.id


async def reread_sales(
    session: AsyncSession,
    *,
    station_id: int,
    fp_number: int,
    from_seq: int,
    to_seq: int | None,
    now: datetime,
) -> str:
    """Ask the gateway to publish sales from_seq..to_seq again (link recovery, gaps)."""
    row = await create(
        session,
        station_id=station_id,
        type_="reread_sales",
        fp_number=fp_number,
        body={"fp": fp_number, "from_seq": from_seq, "to_seq": to_seq},
        ttl=timedelta(minutes=5),
        now=now,
    )
    return row.id


async def report_state(
    session: AsyncSession, *, station_id: int, fp_number: int | None, now: datetime
) -> str:
    """Ask the gateway to publish the state of one fuelling point (or all) again."""
    row = await create(
        session,
        station_id=station_id,
        type_="report_state",
        fp_number=fp_number,
        body={"fp": fp_number},
        ttl=timedelta(minutes=1),
        now=now,
    )
    return row.id


# -- publishing (outbox handler side) -----------------------------------------------------------


async def prepare_publish(
    session: AsyncSession, *, command_id: str, now: datetime, resend_seconds: float
) -> Outgoing | None:
    """Mark a command sent and schedule its resend; None when there is nothing to send now."""
    found = await repository.command_to_publish(session, command_id)
    if found is None:
        return None
    row, gateway_online, code = found
    if row.status not in repository.OPEN_COMMAND:
        return None
    if row.valid_until is not None and now >= row.valid_until:
        await _time_out(session, row, now=now)
        return None
    after = row.payload.get(AFTER_KEY)
    if after is not None:
        before = await repository.command(session, str(after))
        if before is not None and before.status in repository.OPEN_COMMAND:
            outbox.publish(
                session,
                COMMAND_EVENT,
                {"command_id": row.id},
                available_at=now + WAIT_FOR_PREDECESSOR,
            )
            return None
    if row.type in QUEUED_WHILE_OFFLINE and not gateway_online:
        return None  # stays pending; sent when the gateway is back (ingest.requeue)
    resend_at = now + timedelta(seconds=resend_seconds)
    if row.valid_until is not None:
        resend_at = min(resend_at, row.valid_until)
    resend = outbox.publish(session, COMMAND_EVENT, {"command_id": row.id}, available_at=resend_at)
    await session.flush()  # the resend's id, before the command's own changes (one UPDATE)
    attempts = row.attempts + 1
    await repository.mark_sent(
        session, row.id, attempts=attempts, now=now, resend_event_id=resend.id
    )
    expiry = (
        int((row.valid_until - now).total_seconds()) + 1 if row.valid_until is not None else 3600
    )
    return Outgoing(
        topic=protocol.build_topic(protocol.TopicKind.COMMAND, code),
        payload=orjson.dumps(wire(row, now=now)),
        expiry_seconds=max(1, expiry),
        command_id=row.id,
        type=row.type,
        station_id=row.station_id,
        fp_number=row.fp_number,
        first=attempts == 1,
    )


async def _time_out(session: AsyncSession, row: repository.CommandRow, *, now: datetime) -> None:
    reason = "no answer before valid_until"
    await repository.mark_timed_out(session, row.id, reason=reason)
    await alerts.raise_alert(
        session,
        station_id=row.station_id,
        kind=alerts.COMMAND_TIMEOUT,
        code=row.type,
        detail=f"command {row.id} ({row.type}) got no answer before {row.valid_until}",
        now=now,
    )
    _finished(session, row, status="timed_out", reason=reason)
    metrics.COMMANDS.labels(row.type, "timed_out").inc()
    await session.flush()


def _finished(
    session: AsyncSession, row: repository.CommandRow, *, status: str, reason: str | None
) -> None:
    body = {k: v for k, v in row.payload.items() if not k.startswith("_")}
    outbox.publish(
        session,
        FINISHED_EVENT,
        {
            "command_id": row.id,
            "station_id": row.station_id,
            "type": row.type,
            "status": status,
            "reason": reason,
            "fp": row.fp_number,
            "ref": body.get("auth_ref") or body.get("lock_ref"),
            "seq": body.get("seq"),
        },
    )


async def requeue(session: AsyncSession, *, station_id: int, now: datetime) -> int:
    """Send the station's unanswered, still valid commands again (its gateway is back)."""
    rows = await repository.open_commands(session, station_id=station_id, now=now)
    for row in rows:
        outbox.publish(session, COMMAND_EVENT, {"command_id": row.id})
    return len(rows)


# -- acknowledgements (link side) ---------------------------------------------------------------


class UnknownCommand(InvalidInput):
    """A command ack for an id this server never issued to the station."""

    code, title = "unknown_command", "Unknown command"


async def apply_ack(
    session: AsyncSession, *, station_id: int, ack: protocol.CommandAck, now: datetime
) -> Effects:
    """Apply the first answer to a command; repeats change nothing."""
    effects = Effects(station_id=station_id)
    row = await repository.command(session, ack.command_id, for_update=True)
    if row is None or row.station_id != station_id:
        raise UnknownCommand(f"no command {ack.command_id} for this station")
    if row.status not in repository.OPEN_COMMAND:
        effects.outcome = "duplicate"
        return effects
    status, reason = ("done", row.reason) if ack.status == "ok" else ("failed", ack.reason)
    await repository.mark_answered(session, row.id, status=status, reason=reason, now=now)
    if row.resend_event_id is not None:  # answered: no resend check needed
        await outbox.cancel(session, row.resend_event_id)
    if ack.status == "ok":
        metrics.COMMANDS.labels(row.type, "acked_ok").inc()
        if row.type == "authorise":
            await _authorised(session, row, now=now, effects=effects)
    else:
        metrics.COMMANDS.labels(row.type, "rejected").inc()
        await alerts.raise_alert(
            session,
            station_id=station_id,
            kind=alerts.COMMAND_REJECTED,
            code=ack.reason or "rejected",
            detail=f"command {row.id} ({row.type}) rejected: {ack.reason}",
            now=now,
        )
        if row.type == "lock_sale":
            await _undo_lock(session, row, now=now, effects=effects)
    _finished(session, row, status=status, reason=reason)
    await session.flush()
    return effects


async def _authorised(
    session: AsyncSession, row: repository.CommandRow, *, now: datetime, effects: Effects
) -> None:
    """The pump is authorised for the order: mirror the authorisation (order, preset, expiry)."""
    found = await repository.point_to_authorise(session, row.station_id, int(row.payload["fp"]))
    if found is None:
        return
    fp = found.fp
    point = mirror.load_point(fp, found.nozzles, volume_resolution_ml=found.volume_resolution_ml)
    spec = row.payload.get("preset")
    preset = protocol.PresetSpec(**spec).to_domain() if spec else None
    order_id = str(row.payload["auth_ref"])
    nozzle = row.payload.get("nozzle")
    expires = row.valid_until or now + timedelta(minutes=2)
    if point.state in (FPState.IDLE, FPState.CALLING):
        point.authorise(
            preset=preset,
            order_id=order_id,
            now=now,
            ttl=max(expires - now, timedelta(seconds=1)),
            nozzle=nozzle,
        )
    elif point.state is FPState.AUTHORISED or point.state in ACTIVE:
        # The state report (5 or later) came before the ack: the pump's authorisation is ours.
        current = point.authorisation
        if current is None or current.order_id is None:
            point.authorisation = Authorisation(order_id, preset, nozzle, now, expires)
    else:
        return
    mirror.save_point(fp, point, now=now)
    await repository.save_point(session, fp)
    effects.add_live(messages.fp_message(fp, now=now))


async def _undo_lock(
    session: AsyncSession, row: repository.CommandRow, *, now: datetime, effects: Effects
) -> None:
    """The pump refused our lock: the sale is not held by the order after all."""
    fp = await repository.fuelling_point(
        session, row.station_id, int(row.payload["fp"]), for_update=True
    )
    if fp is None:
        return
    sale = await repository.sale(session, fp_id=fp.id, seq=int(row.payload["seq"]), for_update=True)
    if sale is None or sale.status != "locked" or sale.locked_by != row.payload["lock_ref"]:
        return
    sale.status, sale.locked_by, sale.lock_expires_at = "payable", None, None
    effects.add_live(messages.sale_message(sale, fp_number=fp.number, now=now))


def wire_field(out: Outgoing, name: str) -> Any:
    """A field of an outgoing command's JSON payload."""
    return orjson.loads(out.payload).get(name)
