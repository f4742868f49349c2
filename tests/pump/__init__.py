"""Builders shared by the pump tests: nozzles, a fuelling point, and a pump's own meters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from forecourt.pump.domain import (
    FuellingPoint,
    Nozzle,
    Sale,
    SaleBuffer,
    Totals,
    sale_amount_fen,
)

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
GRADES = {1: "92", 2: "95"}
START_TOTALS = {1: (1_000_000, 790_000), 2: (2_000_000, 1_690_000)}


def make_fp(**overrides: object) -> FuellingPoint:
    """FP 1 with nozzles 1 (92#) and 2 (95#), TTC 0 and known starting meters."""
    buffer = SaleBuffer(
        last_seq=0,
        totalizers={n: Totals(0, v, a) for n, (v, a) in START_TOTALS.items()},
    )
    values: dict[str, object] = {
        "number": 1,
        "nozzles": {n: Nozzle(n, g, tank=n) for n, g in GRADES.items()},
        "buffer": buffer,
    }
    values.update(overrides)
    return FuellingPoint(**values)  # type: ignore[arg-type]


@dataclass
class Meters:
    """The pump's side: its TTC counter and per-nozzle meters, producing honest sales."""

    seq: int = 0
    totals: dict[int, tuple[int, int]] = field(default_factory=lambda: dict(START_TOTALS))

    def sale(
        self,
        nozzle: int = 1,
        volume_ml: int = 10_000,
        unit_price_fen: int = 790,
        *,
        auth_ref: str | None = None,
        seq: int | None = None,
    ) -> Sale:
        """The next sale (or the one at `seq`, skipping numbers) with meters advanced."""
        self.seq = seq if seq is not None else self.seq + 1
        amount = sale_amount_fen(volume_ml, unit_price_fen)
        volume_total, amount_total = self.totals[nozzle]
        self.totals[nozzle] = (volume_total + volume_ml, amount_total + amount)
        return Sale(
            seq=self.seq,
            nozzle=nozzle,
            grade=GRADES[nozzle],
            volume_ml=volume_ml,
            amount_fen=amount,
            unit_price_fen=unit_price_fen,
            totalizer_volume_ml=volume_total + volume_ml,
            totalizer_amount_fen=amount_total + amount,
            ended_at=T0 + timedelta(minutes=self.seq),
            auth_ref=auth_ref,
        )
