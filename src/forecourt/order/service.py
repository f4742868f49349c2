"""Order rules: create post-pay, pay-at-pump and top-up orders, read them, close them."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth import repository as auth_repository
from forecourt.auth.tokens import Principal
from forecourt.config import Settings
from forecourt.errors import FieldError, Unprocessable
from forecourt.fuel import repository as fuel_repository
from forecourt.kit import serials
from forecourt.kit.scope import can_see_station, require_station
from forecourt.loyalty import pricing as loyalty_pricing
from forecourt.order import domain, repository
from forecourt.order.domain import Kind, Status
from forecourt.order.errors import (
    AmountAboveSale,
    NoPayableSale,
    OrderNotFound,
    PresetAboveCap,
    PriceMissing,
)
from forecourt.order.models import Order
from forecourt.order.schemas import LineOut, OrderIn, OrderList, OrderOut, StaffOrderOut
from forecourt.pump import commands as pump_commands
from forecourt.pump import service as pumps
from forecourt.pump.domain import PumpError
from forecourt.station import repository as station_repository
from forecourt.wallet import domain as wallet_domain


def out(order: Order) -> OrderOut:
    """The driver's view of an order."""
    return OrderOut(
        id=order.id,
        kind=order.kind,
        status=order.status,
        station_id=order.station_id,
        nozzle=order.nozzle_number,
        fp=order.fp_number,
        sale_seq=order.sale_seq,
        grade=order.grade_code,
        unit_price_fen=order.unit_price_fen,
        volume_ml=order.volume_ml,
        preset_fen=order.preset_fen,
        lines=[LineOut(**line) for line in order.lines],
        list_fen=order.list_fen,
        discount_fen=order.discount_fen,
        payable_fen=order.payable_fen,
        paid_fen=order.paid_fen,
        settled_fen=order.settled_fen,
        refunded_fen=order.refunded_fen,
        bonus_fen=order.bonus_fen,
        provider=order.provider,
        created_at=order.created_at,
        expires_at=order.expires_at,
        paid_at=order.paid_at,
        completed_at=order.completed_at,
        close_reason=order.close_reason,
    )


def _apply_price(order: Order, priced: domain.Priced) -> None:
    """Set the receipt lines and amounts (the order is inserted with every column set)."""
    order.lines = [domain.line_record(line) for line in priced.lines]
    order.list_fen = priced.list_fen
    order.discount_fen = priced.discount_fen
    order.payable_fen = priced.payable_fen


async def _grade_name(session: AsyncSession, code: str) -> str | None:
    grade = await fuel_repository.get_grade(session, code)
    return grade.name if grade is not None else None


def _check_station(status: str | None) -> None:
    if status != "active":
        raise Unprocessable(
            "unknown station", errors=[FieldError("station_id", "no such active station")]
        )


async def _require_station(session: AsyncSession, station_id: int) -> None:
    station = await station_repository.get(session, station_id)
    _check_station(station.status if station is not None else None)


async def create_fuel_order(
    session: AsyncSession,
    *,
    principal: Principal,
    data: OrderIn,
    settings: Settings,
    serial_key: bytes,
    device: str,
    now: datetime,
) -> Order:
    """A post-pay order locking the nozzle's sale, or a pay-at-pump order for a preset."""
    order_id = serials.new_serial(serial_key, device=device, now=now)
    expires_at = now + timedelta(seconds=settings.payment_expiry_seconds)
    if data.kind == "postpay":
        await _require_station(session, data.station_id)
        return await _postpay(session, principal, data, order_id, settings, now, expires_at)
    return await _prepay(session, principal, data, order_id, settings, now, expires_at)


