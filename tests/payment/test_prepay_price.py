"""A pay-at-pump order takes the price in force, never a scheduled or a cancelled one."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from forecourt.fuel.models import StationPrice
from forecourt.kit import clock
from tests.payment.conftest import Forecourt


async def _prepay(fc: Forecourt) -> tuple[int, dict[str, object]]:
    resp = await fc.post(
        "/api/v1/orders",
        {"kind": "prepay", "station_id": fc.station_id, "nozzle": 3, "amount_fen": 10_000},
    )
    body: dict[str, object] = resp.json()
    return resp.status_code, body


async def _add_price(fc: Forecourt, fen: int, *, after: timedelta, cancelled: bool) -> None:
    now = clock.now()
    async with fc.runtime.db.unit_of_work() as session:
        session.add(
            StationPrice(
                station_id=fc.station_id,
                grade_code="95",
                price_fen=fen,
                effective_at=now + after,
                cancelled_at=now if cancelled else None,
            )
        )


async def test_the_order_price_is_the_one_in_force(forecourt: Forecourt) -> None:
    fc = forecourt
    await _add_price(fc, 900, after=timedelta(days=1), cancelled=False)  # scheduled
    await _add_price(fc, 999, after=timedelta(minutes=-1), cancelled=True)  # withdrawn
    status, body = await _prepay(fc)
    assert (status, body["unit_price_fen"]) == (201, 832)
    await _add_price(fc, 845, after=timedelta(seconds=-1), cancelled=False)
    status, body = await _prepay(fc)
    assert (status, body["unit_price_fen"]) == (201, 845)


async def test_no_price_in_force_refuses_the_order(forecourt: Forecourt) -> None:
    fc = forecourt
    async with fc.runtime.db.unit_of_work() as session:
        await session.execute(
            update(StationPrice)
            .where(StationPrice.station_id == fc.station_id, StationPrice.grade_code == "95")
            .values(cancelled_at=clock.now())
        )
    status, body = await _prepay(fc)
    assert (status, body["code"]) == (409, "price_missing")
