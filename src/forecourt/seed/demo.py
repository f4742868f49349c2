"""`forecourt seed demo`: Kunming stations, prices under the Yunnan cap, staff, a month of sales."""

from __future__ import annotations

import json
import os
import secrets
from datetime import timedelta

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import select

from forecourt.auth import repository as auth_repo
from forecourt.auth.service import create_staff
from forecourt.config import VAR_DIR, Settings
from forecourt.db import Database
from forecourt.fuel.catalog import YUNNAN_CAPS_FEN
from forecourt.fuel.models import StationPrice
from forecourt.kit import clock, geo
from forecourt.kit import secrets as process_secrets
from forecourt.loyalty.seed import seed_loyalty
from forecourt.seed.common import ensure_caps, ensure_grades
from forecourt.seed.history import seed_history
from forecourt.seed.history_sales import DAYS
from forecourt.seed.kunming import BRAND_PRICES, STATIONS
from forecourt.seed.pumps import seed_pumps
from forecourt.station.models import Station

PROVINCE, CITY = "云南省", "昆明市"
CREDENTIALS = VAR_DIR / "demo-credentials.json"
# username, display name, role, station codes
DEMO_STAFF: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("hq", "总部管理员", "hq_admin", ()),
    ("manager", "北京路站长", "station_manager", ("KM001", "KM002", "KM003")),
    ("attendant", "北京路收银员", "attendant", ("KM001",)),
)


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


def _passwords() -> dict[str, str]:
    """Demo passwords: generated once per checkout and kept in var/ (never in the repo)."""
    if CREDENTIALS.exists():
        known: dict[str, str] = json.loads(CREDENTIALS.read_text())
        return known
    CREDENTIALS.parent.mkdir(parents=True, exist_ok=True)
    made = {name: secrets.token_urlsafe(9) for name, *_ in DEMO_STAFF}
    fd = os.open(CREDENTIALS, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(made, fh)
    return made


async def seed_staff(db: Database) -> dict[str, str]:
    """Create the demo staff accounts that are missing; returns username -> password."""
    passwords = _passwords()
    async with db.unit_of_work() as session:
        by_code = dict((await session.execute(select(Station.code, Station.id))).tuples().all())
        for username, display, role, codes in DEMO_STAFF:
            if await auth_repo.staff_by_username(session, username) is not None:
                continue
            await create_staff(
                session,
                username=username,
                password=passwords[username],
                display_name=display,
                role=role,
                station_ids=[by_code[c] for c in codes],
            )
    return passwords


async def run(settings: Settings, *, console: Console) -> None:
    """Seed everything the demo needs (safe to run again)."""
    db = Database(settings.database_url)
    try:
        added = await seed_stations(db, console=console)
        console.print(f"[green]demo stations: {added} added, {len(STATIONS)} in the set[/]")
        await seed_pumps(db)
        items = await seed_loyalty(db)
        console.print(f"[green]loyalty: tiers and {items} points-mall items added[/]")
        passwords = await seed_staff(db)
        for username, _, role, codes in DEMO_STAFF:
            where = ", ".join(codes) or "all stations"
            console.print(f"staff  {username:<10} {passwords[username]:<14} {role} ({where})")
        data_key = process_secrets.load(settings).data_key
        with console.status("demo history"):
            stations = await seed_history(db, data_key=data_key)
        if stations:
            console.print(f"[green]demo history: {DAYS} days of sales at {stations} stations[/]")
        else:
            console.print("demo history: every demo station already has sales, none added")
    finally:
        await db.dispose()