async def _postpay(
    session: AsyncSession,
    principal: Principal,
    data: OrderIn,
    order_id: str,
    settings: Settings,
    now: datetime,
    expires_at: datetime,
) -> Order:
    sales = await pumps.payable_sales(
        session, station_id=data.station_id, nozzle_number=data.nozzle, now=now
    )
    if data.sale_seq is not None:
        sales = [sale for sale in sales if sale.seq == data.sale_seq]
    if not sales:
        raise NoPayableSale(f"nozzle {data.nozzle} has no sale to pay now")
    if len(sales) > 1:
        raise Unprocessable(
            "the nozzle has several payable sales",
            errors=[FieldError("sale_seq", f"choose one of {[s.seq for s in sales]}")],
        )
    sale = sales[0]
    if data.amount_fen is not None and data.amount_fen != sale.amount_fen:
        error = AmountAboveSale if data.amount_fen > sale.amount_fen else Unprocessable
        raise error(
            f"the sale is {sale.amount_fen} fen",
            errors=[FieldError("amount_fen", f"must equal the sale amount {sale.amount_fen}")],
        )
    await pumps.lock_sale(
        session,
        station_id=data.station_id,
        fp_number=sale.fp,
        seq=sale.seq,
        order_id=order_id,
        ttl_seconds=settings.payment_expiry_seconds,
        now=now,
    )
    priced = domain.price(
        domain.PriceInput(
            kind=Kind.POSTPAY,
            grade=sale.grade,
            unit_price_fen=sale.unit_price_fen,
            volume_ml=sale.volume_ml,
            amount_fen=sale.amount_fen,
            member_id=principal.id,
            grade_name=await _grade_name(session, sale.grade),
            tier=await loyalty_pricing.tier_discount(
                session, member_id=principal.id, grade=sale.grade
            ),
        )
    )
    order = Order(
        id=order_id,
        member_id=principal.id,
        station_id=data.station_id,
        kind=Kind.POSTPAY.value,
        status=Status.PENDING.value,
        nozzle_number=sale.nozzle,
        fp_number=sale.fp,
        sale_seq=sale.seq,
        grade_code=sale.grade,
        unit_price_fen=sale.unit_price_fen,
        volume_ml=sale.volume_ml,
        paid_fen=0,
        refunded_fen=0,
        bonus_fen=0,
        created_at=now,
        expires_at=expires_at,
    )
    _apply_price(order, priced)
    return await repository.add(session, order)


async def _prepay(
    session: AsyncSession,
    principal: Principal,
    data: OrderIn,
    order_id: str,
    settings: Settings,
    now: datetime,
    expires_at: datetime,
) -> Order:
    site = await repository.prepay_site(
        session, station_id=data.station_id, nozzle=data.nozzle, member_id=principal.id, at=now
    )
    _check_station(site.station_status if site is not None else None)
    assert site is not None
    if data.amount_fen is None:
        raise Unprocessable(
            "a preset amount is required",
            errors=[FieldError("amount_fen", "required for pay-at-pump")],
        )
    if data.amount_fen > settings.max_preset_fen:
        raise PresetAboveCap(
            "preset above the cap",
            errors=[FieldError("amount_fen", f"must be at most {settings.max_preset_fen}")],
        )
    if site.nozzle_number is None or not site.nozzle_active:
        raise Unprocessable("unknown nozzle", errors=[FieldError("nozzle", "no such nozzle")])
    assert site.grade_code is not None  # a nozzle always has a grade
    pump_commands.check_online(data.station_id, gateway_online=site.gateway_online, fp=site.fp)
    if site.price_fen is None:
        raise PriceMissing(f"no price for {site.grade_code} at this station")
    unit_price = site.price_fen
    priced = domain.price(
        domain.PriceInput(
            kind=Kind.PREPAY,
            grade=site.grade_code,
            unit_price_fen=unit_price,
            volume_ml=None,
            amount_fen=data.amount_fen,
            member_id=principal.id,
            grade_name=site.grade_name,
            tier=(await loyalty_pricing.ladder(session))
            .get(site.tier_code)
            .discount(site.grade_code),
        )
    )
    order = Order(
        id=order_id,
        member_id=principal.id,
        station_id=data.station_id,
        kind=Kind.PREPAY.value,
        status=Status.PENDING.value,
        nozzle_number=site.nozzle_number,
        fp_number=site.fp.number if site.fp is not None else None,
        grade_code=site.grade_code,
        unit_price_fen=unit_price,
        preset_fen=data.amount_fen,
        paid_fen=0,
        refunded_fen=0,
        bonus_fen=0,
        created_at=now,
        expires_at=expires_at,
    )
    _apply_price(order, priced)
    return await repository.add(session, order)


