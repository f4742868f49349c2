"""Money is integer fen, volume integer millilitres, prices fen per litre."""

from __future__ import annotations


def yuan(fen: int) -> str:
    """Format fen as yuan with two decimals: 820 -> '8.20'."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}"


def amount_for_volume(volume_ml: int, price_fen_per_l: int) -> int:
    """Amount for a volume at a price: volume_ml * fen/L / 1000, rounded half up (四舍五入)."""
    return (volume_ml * price_fen_per_l + 500) // 1000
