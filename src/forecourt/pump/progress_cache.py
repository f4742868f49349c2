"""Fuelling progress kept in memory by the pump link and persisted at most every few seconds.

A progress report that only moves the running totals is applied in memory on a `PointView`
(the domain FuellingPoint as this process last committed or confirmed it), deduplicated by
`event_seq`, and published live at once, without a unit of work. Anything more (no view yet,
the first ml turning Started into Fuelling, a preset alert, a refusal) takes the unit of work.

The newest in-memory progress of a fuelling point (`Pending`) is written by `flush` at most
every `interval` seconds per fuelling point, and by any unit of work of the link that locks the
row before changing it (`ProgressUnit.overlay`: a state change persists the progress first).
Both writes are conditional: only while the row's `last_event_seq` is lower and its state is
the one the progress was applied in, so a stale value never overwrites a newer one written by
this or another API node. A failed conditional write drops the view (the next report takes the
unit of work and reloads the row); a view not confirmed for a while expires the same way.

The link also applies state reports to a view at once and stores them in a later unit of work
(`docs/pumps.md`). Every message gets an arrival `order`; a view remembers the order of the
last message applied to it, pending progress the order of its report. A unit of work only
stores and resolves pending progress older than its own message, and only installs its view
when no newer message was applied in memory meanwhile. `held` (set by the link) keeps `flush`
away from fuelling points whose earlier messages are still waiting for their unit of work.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import Database
from forecourt.pump import mirror
from forecourt.pump.domain import FuellingPoint, SaleBuffer
from forecourt.pump.models import FuellingPointRow

Key = tuple[str, int]  # (station code, fuelling point number): the topic's address


@dataclass
class PointView:
    """A fuelling point as this process last committed or confirmed it (the fast path's basis)."""

    station_id: int
    fp_id: int
    point: FuellingPoint
    event_seq: int
    confirmed_at: float
    order: int = 0


@dataclass(eq=False)
class Pending:
    """The newest progress applied in memory and not yet stored."""

    key: Key
    fp_id: int
    event_seq: int
    state: int
    progress: dict[str, Any] | None
    order: int = 0


class ProgressCache:
    """Views and pending progress per fuelling point (one per process, used by the link)."""

    def __init__(self, interval: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.view_ttl = 2 * interval + 1.0
        self.clock = clock
        self.views: dict[Key, PointView] = {}
        self.pending: dict[int, Pending] = {}
        self.stored_at: dict[int, float] = {}
        self.held: Callable[[Key], bool] | None = None
        self._orders = itertools.count(1)

    def next_order(self) -> int:
        """The arrival order of the next message (increasing for the whole process)."""
        return next(self._orders)

    # -- the fast path ---------------------------------------------------------------------

    def view(self, key: Key) -> PointView | None:
        """The fuelling point's view, if it was committed or confirmed recently enough."""
        view = self.views.get(key)
        if view is not None and self.clock() - view.confirmed_at > self.view_ttl:
            del self.views[key]
            return None
        return view

    def applied(
        self,
        key: Key,
        view: PointView,
        point: FuellingPoint,
        event_seq: int,
        *,
        order: int | None = None,
        pending: bool = True,
    ) -> None:
        """A report was applied in memory on a copy of the view's point.

        `pending`: the new progress is to be stored by `flush` (a progress report); a state
        report is stored by its own unit of work instead.
        """
        order = self.next_order() if order is None else order
        changed = point.progress != view.point.progress
        view.point, view.event_seq, view.order = point, event_seq, order
        if changed and pending:
            progress = mirror.progress_to_json(point.progress)
            self.pending[view.fp_id] = Pending(
                key, view.fp_id, event_seq, int(point.state), progress, order
            )

    def forget(self, code: str, number: int | None = None) -> None:
        """Drop the views of a station (or one fuelling point); pending progress stays."""
        if number is not None:
            self.views.pop((code, number), None)
            return
        for key in [k for k in self.views if k[0] == code]:
            del self.views[key]

    # -- units of work ---------------------------------------------------------------------

    def begin(self, code: str, *, order: int | None = None) -> ProgressUnit:
        """What one unit of work of the link stores and sees for the station `code`.

        `order`: the arrival order of its message (a new one when not given).
        """
        return ProgressUnit(self, code, self.next_order() if order is None else order)

    def commit(self, unit: ProgressUnit) -> None:
        """The unit of work committed: resolve its pending progress, install its views.

        A view is not replaced by the unit's when a newer message was applied to it in memory
        meanwhile; it is confirmed instead.
        """
        now = self.clock()
        for pending in unit.resolved:
            if self.pending.get(pending.fp_id) is pending:
                del self.pending[pending.fp_id]
        for fp_id in unit.stored:
            self.stored_at[fp_id] = now
        for number in unit.forgotten:
            self.forget(unit.code, number)
        for key, view in unit.views.items():
            current = self.views.get(key)
            if current is not None and current.order > unit.order:
                current.confirmed_at = now
                continue
            view.confirmed_at, view.order = now, unit.order
            self.views[key] = view

    # -- flushing --------------------------------------------------------------------------

    def due(self, *, everything: bool = False) -> list[Pending]:
        """Pending progress whose fuelling point was not stored for `interval` seconds."""
        now = self.clock()
        held = self.held
        return [
            p
            for p in self.pending.values()
            if (everything or now - self.stored_at.get(p.fp_id, -1e18) >= self.interval)
            and (held is None or not held(p.key))
        ]

    async def flush(self, db: Database, *, now: datetime, everything: bool = False) -> int:
        """Store the due progress in one unit of work; how many rows took it."""
        due = sorted(self.due(everything=everything), key=lambda p: p.fp_id)  # lock order
        if not due:
            return 0
        async with db.unit_of_work() as session:
            results = [await store(session, p, now=now) for p in due]
        self.flushed(zip(due, results, strict=True))
        return sum(results)

    def flushed(self, results: Iterable[tuple[Pending, bool]]) -> None:
        """Record the outcome of conditional writes (a refused one drops the view)."""
        now = self.clock()
        for pending, stored in results:
            self.stored_at[pending.fp_id] = now
            current = self.pending.get(pending.fp_id)
            if current is pending:
                del self.pending[pending.fp_id]
            elif current is None:
                continue  # a unit of work of this process resolved it meanwhile
            view = self.views.get(pending.key)
            if view is None or view.fp_id != pending.fp_id:
                continue
            if stored:
                view.confirmed_at = now
            else:
                del self.views[pending.key]  # the row moved on without us: reload it


async def store(session: AsyncSession, pending: Pending, *, now: datetime) -> bool:
    """Write pending progress unless the row has a newer event_seq or another state."""
    stmt = (
        update(FuellingPointRow)
        .where(
            FuellingPointRow.id == pending.fp_id,
            FuellingPointRow.last_event_seq < pending.event_seq,
            FuellingPointRow.state == pending.state,
        )
        .values(progress=pending.progress, last_event_seq=pending.event_seq, updated_at=now)
    )
    result = await (await session.connection()).execute(stmt)
    return result.rowcount == 1


@dataclass
class ProgressUnit:
    """What one unit of work wrote from and learnt for the cache (applied only on commit)."""

    cache: ProgressCache | None
    code: str
    order: int = 0
    resolved: list[Pending] = field(default_factory=list)
    stored: set[int] = field(default_factory=set)
    views: dict[Key, PointView] = field(default_factory=dict)
    forgotten: list[int | None] = field(default_factory=list)

    def overlay(self, row: FuellingPointRow) -> None:
        """Put the in-memory progress on the locked row first, when it is still the newest."""
        if self.cache is None:
            return
        pending = self.cache.pending.get(row.id)
        if pending is None or pending.order > self.order:
            return  # none, or newer than this unit's message: stored after it
        self.resolved.append(pending)
        if pending.event_seq > row.last_event_seq and pending.state == row.state:
            row.progress = pending.progress
            row.last_event_seq = pending.event_seq
            self.stored.add(row.id)

    def seen(
        self, station_id: int, row: FuellingPointRow, point: FuellingPoint, *, stored: bool
    ) -> None:
        """The row as this unit of work leaves it (`stored`: its progress was written)."""
        if self.cache is None:
            return
        bare = dataclasses.replace(point, buffer=SaleBuffer())
        self.views[(self.code, row.number)] = PointView(
            station_id, row.id, bare, row.last_event_seq, confirmed_at=0.0, order=self.order
        )
        if stored:
            self.stored.add(row.id)

    def forget(self, number: int | None = None) -> None:
        """Drop the view of one fuelling point (or of the whole station) on commit."""
        if number is not None:
            self.views.pop((self.code, number), None)
        else:
            self.views.clear()
        self.forgotten.append(number)
