"""A sale paid at the counter: lock, clear and stop are audited; the shift counts it as cash."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from forecourt.backoffice.models import Shift
from forecourt.kit import clock
from forecourt.runtime import Runtime
from tests.fixtures.auth import make_staff, staff_headers
from tests.pump.conftest import link  # noqa: F401 (fixture)
from tests.pump.helpers import ScriptedGateway, eventually, fp_row, make_pump_station, sale_report

API = "/api/v1/admin"


async def test_counter_sale_is_cash_in_the_shift_and_audited(
    link: Runtime,  # noqa: F811
    client: httpx.AsyncClient,
) -> None:
    station = await make_pump_station(link)
    gateway = ScriptedGateway.on(link, station.code)
    await gateway.connect()
    await gateway.state(1, 3, last_seq=0)

    async def idle() -> bool:
        return (await fp_row(link, station.id, 1)).state == 3

    await eventually(idle, what="fp 1 idle")
    attendant = await make_staff(link, role="attendant", station_ids=[station.id])
    headers = staff_headers(link, attendant)
    opened = await client.post(f"{API}/stations/{station.id}/shifts", headers=headers)
    assert opened.status_code == 201, opened.text
    async with link.db.unit_of_work() as session:  # pumps report whole seconds
        await session.execute(
            update(Shift)
            .where(Shift.id == opened.json()["id"])
            .values(opened_at=clock.now() - timedelta(minutes=1))
        )
    await gateway.sale(
        1, sale_report(seq=1, nozzle=1, grade="92", volume_ml=25_000, unit_price_fen=776)
    )

    async def stored() -> bool:
        return (await fp_row(link, station.id, 1)).last_seq >= 1

    await eventually(stored, what="sale stored")
    unpaid = await client.get(f"{API}/stations/{station.id}/shifts/current", headers=headers)
    assert unpaid.json()["unpaid_sales"]["count"] == 1

    sale = f"{API}/stations/{station.id}/fuelling-points/1/sales/1"
    locked = await client.post(f"{sale}/lock", headers=headers)
    assert locked.status_code == 200, locked.text
    cleared = await client.post(f"{sale}/clear", headers=headers)
    assert cleared.status_code == 200, cleared.text
    stopped = await client.post(
        f"{API}/stations/{station.id}/fuelling-points/1/stop", headers=headers
    )
    assert stopped.status_code == 202, stopped.text
    missing = await client.post(
        f"{API}/stations/{station.id}/fuelling-points/1/sales/9/lock", headers=headers
    )
    assert missing.status_code >= 400

    current = (
        await client.get(f"{API}/stations/{station.id}/shifts/current", headers=headers)
    ).json()
    assert current["totals"]["by_method"] == [
        {
            "key": "cash",
            "orders": 1,
            "volume_ml": 25_000,
            "gross_fen": 19_400,
            "discounts_fen": 0,
            "refunds_fen": 0,
            "net_fen": 19_400,
        }
    ]
    assert (current["cash_expected_fen"], current["unpaid_sales"]["count"]) == (19_400, 0)

    hq = staff_headers(link, await make_staff(link, role="hq_admin"))
    entries = (await client.get(f"{API}/audit", headers=hq)).json()["items"]
    assert [(e["action"], e["subject_id"], e["station_id"]) for e in entries] == [
        ("pump.stopped", "1", station.id),
        ("sale.cleared", "1/1", station.id),
        ("sale.locked", "1/1", station.id),
        ("shift.opened", str(opened.json()["id"]), station.id),
    ]
    assert entries[1]["details"] == {"fp": 1, "seq": 1, "amount_fen": 19_400}
    await gateway.disconnect()