async def create_topup(
    session: AsyncSession,
    *,
    principal: Principal,
    amount_fen: int,
    settings: Settings,
    serial_key: bytes,
    device: str,
    now: datetime,
) -> Order:
    """A wallet top-up order with its bonus fixed now."""
    if not wallet_domain.TOPUP_MIN_FEN <= amount_fen <= wallet_domain.TOPUP_MAX_FEN:
        raise Unprocessable(
            "top-up amount out of range",
            errors=[
                FieldError(
                    "amount_fen",
                    f"must be {wallet_domain.TOPUP_MIN_FEN}-{wallet_domain.TOPUP_MAX_FEN}",
                )
            ],
        )
    priced = domain.price(
        domain.PriceInput(
            kind=Kind.TOPUP, grade=None, unit_price_fen=0, volume_ml=None, amount_fen=amount_fen
        )
    )
    order = Order(
        id=serials.new_serial(serial_key, device=device, now=now),
        member_id=principal.id,
        kind=Kind.TOPUP.value,
        status=Status.PENDING.value,
        bonus_fen=wallet_domain.bonus_for(amount_fen),
        paid_fen=0,
        refunded_fen=0,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.payment_expiry_seconds),
    )
    _apply_price(order, priced)
    return await repository.add(session, order)


async def member_order(session: AsyncSession, *, principal: Principal, order_id: str) -> Order:
    """The caller's own order (404 for anyone else's)."""
    order = await repository.get(session, order_id)
    if order is None or order.member_id != principal.id:
        raise OrderNotFound(f"no order {order_id}")
    return order


async def locked_member_order(
    session: AsyncSession, *, principal: Principal, order_id: str
) -> Order:
    """The caller's own order under a row lock."""
    order = await repository.lock(session, order_id)
    if order is None or order.member_id != principal.id:
        raise OrderNotFound(f"no order {order_id}")
    return order


async def locked_member_row(
    session: AsyncSession, *, principal: Principal, order_id: str
) -> repository.OrderRow:
    """The caller's own order under a row lock, as read (what paying it needs)."""
    order = await repository.locked(session, order_id)
    if order is None or order.member_id != principal.id:
        raise OrderNotFound(f"no order {order_id}")
    return order


async def staff_order(session: AsyncSession, *, principal: Principal, order_id: str) -> Order:
    """An order of a station in the staff member's scope (404 otherwise)."""
    order = await repository.get(session, order_id)
    if order is None or not _in_scope(principal, order):
        raise OrderNotFound(f"no order {order_id}")
    return order


def _in_scope(principal: Principal, order: Order) -> bool:
    if order.station_id is None:
        return principal.role == "hq_admin"
    return can_see_station(principal, order.station_id)


def move(order: Order, target: Status, *, now: datetime, reason: str | None = None) -> None:
    """Move the (locked) order forward; IllegalTransition otherwise."""
    order.status = domain.move(Status(order.status), target).value
    if target in (Status.COMPLETED,):
        order.completed_at = now
    if target in domain.FINAL:
        order.closed_at = now
        order.close_reason = reason


async def release_sale(session: AsyncSession, order: Order, *, now: datetime) -> None:
    """Give a post-pay order's sale back to the forecourt (payment abandoned)."""
    if order.kind != Kind.POSTPAY.value or order.station_id is None:
        return
    assert order.fp_number is not None
    assert order.sale_seq is not None
    with contextlib.suppress(PumpError):  # cleared, or held by another order: not ours
        await pumps.unlock_sale(
            session,
            station_id=order.station_id,
            fp_number=order.fp_number,
            seq=order.sale_seq,
            order_id=order.id,
            now=now,
        )


async def list_for_member(
    session: AsyncSession, *, principal: Principal, before: datetime | None, limit: int
) -> OrderList:
    """A page of the caller's orders."""
    rows = await repository.for_member(session, member_id=principal.id, before=before, limit=limit)
    items = [out(row) for row in rows]
    return OrderList(items=items, next_before=items[-1].created_at if len(items) == limit else None)


async def station_orders(
    session: AsyncSession, *, principal: Principal, station_id: int, status: str | None, limit: int
) -> list[StaffOrderOut]:
    """Orders of a station in the caller's scope (404 outside it)."""
    require_station(principal, station_id)
    rows = await repository.for_stations(
        session, station_ids=[station_id], status=status, since=None, limit=limit
    )
    return await staff_views(session, rows)


async def staff_views(session: AsyncSession, rows: Sequence[Order]) -> list[StaffOrderOut]:
    """Orders with their payers' masked phones."""
    masked = await auth_repository.masked_phones(session, {row.member_id for row in rows})
    return [
        StaffOrderOut(
            **out(row).model_dump(), member_id=row.member_id, payer_phone=masked.get(row.member_id)
        )
        for row in rows
    ]
