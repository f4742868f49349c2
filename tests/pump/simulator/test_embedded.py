"""The embedded demo: the in-process simulator drives the server; speakers answer."""

from __future__ import annotations

from sqlalchemy import select

from forecourt.notify.speaker import SpeakerSender, announce
from forecourt.pump.models import Announcement, PumpSale
from forecourt.runtime import Runtime
from tests.pump.helpers import eventually, make_pump_station


async def test_in_process_simulator_fuels_and_its_speaker_plays(link: Runtime) -> None:
    station = await make_pump_station(link)
    link.settings = link.settings.model_copy(update={"simulator_speed": 50.0})
    await link.start_simulator()
    assert link.simulator is not None
    sender = SpeakerSender(db=link.db, settings=link.settings, connect=link.link_client)
    await sender.start()
    try:

        async def stored_sales() -> int:
            async with link.db.read_only() as session:
                stmt = select(PumpSale.volume_ml).where(PumpSale.station_id == station.id)
                volumes = (await session.scalars(stmt)).all()
            assert all(20_000 <= v <= 60_000 for v in volumes)
            return len(volumes)

        await eventually(stored_sales, within=20, what="traffic sales stored by the server")
        async with link.db.unit_of_work() as session:
            message_id = await announce(session, station_id=station.id, text="微信支付 8.00 元")

        async def played() -> bool:
            async with link.db.read_only() as session:
                row = await session.get(Announcement, message_id)
                return row is not None and row.status == "played"

        await eventually(played, what="announcement played by the simulated speaker")
        (speaker,) = link.simulator.speakers
        assert speaker.heard == ["微信支付 8.00 元"]
    finally:
        await sender.stop()
        await link.simulator.stop()
        link.simulator = None
