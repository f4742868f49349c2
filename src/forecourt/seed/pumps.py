"""Demo forecourts: dispensers, fuelling points, nozzles and one tank per grade per station.

Each demo station (KM001...) gets 2-6 dispensers with two fuelling points each, 4-12 nozzles
in total numbered 1..N, and one 20-30 m³ tank per grade it sells, with plausible book and
measured stock. Deterministic per station code and safe to run again: a station that already
has dispensers is left alone. Fuelling points start Offline until a gateway (or the
simulator) reports their state.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from forecourt.db import Database
from forecourt.kit import clock
from forecourt.pump.domain import FPState
from forecourt.pump.models import Dispenser, FuellingPointRow, Nozzle, Tank
from forecourt.seed.kunming import BRAND_PRICES, STATIONS
from forecourt.station.models import Station

DISPENSER_MODELS = ("正星 ZX-3000", "托肯 Tokheim Quantium", "恒山 HS-2", "稳牌 Wayne Helix")


def _grade_order(code: str) -> tuple[int, str]:
    return (1 if code in ("0", "-10") else 0, code)


def layout(code: str, grades: list[str]) -> list[list[str]]:
    """Fuelling points (two per dispenser, in order) and the grades of their nozzles."""
    rng = random.Random(code)
    dispensers = rng.randint(2, 6)
    points = dispensers * 2
    total = rng.randint(max(4, points), min(12, points * len(grades)))
    per_point = [1] * points
    for _ in range(total - points):
        free = [i for i, n in enumerate(per_point) if n < len(grades)]
        per_point[rng.choice(free)] += 1
    result = []
    for count in per_point:
        chosen = rng.sample(grades, count)
        result.append(sorted(chosen, key=_grade_order))
    return result


async def seed_pumps(db: Database) -> int:
    """Give every demo station without equipment its forecourt; returns how many were done."""
    now = clock.now()
    done = 0
    async with db.unit_of_work() as session:
        stations = {
            s.code: s
            for s in (
                await session.scalars(
                    select(Station).where(Station.code.in_([spec.code for spec in STATIONS]))
                )
            ).all()
        }
        equipped = set((await session.scalars(select(Dispenser.station_id).distinct())).all())
        for spec in STATIONS:
            station = stations.get(spec.code)
            if station is None or station.id in equipped:
                continue
            rng = random.Random(f"{spec.code}-tanks")
            grades = sorted(BRAND_PRICES[spec.brand], key=_grade_order)
            tanks: dict[str, int] = {}
            for number, grade in enumerate(grades, start=1):
                capacity = rng.choice((20, 25, 30)) * 1_000_000
                book = int(capacity * rng.uniform(0.35, 0.85))
                tank = Tank(
                    station_id=station.id,
                    number=number,
                    grade_code=grade,
                    capacity_ml=capacity,
                    low_ml=capacity * 15 // 100,
                    out_ml=capacity * 3 // 100,
                    book_ml=book,
                    book_since=now - timedelta(hours=1),
                    measured_ml=book - rng.randint(-40_000, 60_000),
                    measured_at=now - timedelta(minutes=5),
                    temperature_dc=rng.randint(140, 220),
                    water_mm=rng.randint(0, 15),
                    variance_alert_ml=200_000,
                    active=True,
                )
                session.add(tank)
                await session.flush()
                tanks[grade] = tank.id
            nozzle_number = 0
            points = layout(spec.code, grades)
            for d in range(len(points) // 2):
                dispenser = Dispenser(
                    station_id=station.id, number=d + 1, model=rng.choice(DISPENSER_MODELS)
                )
                session.add(dispenser)
                await session.flush()
                for side in (0, 1):
                    fp_number = d * 2 + side + 1
                    fp = FuellingPointRow(
                        station_id=station.id,
                        dispenser_id=dispenser.id,
                        number=fp_number,
                        state=int(FPState.OFFLINE),
                        last_seq=0,
                        missing_seqs=[],
                        last_event_seq=0,
                        updated_at=now,
                    )
                    session.add(fp)
                    await session.flush()
                    for grade in points[fp_number - 1]:
                        nozzle_number += 1
                        meter = rng.randint(1_000_000, 90_000_000) * 10
                        session.add(
                            Nozzle(
                                station_id=station.id,
                                fp_id=fp.id,
                                number=nozzle_number,
                                grade_code=grade,
                                tank_id=tanks[grade],
                                totalizer_volume_ml=meter,
                                totalizer_amount_fen=meter * 8 // 10,
                                active=True,
                            )
                        )
            await session.flush()
            done += 1
    return done
