"""Reference data (tier ladder and the like) kept in process for a few seconds, per database.

The hot paths read data that changes a few times a year on every request; a short-lived copy
per engine saves those statements. A write through this process clears the copy at once and
again after its commit; other API nodes see the change within `ttl_seconds`.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")
_ALL: weakref.WeakSet[RefCache[Any]] = weakref.WeakSet()


def _engine(session: AsyncSession) -> Engine:
    bind = session.sync_session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


class RefCache(Generic[T]):
    """A value loaded through `load` and kept per engine for `ttl_seconds`."""

    def __init__(self, load: Callable[[AsyncSession], Awaitable[T]], *, ttl_seconds: float) -> None:
        self._load = load
        self.ttl_seconds = ttl_seconds
        self._held: weakref.WeakKeyDictionary[Engine, tuple[float, T]] = weakref.WeakKeyDictionary()
        _ALL.add(self)

    async def get(self, session: AsyncSession) -> T:
        """The cached value for the session's database, loaded when missing or stale."""
        engine = _engine(session)
        held = self._held.get(engine)
        now = time.monotonic()
        if held is not None and now - held[0] < self.ttl_seconds:
            return held[1]
        value = await self._load(session)
        self._held[engine] = (now, value)
        return value

    def clear(self) -> None:
        """Forget every copy."""
        self._held.clear()

    def changed_in(self, session: AsyncSession) -> None:
        """The session changes the data: forget it now and again once the change commits."""
        self.clear()
        event.listen(session.sync_session, "after_commit", lambda _s: self.clear(), once=True)


def clear_all() -> None:
    """Forget every cache's copies (after the database was changed behind the code's back)."""
    for cache in list(_ALL):
        cache.clear()
