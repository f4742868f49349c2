"""32 concurrent redemptions of the last stock unit, or with the last points: exactly one wins."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, update

from forecourt.errors import AppError
from forecourt.kit import clock
from forecourt.loyalty import mall
from forecourt.loyalty.models import MallItem, Redemption
from forecourt.loyalty.seed import seed_loyalty
from forecourt.runtime import Runtime
from tests.fixtures.auth import insert_station, make_member
from tests.loyalty.conftest import check_ledger, give_points

RACERS = 32


async def _item(runtime: Runtime, sku: str, **values: int) -> MallItem:
    async with runtime.db.unit_of_work() as session:
        if values:
            await session.execute(update(MallItem).where(MallItem.sku == sku).values(**values))
        item = (await session.scalars(select(MallItem).where(MallItem.sku == sku))).one()
        session.expunge(item)
        return item


async def _race(runtime: Runtime, member_ids: list[int], item_id: int, station: int) -> list[str]:
    gate = asyncio.Event()

    async def one(member_id: int) -> str:
        await gate.wait()
        try:
            async with runtime.db.unit_of_work() as session:
                await mall.redeem(
                    session,
                    member_id=member_id,
                    item_id=item_id,
                    quantity=1,
                    station_id=station,
                    pickup_days=30,
                    now=clock.now(),
                )
        except AppError as exc:
            return exc.code
        return "ok"

    tasks = [asyncio.create_task(one(m)) for m in member_ids]
    await asyncio.sleep(0.05)
    gate.set()
    return list(await asyncio.gather(*tasks))


async def _redemptions(runtime: Runtime, item_id: int) -> int:
    async with runtime.db.read_only() as session:
        stmt = select(func.count()).select_from(Redemption).where(Redemption.item_id == item_id)
        return int(await session.scalar(stmt) or 0)


async def test_last_stock_unit_goes_to_exactly_one(runtime: Runtime) -> None:
    await seed_loyalty(runtime.db)
    station = await insert_station(runtime)
    item = await _item(runtime, "WIPER-01", stock=1)
    members = [(await make_member(runtime)).id for _ in range(RACERS)]
    for member_id in members:
        await give_points(runtime, member_id, item.points)
    outcomes = await _race(runtime, members, item.id, station)
    assert sorted(outcomes) == ["ok"] + ["out_of_stock"] * (RACERS - 1)
    assert (await _item(runtime, "WIPER-01")).stock == 0
    assert await _redemptions(runtime, item.id) == 1
    balances = [(await check_ledger(runtime, m)).points_balance for m in members]
    assert sorted(balances) == [0] + [item.points] * (RACERS - 1)


async def test_last_points_go_to_exactly_one(runtime: Runtime) -> None:
    await seed_loyalty(runtime.db)
    station = await insert_station(runtime)
    item = await _item(runtime, "WATER-01", stock=1_000, monthly_limit=100)
    member = (await make_member(runtime)).id
    await give_points(runtime, member, item.points)
    outcomes = await _race(runtime, [member] * RACERS, item.id, station)
    assert sorted(outcomes) == ["insufficient_points"] * (RACERS - 1) + ["ok"]
    assert (await check_ledger(runtime, member)).points_balance == 0
    assert (await _item(runtime, "WATER-01")).stock == 999
    assert await _redemptions(runtime, item.id) == 1
