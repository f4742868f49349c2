"""Marks and cancels by id: lists of any length, only rows still held, on both backends."""

from __future__ import annotations

from datetime import timedelta

from forecourt.db import Database
from forecourt.outbox import publish, repository
from forecourt.outbox.retry import RetryPolicy
from tests.outbox.conftest import T0, load_event

LEASE_END = T0 + timedelta(seconds=60)


async def claimed_events(db: Database, n: int) -> list[int]:
    """Publish `n` events and claim them all until LEASE_END; their ids."""
    async with db.unit_of_work() as session:
        rows = [publish(session, "order.paid", {"n": i}) for i in range(n)]
        await session.flush()
        for row in rows:
            row.available_at = T0
    async with db.unit_of_work() as session:
        claimed = await repository.claim(session, now=T0, lease_until=LEASE_END, limit=n)
    assert [c.id for c in claimed] == sorted(r.id for r in rows)
    return [c.id for c in claimed]


async def test_mark_dispatched_marks_one_or_several_ids_still_held(db: Database) -> None:
    one, *several, retried, done = await claimed_events(db, 5)
    async with db.unit_of_work() as session:
        assert await repository.mark_dispatched(session, [done], lease_until=LEASE_END, now=T0)
    async with db.unit_of_work() as session:  # a retry was scheduled meanwhile: a new lease
        await repository.reschedule(
            session, retried, attempts=0, error="x", now=T0, policy=RetryPolicy()
        )
    at = T0 + timedelta(seconds=5)
    async with db.unit_of_work() as session:
        assert await repository.mark_dispatched(session, [one], lease_until=LEASE_END, now=at) == 1
        marked = await repository.mark_dispatched(
            session, [*several, retried, done], lease_until=LEASE_END, now=at
        )
        assert marked == len(several)
    for event_id in (one, *several):
        assert (await load_event(db, event_id)).dispatched_at == at
    assert (await load_event(db, retried)).dispatched_at is None
    assert (await load_event(db, done)).dispatched_at == T0


async def test_cancel_deletes_only_an_event_not_handed_on(db: Database) -> None:
    waiting, handed_on = await claimed_events(db, 2)
    async with db.unit_of_work() as session:
        await repository.mark_dispatched(session, [handed_on], lease_until=LEASE_END, now=T0)
    async with db.unit_of_work() as session:
        assert await repository.cancel(session, waiting) is True
        assert await repository.cancel(session, waiting) is False  # gone
        assert await repository.cancel(session, handed_on) is False
    async with db.sessions() as session:
        assert await repository.get(session, waiting) is None
    assert (await load_event(db, handed_on)).dispatched_at == T0
