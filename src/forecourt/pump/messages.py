"""Live messages for WebSocket subscribers (published after commit through runtime.live)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from forecourt.pump.domain import FPState
from forecourt.pump.models import FuellingPointRow, PumpSale


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, e.g. 2026-05-01T00:03:12.123Z."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def state_name(state: int) -> str:
    """Display name of a state number: 8 -> 'Fuelling', 9 -> 'Suspended Fuelling'."""
    return FPState(state).name.replace("_", " ").title()


def fp_message(row: FuellingPointRow, *, now: datetime) -> dict[str, Any]:
    """`{"type": "fp", ...}`: a fuelling point's state and running totals."""
    progress = row.progress
    return {
        "type": "fp",
        "fp": row.number,
        "state": state_name(row.state),
        "state_code": row.state,
        "nozzle_out": row.nozzle_out,
        "progress": (
            {
                "volume_ml": progress["volume_ml"],
                "amount_fen": progress["amount_fen"],
                "unit_price_fen": progress["unit_price_fen"],
            }
            if progress
            else None
        ),
        "ts": iso(now),
    }


def sale_message(row: PumpSale, *, fp_number: int, now: datetime) -> dict[str, Any]:
    """`{"type": "sale", ...}`: a sale entered the buffer or changed status (no payer data)."""
    return {
        "type": "sale",
        "fp": fp_number,
        "seq": row.seq,
        "nozzle": row.nozzle_number,
        "grade": row.grade_code,
        "volume_ml": row.volume_ml,
        "amount_fen": row.amount_fen,
        "status": row.status,
        "ts": iso(now),
    }


def gateway_message(*, online: bool, now: datetime) -> dict[str, Any]:
    """`{"type": "gateway", ...}`: the station's gateway went offline or came back."""
    return {"type": "gateway", "online": online, "ts": iso(now)}
