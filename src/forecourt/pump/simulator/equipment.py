"""Reads stations' forecourt equipment from the database to build simulated gateways.

A real pump keeps its meters and TTC in its own memory; the simulator has none between runs,
so it starts from what the server last stored (nozzle totalizers, newest sale per fuelling
point). Sales the server never received from an earlier run are therefore not resent.

A tank starts from its latest gauge reading carried forward by the book flows since (sales
and deliveries after the reading), so the variance the station had is kept; a tank never read
starts at its book stock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.fuel import repository as fuel_repository
from forecourt.kit import clock
from forecourt.pump.models import FuellingPointRow, Gateway, Nozzle, PumpSale, Tank
from forecourt.pump.simulator.gateway import StationSpec
from forecourt.pump.simulator.pump import FpSpec, NozzleSpec
from forecourt.pump.simulator.tanks import TankSpec
from forecourt.station.models import Station
from forecourt.tank import repository as tank_repository
from forecourt.tank import service as tank_service


async def equipped_station_codes(session: AsyncSession, *, limit: int) -> list[str]:
    """Codes of active stations that have at least one active nozzle, by code."""
    stmt = (
        select(Station.code)
        .join(Nozzle, Nozzle.station_id == Station.id)
        .where(Station.status == "active", Nozzle.active.is_(True))
        .group_by(Station.code)
        .order_by(Station.code)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def load_stations(session: AsyncSession, codes: Sequence[str]) -> list[StationSpec]:
    """The equipment of each station code (unknown codes or stations without nozzles: error)."""
    specs: list[StationSpec] = []
    for code in codes:
        spec = await _load(session, code)
        if spec is None:
            raise LookupError(f"station {code} not found or has no active nozzles")
        specs.append(spec)
    return specs


async def _load(session: AsyncSession, code: str) -> StationSpec | None:
    station = (await session.scalars(select(Station).where(Station.code == code))).first()
    if station is None:
        return None
    fps = (
        await session.scalars(
            select(FuellingPointRow)
            .where(FuellingPointRow.station_id == station.id)
            .order_by(FuellingPointRow.number)
        )
    ).all()
    nozzles = (
        await session.scalars(
            select(Nozzle)
            .where(Nozzle.station_id == station.id, Nozzle.active.is_(True))
            .order_by(Nozzle.number)
        )
    ).all()
    if not nozzles:
        return None
    sold = await session.execute(
        select(
            PumpSale.nozzle_number,
            func.max(PumpSale.totalizer_volume_ml),
            func.max(PumpSale.totalizer_amount_fen),
        )
        .where(PumpSale.station_id == station.id)
        .group_by(PumpSale.nozzle_number)
    )
    meters = {row[0]: (int(row[1]), int(row[2])) for row in sold.all()}
    newest = await session.execute(
        select(PumpSale.fp_id, func.max(PumpSale.seq))
        .where(PumpSale.station_id == station.id)
        .group_by(PumpSale.fp_id)
    )
    top_seq = {row[0]: int(row[1] or 0) for row in newest.all()}
    by_fp: dict[int, list[NozzleSpec]] = defaultdict(list)
    for n in nozzles:
        volume, amount = meters.get(n.number, (0, 0))
        by_fp[n.fp_id].append(
            NozzleSpec(
                number=n.number,
                grade=n.grade_code,
                totalizer_volume_ml=max(volume, n.totalizer_volume_ml),
                totalizer_amount_fen=max(amount, n.totalizer_amount_fen),
            )
        )
    fp_specs = tuple(
        FpSpec(
            number=fp.number,
            nozzles=tuple(by_fp[fp.id]),
            last_seq=max(fp.last_seq, top_seq.get(fp.id, 0)),
        )
        for fp in fps
        if by_fp.get(fp.id)
    )
    prices = await fuel_repository.current_prices(session, station_ids=[station.id], at=clock.now())
    gateway = await session.get(Gateway, station.id)
    version = gateway.price_version if gateway is not None and gateway.price_version else None
    return StationSpec(
        code=station.code,
        fps=fp_specs,
        prices={p.grade_code: p.price_fen for p in prices},
        price_version=version,
        tanks=await _tanks(session, station.id, nozzles),
    )


async def _tanks(
    session: AsyncSession, station_id: int, nozzles: Sequence[Nozzle]
) -> tuple[TankSpec, ...]:
    """The station's active tanks with their stock now and the nozzles piped to them."""
    tanks = await tank_repository.tanks_of(session, station_ids=[station_id], active_only=True)
    if not tanks:
        return ()
    book = await tank_service.book_stock(session, tanks)
    specs: list[TankSpec] = []
    for tank in tanks:
        if tank.capacity_ml <= 0:
            continue  # misconfigured: no gauge could read it
        stock = await _stock(session, tank, book[tank.id])
        specs.append(
            TankSpec(
                number=tank.number,
                grade=tank.grade_code,
                capacity_ml=tank.capacity_ml,
                volume_ml=min(max(stock, 0), tank.capacity_ml),
                nozzles=tuple(n.number for n in nozzles if n.tank_id == tank.id),
            )
        )
    return tuple(specs)


async def _stock(session: AsyncSession, tank: Tank, book_now: int) -> int:
    """The latest measured stock moved on by the book flows since it was read, else book."""
    if tank.measured_ml is None or tank.measured_at is None:
        return book_now
    then = await tank_service.book_stock(session, [tank], at=tank.measured_at)
    return tank.measured_ml + book_now - then[tank.id]
