"""Nearby station search: backend choice (PostGIS or in-process snapshot), freshness, answers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import time
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import Database
from forecourt.errors import FieldError, ServiceUnavailable, Unprocessable
from forecourt.fuel.repository import current_prices
from forecourt.kit import clock
from forecourt.kit.geo import CoordSystem, convert, haversine_m
from forecourt.kit.money import yuan
from forecourt.kit.navlinks import baidu as baidu_link
from forecourt.kit.navlinks import destination_links
from forecourt.search import repository
from forecourt.search.index import Card, Hit, SpatialIndex
from forecourt.search.schemas import NearbyQuery, Point
from forecourt.station.hours import minute_of_day, open_at_minute, parse_hhmm
from forecourt.tank.repository import StockMarker, stations_touched_since, stock_marker
from forecourt.tank.service import availability as tank_availability
from forecourt.tank.service import availability_of

Backend = Literal["postgis", "memory"]
BackendSetting = Literal["auto", "postgis", "memory"]

_PG_RELATIVE_SLACK = 1e-6
"""PostGIS sphere radius (6371008.7714 m) vs ours (6371008.8 m) differ by 4.5e-9; keep margin."""
_PG_ABSOLUTE_SLACK_M = 1e-3
_GROWTH = 4
AVAILABILITY_UNKNOWN = "unknown"
STOCK_REREAD_SECONDS = 60.0
"""Tank availability is re-read in full at least this often (what the marker cannot see)."""

log = logging.getLogger(__name__)


class NearbySearch:
    """Finds the nearest listed stations; holds the in-process snapshot and keeps it fresh.

    Memory backend: the snapshot (positions, cards, prices) is rebuilt when `invalidate()` was
    called or when a cheap fingerprint of the station, price and grade tables changes; tank
    availability per (station, grade) is kept beside it and refreshed from its own marker (see
    `_refresh_stock`). Both are checked at most every `refresh_seconds`, in a background task:
    requests keep answering from the current snapshot meanwhile and never wait for the database
    (except the very first, after `invalidate()`, or with `refresh_seconds` 0, which checks on
    every request). PostGIS backend: only grade names are cached.
    """

    def __init__(
        self,
        *,
        backend: BackendSetting = "auto",
        refresh_seconds: float = 2.0,
        stock_reread_seconds: float = STOCK_REREAD_SECONDS,
    ) -> None:
        self.setting: BackendSetting = backend
        self.refresh_seconds = refresh_seconds
        self.stock_reread_seconds = stock_reread_seconds
        self._stock: dict[tuple[int, str], str] = {}
        self._stock_marker: StockMarker | None = None
        self._stock_read_at = -math.inf
        self._background: asyncio.Task[None] | None = None
        self._backend: Backend | None = None
        self._index: SpatialIndex | None = None
        self._grades: dict[str, str] | None = None
        self._version: object = None
        self._baseline: repository.FutureBaseline | None = None
        self._checked_at = 0.0
        self._dirty = False
        self._lock = asyncio.Lock()
        # Per (station, coord) the request-independent parts of an answer, in three flat
        # caches whose values hold no containers: the cyclic GC never has to scan them.
        self._docs: dict[tuple[int, str], dict[str, Any]] = {}
        self._services: dict[tuple[int, str], tuple[str, ...]] = {}
        self._navs: dict[tuple[int, str], dict[str, str]] = {}
        self._docs_of: SpatialIndex | None = None
        self.rebuilds = 0

    def invalidate(self) -> None:
        """Make the next query re-read stations, prices and grades (call after a commit)."""
        self._dirty = True

    async def backend(self, db: Database) -> Backend:
        """The backend in use: PostGIS when configured or detected, else the in-process index."""
        if self._backend is None:
            if self.setting == "memory":
                self._backend = "memory"
            else:
                async with db.read_only() as session:
                    has_geog = await repository.has_geography_column(session)
                if self.setting == "postgis" and not has_geog:
                    raise ServiceUnavailable(
                        "spatial_backend=postgis but stations.geog is missing "
                        "(PostgreSQL without PostGIS, or migration 0002 not applied)"
                    )
                self._backend = "postgis" if has_geog else "memory"
        return self._backend

    def _due(self) -> bool:
        return self._dirty or time.monotonic() - self._checked_at >= self.refresh_seconds

    async def _unchanged(self, session: AsyncSession, version: object) -> bool:
        if self._index is None or self._baseline is None or version != self._version:
            return False
        live = await repository.scheduled_still_live(session, baseline=self._baseline)
        return live == self._baseline.count

    async def _refresh(self, db: Database, *, with_index: bool) -> None:
        force = self._dirty
        self._dirty = False
        async with db.read_only() as session:
            if not with_index:  # PostGIS answers from the tables; only grade names are cached
                self._grades = dict(await repository.grades(session))
                self._checked_at = time.monotonic()
                return
            version = await repository.table_version(session)
            await self._refresh_stock(session, force=force)
            if not force and await self._unchanged(session, version):
                self._checked_at = time.monotonic()
                return
            # The snapshot is hundreds of thousands of long-lived objects: the cyclic GC would
            # scan them again and again while they are loaded and built (100+ ms passes) and
            # afterwards. Pause it meanwhile, then move everything alive to the permanent
            # generation (`gc.freeze()`), out of later scans; refcounting still frees a
            # replaced snapshot.
            was_enabled = gc.isenabled()
            gc.disable()
            try:
                built_at = clock.now()
                stations = await repository.listed_stations(session)
                prices, baseline = await repository.live_prices(session, built_at=built_at)
                names = await repository.grades(session)
                self._index = await asyncio.to_thread(
                    SpatialIndex,
                    stations=stations,
                    prices=prices,
                    built_at=built_at.timestamp(),
                    grades=names,
                    version=version,
                )
                del stations, prices
            finally:
                if was_enabled:
                    gc.enable()
        gc.freeze()
        self.rebuilds += 1
        self._version, self._baseline = version, baseline
        self._grades = dict(names)
        self._checked_at = time.monotonic()

    async def _refresh_stock(self, session: AsyncSession, *, force: bool) -> None:
        """Bring tank availability up to date: in full, or for the stations that changed.

        The marker (tanks' count, thresholds and active flags; the newest reading, delivery
        and sale ids) is read first, so a change made while the availability is read is seen
        again next time. New readings, deliveries and sales re-read only their stations; a
        change to the tanks themselves re-reads everything, and so does every
        `stock_reread_seconds` (what no marker sees, such as a nozzle moved to another tank).
        """
        marker = await stock_marker(session)
        known = self._stock_marker
        now = time.monotonic()
        if (
            force
            or known is None
            or marker.tanks != known.tanks
            or now - self._stock_read_at >= self.stock_reread_seconds
        ):
            self._stock = await availability_of(session)
            self._stock_read_at = now
        elif marker != known:
            touched = await stations_touched_since(session, since=known)
            if touched:
                fresh = await availability_of(session, station_ids=touched)
                stock = {k: v for k, v in self._stock.items() if k[0] not in touched}
                stock.update(fresh)
                self._stock = stock  # swapped whole: a request never sees half an update
        self._stock_marker = marker

    def availability(self, station_id: int, grade: str) -> str:
        """Tank availability of a grade at a station as of the last check (memory backend)."""
        return self._stock.get((station_id, grade), AVAILABILITY_UNKNOWN)

    def _ready(self, *, with_index: bool) -> bool:
        return self._grades is not None and (self._index is not None or not with_index)

    async def _ensure_fresh(self, db: Database, *, with_index: bool) -> None:
        ready = self._ready(with_index=with_index)
        if ready and not self._due():
            return
        if ready and not self._dirty and self.refresh_seconds > 0:
            self._refresh_later(db, with_index=with_index)
            return
        if ready and self._lock.locked() and not self._dirty:
            return  # someone else refreshes; answer from the current snapshot meanwhile
        async with self._lock:
            if not self._ready(with_index=with_index) or self._due():
                await self._refresh(db, with_index=with_index)

    def _refresh_later(self, db: Database, *, with_index: bool) -> None:
        """Check freshness in a background task (one at a time); the request goes on."""
        if self._background is None or self._background.done():
            self._background = asyncio.create_task(
                self._refresh_in_background(db, with_index=with_index), name="nearby-refresh"
            )

    async def _refresh_in_background(self, db: Database, *, with_index: bool) -> None:
        try:
            async with self._lock:
                if self._due():
                    await self._refresh(db, with_index=with_index)
        except Exception as exc:  # keep answering from the current snapshot; retry when due
            self._checked_at = time.monotonic()
            log.warning(
                "nearby snapshot not refreshed", extra={"error": f"{type(exc).__name__}: {exc}"}
            )

    async def close(self) -> None:
        """Cancel a background refresh in progress (at shutdown)."""
        task, self._background = self._background, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def grade_names(self, db: Database) -> dict[str, str]:
        """Known grade codes and their names, in display order (refreshed like the index)."""
        await self._ensure_fresh(db, with_index=await self.backend(db) == "memory")
        assert self._grades is not None
        return self._grades

    async def index(self, db: Database) -> SpatialIndex:
        """The in-process snapshot, refreshed if due."""
        await self._ensure_fresh(db, with_index=True)
        assert self._index is not None
        return self._index

    async def nearest(
        self,
        db: Database,
        *,
        lat: float,
        lng: float,
        k: int,
        radius_m: float,
        grade: str | None,
        open_only: bool,
        now: datetime,
    ) -> list[Hit]:
        """The `k` nearest listed stations to a WGS-84 point, sorted by (distance, id)."""
        minute = minute_of_day(now) if open_only else None
        if await self.backend(db) == "postgis":
            async with db.read_only() as session:
                return await postgis_nearest(
                    session,
                    lat=lat,
                    lng=lng,
                    k=k,
                    radius_m=radius_m,
                    grade=grade,
                    open_minute=minute,
                    now=now,
                )
        index = await self.index(db)
        return index.nearest(
            lat, lng, k=k, radius_m=radius_m, at=now.timestamp(), grade=grade, open_minute=minute
        )

    def static_doc(self, index: SpatialIndex, station_id: int, coord: CoordSystem) -> StaticDoc:
        """The request-independent parts of a station's answer (kept per snapshot)."""
        if index is not self._docs_of:
            self._docs.clear()
            self._services.clear()
            self._navs.clear()
            self._docs_of = index
        key = (station_id, coord)
        doc = self._docs.get(key)
        if doc is None:
            card = index.card(station_id)
            if card is None:
                return None
            doc, services, nav = _static_doc(card, index.gcj02(station_id), coord)
            self._docs[key], self._services[key], self._navs[key] = doc, services, nav
            return doc, services, nav
        return doc, self._services[key], self._navs[key]


