"""Back-office routes: audit log, shifts (交接班), dashboard and exports."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import HTMLResponse
from pydantic import AwareDatetime

from forecourt.backoffice import audit, dashboard, exports, shifts, summary, tables
from forecourt.backoffice.audit import Action
from forecourt.backoffice.schemas import (
    AuditPage,
    DashboardOut,
    ExportFormat,
    ShiftCloseIn,
    ShiftOpenIn,
    ShiftOut,
    ShiftPage,
)
from forecourt.deps import AnyStaff, HqAdmin, Manager, ReadSession, Session
from forecourt.kit import clock
from forecourt.payment import idempotency

router = APIRouter(prefix="/admin", tags=["back office"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
Format = Annotated[ExportFormat, Query(alias="format", description="csv (UTF-8 with BOM) or xlsx")]
Since = Annotated[AwareDatetime | None, Query(description="from this time (inclusive)")]
Until = Annotated[AwareDatetime | None, Query(description="up to this time (exclusive)")]
Cursor = Annotated[str | None, Query(max_length=20, description="next_cursor of the last page")]


def _file(table: tables.Table, fmt: str, filename: str) -> Response:
    body, media, disposition = tables.render(table, fmt, filename)
    return Response(content=body, media_type=media, headers={"Content-Disposition": disposition})


# -- audit log -------------------------------------------------------------------------------


@router.get("/audit", response_model=AuditPage)
async def audit_log(
    session: ReadSession,
    principal: Manager,
    station_id: int | None = None,
    action: Action | None = None,
    staff_id: int | None = None,
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditPage:
    """Who changed prices, refunded, adjusted points... (head office: all; manager: theirs)."""
    return await audit.page(
        session,
        principal=principal,
        station_id=station_id,
        action=action,
        staff_id=staff_id,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )


# -- dashboard -------------------------------------------------------------------------------


@router.get("/dashboard", response_model=DashboardOut)
async def sales_dashboard(
    session: ReadSession,
    principal: Manager,
    station_id: int | None = None,
    days: Annotated[int, Query(description="1 (today, hourly), 7 or 30 (daily)")] = 1,
) -> DashboardOut:
    """Sales by grade and payment method with a time series (Asia/Shanghai)."""
    return await dashboard.dashboard(
        session, principal=principal, station_id=station_id, days=days, now=clock.now()
    )


# -- shifts ----------------------------------------------------------------------------------


@router.post(
    "/stations/{station_id}/shifts", response_model=ShiftOut, status_code=status.HTTP_201_CREATED
)
async def open_shift(
    session: Session, principal: AnyStaff, station_id: int, body: ShiftOpenIn | None = None
) -> ShiftOut:
    """Open a shift (409 shift_already_open when the station has one open)."""
    return await shifts.open_shift(
        session,
        principal=principal,
        station_id=station_id,
        note=body.note if body else None,
        now=clock.now(),
    )


@router.get("/stations/{station_id}/shifts", response_model=ShiftPage)
async def list_shifts(
    session: ReadSession,
    principal: AnyStaff,
    station_id: int,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ShiftPage:
    """A station's shifts, newest first."""
    return await shifts.listing(
        session, principal=principal, station_id=station_id, cursor=cursor, limit=limit
    )


@router.get("/stations/{station_id}/shifts/current", response_model=ShiftOut)
async def current_shift(session: ReadSession, principal: AnyStaff, station_id: int) -> ShiftOut:
    """The open shift with its running totals (404 when none is open)."""
    return await shifts.current(
        session, principal=principal, station_id=station_id, now=clock.now()
    )


@router.get("/stations/{station_id}/shifts/export", response_class=Response)
async def export_shifts(
    session: ReadSession,
    principal: AnyStaff,
    station_id: int,
    fmt: Format = "csv",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """A station's shifts as CSV or xlsx."""
    table = await exports.shifts_table(
        session, principal=principal, station_id=station_id, limit=limit
    )
    return _file(table, fmt, f"shifts-{station_id}")


@router.get("/shifts/{shift_id}", response_model=ShiftOut)
async def get_shift(session: ReadSession, principal: AnyStaff, shift_id: int) -> ShiftOut:
    """One shift with its totals."""
    return await shifts.get(session, principal=principal, shift_id=shift_id, now=clock.now())


@router.post("/shifts/{shift_id}/close", response_model=ShiftOut)
async def close_shift(
    session: Session,
    principal: AnyStaff,
    shift_id: int,
    body: ShiftCloseIn,
    idempotency_key: IdempotencyKey = None,
) -> ShiftOut:
    """Hand over: the cash counted against the cash expected (409 shift_closed)."""

    async def work() -> ShiftOut:
        return await shifts.close_shift(
            session,
            principal=principal,
            shift_id=shift_id,
            cash_counted_fen=body.cash_counted_fen,
            note=body.note,
            now=clock.now(),
        )

    return await idempotency.run(
        session,
        subject=principal.subject,
        route=f"shifts.close:{shift_id}",
        key=idempotency_key,
        request=body.model_dump(mode="json"),
        model=ShiftOut,
        work=work,
    )


@router.get("/shifts/{shift_id}/summary", response_class=HTMLResponse)
async def shift_summary(session: ReadSession, principal: AnyStaff, shift_id: int) -> HTMLResponse:
    """The printable handover summary (HTML)."""
    shift = await shifts.get(session, principal=principal, shift_id=shift_id, now=clock.now())
    return HTMLResponse(summary.render(shift))


# -- exports ---------------------------------------------------------------------------------


@router.get("/stations/{station_id}/orders/export", response_class=Response)
async def export_orders(
    session: ReadSession,
    principal: AnyStaff,
    station_id: int,
    fmt: Format = "csv",
    order_status: Annotated[str | None, Query(alias="status", max_length=12)] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """A station's orders as CSV or xlsx (payers' phones masked)."""
    table = await exports.orders_table(
        session,
        principal=principal,
        station_id=station_id,
        status=order_status,
        since=since,
        until=until,
        limit=limit,
    )
    return _file(table, fmt, f"orders-{station_id}")


@router.get("/reconciliations/export", response_class=Response)
async def export_reconciliations(
    session: ReadSession,
    principal: HqAdmin,
    fmt: Format = "csv",
    provider: Annotated[str | None, Query(max_length=12)] = None,
    bill_date: Annotated[date | None, Query(alias="date")] = None,
) -> Response:
    """Stored reconciliations and their discrepancies as CSV or xlsx (head office)."""
    table = await exports.reconciliation_table(session, provider=provider, bill_date=bill_date)
    suffix = f"-{provider}" if provider else ""
    suffix += f"-{bill_date.isoformat()}" if bill_date else ""
    return _file(table, fmt, f"reconciliation{suffix}")
