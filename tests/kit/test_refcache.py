"""The per-database reference-data cache: loads once, expires, and forgets on writes."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import Database
from forecourt.kit import clock, refcache
from forecourt.kit.refcache import RefCache
from forecourt.loyalty import pricing


class Loader:
    """Counts its loads and returns the count."""

    def __init__(self) -> None:
        self.loads = 0

    async def __call__(self, session: AsyncSession) -> int:
        self.loads += 1
        return self.loads


async def test_a_value_is_loaded_once_per_database_until_it_expires(db: Database) -> None:
    loader = Loader()
    cache = RefCache(loader, ttl_seconds=60)
    async with db.read_only() as session:
        assert (await cache.get(session), await cache.get(session)) == (1, 1)
    other = Database("sqlite+aiosqlite:///:memory:")
    try:
        async with other.sessions() as session:
            assert await cache.get(session) == 2  # another database has its own copy
    finally:
        await other.dispose()
    cache.ttl_seconds = 0
    async with db.read_only() as session:
        assert await cache.get(session) == 3


async def test_clear_all_forgets_every_cache(db: Database) -> None:
    loader = Loader()
    cache = RefCache(loader, ttl_seconds=60)
    async with db.read_only() as session:
        await cache.get(session)
        refcache.clear_all()
        assert await cache.get(session) == 2


async def test_a_tier_change_is_seen_at_once_in_this_process(db: Database) -> None:
    async with db.read_only() as session:
        before = await pricing.ladder(session)
    silver = next(t for t in before.tiers if t.code == "silver")
    async with db.unit_of_work() as session:
        rows = [pricing.row_of_tier(t, updated_at=clock.now()) for t in before.tiers]
        next(r for r in rows if r.code == "silver").min_growth += 1
        await pricing.replace_tiers(session, rows)
        async with db.read_only() as reader:
            # Not committed yet: another session still sees the old ladder.
            assert (await pricing.ladder(reader)).get("silver").min_growth == silver.min_growth
    async with db.read_only() as session:
        after = await pricing.ladder(session)
    assert after.get("silver").min_growth == silver.min_growth + 1


@pytest.fixture(autouse=True)
def _fresh() -> None:
    refcache.clear_all()