async def postgis_nearest(
    session: AsyncSession,
    *,
    lat: float,
    lng: float,
    k: int,
    radius_m: float,
    grade: str | None,
    open_minute: int | None,
    now: datetime,
) -> list[Hit]:
    """Exact k nearest by haversine using PostGIS KNN candidates and a growing window.

    PostGIS orders by its own sphere distance; candidates are re-measured with haversine and
    accepted once the k-th is closer than any station beyond the window could be.
    """
    want = k + 1 + (k + 1 if open_minute is not None else 0)
    within = radius_m * (1.0 + _PG_RELATIVE_SLACK) + 1.0
    while True:
        candidates = await repository.postgis_nearest(
            session, lat=lat, lng=lng, within_m=within, limit=want, grade=grade, at=now
        )
        found: list[tuple[float, int]] = []
        for c in candidates:
            if open_minute is not None and not open_at_minute(
                open_24h=c.open_24h,
                opens=parse_hhmm(c.opens_at),
                closes=parse_hhmm(c.closes_at),
                minute=open_minute,
            ):
                continue
            distance = haversine_m(lat, lng, c.lat, c.lng)
            if distance <= radius_m:
                found.append((distance, c.id))
        found.sort()
        hits = [Hit(sid, d) for d, sid in found[:k]]
        if len(candidates) < want:
            return hits
        bound = candidates[-1].knn_m * (1.0 - _PG_RELATIVE_SLACK) - _PG_ABSOLUTE_SLACK_M
        if len(found) >= k and found[k - 1][0] < bound:
            return hits
        if len(found) < k and radius_m < bound:
            return hits
        want *= _GROWTH


