"""The server link on the in-process broker, on SQLite and PostgreSQL."""

from __future__ import annotations

from forecourt.runtime import Runtime
from tests.pump.helpers import (
    PRICES,
    ScriptedGateway,
    eventually,
    fp_row,
    make_pump_station,
    sale_count,
    sale_report,
)


async def test_post_pay_sale_is_stored_once_and_acknowledged(link: Runtime) -> None:
    station = await make_pump_station(link)
    gateway = ScriptedGateway.on(link, station.code)
    await gateway.connect()
    await gateway.state(1, 3, last_seq=0)
    await gateway.state(1, 4, nozzle=2)
    await gateway.state(1, 5, nozzle=2)
    await gateway.state(1, 8, nozzle=2)
    await gateway.progress(1, nozzle=2, grade="95", volume_ml=12_340, unit_price_fen=832)

    async def fuelling() -> bool:
        row = await fp_row(link, station.id, 1)
        return row.state == 8 and row.progress is not None

    await eventually(fuelling, what="fp 1 fuelling")
    report = sale_report(seq=1, nozzle=2, grade="95", volume_ml=35_500, unit_price_fen=832)
    await gateway.state(1, 3, last_seq=1)
    for _ in range(3):
        await gateway.sale(1, report)

    async def acks() -> bool:
        return len(gateway.sale_acks) == 3

    await eventually(acks, what="three sale acks")
    assert [a["status"] for a in gateway.sale_acks] == ["accepted", "duplicate", "duplicate"]
    assert await sale_count(link, station.id) == 1
    row = await fp_row(link, station.id, 1)
    assert (row.state, row.last_seq, row.progress) == (3, 1, None)
    assert PRICES["95"] == 832
    await gateway.disconnect()
