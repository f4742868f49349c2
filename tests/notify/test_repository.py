"""Announcement writes: model defaults on insert, batched marks by id on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forecourt.kit import clock
from forecourt.notify import repository
from forecourt.pump.models import Announcement
from forecourt.runtime import Runtime
from tests.fixtures.auth import insert_station

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


async def announcements(runtime: Runtime, statuses: list[str]) -> tuple[int, list[str]]:
    """Announcements at a new station with these statuses: the station id and theirs."""
    station_id = await insert_station(runtime)
    ids = [f"ann_{n}" for n in range(len(statuses))]
    async with runtime.db.unit_of_work() as session:
        for message_id, status in zip(ids, statuses, strict=True):
            row = Announcement(id=message_id, station_id=station_id, text="x", status=status)
            await repository.add(session, row)
    return station_id, ids


async def state(runtime: Runtime, message_id: str) -> tuple[str, int, datetime, datetime | None]:
    """Status, attempts, next attempt and ack time of one announcement."""
    async with runtime.db.sessions() as session:
        row = await repository.get(session, message_id)
        assert row is not None
        return row.status, row.attempts, row.next_attempt_at, row.acked_at


async def test_add_fills_the_model_defaults(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)
    station_id = await insert_station(runtime)
    async with runtime.db.unit_of_work() as session:
        await repository.add(session, Announcement(id="ann_x", station_id=station_id, text="x"))
    async with runtime.db.sessions() as session:
        row = await repository.get(session, "ann_x")
        assert row is not None
        assert (row.speaker, row.status, row.attempts, row.acked_at) == (1, "pending", 0, None)
        assert (row.created_at, row.next_attempt_at) == (NOW, NOW)


async def test_mark_attempts_updates_several_open_announcements(runtime: Runtime) -> None:
    _, (a, b, acked) = await announcements(runtime, ["pending", "sent", "played"])
    later = NOW + timedelta(seconds=30)
    async with runtime.db.unit_of_work() as session:
        await repository.mark_attempts(
            session, [(a, 1, NOW), (b, 2, NOW), (acked, 1, NOW), (a, 3, later)]
        )
    assert (await state(runtime, a))[:3] == ("sent", 3, later)  # a repeat: the last one counts
    assert (await state(runtime, b))[:3] == ("sent", 2, NOW)
    assert (await state(runtime, acked))[:2] == ("played", 0)


async def test_mark_acked_applies_first_acks_to_open_announcements_only(
    runtime: Runtime,
) -> None:
    station_id, (a, b, failed) = await announcements(runtime, ["pending", "sent", "failed"])
    later = NOW + timedelta(seconds=1)
    acks = [(a, "played", NOW), (b, "rejected", NOW), (failed, "played", NOW), ("ann_no", "x", NOW)]
    async with runtime.db.unit_of_work() as session:
        applied = await repository.mark_acked(session, [*acks, (a, "rejected", later)])
    assert sorted(applied) == [(a, station_id, 1), (b, station_id, 1)]
    assert (await state(runtime, a))[0::3] == ("rejected", later)  # a repeat: the last one
    assert (await state(runtime, b))[0::3] == ("rejected", NOW)
    assert (await state(runtime, failed))[0::3] == ("failed", None)
    async with runtime.db.unit_of_work() as session:  # once acked, an ack changes nothing
        assert await repository.mark_acked(session, [(a, "played", NOW)]) == []
    assert (await state(runtime, a))[0::3] == ("rejected", later)
