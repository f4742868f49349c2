"""The link reads a station's id by code once, and again only after a unit of work failed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import delete, event, update

from forecourt.runtime import Runtime
from forecourt.station.models import Station
from tests.pump.helpers import PumpStation, ScriptedGateway, eventually, fp_row, make_pump_station


@pytest.fixture
def lookups(link: Runtime) -> Iterator[list[str]]:
    """The station-by-code lookups sent while the test runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if sql.startswith("SELECT stations.id") and "stations.code =" in sql:
            seen.append(sql)

    engine = link.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def refused(code: str) -> float:
    """The refusal counter for one code."""
    return REGISTRY.get_sample_value("forecourt_pump_refused_total", {"code": code}) or 0.0


async def _state_stored(
    link: Runtime, gateway: ScriptedGateway, station_id: int, state: int
) -> None:
    await gateway.state(1, state, nozzle=1 if state == 4 else None, last_seq=0)

    async def stored() -> bool:
        return (await fp_row(link, station_id, 1)).state == state

    await eventually(stored, what=f"fp 1 in state {state}")


async def _recode(link: Runtime, station: PumpStation, code: str) -> None:
    async with link.db.unit_of_work() as session:
        await session.execute(update(Station).where(Station.id == station.id).values(code=code))


async def _refusal(link: Runtime, gateway: ScriptedGateway, code: str, state: int = 3) -> None:
    before = refused(code)
    await gateway.state(1, state, nozzle=1 if state == 4 else None, last_seq=0)

    async def counted() -> bool:
        return refused(code) == before + 1

    await eventually(counted, what=f"{code} refusal")


async def test_a_known_code_is_read_once_and_an_unknown_one_every_time(
    link: Runtime, lookups: list[str]
) -> None:
    station = await make_pump_station(link)
    gateway = ScriptedGateway.on(link, station.code)
    await gateway.connect()
    for state in (3, 4, 3):
        await _state_stored(link, gateway, station.id, state)
    assert len(lookups) == 1

    late = ScriptedGateway.on(link, "LATE01")  # its station is created after it spoke
    await late.connect(announce=False)
    await _refusal(link, late, "unknown_station")
    later = await make_pump_station(link, grades=False)
    await _recode(link, later, "LATE01")
    await _state_stored(link, late, later.id, 3)
    await gateway.disconnect()
    await late.disconnect()


async def test_a_station_created_again_under_its_code_is_read_again(link: Runtime) -> None:
    old = await make_pump_station(link)
    gateway = ScriptedGateway.on(link, old.code)
    await gateway.connect()
    await _state_stored(link, gateway, old.id, 3)
    new = await make_pump_station(link, grades=False)  # made first: SQLite reuses a last id
    async with link.db.unit_of_work() as session:
        await session.execute(delete(Station).where(Station.id == old.id))
    await _recode(link, new, old.code)

    await _refusal(link, gateway, "unknown_fp", 4)  # the id kept was the deleted station's
    await _state_stored(link, gateway, new.id, 3)
    await gateway.disconnect()