def _check_grade(grade: str | None, names: dict[str, str]) -> None:
    if grade is not None and grade not in names:
        reason = f"unknown grade {grade!r}; known: {', '.join(names) or 'none'}"
        raise Unprocessable(f"query.grade: {reason}", errors=[FieldError("query.grade", reason)])


async def _postgis_cards(
    session: AsyncSession, hits: list[Hit], *, grade: str | None, now: datetime
) -> tuple[dict[int, Card], dict[int, list[tuple[str, int]]]]:
    stations = await repository.stations_by_ids(session, ids=[h.station_id for h in hits])
    cards = {
        s.id: Card(
            id=s.id,
            code=s.code,
            name=s.name,
            brand=s.brand,
            address=s.address,
            phone=s.phone,
            lat=s.lat,
            lng=s.lng,
            open_24h=s.open_24h,
            opens_at=s.opens_at,
            closes_at=s.closes_at,
            services=tuple(s.services or ()),
            status=s.status,
        )
        for s in stations.values()
    }
    rows = await current_prices(session, station_ids=list(cards), at=now, grade=grade)
    prices: dict[int, list[tuple[str, int]]] = {}
    for row in rows:
        prices.setdefault(row.station_id, []).append((row.grade_code, row.price_fen))
    return cards, prices


async def nearby(*, search: NearbySearch, db: Database, query: NearbyQuery) -> dict[str, Any]:
    """Listed stations near a point with prices, opening state and navigation links.

    Returns the `NearbyPage` document as plain data (built without model validation: this is
    the hottest read path; tests validate answers against the schema). The memory backend
    answers from its snapshot (tank availability included) without touching the database.
    """
    now = clock.now()
    names = await search.grade_names(db)
    _check_grade(query.grade, names)
    lat, lng = convert(query.lat, query.lng, query.coord, "wgs84")
    minute = minute_of_day(now)
    origin = convert(query.lat, query.lng, query.coord, "gcj02")
    items: list[dict[str, Any]] = []
    if await search.backend(db) == "postgis":
        async with db.read_only() as session:
            hits = await postgis_nearest(
                session,
                lat=lat,
                lng=lng,
                k=query.limit,
                radius_m=query.radius_m,
                grade=query.grade,
                open_minute=minute if query.open_now else None,
                now=now,
            )
            cards, prices = await _postgis_cards(session, hits, grade=query.grade, now=now)
            stock = (
                await tank_availability(session, station_ids=list(cards))
                if query.grade is not None and cards
                else {}
            )
        order = {code: i for i, code in enumerate(names)}
        for hit in hits:
            card = cards.get(hit.station_id)
            if card is None or card.status != repository.LISTED_STATUS:
                continue  # changed since the candidates were chosen
            is_open_now = open_at_minute(
                open_24h=card.open_24h,
                opens=parse_hhmm(card.opens_at),
                closes=parse_hhmm(card.closes_at),
                minute=minute,
            )
            ordered = sorted(prices.get(card.id, ()), key=lambda p: order.get(p[0], len(order)))
            gcj = convert(card.lat, card.lng, "wgs84", "gcj02")
            item = _item(
                _static_doc(card, gcj, query.coord),
                query=query,
                distance_m=hit.distance_m,
                open_now=is_open_now,
                prices=[_price_doc(g, names.get(g, g), fen) for g, fen in ordered],
                baidu=baidu_link(lat=gcj[0], lng=gcj[1], name=card.name, origin=origin),
                availability=stock.get((card.id, query.grade or ""), AVAILABILITY_UNKNOWN),
            )
            if item is not None:
                items.append(item)
    else:
        index = await search.index(db)
        at = now.timestamp()
        hits = index.nearest(
            lat,
            lng,
            k=query.limit,
            radius_m=query.radius_m,
            at=at,
            grade=query.grade,
            open_minute=minute if query.open_now else None,
        )
        for hit in hits:
            sid = hit.station_id
            doc = search.static_doc(index, sid, query.coord)
            if doc is None:
                continue
            gcj = index.gcj02(sid)
            item = _item(
                doc,
                query=query,
                distance_m=hit.distance_m,
                open_now=index.is_open(sid, minute),
                prices=[
                    _price_doc(g, names.get(g, g), fen)
                    for g, fen in index.prices_at(sid, at, query.grade)
                ],
                baidu=baidu_link(lat=gcj[0], lng=gcj[1], name=doc[0]["name"], origin=origin),
                availability=search.availability(sid, query.grade) if query.grade else None,
            )
            if item is not None:
                items.append(item)
    return {
        "items": items,
        "origin": {"lat": query.lat, "lng": query.lng, "coord": query.coord},
        "radius_m": query.radius_m,
        "count": len(items),
    }


