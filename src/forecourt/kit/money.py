"""Money is integer fen, volume integer millilitres, prices fen per litre."""

from __future__ import annotations


def yuan(fen: int) -> str:
    """Format fen as yuan with two decimals: 820 -> '8.20'."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}"
