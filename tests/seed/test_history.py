"""The demo history: 30 business days of consistent sales, shifts and audit entries, once."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from forecourt.auth.models import Member, Staff
from forecourt.auth.staff import create_staff
from forecourt.auth.tokens import Principal
from forecourt.backoffice import dashboard, shifts
from forecourt.backoffice.models import AuditEntry, Shift
from forecourt.backoffice.sales_repository import PAID_STATUSES
from forecourt.backoffice.schemas import Totals
from forecourt.db import Database
from forecourt.kit import clock, phones
from forecourt.order.models import Order
from forecourt.payment.models import Payment, Refund
from forecourt.pump.models import FuellingPointRow, Nozzle, PumpSale
from forecourt.seed.demo import DEMO_STAFF, seed_stations
from forecourt.seed.history import seed_history
from forecourt.seed.history_sales import DAYS
from forecourt.seed.pumps import seed_pumps
from forecourt.station.models import Station
from forecourt.wallet.models import WalletAccount, WalletEntry

CODES = ("KM001", "KM005")  # one station with staff (counter sales, shifts), one without
DATA_KEY = secrets.token_bytes(32)


async def _seed(db: Database, now: datetime) -> int:
    await seed_stations(db)
    await seed_pumps(db)
    async with db.unit_of_work() as session:
        ids = dict((await session.execute(select(Station.code, Station.id))).all())
        for username, display, role, codes in DEMO_STAFF:
            await create_staff(
                session,
                username=username,
                password=secrets.token_urlsafe(12),
                display_name=display,
                role=role,
                station_ids=[ids[c] for c in codes],
            )
    return await seed_history(db, data_key=DATA_KEY, now=now, codes=CODES)


def _local_day(moment: datetime) -> date:
    return clock.local(moment).date()


@pytest.fixture
def now() -> datetime:
    """A fixed moment of the afternoon (business time), so today has morning sales."""
    today = clock.local(clock.now()).date()
    return datetime(
        today.year, today.month, today.day, 15, 20, tzinfo=clock.BUSINESS_TZ
    ).astimezone(UTC)


async def test_history_covers_thirty_days_up_to_now(db: Database, now: datetime) -> None:
    assert await _seed(db, now) == 2
    today = _local_day(now)
    async with db.read_only() as session:
        paid = (
            await session.scalars(
                select(Order.paid_at).where(
                    Order.station_id.is_not(None), Order.paid_at.is_not(None)
                )
            )
        ).all()
        days = {_local_day(p) for p in paid if p is not None}
        assert days == {today - timedelta(days=n) for n in range(DAYS + 1)}
        assert max(p for p in paid if p is not None) < now
        sales = (await session.scalars(select(PumpSale))).all()
        assert {s.status for s in sales} == {"cleared"}  # nothing left for drivers to pay
        assert max(s.cleared_at for s in sales if s.cleared_at) < now
        methods = set((await session.scalars(select(Payment.provider).distinct())).all())
        assert methods == {"wechatpay", "alipay", "unionpay", "wallet"}
        statuses = set((await session.scalars(select(Order.status).distinct())).all())
        assert statuses == {"completed", "refunded", "cancelled", "expired"}
        counter = [s for s in sales if (s.cleared_by or "").startswith("staff:")]
        assert counter
        assert {s.station_id for s in counter} == {
            await session.scalar(select(Station.id).where(Station.code == "KM001"))
        }
        # Phones only encrypted with a blind index, never in plain text.
        for m in (await session.scalars(select(Member))).all():
            assert m.phone_cipher is not None
            phone = phones.decrypt(DATA_KEY, m.phone_cipher)
            assert m.phone_hash == phones.blind_index(DATA_KEY, phone)
            assert m.phone_masked == phones.mask(phone)
        # The pumps' counters continue where the history ends (the simulator starts there).
        for fp in (await session.scalars(select(FuellingPointRow))).all():
            top = await session.scalar(
                select(func.max(PumpSale.seq)).where(PumpSale.fp_id == fp.id)
            )
            assert fp.last_seq == (top or 0)
        for n in (await session.scalars(select(Nozzle))).all():
            meter = await session.scalar(
                select(func.max(PumpSale.totalizer_volume_ml)).where(
                    PumpSale.station_id == n.station_id, PumpSale.nozzle_number == n.number
                )
            )
            assert meter is None or meter == n.totalizer_volume_ml
        # The wallet ledger adds up to the balances.
        for account in (await session.scalars(select(WalletAccount))).all():
            entries = (
                await session.scalars(
                    select(WalletEntry).where(WalletEntry.member_id == account.member_id)
                )
            ).all()
            assert sum(e.principal_fen for e in entries) == account.principal_fen >= 0
            assert sum(e.bonus_fen for e in entries) == account.bonus_fen >= 0


async def test_dashboard_week_equals_the_seeded_sales(db: Database, now: datetime) -> None:
    await _seed(db, now)
    start, end, _, _ = dashboard.window(7, now)
    async with db.read_only() as session:
        hq = await session.scalar(select(Staff.id).where(Staff.username == "hq"))
        assert hq is not None
        out = await dashboard.dashboard(
            session,
            principal=Principal(kind="staff", id=hq, role="hq_admin"),
            station_id=None,
            days=7,
            now=now,
        )
        orders = (
            await session.execute(
                select(func.count(), func.sum(Order.paid_fen)).where(
                    Order.kind != "topup",
                    Order.status.in_(PAID_STATUSES),
                    Order.paid_at >= start,
                    Order.paid_at < end,
                )
            )
        ).one()
        cash = (
            await session.execute(
                select(func.count(), func.sum(PumpSale.amount_fen)).where(
                    PumpSale.cleared_by.like("staff:%"),
                    PumpSale.cleared_at >= start,
                    PumpSale.cleared_at < end,
                )
            )
        ).one()
        refunded = await session.scalar(
            select(func.sum(Refund.amount_fen)).where(
                Refund.status == "succeeded",
                Refund.completed_at >= start,
                Refund.completed_at < end,
            )
        )
    assert out.totals.orders == orders[0] + cash[0] > 0
    assert out.totals.gross_fen == orders[1] + cash[1]
    assert out.totals.discounts_fen == 0
    assert out.totals.refunds_fen == refunded
    assert out.totals.net_fen == orders[1] + cash[1] - refunded
    assert sum(b.orders for b in out.series) == out.totals.orders
    assert [line.key for line in out.by_method] == [
        "wechatpay",
        "alipay",
        "unionpay",
        "wallet",
        "cash",
    ]


async def test_a_second_run_adds_nothing(db: Database, now: datetime) -> None:
    await _seed(db, now)
    tables = (Member, Order, Payment, Refund, PumpSale, Shift, AuditEntry, WalletEntry)

    async def counts() -> list[int]:
        async with db.read_only() as session:
            return [
                int(await session.scalar(select(func.count()).select_from(t)) or 0) for t in tables
            ]

    before = await counts()
    assert all(before)
    assert await seed_history(db, data_key=DATA_KEY, now=now, codes=CODES) == 0
    assert await counts() == before


async def test_closed_shifts_hold_the_totals_of_their_window(db: Database, now: datetime) -> None:
    await _seed(db, now)
    async with db.read_only() as session:
        rows = (await session.scalars(select(Shift).order_by(Shift.id))).all()
        assert len(rows) >= 3 * DAYS
        assert {r.status for r in rows} == {"closed"}
        over_short = 0
        for row in rows:
            assert row.closed_at is not None
            assert row.closed_at <= now
            assert row.expected is not None
            assert row.cash_counted_fen is not None
            live, unpaid = await shifts.running(
                session, station_id=row.station_id, start=row.opened_at, end=row.closed_at
            )
            assert Totals.model_validate(row.expected["totals"]) == live
            assert unpaid.count == 0
            expected_cash = next((line.net_fen for line in live.by_method if line.key == "cash"), 0)
            over_short += row.cash_counted_fen != expected_cash
        assert 0 < over_short < len(rows) // 2  # the drawer is sometimes over or short
        closed = await session.scalar(
            select(func.count()).where(AuditEntry.action == "shift.closed")
        )
        assert closed == len(rows)