StaticDoc = tuple[dict[str, Any], tuple[str, ...], dict[str, str]] | None


def _static_doc(
    card: Card, gcj: tuple[float, float], coord: CoordSystem
) -> tuple[dict[str, Any], tuple[str, ...], dict[str, str]]:
    """The request-independent parts of a `NearbyStation` document: scalars, services, links."""
    out_lat, out_lng = gcj if coord == "gcj02" else convert(card.lat, card.lng, "wgs84", coord)
    amap_web, amap_app, tencent = destination_links(lat=gcj[0], lng=gcj[1], name=card.name)
    scalars = {
        "id": card.id,
        "code": card.code,
        "name": card.name,
        "brand": card.brand,
        "address": card.address,
        "lat": round(out_lat, 6),
        "lng": round(out_lng, 6),
        "coord": coord,
        "open_24h": card.open_24h,
        "opens_at": card.opens_at,
        "closes_at": card.closes_at,
        "phone": card.phone,
        "availability": AVAILABILITY_UNKNOWN,
    }
    nav = {"amap_web": amap_web, "amap_app": amap_app, "tencent": tencent}
    return scalars, tuple(card.services), nav


@lru_cache(maxsize=4096)
def _price_doc(grade: str, name: str, fen: int) -> dict[str, Any]:
    """A `GradePrice` document (shared between answers: never mutated)."""
    return {"grade": grade, "name": name, "price_fen": fen, "price_yuan": yuan(fen)}


