"""The pump area's service API: what orders, payments and staff call.

Every function takes the caller's session and only flushes; its unit of work commits. A
command to a pump is written with the change that needs it and leaves after the commit
(outbox), so a rolled-back order never authorises, locks or clears anything.

For the payments issue (keyword-only; `now` defaults to the clock):

* `authorise(session, *, station_id, nozzle_number, preset, order_id, ttl_seconds) -> str`
* `stop(session, *, station_id, fp_number) -> str`
* `payable_sales(session, *, station_id, nozzle_number) -> list[SaleView]`
* `lock_sale / unlock_sale / clear_sale(session, *, station_id, fp_number, seq, order_id, ...)`
* `send_price_table(session, *, station_id) -> str`

Outbox topics they can react to: `pump.sale_recorded` (a new sale; `auth_ref` is the order of
a pay-at-pump sale), `pump.authorisation_ended` (order_id, reason: completed, no_flow,
expired, stopped, error, link_lost...), `pump.command_finished` (command_id, type, status
done|failed|timed_out, reason, ref = the order), `pump.sale_status_changed` (kiosk/cash).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.errors import NotFound
from forecourt.fuel import repository as fuel_repository
from forecourt.kit import clock
from forecourt.pump import alerts, commands, equipment, messages, repository, sales
from forecourt.pump.domain import Preset
from forecourt.pump.models import StationAlert
from forecourt.pump.sales import SaleView
from forecourt.pump.schemas import PayableSaleOut, PublicNozzle, StationNozzles

__all__ = [
    "SaleView",
    "authorise",
    "clear_sale",
    "list_alerts",
    "lock_sale",
    "nozzle_snapshot",
    "open_sales",
    "payable_sales",
    "resolve_alert",
    "send_price_table",
    "stop",
    "unlock_sale",
]


async def authorise(
    session: AsyncSession,
    *,
    station_id: int,
    nozzle_number: int,
    preset: Preset | None,
    order_id: str,
    ttl_seconds: int,
    now: datetime | None = None,
) -> str:
    """Authorise the nozzle for an order (stop at `preset`) until now + ttl; the command id.

    409 pump_offline / pump_unavailable / pump_busy, 404 nozzle_not_found. The pump is
    authorised when the command is acknowledged (`pump.command_finished`, status done).
    """
    return await commands.authorise(
        session,
        station_id=station_id,
        nozzle_number=nozzle_number,
        preset=preset,
        order_id=order_id,
        ttl_seconds=ttl_seconds,
        now=now or clock.now(),
    )


async def stop(
    session: AsyncSession, *, station_id: int, fp_number: int, now: datetime | None = None
) -> str:
    """Stop a fuelling point and end its authorisation; the command id (409 pump_offline)."""
    return await commands.stop(
        session, station_id=station_id, fp_number=fp_number, now=now or clock.now()
    )


async def payable_sales(
    session: AsyncSession, *, station_id: int, nozzle_number: int, now: datetime | None = None
) -> list[SaleView]:
    """Sales of the nozzle a driver may pay now (payable, or with an expired lock)."""
    return await sales.payable_sales(
        session, station_id=station_id, nozzle_number=nozzle_number, now=now or clock.now()
    )


async def lock_sale(
    session: AsyncSession,
    *,
    station_id: int,
    fp_number: int,
    seq: int,
    order_id: str,
    ttl_seconds: int,
    now: datetime | None = None,
) -> SaleView:
    """Lock a sale for an order (row lock + `lock_sale` to the pump); 409 when not possible."""
    return await sales.lock_sale(
        session,
        station_id=station_id,
        fp_number=fp_number,
        seq=seq,
        order_id=order_id,
        ttl_seconds=ttl_seconds,
        now=now or clock.now(),
    )


async def unlock_sale(
    session: AsyncSession,
    *,
    station_id: int,
    fp_number: int,
    seq: int,
    order_id: str,
    now: datetime | None = None,
) -> SaleView:
    """Release an order's lock (payment abandoned); sent when the gateway is online."""
    return await sales.unlock_sale(
        session,
        station_id=station_id,
        fp_number=fp_number,
        seq=seq,
        order_id=order_id,
        now=now or clock.now(),
    )


