"""Progress reports on the fast path: in memory, live at once, stored later and conditionally."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, update

from forecourt.kit import clock
from forecourt.kit.money import amount_for_volume
from forecourt.pump import protocol
from forecourt.pump.link.base import Message
from forecourt.pump.models import FuellingPointRow
from forecourt.pump.protocol import TopicKind
from forecourt.runtime import Runtime
from tests.pump.helpers import fp_row, make_pump_station

_seq = itertools.count(1_800_000_000_000)


def state(code: str, fp: int, value: int, *, nozzle: int | None = None) -> Message:
    """A StateReport message with the next event_seq."""
    report = protocol.StateReport(
        event_seq=next(_seq), ts=clock.now(), state=value, nozzle=nozzle, last_seq=0
    )
    return Message(protocol.build_topic(TopicKind.FP_STATE, code, fp), protocol.encode(report))


def progress(code: str, fp: int, volume_ml: int, *, event_seq: int | None = None) -> Message:
    """A FuellingProgress message of nozzle 1 (92, 776 fen/L)."""
    report = protocol.FuellingProgress(
        event_seq=event_seq if event_seq is not None else next(_seq),
        ts=clock.now(),
        nozzle=1,
        grade="92",
        volume_ml=volume_ml,
        amount_fen=amount_for_volume(volume_ml, 776),
        unit_price_fen=776,
    )
    return Message(protocol.build_topic(TopicKind.FP_PROGRESS, code, fp), protocol.encode(report))


def seq_of(message: Message) -> int:
    """The event_seq of a message built here."""
    report = protocol.decode(message.topic, message.payload).message
    assert isinstance(report, protocol.StateReport | protocol.FuellingProgress)
    return report.event_seq


class Commits:
    """Counts writes to fuelling_points (the rows progress is stored in) on the engine."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        # Counting statements rather than engine-wide commits keeps unrelated background
        # work that shares the session-scoped test database out of the figure.
        if statement.lstrip().upper().startswith("UPDATE FUELLING_POINTS"):
            self.count += 1


@pytest.fixture
def commits(runtime: Runtime) -> Iterator[Commits]:
    """Progress writes made while the test runs."""
    counter = Commits()
    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counter)
    yield counter
    event.remove(engine, "before_cursor_execute", counter)


class FakeMonotonic:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def _fuelling(runtime: Runtime) -> tuple[int, str, FakeMonotonic]:
    station = await make_pump_station(runtime)
    ticks = FakeMonotonic()
    runtime.pumps.progress.clock = ticks
    for value, nozzle in ((3, None), (4, 1), (5, 1), (8, 1)):
        effects = await runtime.pumps.handle(state(station.code, 1, value, nozzle=nozzle))
        assert effects.outcome == "applied"
    return station.id, station.code, ticks


async def test_progress_is_published_live_without_a_commit_and_stored_later(
    runtime: Runtime, commits: Commits
) -> None:
    station_id, code, ticks = await _fuelling(runtime)
    link = runtime.pumps
    before = commits.count
    async with runtime.live.subscribe(station_id) as live:
        sent = [progress(code, 1, volume) for volume in (1_000, 2_000, 3_000)]
        for message in sent:
            assert (await link.handle(message)).outcome == "applied"
        assert (await link.handle(sent[1])).outcome == "duplicate"  # by event_seq, in memory
        got = [await live.get(1.0) for _ in range(3)]
    assert [m["progress"]["volume_ml"] for m in got if m] == [1_000, 2_000, 3_000]
    assert all(m and m["state"] == "Fuelling" and "sent_at" in m for m in got)
    assert commits.count == before  # nothing written per message
    row = await fp_row(runtime, station_id, 1)
    assert row.progress is None

    # The latest one is stored once (never stored before: due at once), then rate-limited.
    assert await link.progress.flush(runtime.db, now=clock.now()) == 1
    row = await fp_row(runtime, station_id, 1)
    assert row.progress is not None
    assert row.progress["volume_ml"] == 3_000
    assert row.last_event_seq == seq_of(sent[-1])
    latest = progress(code, 1, 4_000)
    await link.handle(latest)
    assert await link.progress.flush(runtime.db, now=clock.now()) == 0
    ticks.now += link.progress.interval
    assert await link.progress.flush(runtime.db, now=clock.now()) == 1
    row = await fp_row(runtime, station_id, 1)
    assert row.progress is not None
    assert row.progress["volume_ml"] == 4_000
    assert row.last_event_seq == seq_of(latest)
    assert commits.count == before + 2


async def test_a_stale_progress_never_overwrites_a_newer_stored_one(
    runtime: Runtime, commits: Commits
) -> None:
    station_id, code, _ = await _fuelling(runtime)
    link = runtime.pumps
    mine = progress(code, 1, 5_000)
    await link.handle(mine)
    # Another API node applied a newer report of this fuelling point meanwhile.
    newer = seq_of(mine) + 100
    async with runtime.db.unit_of_work() as session:
        await session.execute(
            update(FuellingPointRow)
            .where(FuellingPointRow.station_id == station_id, FuellingPointRow.number == 1)
            .values(
                last_event_seq=newer,
                progress={"volume_ml": 9_000, "amount_fen": 6_984, "unit_price_fen": 776},
            )
        )
    assert await link.progress.flush(runtime.db, now=clock.now()) == 0
    row = await fp_row(runtime, station_id, 1)
    assert (row.last_event_seq, row.progress and row.progress["volume_ml"]) == (newer, 9_000)

    # The refused write dropped the view: the next report goes through a unit of work.
    before = commits.count
    late = progress(code, 1, 8_000, event_seq=newer - 1)
    assert (await link.handle(late)).outcome == "duplicate"
    after = progress(code, 1, 10_000, event_seq=newer + 1)
    assert (await link.handle(after)).outcome == "applied"
    assert commits.count > before
    row = await fp_row(runtime, station_id, 1)
    assert (row.last_event_seq, row.progress and row.progress["volume_ml"]) == (newer + 1, 10_000)


async def test_a_state_change_stores_the_progress_in_memory_first(
    runtime: Runtime, commits: Commits
) -> None:
    station_id, code, _ = await _fuelling(runtime)
    link = runtime.pumps
    before = commits.count
    await link.handle(progress(code, 1, 6_000))
    await link.handle(progress(code, 1, 7_000))
    assert commits.count == before
    suspend = state(code, 1, 9, nozzle=1)
    await link.handle(suspend)
    assert commits.count == before + 1  # one fuelling_points write: progress and state together
    row = await fp_row(runtime, station_id, 1)
    assert (row.state, row.last_event_seq) == (9, seq_of(suspend))
    assert row.progress is not None
    assert row.progress["volume_ml"] == 7_000
    assert not link.progress.pending
    assert await link.progress.flush(runtime.db, now=clock.now()) == 0
