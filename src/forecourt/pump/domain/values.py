"""Small values held by a fuelling point: its nozzles, authorisation and progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from forecourt.pump.domain.preset import Preset


@dataclass(frozen=True)
class Nozzle:
    """A nozzle (枪号, numbered 1..N per station) with its grade and the tank it draws from."""

    number: int
    grade: str
    tank: int | None = None


@dataclass(frozen=True)
class Authorisation:
    """Permission to dispense: the server's (order, preset, expiry) or the pump's own (local)."""

    order_id: str | None = None
    preset: Preset | None = None
    nozzle: int | None = None
    authorised_at: datetime | None = None
    expires_at: datetime | None = None

    @property
    def local(self) -> bool:
        """Authorised at the pump (attendant or auto mode), not by the server."""
        return self.authorised_at is None


@dataclass(frozen=True)
class Progress:
    """Running totals of the transaction on the pump's display."""

    volume_ml: int
    amount_fen: int
    unit_price_fen: int