async def clear_sale(
    session: AsyncSession,
    *,
    station_id: int,
    fp_number: int,
    seq: int,
    order_id: str,
    now: datetime | None = None,
) -> SaleView:
    """Mark a sale paid by the order holding it (idempotent); sent when the gateway is online."""
    return await sales.clear_sale(
        session,
        station_id=station_id,
        fp_number=fp_number,
        seq=seq,
        order_id=order_id,
        now=now or clock.now(),
    )


async def send_price_table(
    session: AsyncSession, *, station_id: int, now: datetime | None = None
) -> str:
    """Send the station's current prices to its gateway (new version); the command id."""
    return await commands.send_price_table(session, station_id=station_id, now=now or clock.now())


# -- staff --------------------------------------------------------------------------------------


async def open_sales(
    session: AsyncSession, *, principal: Principal, station_id: int
) -> list[SaleView]:
    """Sales not yet cleared at a station in the caller's scope, oldest first."""
    await equipment.scoped_station(session, principal=principal, station_id=station_id)
    rows = await repository.open_sales(session, station_id=station_id)
    return [sales.view(row, fp) for row, fp in rows]


async def list_alerts(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    open_only: bool,
    limit: int,
) -> list[StationAlert]:
    """Alerts of a station in the caller's scope, most recently seen first."""
    await equipment.scoped_station(session, principal=principal, station_id=station_id)
    return await alerts.list_alerts(
        session, station_id=station_id, open_only=open_only, limit=limit
    )


async def resolve_alert(
    session: AsyncSession, *, principal: Principal, station_id: int, alert_id: int
) -> StationAlert:
    """Mark an alert handled."""
    await equipment.scoped_station(session, principal=principal, station_id=station_id)
    return await alerts.resolve(session, station_id=station_id, alert_id=alert_id, now=clock.now())


# -- public -------------------------------------------------------------------------------------


async def nozzle_snapshot(session: AsyncSession, *, station_id: int) -> StationNozzles:
    """Every active nozzle of a station: grade, price, pump state and payable sales."""
    if await repository.station_code(session, station_id) is None:
        raise NotFound(f"station {station_id} not found")
    now = clock.now()
    gateway = await repository.gateway(session, station_id)
    fps = {fp.id: fp for fp in await repository.fuelling_points(session, station_id)}
    prices = {
        p.grade_code: p.price_fen
        for p in await fuel_repository.current_prices(session, station_ids=[station_id], at=now)
    }
    payable: dict[int, list[PayableSaleOut]] = {}
    for row, fp_number in await repository.open_sales(session, station_id=station_id):
        if sales.is_payable(row, now):
            payable.setdefault(row.nozzle_number, []).append(
                PayableSaleOut(
                    fp=fp_number,
                    seq=row.seq,
                    volume_ml=row.volume_ml,
                    amount_fen=row.amount_fen,
                    ended_at=row.ended_at,
                )
            )
    nozzles = []
    for nozzle in await repository.nozzles(session, station_id):
        if not nozzle.active:
            continue
        fp = fps[nozzle.fp_id]
        mine = payable.get(nozzle.number, [])
        nozzles.append(
            PublicNozzle(
                number=nozzle.number,
                fp=fp.number,
                grade=nozzle.grade_code,
                price_fen=prices.get(nozzle.grade_code),
                state=messages.state_name(fp.state),
                state_code=fp.state,
                payable=mine,
                payable_volume_ml=sum(s.volume_ml for s in mine),
                payable_amount_fen=sum(s.amount_fen for s in mine),
            )
        )
    return StationNozzles(
        station_id=station_id,
        gateway_online=bool(gateway and gateway.online),
        nozzles=nozzles,
    )
