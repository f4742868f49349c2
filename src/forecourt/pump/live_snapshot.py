"""The public live view of a station: the WebSocket snapshot and the filter for change messages.

Nozzle states and payable sales are public (no payer data: no lock or order references). Tank
volumes are not: public tank entries carry the grade's availability only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.kit import clock
from forecourt.pump.domain.states import FPState
from forecourt.pump.messages import state_name
from forecourt.pump.models import FuellingPointRow, Gateway, Nozzle, PumpSale
from forecourt.station.models import Station
from forecourt.tank import service as tanks

PRIVATE_TANK_FIELDS = ("measured_ml", "book_ml")
PROGRESS_FIELDS = ("volume_ml", "amount_fen", "unit_price_fen")


def iso_now() -> str:
    """The current UTC time as RFC 3339 with `Z`."""
    return clock.now().isoformat().replace("+00:00", "Z")


def public_view(message: dict[str, Any]) -> dict[str, Any]:
    """A change message as public clients see it (tank volumes removed)."""
    if message.get("type") != "tank":
        return message
    return {k: v for k, v in message.items() if k not in PRIVATE_TANK_FIELDS}


async def station_exists(session: AsyncSession, *, station_id: int) -> bool:
    """Whether the station exists."""
    return await session.get(Station, station_id) is not None


async def _rows(
    session: AsyncSession, station_id: int
) -> tuple[list[FuellingPointRow], list[Nozzle], list[PumpSale], Gateway | None]:
    fps = (
        await session.scalars(
            select(FuellingPointRow).where(FuellingPointRow.station_id == station_id)
        )
    ).all()
    nozzles = (
        await session.scalars(
            select(Nozzle)
            .where(Nozzle.station_id == station_id, Nozzle.active.is_(True))
            .order_by(Nozzle.number)
        )
    ).all()
    payable = (
        await session.scalars(
            select(PumpSale)
            .where(PumpSale.station_id == station_id, PumpSale.status == "payable")
            .order_by(PumpSale.ended_at, PumpSale.id)
        )
    ).all()
    gateway = await session.get(Gateway, station_id)
    return list(fps), list(nozzles), list(payable), gateway


def _progress(fp: FuellingPointRow) -> dict[str, Any] | None:
    if not fp.progress:
        return None
    return {k: fp.progress.get(k) for k in PROGRESS_FIELDS}


async def snapshot(session: AsyncSession, *, station_id: int) -> dict[str, Any]:
    """The `snapshot` message (interface 3) for a station, public fields only."""
    fps, nozzles, payable, gateway = await _rows(session, station_id)
    fp_by_id = {fp.id: fp for fp in fps}
    sales: dict[int, list[dict[str, int]]] = {}
    for sale in payable:
        sales.setdefault(sale.nozzle_number, []).append(
            {"seq": sale.seq, "volume_ml": sale.volume_ml, "amount_fen": sale.amount_fen}
        )
    items = []
    for nozzle in nozzles:
        fp = fp_by_id.get(nozzle.fp_id)
        code = fp.state if fp is not None else int(FPState.OFFLINE)
        out = fp is not None and fp.nozzle_out == nozzle.number
        items.append(
            {
                "number": nozzle.number,
                "fp": fp.number if fp is not None else None,
                "grade": nozzle.grade_code,
                "state": state_name(code),
                "state_code": code,
                "nozzle_out": out,
                "progress": _progress(fp) if out and fp is not None else None,
                "payable": sales.get(nozzle.number, []),
            }
        )
    tank_messages = await tanks.live_tanks(session, station_id=station_id)
    return {
        "type": "snapshot",
        "station_id": station_id,
        "gateway_online": bool(gateway.online) if gateway is not None else False,
        "nozzles": items,
        "tanks": [public_view(m) for m in tank_messages],
        "ts": iso_now(),
    }
