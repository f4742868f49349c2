"""`forecourt seed demo`: Kunming stations, prices under the Yunnan cap, staff accounts."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import select

from forecourt.config import Settings
from forecourt.db import Database
from forecourt.fuel.catalog import YUNNAN_CAPS_FEN
from forecourt.fuel.models import StationPrice
from forecourt.kit import clock, geo
from forecourt.seed.common import ensure_caps, ensure_grades
from forecourt.seed.kunming import BRAND_PRICES, STATIONS
from forecourt.station.models import Station

PROVINCE, CITY = "云南省", "昆明市"


async def seed_stations(db: Database, *, console: Console | None = None) -> int:
    """Insert the demo stations and their prices that are missing; returns how many were new."""
    since = clock.now() - timedelta(days=30)
    added = 0
    async with db.unit_of_work() as session:
        await ensure_grades(session)
        await ensure_caps(session, province=PROVINCE, caps=YUNNAN_CAPS_FEN, since=since)
        existing = set((await session.scalars(select(Station.code))).all())
        with Progress(console=console, transient=True, disable=console is None) as progress:
            task = progress.add_task("demo stations", total=len(STATIONS))
            for spec in STATIONS:
                progress.advance(task)
                if spec.code in existing:
                    continue
                lat, lng = geo.convert(spec.lat, spec.lng, "gcj02", "wgs84")
                open_24h = spec.hours == "24h"
                opens, _, closes = spec.hours.partition("-")
                station = Station(
                    code=spec.code,
                    name=spec.name,
                    brand=spec.brand,
                    address=f"{CITY}{spec.district}{spec.address}",
                    province=PROVINCE,
                    city=CITY,
                    lat=lat,
                    lng=lng,
                    phone=f"0871-6{int(spec.code[2:]):03d}{int(spec.code[2:]) * 7 % 10000:04d}",
                    open_24h=open_24h,
                    opens_at=None if open_24h else opens,
                    closes_at=None if open_24h else closes,
                    services=list(spec.services),
                    status="active",
                )
                session.add(station)
                await session.flush()
                for grade, price in BRAND_PRICES[spec.brand].items():
                    session.add(
                        StationPrice(
                            station_id=station.id,
                            grade_code=grade,
                            price_fen=price,
                            effective_at=since,
                            announced_at=since,
                        )
                    )
                added += 1
    return added


async def run(settings: Settings, *, console: Console) -> None:
    """Seed everything the demo needs (safe to run again)."""
    db = Database(settings.database_url)
    try:
        added = await seed_stations(db, console=console)
        console.print(f"[green]demo stations: {added} added, {len(STATIONS)} in the set[/]")
    finally:
        await db.dispose()
