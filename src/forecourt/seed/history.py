"""Demo history: 30 business days of sales at the equipped demo stations, generated once.

Every record ends where the real workflows leave it (see `history_sales`, which builds the rows
without I/O): orders paid for cleared pump sales, settlement and customer refunds, cancelled or
expired orders, counter (cash) sales, wallet top-ups, closed shifts, reconciliations and audit
entries. Generated from a fixed seed and written here in bulk; a station that already has
orders or pump sales is left alone, so seeding again adds nothing.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.models import Member, Staff, StaffStation
from forecourt.backoffice.models import AuditEntry, Shift
from forecourt.backoffice.totals import RefundRow, SaleRow
from forecourt.db import Database
from forecourt.fuel import repository as fuel_repository
from forecourt.fuel.models import Grade, StationPrice
from forecourt.kit import clock, phones
from forecourt.order.models import Order
from forecourt.payment.models import Payment, Reconciliation, Refund
from forecourt.payment.setup import serial_key as derive_serial_key
from forecourt.pump.models import FuellingPointRow, Nozzle, PumpSale
from forecourt.seed.history_sales import (
    DAYS,
    MEMBERS,
    SEED,
    Batch,
    Builder,
    Fill,
    NozzleRef,
    StationRef,
    closed_shifts,
    demo_phone,
    fills_of,
    local_midnight,
    number_sales,
)
from forecourt.seed.kunming import STATIONS
from forecourt.station.models import Station
from forecourt.wallet.models import WalletAccount, WalletEntry


async def _stations(session: AsyncSession, codes: Sequence[str]) -> list[StationRef]:
    """Equipped demo stations without any sales yet, with their nozzles, prices and staff."""
    rows = (
        await session.scalars(select(Station).where(Station.code.in_(codes)).order_by(Station.code))
    ).all()
    busy = set((await session.scalars(select(PumpSale.station_id).distinct())).all()) | set(
        (await session.scalars(select(Order.station_id).distinct())).all()
    )
    ids = [s.id for s in rows if s.id not in busy]
    if not ids:
        return []
    nozzles: dict[int, list[NozzleRef]] = defaultdict(list)
    stmt = (
        select(
            Nozzle.station_id,
            Nozzle.number,
            Nozzle.fp_id,
            FuellingPointRow.number,
            Nozzle.grade_code,
        )
        .join(FuellingPointRow, FuellingPointRow.id == Nozzle.fp_id)
        .where(Nozzle.station_id.in_(ids), Nozzle.active.is_(True))
        .order_by(Nozzle.station_id, Nozzle.number)
    )
    for sid, number, fp_id, fp_number, grade in (await session.execute(stmt)).all():
        nozzles[sid].append(NozzleRef(number, fp_id, fp_number, grade))
    prices: dict[int, dict[str, int]] = defaultdict(dict)
    for p in await fuel_repository.current_prices(session, station_ids=ids, at=clock.now()):
        prices[p.station_id][p.grade_code] = p.price_fen
    staff: dict[int, list[tuple[int, str]]] = defaultdict(list)
    stmt2 = (
        select(StaffStation.station_id, Staff.id, Staff.role)
        .join(Staff, Staff.id == StaffStation.staff_id)
        .where(StaffStation.station_id.in_(ids), Staff.active.is_(True))
        .order_by(Staff.id)
    )
    for sid, staff_id, role in (await session.execute(stmt2)).all():
        staff[sid].append((staff_id, role))
    result = []
    for s in rows:
        if s.id not in ids or not nozzles[s.id] or not prices[s.id]:
            continue
        hours = None
        if not s.open_24h and s.opens_at and s.closes_at:
            hours = (int(s.opens_at[:2]), int(s.closes_at[:2]))
        people = staff[s.id]
        result.append(
            StationRef(
                id=s.id,
                code=s.code,
                hours=hours,
                prices=prices[s.id],
                nozzles=[n for n in nozzles[s.id] if n.grade in prices[s.id]],
                staff=[i for i, _ in people],
                manager=next((i for i, role in people if role == "station_manager"), None),
            )
        )
    return result


async def _members(
    session: AsyncSession, rng: random.Random, data_key: bytes, start: datetime
) -> tuple[list[int], set[int]]:
    """The member pool (ids) and those who may pay from a fresh wallet."""
    phone_list: list[str] = []
    seen: set[str] = set()
    while len(phone_list) < MEMBERS:
        phone = demo_phone(rng)
        if phone not in seen:
            seen.add(phone)
            phone_list.append(phone)
    hashes = [phones.blind_index(data_key, p) for p in phone_list]
    found = await session.execute(
        select(Member.phone_hash, Member.id).where(Member.phone_hash.in_(hashes))
    )
    existing = {str(h): int(i) for h, i in found.all()}
    rows = [
        {
            "phone_cipher": phones.encrypt(data_key, phone),
            "phone_hash": h,
            "phone_masked": phones.mask(phone),
            "status": "active",
            "created_at": start
            - timedelta(days=rng.randint(1, 400), seconds=rng.randrange(86_400)),
        }
        for phone, h in zip(phone_list, hashes, strict=True)
        if h not in existing
    ]
    new_ids: list[int] = []
    if rows:
        new_ids = list((await session.scalars(insert(Member).returning(Member.id), rows)).all())
    with_wallet = set(
        (
            await session.scalars(
                select(WalletAccount.member_id).where(
                    WalletAccount.member_id.in_(list(existing.values()))
                )
            )
        ).all()
    )
    ids = [*existing.values(), *new_ids]
    rng.shuffle(ids)
    return ids, set(ids) - with_wallet - set(existing.values())


async def seed_history(
    db: Database,
    *,
    data_key: bytes,
    now: datetime | None = None,
    codes: Sequence[str] | None = None,
) -> int:
    """Generate the demo history of stations that have none; returns how many got one."""
    now = now or clock.now()
    today = clock.local(now).date()
    start = local_midnight(today - timedelta(days=DAYS))
    rng = random.Random(SEED)
    key = derive_serial_key(data_key)
    async with db.unit_of_work() as session:
        stations = await _stations(session, codes or [spec.code for spec in STATIONS])
        if not stations:
            return 0
        grade_names = {
            str(c): str(n) for c, n in (await session.execute(select(Grade.code, Grade.name))).all()
        }
        hq = await session.scalar(
            select(Staff.id)
            .where(Staff.role == "hq_admin", Staff.active.is_(True))
            .order_by(Staff.id)
        )
        members, wallet_ok = await _members(session, rng, data_key, start)
        meters_rows = (
            await session.execute(
                select(
                    Nozzle.station_id,
                    Nozzle.number,
                    Nozzle.totalizer_volume_ml,
                    Nozzle.totalizer_amount_fen,
                ).where(Nozzle.station_id.in_([s.id for s in stations]))
            )
        ).all()
        meters: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
        for sid, number, volume, amount in meters_rows:
            meters[sid][number] = (volume, amount)
        builder = Builder(rng, key, stations, members, wallet_ok, grade_names, hq, now)
        fills: list[Fill] = []
        raised: list[dict[str, Any]] = []
        last_seq: list[dict[str, Any]] = []
        for station in stations:
            mine = fills_of(rng, station, start, now)
            for number, (volume, amount) in number_sales(mine, meters[station.id]).items():
                raised.append({"s": station.id, "n": number, "v": volume, "a": amount})
            tops: dict[int, int] = {}
            for f in mine:
                tops[f.nozzle.fp_id] = f.seq
            last_seq += [{"fp": fp, "seq": seq} for fp, seq in tops.items()]
            fills += mine
        fills.sort(key=lambda f: f.ended_at)
        for fill in fills:
            builder.add(fill)
        batch = builder.batch
        for f in fills:
            batch.sales.append(
                {
                    "station_id": f.station.id,
                    "fp_id": f.nozzle.fp_id,
                    "seq": f.seq,
                    "nozzle_number": f.nozzle.number,
                    "grade_code": f.nozzle.grade,
                    "volume_ml": f.volume_ml,
                    "amount_fen": f.amount_fen,
                    "unit_price_fen": f.station.prices[f.nozzle.grade],
                    "totalizer_volume_ml": f.totalizer_volume_ml,
                    "totalizer_amount_fen": f.totalizer_amount_fen,
                    "ended_at": f.ended_at,
                    "received_at": f.ended_at + timedelta(seconds=1),
                    "status": "cleared",
                    "locked_by": f.cleared_by,
                    "lock_expires_at": None,
                    "cleared_at": f.cleared_at,
                    "cleared_by": f.cleared_by,
                    "auth_ref": f.paid_by if f.kind == "prepay" else None,
                }
            )
        by_station_sales: dict[int, list[tuple[datetime, SaleRow]]] = defaultdict(list)
        for sid, at, row in batch.sale_rows:
            by_station_sales[sid].append((at, row))
        by_station_refunds: dict[int, list[tuple[datetime, RefundRow]]] = defaultdict(list)
        for sid, at, refund in batch.refund_rows:
            by_station_refunds[sid].append((at, refund))
        shift_rows: list[dict[str, Any]] = []
        for station in stations:
            if station.staff:
                shift_rows += closed_shifts(
                    station,
                    start,
                    now,
                    rng,
                    by_station_sales[station.id],
                    by_station_refunds[station.id],
                )
        await _write(session, batch, raised, last_seq)
        await _write_shifts(session, shift_rows, builder)
        await _price_history(session, stations, builder, start, now)
        await _write_rows(session, AuditEntry, sorted(batch.audit, key=lambda r: r["at"]))
        await _reconciliations(session, batch, today)
        await _wallet_accounts(session, builder, now)
        await _last_login(session, builder)
    return len(stations)


async def _write_rows(session: AsyncSession, model: type[Any], rows: list[dict[str, Any]]) -> None:
    table = cast(Table, model.__table__)
    for i in range(0, len(rows), 5000):
        await session.execute(insert(table), rows[i : i + 5000])


async def _write(
    session: AsyncSession,
    batch: Batch,
    raised: list[dict[str, Any]],
    last_seq: list[dict[str, Any]],
) -> None:
    await _write_rows(session, Order, batch.orders)
    await _write_rows(session, Payment, batch.payments)
    await _write_rows(session, Refund, batch.refunds)
    await _write_rows(session, PumpSale, batch.sales)
    await _write_rows(session, WalletEntry, batch.wallet)
    nozzles = cast(Table, Nozzle.__table__)
    if raised:
        await session.execute(
            update(nozzles)
            .where(nozzles.c.station_id == bindparam("s"), nozzles.c.number == bindparam("n"))
            .values(totalizer_volume_ml=bindparam("v"), totalizer_amount_fen=bindparam("a")),
            raised,
        )
    fps = cast(Table, FuellingPointRow.__table__)
    if last_seq:
        await session.execute(
            update(fps).where(fps.c.id == bindparam("fp")).values(last_seq=bindparam("seq")),
            last_seq,
        )


async def _write_shifts(
    session: AsyncSession, rows: list[dict[str, Any]], builder: Builder
) -> None:
    if not rows:
        return
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    ids = (await session.scalars(insert(Shift).returning(Shift.id), clean)).all()
    for shift_id, r in zip(ids, rows, strict=True):
        counted = int(r["cash_counted_fen"])
        builder.audit(
            r["opened_by"],
            r["station_id"],
            "shift.opened",
            "shift",
            str(shift_id),
            r["opened_at"],
            {},
        )
        builder.audit(
            r["closed_by"],
            r["station_id"],
            "shift.closed",
            "shift",
            str(shift_id),
            r["closed_at"],
            {
                "cash_counted_fen": counted,
                "cash_expected_fen": r["_expected"],
                "over_short_fen": counted - r["_expected"],
                "unpaid_sales": r["_unpaid"],
            },
        )


async def _price_history(
    session: AsyncSession,
    stations: list[StationRef],
    builder: Builder,
    start: datetime,
    now: datetime,
) -> None:
    """Audit the current prices as scheduled by head office, and a change a manager withdrew."""
    ids = [s.id for s in stations]
    rows = (
        await session.scalars(
            select(StationPrice)
            .where(StationPrice.station_id.in_(ids), StationPrice.cancelled_at.is_(None))
            .order_by(StationPrice.id)
        )
    ).all()
    hq = builder.hq
    if hq is not None:
        for p in rows:
            if p.effective_at <= now:
                builder.audit(
                    hq,
                    p.station_id,
                    "price.scheduled",
                    "price",
                    str(p.id),
                    p.effective_at - timedelta(hours=2),
                    {
                        "grade": p.grade_code,
                        "price_fen": p.price_fen,
                        "effective_at": p.effective_at.isoformat(),
                    },
                )
    day = clock.local(start).date() + timedelta(days=DAYS // 2)
    effective = local_midnight(day + timedelta(days=1))
    for station in stations:
        if station.manager is None or "92" not in station.prices:
            continue
        at = local_midnight(day) + timedelta(hours=10, minutes=builder.rng.randrange(60))
        cancelled = at + timedelta(hours=3)
        price = station.prices["92"] + 15
        new_id = await session.scalar(
            insert(StationPrice)
            .values(
                station_id=station.id,
                grade_code="92",
                price_fen=price,
                effective_at=effective,
                created_at=at,
                created_by=station.manager,
                cancelled_at=cancelled,
                announced_at=None,
            )
            .returning(StationPrice.id)
        )
        details = {"grade": "92", "price_fen": price, "effective_at": effective.isoformat()}
        builder.audit(
            station.manager, station.id, "price.scheduled", "price", str(new_id), at, details
        )
        builder.audit(
            station.manager, station.id, "price.cancelled", "price", str(new_id), cancelled, details
        )


async def _reconciliations(session: AsyncSession, batch: Batch, today: date) -> None:
    """Balanced statements for every seeded day before yesterday (yesterday is left to run)."""
    per: dict[tuple[str, date], list[int]] = defaultdict(lambda: [0, 0])
    for p in batch.payments:
        if p["status"] == "paid" and p["provider"] != "wallet":
            acc = per[(p["provider"], clock.local(p["paid_at"]).date())]
            acc[0] += 1
            acc[1] += int(p["amount_fen"])
    for r in batch.refunds:
        if r["provider"] != "wallet":
            acc = per[(r["provider"], clock.local(r["completed_at"]).date())]
            acc[0] += 1
            acc[1] -= int(r["amount_fen"])
    known = set(
        (await session.execute(select(Reconciliation.provider, Reconciliation.bill_date))).all()
    )
    rows = [
        {
            "provider": provider,
            "bill_date": day,
            "status": "balanced",
            "bill_rows": count,
            "matched": count,
            "bill_total_fen": total,
            "our_total_fen": total,
            "items": [],
            "created_at": local_midnight(day + timedelta(days=1)) + timedelta(hours=10),
        }
        for (provider, day), (count, total) in sorted(per.items())
        if day < today - timedelta(days=1) and (provider, day) not in known
    ]
    await _write_rows(session, Reconciliation, rows)


async def _wallet_accounts(session: AsyncSession, builder: Builder, now: datetime) -> None:
    rows = [
        {
            "member_id": member,
            "principal_fen": w.principal_fen,
            "bonus_fen": w.bonus_fen,
            "updated_at": now,
        }
        for member, w in sorted(builder.wallets.items())
    ]
    await _write_rows(session, WalletAccount, rows)


async def _last_login(session: AsyncSession, builder: Builder) -> None:
    members = cast(Table, Member.__table__)
    rows = [{"m": m, "at": at} for m, at in builder.last_seen.items()]
    if rows:
        await session.execute(
            update(members)
            .where(members.c.id == bindparam("m"))
            .values(last_login_at=bindparam("at")),
            rows,
        )
