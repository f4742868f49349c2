"""Arrival order in the progress cache: units of work never undo what memory applied later."""

from __future__ import annotations

from forecourt.pump.domain import FPState, FuellingPoint, Nozzle
from forecourt.pump.models import FuellingPointRow
from forecourt.pump.progress_cache import PointView, ProgressCache

KEY = ("T1", 1)


def _point(state: FPState) -> FuellingPoint:
    return FuellingPoint(number=1, nozzles={1: Nozzle(1, "92")}, state=state, nozzle=1)


def _row(state: FPState, last_event_seq: int) -> FuellingPointRow:
    return FuellingPointRow(
        id=7, station_id=3, number=1, state=int(state), last_event_seq=last_event_seq
    )


def test_a_unit_of_work_leaves_newer_progress_pending() -> None:
    cache = ProgressCache(2.0)
    view = PointView(3, 7, _point(FPState.FUELLING), 10, confirmed_at=0.0)
    cache.views[KEY] = view
    unit = cache.begin("T1")  # its message arrived first...
    later = cache.next_order()
    fuelled = _point(FPState.FUELLING)
    fuelled.flow(volume_ml=1_000, amount_fen=776, unit_price_fen=776)
    cache.applied(KEY, view, fuelled, 11, order=later)  # ...this progress after it
    row = _row(FPState.FUELLING, 10)
    unit.overlay(row)
    assert row.progress is None  # not written ahead of the unit's own message
    cache.commit(unit)
    assert cache.pending[7].order == later  # still to be stored by flush


def test_a_unit_of_work_keeps_a_view_memory_moved_past_it() -> None:
    cache = ProgressCache(2.0)
    unit = cache.begin("T1")
    row = _row(FPState.AUTHORISED, 10)
    unit.seen(3, row, _point(FPState.AUTHORISED), stored=False)
    newer = PointView(3, 7, _point(FPState.FUELLING), 12, confirmed_at=0.0)
    newer.order = cache.next_order()
    cache.views[KEY] = newer
    cache.commit(unit)
    assert cache.views[KEY] is newer
    assert newer.confirmed_at > 0.0  # confirmed instead
    older = cache.begin("T1", order=newer.order + 1)
    older.seen(3, row, _point(FPState.AUTHORISED), stored=False)
    cache.commit(older)
    assert cache.views[KEY].point.state is FPState.AUTHORISED
