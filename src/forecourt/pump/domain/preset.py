"""Amount rounding, presets and their arithmetic (fen, ml, fen per litre)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from forecourt.kit.money import amount_for_volume
from forecourt.pump.domain.errors import InvalidPreset


def sale_amount_fen(volume_ml: int, unit_price_fen: int) -> int:
    """Amount for a volume at a price (the one rounding rule in kit.money)."""
    return amount_for_volume(volume_ml, unit_price_fen)


def amount_tolerance_fen(unit_price_fen: int, volume_resolution_ml: int = 1) -> int:
    """Largest honest |amount - sale_amount_fen(volume)|: 1 fen + half a volume step's price."""
    # A pump computes the amount from its internal volume and reports the volume rounded to
    # its resolution, so the two differ by at most half a step priced (floored) plus one
    # rounding fen. With 1 ml resolution and prices below 2000 fen/L this is exactly 1 fen.
    return 1 + (volume_resolution_ml * unit_price_fen) // 2000


def amount_matches(
    volume_ml: int, unit_price_fen: int, amount_fen: int, volume_resolution_ml: int = 1
) -> bool:
    """Whether a reported amount agrees with volume x price within the tolerance."""
    expected = sale_amount_fen(volume_ml, unit_price_fen)
    return abs(amount_fen - expected) <= amount_tolerance_fen(unit_price_fen, volume_resolution_ml)


class PresetKind(StrEnum):
    """What a preset limits."""

    AMOUNT = "amount_fen"
    VOLUME = "volume_ml"


@dataclass(frozen=True)
class Preset:
    """Stop the pump at this amount (fen) or volume (ml)."""

    kind: PresetKind
    value: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise InvalidPreset(f"preset {self.kind.value} must be positive, got {self.value}")

    @classmethod
    def amount(cls, fen: int) -> Preset:
        """A preset amount in fen."""
        return cls(PresetKind.AMOUNT, fen)

    @classmethod
    def volume(cls, ml: int) -> Preset:
        """A preset volume in ml."""
        return cls(PresetKind.VOLUME, ml)

    def delivered(self, *, volume_ml: int, amount_fen: int) -> int:
        """The progress measured in this preset's unit."""
        return amount_fen if self.kind is PresetKind.AMOUNT else volume_ml

    def remaining(self, *, volume_ml: int, amount_fen: int) -> int:
        """What is left before the preset (never below 0)."""
        return max(0, self.value - self.delivered(volume_ml=volume_ml, amount_fen=amount_fen))

    def overrun(self, *, volume_ml: int, amount_fen: int) -> int:
        """How far progress went past the preset (0 if not past)."""
        return max(0, self.delivered(volume_ml=volume_ml, amount_fen=amount_fen) - self.value)

    def tolerance(self, *, unit_price_fen: int, volume_resolution_ml: int) -> int:
        """Overrun a pump may show without being at fault (one amount tolerance or one step)."""
        if self.kind is PresetKind.AMOUNT:
            return amount_tolerance_fen(unit_price_fen, volume_resolution_ml)
        return volume_resolution_ml
