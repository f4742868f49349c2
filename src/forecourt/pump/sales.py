"""The sale buffer as orders use it: payable sales, lock, unlock, clear (section 7.2).

Each function changes the `pump_sales` row under a row lock (fuelling point first, then the
sale) through the domain's SaleBuffer rules, and writes the matching command to the pump in
the same unit of work; the command leaves after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.pump import commands, mirror, repository
from forecourt.pump.domain import (
    InvalidInput,
    SaleBuffer,
    SaleLockAcquired,
    UnknownSale,
)
from forecourt.pump.models import FuellingPointRow, PumpSale

CLEAR_TTL = timedelta(hours=24)  # a payment already happened: keep trying for a day
LOCK_COMMAND_TTL = timedelta(seconds=30)


@dataclass(frozen=True)
class SaleView:
    """A sale as orders and staff see it (no payer data)."""

    id: int
    station_id: int
    fp: int
    seq: int
    nozzle: int
    grade: str
    volume_ml: int
    amount_fen: int
    unit_price_fen: int
    ended_at: datetime
    status: str
    locked_by: str | None
    lock_expires_at: datetime | None
    auth_ref: str | None


def view(row: PumpSale, fp_number: int) -> SaleView:
    """The view of a sale row."""
    return SaleView(
        id=row.id,
        station_id=row.station_id,
        fp=fp_number,
        seq=row.seq,
        nozzle=row.nozzle_number,
        grade=row.grade_code,
        volume_ml=row.volume_ml,
        amount_fen=row.amount_fen,
        unit_price_fen=row.unit_price_fen,
        ended_at=row.ended_at,
        status=row.status,
        locked_by=row.locked_by,
        lock_expires_at=row.lock_expires_at,
        auth_ref=row.auth_ref,
    )


def is_payable(row: PumpSale, now: datetime) -> bool:
    """Payable now: payable, or locked by a server lock that has run out."""
    if row.status == "payable":
        return True
    return row.status == "locked" and row.lock_expires_at is not None and row.lock_expires_at <= now


async def payable_sales(
    session: AsyncSession, *, station_id: int, nozzle_number: int, now: datetime
) -> list[SaleView]:
    """Sales of a nozzle a driver may pay now, oldest first."""
    rows = await repository.open_sales(session, station_id=station_id, nozzle_number=nozzle_number)
    return [view(row, fp) for row, fp in rows if is_payable(row, now)]


async def _locked_sale(
    session: AsyncSession, *, station_id: int, fp_number: int, seq: int
) -> tuple[FuellingPointRow, PumpSale]:
    fp = await commands.locked_fp(session, station_id=station_id, fp_number=fp_number)
    row = await repository.sale(session, fp_id=fp.id, seq=seq, for_update=True)
    if row is None:
        raise UnknownSale(seq)
    return fp, row


async def lock_sale(
    session: AsyncSession,
    *,
    station_id: int,
    fp_number: int,
    seq: int,
    order_id: str,
    ttl_seconds: int,
    now: datetime,
) -> SaleView:
    """Lock a payable sale for an order until now + ttl and send `lock_sale` to the pump.

    409 pump_offline when the gateway or fp is offline, 409 sale_locked when another order
    holds a lock in force, 409 sale_cleared when already paid, 404 unknown_sale. Taking over
    an expired lock first sends `unlock_sale` for the old order, then the new `lock_sale`.
    """
    if ttl_seconds <= 0:
        raise InvalidInput("ttl_seconds must be positive")
    fp, row = await _locked_sale(session, station_id=station_id, fp_number=fp_number, seq=seq)
    await commands.require_online(session, station_id=station_id, fp=fp)
    buffer = SaleBuffer(sales=[mirror.sale_from_row(row)])
    events = buffer.lock(seq, order_id, now, timedelta(seconds=ttl_seconds))
    mirror.apply_sale_status(row, buffer.get(seq))
    after: str | None = None
    for event in events:
        if isinstance(event, SaleLockAcquired) and event.taken_over_from is not None:
            unlock = await commands.create(
                session,
                station_id=station_id,
                type_="unlock_sale",
                fp_number=fp_number,
                body={"fp": fp_number, "seq": seq, "lock_ref": event.taken_over_from},
                ttl=CLEAR_TTL,
                now=now,
            )
            after = unlock.id
    await commands.create(
        session,
        station_id=station_id,
        type_="lock_sale",
        fp_number=fp_number,
        body={"fp": fp_number, "seq": seq, "lock_ref": order_id},
        ttl=LOCK_COMMAND_TTL,
        now=now,
        after=after,
    )
    await session.flush()
    return view(row, fp_number)


async def unlock_sale(
    session: AsyncSession,
    *,
    station_id: int,
    fp_number: int,
    seq: int,
    order_id: str,
    now: datetime,
) -> SaleView:
    """Release the order's lock (payment abandoned); queued if the gateway is offline."""
    fp, row = await _locked_sale(session, station_id=station_id, fp_number=fp_number, seq=seq)
    buffer = SaleBuffer(sales=[mirror.sale_from_row(row)])
    if buffer.unlock(seq, order_id):
        mirror.apply_sale_status(row, buffer.get(seq))
        await commands.create(
            session,
            station_id=station_id,
            type_="unlock_sale",
            fp_number=fp_number,
            body={"fp": fp_number, "seq": seq, "lock_ref": order_id},
            ttl=CLEAR_TTL,
            now=now,
        )
    await session.flush()
    return view(row, fp.number)


async def clear_sale(
    session: AsyncSession,
    *,
    station_id: int,
    fp_number: int,
    seq: int,
    order_id: str,
    now: datetime,
) -> SaleView:
    """The order paid: clear the sale for good (idempotent); queued if the gateway is offline."""
    fp, row = await _locked_sale(session, station_id=station_id, fp_number=fp_number, seq=seq)
    buffer = SaleBuffer(sales=[mirror.sale_from_row(row)])
    if buffer.clear(seq, order_id):
        mirror.apply_sale_status(row, buffer.get(seq))
        row.cleared_at = now
        row.cleared_by = order_id
        await commands.create(
            session,
            station_id=station_id,
            type_="clear_sale",
            fp_number=fp_number,
            body={"fp": fp_number, "seq": seq, "lock_ref": order_id},
            ttl=CLEAR_TTL,
            now=now,
        )
    await session.flush()
    return view(row, fp.number)


async def release_expired_locks(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """Make sales whose server lock ran out payable again and unlock them at the pump."""
    rows = await repository.expired_locks(session, now=now, limit=limit)
    for row in rows:
        fp = await repository.fuelling_point_by_id(session, row.fp_id)
        assert fp is not None
        old = row.locked_by
        row.status, row.locked_by, row.lock_expires_at = "payable", None, None
        if old is not None:
            await commands.create(
                session,
                station_id=row.station_id,
                type_="unlock_sale",
                fp_number=fp.number,
                body={"fp": fp.number, "seq": row.seq, "lock_ref": old},
                ttl=CLEAR_TTL,
                now=now,
            )
    await session.flush()
    return len(rows)
