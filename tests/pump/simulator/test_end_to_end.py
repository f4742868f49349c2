"""The simulator against the real server link (in-process broker), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random

from sqlalchemy import select

from forecourt.kit.money import amount_for_volume
from forecourt.pump import service
from forecourt.pump.domain import FPState, Preset
from forecourt.pump.models import PumpSale
from forecourt.pump.simulator import GatewayConfig, GatewaySim, PumpConfig, SimClock
from forecourt.pump.simulator.equipment import load_stations
from forecourt.pump.simulator.links import inprocess_connector
from forecourt.runtime import Runtime
from tests.pump.helpers import PRICES, eventually, fp_row, make_pump_station


async def sales(runtime: Runtime, station_id: int) -> list[PumpSale]:
    async with runtime.db.read_only() as session:
        stmt = select(PumpSale).where(PumpSale.station_id == station_id).order_by(PumpSale.seq)
        rows = list((await session.scalars(stmt)).all())
        session.expunge_all()
        return rows


async def test_simulated_station_through_the_server_link(link: Runtime) -> None:
    station = await make_pump_station(link)
    async with link.db.read_only() as session:
        (spec,) = await load_stations(session, [station.code])
    assert spec.prices == PRICES
    assert [len(fp.nozzles) for fp in spec.fps] == [2, 1]
    assert link.broker is not None
    gateway = GatewaySim(
        spec,
        inprocess_connector(link.broker),
        clock=SimClock(20.0),
        config=GatewayConfig(pump=PumpConfig(sale_resend_seconds=5.0)),
        rng=random.Random(11),
    )
    await gateway.start()
    try:
        # Post-pay: the pump authorises itself, the sale is stored payable and acknowledged.
        gateway.lift(1, 2, target_ml=5_000, hang_after=0.5)

        async def first_sale() -> list[PumpSale]:
            found = await sales(link, station.id)
            return found if found and not gateway.pumps[1].unacked() else []

        (sale,) = await eventually(first_sale, what="post-pay sale stored and acked")
        assert (sale.seq, sale.nozzle_number, sale.volume_ml, sale.status, sale.auth_ref) == (
            1,
            2,
            5_000,
            "payable",
            None,
        )
        assert sale.amount_fen == amount_for_volume(5_000, PRICES["95"])
        assert (sale.totalizer_volume_ml, sale.totalizer_amount_fen) == (5_000, sale.amount_fen)

        # Pay at the pump: the server authorises with a preset; the pump stops exactly there.
        async with link.db.unit_of_work() as session:
            await service.authorise(
                session,
                station_id=station.id,
                nozzle_number=3,
                preset=Preset.amount(5_000),
                order_id="ord_e2e",
                ttl_seconds=120,
            )

        async def authorised() -> bool:
            return gateway.pumps[2].state is FPState.AUTHORISED

        await eventually(authorised, what="fp 2 authorised by the server")
        gateway.lift(2, 3, hang_after=0.5)

        async def preset_sale() -> list[PumpSale]:
            return [s for s in await sales(link, station.id) if s.auth_ref == "ord_e2e"]

        (paid,) = await eventually(preset_sale, what="preset sale stored")
        assert (paid.amount_fen, paid.locked_by, paid.status) == (5_000, "ord_e2e", "locked")
        assert amount_for_volume(paid.volume_ml, PRICES["95"]) == 5_000

        # Link drop while fuelling: the sale made offline reaches the server after reconnect.
        gateway.lift(1, 1, target_ml=6_000, hang_after=0.5)

        async def flowing() -> bool:
            return gateway.pumps[1].state is FPState.FUELLING

        await eventually(flowing, what="fp 1 fuelling")
        drop = asyncio.create_task(gateway.drop_link(6.0))

        async def offline() -> bool:
            return (await fp_row(link, station.id, 1)).state == int(FPState.OFFLINE)

        await eventually(offline, what="server marks fp 1 offline (last will)")
        await drop

        async def offline_sale() -> list[PumpSale]:
            return [s for s in await sales(link, station.id) if s.nozzle_number == 1]

        (late,) = await eventually(offline_sale, what="sale made offline stored")
        assert (late.seq, late.volume_ml) == (2, 6_000)
        row = await fp_row(link, station.id, 1)
        assert (row.state, row.last_seq) == (int(FPState.IDLE), 2)
    finally:
        await gateway.stop()