def _item(
    doc: tuple[dict[str, Any], tuple[str, ...], dict[str, str]],
    *,
    query: NearbyQuery,
    distance_m: float,
    open_now: bool,
    prices: list[dict[str, Any]],
    baidu: str,
    availability: str | None,
) -> dict[str, Any] | None:
    """A `NearbyStation` document: the static parts plus distance, opening state and prices."""
    if query.open_now and not open_now:
        return None
    chosen = None
    if query.grade is not None:
        if not prices:
            return None  # its price was withdrawn since the candidates were chosen
        chosen = prices[0]
    scalars, services, nav = doc
    item = dict(scalars)
    item["services"] = services
    item["distance_m"] = round(distance_m, 1)
    item["open_now"] = open_now
    item["grade"] = query.grade
    item["price_fen"] = chosen["price_fen"] if chosen else None
    item["price_yuan"] = chosen["price_yuan"] if chosen else None
    item["prices"] = prices
    item["nav"] = {**nav, "baidu": baidu}
    if availability is not None:
        item["availability"] = availability
    return item


def convert_point(*, lat: float, lng: float, src: CoordSystem, dst: CoordSystem) -> Point:
    """Convert a point between coordinate systems (rounded to 1e-7 degrees, about 1 cm)."""
    out_lat, out_lng = convert(lat, lng, src, dst)
    return Point(lat=round(out_lat, 7), lng=round(out_lng, 7), coord=dst)
