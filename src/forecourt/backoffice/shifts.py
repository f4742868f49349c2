"""Shifts (交接班): open, running totals, close with the cash counted, list and detail.

A station has at most one open shift: the partial unique index decides between concurrent
opens (the loser inserts nothing), and closing is a conditional update (open -> closed once).
The totals of a closed shift are the snapshot taken when it closed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.backoffice import audit, repository, sales_repository, totals
from forecourt.backoffice.errors import ShiftAlreadyOpen, ShiftClosed, ShiftNotFound
from forecourt.backoffice.models import Shift
from forecourt.backoffice.schemas import (
    ShiftOut,
    ShiftPage,
    ShiftSummary,
    Totals,
    UnpaidSale,
    UnpaidSales,
)
from forecourt.errors import NotFound
from forecourt.kit.money import yuan
from forecourt.kit.scope import can_see_station, require_station
from forecourt.station import repository as station_repository


async def _station_name(session: AsyncSession, principal: Principal, station_id: int) -> str:
    require_station(principal, station_id)
    station = await station_repository.get(session, station_id)
    if station is None:
        raise NotFound(f"station {station_id} not found")
    return station.name


async def _scoped(session: AsyncSession, principal: Principal, shift_id: int) -> Shift:
    row = await repository.shift(session, shift_id)
    if row is None or not can_see_station(principal, row.station_id):
        raise ShiftNotFound(f"no shift {shift_id}")
    return row


async def running(
    session: AsyncSession, *, station_id: int, start: datetime, end: datetime
) -> tuple[Totals, UnpaidSales]:
    """Totals and unpaid pump sales of a station in [start, end)."""
    ids = [station_id]
    t = totals.totals(
        await sales_repository.sales(session, station_ids=ids, start=start, end=end),
        await sales_repository.refunds(session, station_ids=ids, start=start, end=end),
    )
    rows = await sales_repository.unpaid_sales(session, station_id=station_id, start=start, end=end)
    items = [
        UnpaidSale(
            fp=fp,
            seq=s.seq,
            nozzle=s.nozzle_number,
            grade=s.grade_code,
            volume_ml=s.volume_ml,
            amount_fen=s.amount_fen,
            ended_at=s.ended_at,
            status=s.status,
        )
        for s, fp in rows
    ]
    unpaid = UnpaidSales(count=len(items), amount_fen=sum(i.amount_fen for i in items), items=items)
    return t, unpaid


def _warnings(unpaid: UnpaidSales) -> list[str]:
    if not unpaid.count:
        return []
    return [f"本班有 {unpaid.count} 笔未付款的加油记录，合计 ¥{yuan(unpaid.amount_fen)}"]


def _summary(row: Shift, names: dict[int, str], t: Totals | None) -> ShiftSummary:
    expected = totals.cash_expected(t) if t is not None else None
    counted = row.cash_counted_fen
    return ShiftSummary(
        id=row.id,
        station_id=row.station_id,
        status="closed" if row.status == "closed" else "open",
        opened_by=row.opened_by,
        opened_by_name=names.get(row.opened_by),
        opened_at=row.opened_at,
        closed_by=row.closed_by,
        closed_by_name=names.get(row.closed_by) if row.closed_by else None,
        closed_at=row.closed_at,
        cash_counted_fen=counted,
        cash_expected_fen=expected,
        over_short_fen=counted - expected if counted is not None and expected is not None else None,
        net_fen=t.total.net_fen if t is not None else None,
        note=row.note,
    )


def _snapshot(t: Totals, unpaid: UnpaidSales) -> dict[str, Any]:
    return {"totals": t.model_dump(mode="json"), "unpaid_sales": unpaid.model_dump(mode="json")}


async def detail(
    session: AsyncSession, *, principal: Principal, row: Shift, now: datetime
) -> ShiftOut:
    """A shift with its totals (live while open, the close-time snapshot after)."""
    name = await _station_name(session, principal, row.station_id)
    if row.status == "closed" and row.expected is not None and row.closed_at is not None:
        t = Totals.model_validate(row.expected["totals"])
        unpaid = UnpaidSales.model_validate(row.expected["unpaid_sales"])
        end = row.closed_at
    else:
        end = max(now, row.opened_at)
        t, unpaid = await running(session, station_id=row.station_id, start=row.opened_at, end=end)
    names = await repository.staff_names(
        session, {row.opened_by, *([row.closed_by] if row.closed_by else [])}
    )
    return ShiftOut(
        **_summary(row, names, t).model_dump(),
        station_name=name,
        window_end=end,
        totals=t,
        unpaid_sales=unpaid,
        warnings=_warnings(unpaid),
    )


async def open_shift(
    session: AsyncSession, *, principal: Principal, station_id: int, note: str | None, now: datetime
) -> ShiftOut:
    """Open a shift at a station (409 shift_already_open when one is open)."""
    await _station_name(session, principal, station_id)
    shift_id = await repository.open_shift(
        session, station_id=station_id, staff_id=principal.id, now=now, note=note
    )
    if shift_id is None:
        raise ShiftAlreadyOpen(f"station {station_id} already has an open shift")
    audit.record(
        session,
        principal,
        "shift.opened",
        subject_type="shift",
        subject_id=shift_id,
        station_id=station_id,
        now=now,
    )
    await session.flush()
    row = await repository.shift(session, shift_id)
    assert row is not None
    return await detail(session, principal=principal, row=row, now=now)


async def close_shift(
    session: AsyncSession,
    *,
    principal: Principal,
    shift_id: int,
    cash_counted_fen: int,
    note: str | None,
    now: datetime,
) -> ShiftOut:
    """Close an open shift with the cash counted; the totals are frozen (409 shift_closed)."""
    row = await _scoped(session, principal, shift_id)
    if row.status != "open":
        raise ShiftClosed(f"shift {shift_id} is closed")
    end = max(now, row.opened_at)
    t, unpaid = await running(session, station_id=row.station_id, start=row.opened_at, end=end)
    closed = await repository.close_shift(
        session,
        shift_id=shift_id,
        staff_id=principal.id,
        now=end,
        cash_counted_fen=cash_counted_fen,
        expected=_snapshot(t, unpaid),
        note=note,
    )
    if not closed:
        raise ShiftClosed(f"shift {shift_id} is closed")
    expected = totals.cash_expected(t)
    audit.record(
        session,
        principal,
        "shift.closed",
        subject_type="shift",
        subject_id=shift_id,
        station_id=row.station_id,
        details={
            "cash_counted_fen": cash_counted_fen,
            "cash_expected_fen": expected,
            "over_short_fen": cash_counted_fen - expected,
            "unpaid_sales": unpaid.count,
        },
        now=now,
    )
    await session.flush()
    closed_row = await repository.shift(session, shift_id)
    assert closed_row is not None
    return await detail(session, principal=principal, row=closed_row, now=now)


async def current(
    session: AsyncSession, *, principal: Principal, station_id: int, now: datetime
) -> ShiftOut:
    """The station's open shift with running totals (404 when none is open)."""
    await _station_name(session, principal, station_id)
    row = await repository.current_shift(session, station_id)
    if row is None:
        raise ShiftNotFound(f"no open shift at station {station_id}")
    return await detail(session, principal=principal, row=row, now=now)


async def get(
    session: AsyncSession, *, principal: Principal, shift_id: int, now: datetime
) -> ShiftOut:
    """One shift in the caller's scope."""
    row = await _scoped(session, principal, shift_id)
    return await detail(session, principal=principal, row=row, now=now)


async def listing(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    cursor: str | None,
    limit: int,
) -> ShiftPage:
    """A station's shifts, newest first (closed ones with their over / short)."""
    await _station_name(session, principal, station_id)
    rows = await repository.shifts(
        session, station_id=station_id, before_id=audit.parse_cursor(cursor), limit=limit
    )
    ids = {r.opened_by for r in rows} | {r.closed_by for r in rows if r.closed_by}
    names = await repository.staff_names(session, ids)
    items = [
        _summary(r, names, Totals.model_validate(r.expected["totals"]) if r.expected else None)
        for r in rows
    ]
    return ShiftPage(items=items, next_cursor=str(items[-1].id) if len(items) == limit else None)
