"""Stations are handled concurrently by the link; one station's messages stay in order."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from forecourt.pump import protocol
from forecourt.pump.effects import Effects
from forecourt.pump.link.server import Job
from forecourt.pump.link.stations import StationQueues
from forecourt.runtime import Runtime
from tests.pump.helpers import ScriptedGateway, eventually, fp_row, make_pump_station


async def test_queues_run_stations_concurrently_and_keep_each_order() -> None:
    b_done = asyncio.Event()
    seen: list[str] = []

    async def work(item: str) -> None:
        if item == "a1":
            await asyncio.wait_for(b_done.wait(), timeout=5)  # only B can release A
        seen.append(item)
        if item == "b1":
            b_done.set()

    queues: StationQueues[str] = StationQueues(work, maxsize=10)
    for station, item in (("A", "a1"), ("A", "a2"), ("B", "b1"), ("A", "a3")):
        await queues.put(station, item)

    async def all_handled() -> bool:
        return len(seen) == 4

    await eventually(all_handled, what="all items handled")
    assert seen == ["b1", "a1", "a2", "a3"]
    await queues.close()


async def test_a_worker_failure_stops_the_queues() -> None:
    async def work(item: str) -> None:
        raise RuntimeError(f"database down ({item})")

    queues: StationQueues[str] = StationQueues(work, maxsize=10)
    reader = asyncio.create_task(asyncio.sleep(30))
    await queues.put("A", "a1")
    with pytest.raises(RuntimeError, match="database down"):
        await asyncio.wait_for(queues.wait(reader), timeout=5)
    reader.cancel()
    await queues.close()


async def test_the_link_handles_two_stations_at_once_in_order(
    link: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = await make_pump_station(link)
    two = await make_pump_station(link, grades=False)
    pumps = link.pumps
    original = pumps._commit
    two_done = asyncio.Event()
    order: list[tuple[str, int]] = []
    committed: list[str] = []

    async def slow_first_station(jobs: list[Job]) -> list[tuple[Job, Effects, Any]]:
        reports = [(job.code, job.decoded.message) for job in jobs if job.decoded is not None]
        states = [(code, r.state) for code, r in reports if isinstance(r, protocol.StateReport)]
        if states and states[0][0] == one.code and not order:
            order.extend(states)
            # Held until station two's message is handled: impossible one at a time.
            await asyncio.wait_for(two_done.wait(), timeout=5)
        else:
            order.extend(states)
        results = await original(jobs)
        committed.extend(code for code, _ in states)
        if any(code == two.code for code, _ in states):
            two_done.set()
        return results

    monkeypatch.setattr(pumps, "_commit", slow_first_station)
    first = ScriptedGateway.on(link, one.code)
    second = ScriptedGateway.on(link, two.code)
    await first.connect(announce=False)
    await second.connect(announce=False)
    for value, nozzle in ((3, None), (4, 1), (5, 1)):
        await first.state(1, value, nozzle=nozzle)
    await second.state(1, 3)

    async def done() -> bool:
        a, b = await fp_row(link, one.id, 1), await fp_row(link, two.id, 1)
        return (a.state, b.state) == (5, 3)

    await eventually(done, what="both stations applied")
    assert [s for c, s in order if c == one.code] == [3, 4, 5]
    # Station one's first unit of work (maybe all three reports: group commit) was held until
    # station two's committed.
    assert committed.index(two.code) < committed.index(one.code)
    await first.disconnect()
    await second.disconnect()
