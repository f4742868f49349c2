"""Commands to pumps: written with the change, published after commit, acknowledged."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from forecourt.kit import clock
from forecourt.outbox.models import OutboxEvent
from forecourt.pump import alerts as pump_alerts
from forecourt.pump import service
from forecourt.pump.commands import COMMAND_EVENT, PumpBusy, PumpOffline
from forecourt.pump.domain import Preset
from forecourt.pump.models import PumpCommand, PumpSale
from forecourt.runtime import Runtime
from tests.fixtures.factories import make_staff_token
from tests.pump.helpers import ScriptedGateway, eventually, fp_row, make_pump_station, sale_report


async def _command(runtime: Runtime, command_id: str) -> PumpCommand:
    async with runtime.db.read_only() as session:
        row = (await session.scalars(select(PumpCommand).where(PumpCommand.id == command_id))).one()
        session.expunge(row)
        return row


async def _pending_resends(runtime: Runtime, command_id: str) -> list[int]:
    """Undispatched outbox events that would resend this command."""
    async with runtime.db.read_only() as session:
        stmt = select(OutboxEvent.id, OutboxEvent.payload).where(
            OutboxEvent.topic == COMMAND_EVENT, OutboxEvent.dispatched_at.is_(None)
        )
        return [
            i
            for i, payload in (await session.execute(stmt)).all()
            if payload.get("command_id") == command_id
        ]


async def _sale(runtime: Runtime, station_id: int, seq: int) -> PumpSale | None:
    async with runtime.db.read_only() as session:
        stmt = select(PumpSale).where(PumpSale.station_id == station_id, PumpSale.seq == seq)
        row = (await session.scalars(stmt)).first()
        if row is not None:
            session.expunge(row)
        return row


async def _idle_station(link: Runtime) -> tuple[int, ScriptedGateway]:
    station = await make_pump_station(link)
    gateway = ScriptedGateway.on(link, station.code)
    await gateway.connect()
    await gateway.state(1, 3, last_seq=0)
    await gateway.state(2, 3, last_seq=0)

    async def idle() -> bool:
        return (await fp_row(link, station.id, 2)).state == 3

    await eventually(idle, what="fp 2 idle")
    return station.id, gateway


async def test_pay_at_pump_authorise_fuel_sale_clear(link: Runtime) -> None:
    station_id, gateway = await _idle_station(link)
    async with link.db.unit_of_work() as session:
        command_id = await service.authorise(
            session,
            station_id=station_id,
            nozzle_number=3,
            preset=Preset.amount(30_000),
            order_id="ord_8f3a2c",
            ttl_seconds=120,
        )

    async def authorised() -> bool:
        return (await _command(link, command_id)).status == "done"

    await eventually(authorised, what="authorise acked")
    assert len(gateway.commands) == 1

    async def no_resend_left() -> bool:  # the first publication's event is marked just after
        return await _pending_resends(link, command_id) == []

    await eventually(no_resend_left, within=3, what="resend withdrawn by the answer")
    assert (await _command(link, command_id)).resend_event_id is None
    sent = gateway.commands[0]
    assert (sent["type"], sent["fp"], sent["auth_ref"], sent["nozzle"]) == (
        "authorise",
        2,
        "ord_8f3a2c",
        3,
    )
    assert sent["preset"] == {"kind": "amount_fen", "value": 30_000}
    row = await fp_row(link, station_id, 2)
    assert row.state == 5
    assert row.authorisation is not None
    assert row.authorisation["order_id"] == "ord_8f3a2c"

    await gateway.state(2, 6, nozzle=3)
    await gateway.progress(2, nozzle=3, grade="95", volume_ml=36_058, unit_price_fen=832)
    await gateway.state(2, 3, last_seq=1)
    report = sale_report(
        seq=1, nozzle=3, grade="95", volume_ml=36_058, unit_price_fen=832, auth_ref="ord_8f3a2c"
    )
    await gateway.sale(2, report)

    async def stored() -> PumpSale | None:
        return await _sale(link, station_id, 1)

    sale = await eventually(stored, what="sale stored")
    assert (sale.status, sale.locked_by, sale.amount_fen) == ("locked", "ord_8f3a2c", 30_000)
    async with link.db.unit_of_work() as session:
        payable = await service.payable_sales(session, station_id=station_id, nozzle_number=3)
        assert payable == []
        view = await service.clear_sale(
            session, station_id=station_id, fp_number=2, seq=1, order_id="ord_8f3a2c"
        )
        assert view.status == "cleared"

    async def cleared() -> bool:
        return [c["type"] for c in gateway.commands] == ["authorise", "clear_sale"]

    await eventually(cleared, what="clear_sale sent")
    assert gateway.commands[1]["lock_ref"] == "ord_8f3a2c"
    await gateway.disconnect()


async def test_commands_leave_only_after_commit(link: Runtime) -> None:
    station_id, gateway = await _idle_station(link)

    async def failing_order() -> None:
        async with link.db.unit_of_work() as session:
            await service.stop(session, station_id=station_id, fp_number=1)
            raise RuntimeError("the order failed after writing the command")

    with pytest.raises(RuntimeError):
        await failing_order()
    async with link.db.unit_of_work() as session:
        kept = await service.stop(session, station_id=station_id, fp_number=2)

    async def sent() -> bool:
        return (await _command(link, kept)).status == "done"

    await eventually(sent, what="committed stop acked")
    assert [(c["type"], c["fp"], c["command_id"]) for c in gateway.commands] == [("stop", 2, kept)]
    async with link.db.read_only() as session:
        rows = (await session.scalars(select(PumpCommand.id))).all()
    assert list(rows) == [kept]
    await gateway.disconnect()


async def test_second_authorisation_while_one_is_pending_is_busy(link: Runtime) -> None:
    station_id, gateway = await _idle_station(link)
    gateway.auto_ack = False
    async with link.db.unit_of_work() as session:
        await service.authorise(
            session,
            station_id=station_id,
            nozzle_number=1,
            preset=None,
            order_id="o1",
            ttl_seconds=60,
        )
    async with link.db.unit_of_work() as session:
        with pytest.raises(PumpBusy):
            await service.authorise(
                session,
                station_id=station_id,
                nozzle_number=2,
                preset=None,
                order_id="o2",
                ttl_seconds=60,
            )
    await gateway.disconnect()


async def test_rejected_lock_is_undone_and_alerted(link: Runtime) -> None:
    station_id, gateway = await _idle_station(link)
    await gateway.sale(
        1, sale_report(seq=1, nozzle=1, grade="92", volume_ml=10_000, unit_price_fen=776)
    )

    async def stored() -> PumpSale | None:
        return await _sale(link, station_id, 1)

    await eventually(stored, what="sale stored")
    gateway.reject["lock_sale"] = "sale_locked"
    async with link.db.unit_of_work() as session:
        view = await service.lock_sale(
            session, station_id=station_id, fp_number=1, seq=1, order_id="ord_1", ttl_seconds=300
        )
        assert (view.status, view.locked_by) == ("locked", "ord_1")

    async def undone() -> PumpSale | None:
        sale = await _sale(link, station_id, 1)
        return sale if sale is not None and sale.status == "payable" else None

    sale = await eventually(undone, what="lock undone")
    assert sale.locked_by is None
    async with link.db.read_only() as session:
        alerts = await pump_alerts.list_alerts(session, station_id=station_id)
        seen = [(a.kind, a.code, a.occurrences) for a in alerts]
    assert seen == [("command_rejected", "sale_locked", 1)]
    await gateway.disconnect()


async def test_expired_lock_is_unlocked_before_the_next_order_locks(link: Runtime) -> None:
    station_id, gateway = await _idle_station(link)
    await gateway.sale(
        1, sale_report(seq=1, nozzle=1, grade="92", volume_ml=10_000, unit_price_fen=776)
    )

    async def stored() -> PumpSale | None:
        return await _sale(link, station_id, 1)

    await eventually(stored, what="sale stored")
    async with link.db.unit_of_work() as session:
        await service.lock_sale(
            session, station_id=station_id, fp_number=1, seq=1, order_id="ord_a", ttl_seconds=60
        )

    async def first_lock_acked() -> bool:
        return len(gateway.answered) == 1

    await eventually(first_lock_acked, what="lock of ord_a acknowledged")
    clock.travel(timedelta(seconds=61))
    async with link.db.unit_of_work() as session:
        assert [
            s.seq
            for s in await service.payable_sales(session, station_id=station_id, nozzle_number=1)
        ] == [1]
        view = await service.lock_sale(
            session, station_id=station_id, fp_number=1, seq=1, order_id="ord_b", ttl_seconds=60
        )
        assert view.locked_by == "ord_b"

    async def three() -> bool:
        return len(gateway.commands) == 3

    await eventually(three, what="lock, unlock, lock")
    assert [(c["type"], c["lock_ref"]) for c in gateway.commands] == [
        ("lock_sale", "ord_a"),
        ("unlock_sale", "ord_a"),
        ("lock_sale", "ord_b"),
    ]
    await gateway.disconnect()


async def test_command_to_offline_gateway_is_409(link: Runtime, client: httpx.AsyncClient) -> None:
    station_id, gateway = await _idle_station(link)
    assert link.broker is not None
    await link.broker.drop(gateway.client.client_id)  # the broker publishes the last will

    async def offline() -> bool:
        return (await fp_row(link, station_id, 1)).state == 10

    await eventually(offline, what="fp offline")
    headers = await make_staff_token(link, role="attendant", station_ids=(station_id,))
    resp = await client.post(
        f"/api/v1/admin/stations/{station_id}/fuelling-points/1/stop", headers=headers
    )
    assert resp.status_code == 409, resp.text
    assert resp.json()["code"] == "pump_offline"
    async with link.db.unit_of_work() as session:
        with pytest.raises(PumpOffline):
            await service.authorise(
                session,
                station_id=station_id,
                nozzle_number=1,
                preset=None,
                order_id="o",
                ttl_seconds=60,
            )
    await gateway.disconnect()
