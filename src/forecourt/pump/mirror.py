"""Rebuild the pure domain FuellingPoint from its rows, and write its state back.

Only what a message needs is loaded: the fuelling point's row and nozzles, and for a sale the
sale with the same TTC plus the nearest sales of the same nozzle before and after it (the
totalizer checks look no further). The sale buffer's bookkeeping (newest TTC, TTCs still
missing) lives in `fuelling_points.last_seq` and `missing_seqs`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from forecourt.errors import Conflict
from forecourt.pump.domain import (
    Authorisation,
    FPState,
    FuellingPoint,
    Nozzle,
    Preset,
    PresetKind,
    Progress,
    Sale,
    SaleBuffer,
    SaleStatus,
)
from forecourt.pump.models import FuellingPointRow, PumpSale
from forecourt.pump.models import Nozzle as NozzleRow

# Missing TTCs kept per fuelling point (the newest ones; older gaps are given up on).
MAX_MISSING = 5000


class FuellingPointNotConfigured(Conflict):
    """The fuelling point has no nozzles yet, so nothing can be mirrored on it."""

    code, title = "fp_not_configured", "Fuelling point has no nozzles"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def authorisation_to_json(auth: Authorisation | None) -> dict[str, Any] | None:
    """The JSON column value of an authorisation."""
    if auth is None:
        return None
    preset = auth.preset
    return {
        "order_id": auth.order_id,
        "preset": {"kind": preset.kind.value, "value": preset.value} if preset else None,
        "nozzle": auth.nozzle,
        "authorised_at": _iso(auth.authorised_at),
        "expires_at": _iso(auth.expires_at),
    }


def authorisation_from_json(data: dict[str, Any] | None) -> Authorisation | None:
    """An authorisation from its JSON column value."""
    if data is None:
        return None
    preset = data.get("preset")
    return Authorisation(
        order_id=data.get("order_id"),
        preset=Preset(PresetKind(preset["kind"]), int(preset["value"])) if preset else None,
        nozzle=data.get("nozzle"),
        authorised_at=_time(data.get("authorised_at")),
        expires_at=_time(data.get("expires_at")),
    )


def progress_to_json(progress: Progress | None) -> dict[str, Any] | None:
    """The JSON column value of fuelling progress."""
    if progress is None:
        return None
    return {
        "volume_ml": progress.volume_ml,
        "amount_fen": progress.amount_fen,
        "unit_price_fen": progress.unit_price_fen,
    }


def progress_from_json(data: dict[str, Any] | None) -> Progress | None:
    """Fuelling progress from its JSON column value."""
    if data is None:
        return None
    return Progress(int(data["volume_ml"]), int(data["amount_fen"]), int(data["unit_price_fen"]))


def sale_from_row(row: PumpSale) -> Sale:
    """The domain sale of a pump_sales row."""
    return Sale(
        seq=row.seq,
        nozzle=row.nozzle_number,
        grade=row.grade_code,
        volume_ml=row.volume_ml,
        amount_fen=row.amount_fen,
        unit_price_fen=row.unit_price_fen,
        totalizer_volume_ml=row.totalizer_volume_ml,
        totalizer_amount_fen=row.totalizer_amount_fen,
        ended_at=row.ended_at,
        auth_ref=row.auth_ref,
        status=SaleStatus(row.status),
        locked_by=row.locked_by,
        lock_expires_at=row.lock_expires_at,
    )


def apply_sale_status(row: PumpSale, sale: Sale) -> None:
    """Copy a sale's buffer status (lock holder, expiry) onto its row."""
    row.status = sale.status.value
    row.locked_by = sale.locked_by
    row.lock_expires_at = sale.lock_expires_at


def load_point(
    row: FuellingPointRow,
    nozzles: Iterable[NozzleRow],
    *,
    sales: Iterable[PumpSale | None] = (),
    volume_resolution_ml: int = 1,
) -> FuellingPoint:
    """The domain fuelling point mirrored by `row` (with the given sales in its buffer)."""
    by_number = {n.number: Nozzle(n.number, n.grade_code, n.tank_id) for n in nozzles}
    if not by_number:
        raise FuellingPointNotConfigured(f"fuelling point {row.number} has no nozzles")
    held = {s.seq: sale_from_row(s) for s in sales if s is not None}
    buffer = SaleBuffer(
        sales=[held[k] for k in sorted(held)],
        last_seq=row.last_seq or None,
        missing=set(row.missing_seqs or ()),
    )
    before = row.state_before_offline
    return FuellingPoint(
        number=row.number,
        nozzles=by_number,
        state=FPState(row.state),
        nozzle=row.nozzle_out,
        authorisation=authorisation_from_json(row.authorisation),
        progress=progress_from_json(row.progress),
        buffer=buffer,
        error_code=row.error_code,
        state_before_offline=FPState(before) if before is not None else None,
        volume_resolution_ml=max(1, volume_resolution_ml),
    )


def save_point(row: FuellingPointRow, point: FuellingPoint, *, now: datetime) -> bool:
    """Write the domain state back onto the row; True when the state number changed."""
    changed = row.state != int(point.state)
    if changed:
        row.state_changed_at = now
    row.state = int(point.state)
    row.nozzle_out = point.nozzle
    row.error_code = point.error_code
    row.authorisation = authorisation_to_json(point.authorisation)
    row.progress = progress_to_json(point.progress)
    before = point.state_before_offline
    row.state_before_offline = int(before) if before is not None else None
    row.last_seq = point.buffer.last_seq or 0
    row.missing_seqs = sorted(point.buffer.missing)[-MAX_MISSING:]
    row.updated_at = now
    return changed
