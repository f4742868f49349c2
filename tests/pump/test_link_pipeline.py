"""The link's two stages: state reports live before their commit, group commit, corrections."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import update

from forecourt.pump.effects import Effects
from forecourt.pump.link.server import Job
from forecourt.pump.models import FuellingPointRow
from forecourt.pump.progress_cache import ProgressUnit
from forecourt.runtime import Runtime
from tests.pump.helpers import (
    ScriptedGateway,
    eventually,
    fp_row,
    make_pump_station,
    sale_count,
    sale_report,
)

Results = list[tuple[Job, Effects, ProgressUnit | None]]


async def _calling(link: Runtime) -> tuple[int, ScriptedGateway]:
    """A station whose fp 1 is Calling with nozzle 1, as committed and as the link's view."""
    station = await make_pump_station(link)
    gateway = ScriptedGateway.on(link, station.code)
    await gateway.connect()
    await gateway.state(1, 3, last_seq=0)
    await gateway.state(1, 4, nozzle=1)

    async def calling() -> bool:
        return (await fp_row(link, station.id, 1)).state == 4 and not link.pumps._held

    await eventually(calling, what="fp 1 calling")
    return station.id, gateway


async def test_state_goes_live_before_its_commit_and_a_sale_is_acked_after_it(
    link: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    station_id, gateway = await _calling(link)
    pumps = link.pumps
    original = pumps._commit
    release = asyncio.Event()
    batches: list[int] = []

    async def held(jobs: list[Job]) -> Results:
        batches.append(len(jobs))
        await release.wait()
        return await original(jobs)

    monkeypatch.setattr(pumps, "_commit", held)
    async with link.live.subscribe(station_id) as live:
        await gateway.state(1, 5, nozzle=1)
        await gateway.state(1, 8, nozzle=1)
        got = [await live.get(5.0), await live.get(5.0)]
        assert [m and (m["type"], m["state"]) for m in got] == [
            ("fp", "Authorised"),
            ("fp", "Fuelling"),
        ]
        assert (await fp_row(link, station_id, 1)).state == 4  # nothing committed yet
        report = sale_report(seq=1, nozzle=1, grade="92", volume_ml=10_000, unit_price_fen=776)
        await gateway.state(1, 3, last_seq=1)
        await gateway.sale(1, report)
        await asyncio.sleep(0.2)
        assert gateway.sale_acks == []  # a sale is answered only once it is stored
        assert await sale_count(link, station_id) == 0
        release.set()

        async def acked() -> bool:
            return len(gateway.sale_acks) == 1

        await eventually(acked, what="the sale ack")
    assert gateway.sale_acks[0]["status"] == "accepted"
    assert await sale_count(link, station_id) == 1
    row = await fp_row(link, station_id, 1)
    assert (row.state, row.last_seq) == (3, 1)
    assert max(batches) > 1  # the messages queued meanwhile were stored in one unit of work
    await gateway.disconnect()


async def test_a_state_published_early_and_then_refused_is_corrected(link: Runtime) -> None:
    station_id, gateway = await _calling(link)
    # Another node closed the fuelling point: this node's view still says Calling.
    async with link.db.unit_of_work() as session:
        await session.execute(
            update(FuellingPointRow)
            .where(FuellingPointRow.station_id == station_id, FuellingPointRow.number == 1)
            .values(state=2, nozzle_out=None)
        )
    async with link.live.subscribe(station_id) as live:
        await gateway.state(1, 5, nozzle=1)  # legal from Calling, illegal from Closed
        first = await live.get(5.0)
        second = await live.get(5.0)
    assert first is not None
    assert (first["type"], first["state"]) == ("fp", "Authorised")
    assert second == {"type": "resync", "sent_at": second and second["sent_at"]}
    row = await fp_row(link, station_id, 1)
    assert row.state == 2
    assert (gateway.code, 1) not in link.pumps.progress.views  # the next report reloads the row
    await gateway.disconnect()


async def test_a_duplicate_state_report_needs_no_unit_of_work(
    link: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    station_id, gateway = await _calling(link)
    report = await gateway.state(1, 5, nozzle=1)

    async def authorised() -> bool:
        return (await fp_row(link, station_id, 1)).state == 5 and not link.pumps._held

    await eventually(authorised, what="fp 1 authorised")
    committed: list[Any] = []
    original = link.pumps._commit

    async def counting(jobs: list[Job]) -> Results:
        committed.extend(jobs)
        return await original(jobs)

    monkeypatch.setattr(link.pumps, "_commit", counting)
    handled = link.pumps.handled
    await gateway.state(1, 5, nozzle=1, event_seq=report.event_seq)  # a QoS 1 repeat

    async def repeat_handled() -> bool:
        return link.pumps.handled > handled

    await eventually(repeat_handled, what="the repeat handled")
    assert committed == []
    await gateway.disconnect()
