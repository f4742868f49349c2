"""Two stations with staff, and factories for orders, payments, refunds and pump sales."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from forecourt.kit import clock
from forecourt.order.models import Order
from forecourt.payment.models import Payment, Refund
from forecourt.pump.models import FuellingPointRow, PumpSale
from forecourt.runtime import Runtime
from tests.fixtures.auth import make_member, make_staff, next_phone, staff_headers
from tests.pump.helpers import make_pump_station

_seq = itertools.count(1)
Headers = dict[str, str]


@dataclass
class Office:
    """Stations A and B, their staff's headers, a driver, and the app's client."""

    runtime: Runtime
    http: httpx.AsyncClient
    a: int
    b: int
    hq: Headers
    manager_a: Headers
    attendant_a: Headers
    attendant_b: Headers
    manager_b: Headers
    member_id: int
    phone: str


@pytest.fixture
async def office(runtime: Runtime, client: httpx.AsyncClient) -> Office:
    """Two pump stations (A, B) and their people."""
    a = await make_pump_station(runtime)
    b = await make_pump_station(runtime, grades=False)
    phone = next_phone()
    member = await make_member(runtime, phone=phone)

    async def headers(role: str, *stations: int) -> Headers:
        staff = await make_staff(runtime, role=role, station_ids=stations)
        return staff_headers(runtime, staff)

    return Office(
        runtime=runtime,
        http=client,
        a=a.id,
        b=b.id,
        hq=await headers("hq_admin"),
        manager_a=await headers("station_manager", a.id),
        attendant_a=await headers("attendant", a.id),
        attendant_b=await headers("attendant", b.id),
        manager_b=await headers("station_manager", b.id),
        member_id=member.id,
        phone=phone,
    )


async def paid_order(
    runtime: Runtime,
    *,
    station_id: int,
    member_id: int,
    provider: str = "wechatpay",
    grade: str = "92",
    volume_ml: int = 30_000,
    list_fen: int = 23_280,
    discount_fen: int = 0,
    paid_at: datetime | None = None,
    kind: str = "postpay",
    status: str = "completed",
) -> str:
    """A paid fuel order with its paid payment; the order id."""
    n = next(_seq)
    paid_at = paid_at or clock.now() - timedelta(minutes=1)
    paid = list_fen - discount_fen
    order_id = f"T{n:015d}"
    async with runtime.db.unit_of_work() as session:
        session.add(
            Order(
                id=order_id,
                member_id=member_id,
                station_id=station_id,
                kind=kind,
                status=status,
                nozzle_number=1,
                fp_number=1,
                sale_seq=n,
                grade_code=grade,
                unit_price_fen=776,
                volume_ml=volume_ml,
                list_fen=list_fen,
                discount_fen=discount_fen,
                payable_fen=paid,
                paid_fen=paid,
                settled_fen=paid,
                provider=provider,
                created_at=paid_at - timedelta(seconds=30),
                expires_at=paid_at + timedelta(minutes=15),
                paid_at=paid_at,
                completed_at=paid_at,
            )
        )
        await session.flush()
        session.add(
            Payment(
                id=f"P{n:015d}",
                order_id=order_id,
                member_id=member_id,
                provider=provider,
                status="paid",
                amount_fen=paid,
                transaction_id=f"tx{n}",
                created_at=paid_at - timedelta(seconds=20),
                expires_at=paid_at + timedelta(minutes=15),
                paid_at=paid_at,
            )
        )
    return order_id


async def succeeded_refund(
    runtime: Runtime,
    *,
    order_id: str,
    amount_fen: int,
    completed_at: datetime | None = None,
    kind: str = "customer",
) -> str:
    """A succeeded refund of an order's payment (counted on the order); its id."""
    n = next(_seq)
    completed_at = completed_at or clock.now() - timedelta(seconds=30)
    async with runtime.db.unit_of_work() as session:
        payment = (await session.scalars(select(Payment).where(Payment.order_id == order_id))).one()
        order = await session.get(Order, order_id)
        assert order is not None
        payment.refunded_fen += amount_fen
        order.refunded_fen += amount_fen
        refund_id = f"R{n:015d}"
        session.add(
            Refund(
                id=refund_id,
                order_id=order_id,
                payment_id=payment.id,
                provider=payment.provider,
                kind=kind,
                status="succeeded",
                amount_fen=amount_fen,
                reason="测试退款",
                requested_by="system",
                created_at=completed_at - timedelta(seconds=5),
                completed_at=completed_at,
            )
        )
    return refund_id


async def pump_sale(
    runtime: Runtime,
    *,
    station_id: int,
    seq: int,
    fp: int = 1,
    grade: str = "92",
    volume_ml: int = 10_000,
    amount_fen: int = 7_760,
    ended_at: datetime | None = None,
    status: str = "payable",
    cleared_by: str | None = None,
    cleared_at: datetime | None = None,
) -> None:
    """A pump sale row (payable, locked, or cleared by someone)."""
    ended_at = ended_at or clock.now() - timedelta(minutes=2)
    async with runtime.db.unit_of_work() as session:
        fp_id = (
            await session.scalars(
                select(FuellingPointRow.id).where(
                    FuellingPointRow.station_id == station_id, FuellingPointRow.number == fp
                )
            )
        ).one()
        session.add(
            PumpSale(
                station_id=station_id,
                fp_id=fp_id,
                seq=seq,
                nozzle_number=1 if grade == "92" else 2,
                grade_code=grade,
                volume_ml=volume_ml,
                amount_fen=amount_fen,
                unit_price_fen=776,
                totalizer_volume_ml=1_000_000 + seq * volume_ml,
                totalizer_amount_fen=800_000 + seq * amount_fen,
                ended_at=ended_at,
                received_at=ended_at,
                status=status,
                cleared_by=cleared_by,
                cleared_at=cleared_at,
            )
        )
