"""Default fuel grades and the provincial price caps used by the demo."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GradeSpec:
    """A grade as configured by default."""

    code: str
    name: str
    kind: str
    sort_order: int


DEFAULT_GRADES: tuple[GradeSpec, ...] = (
    GradeSpec("92", "92#汽油", "petrol", 10),
    GradeSpec("95", "95#汽油", "petrol", 20),
    GradeSpec("98", "98#汽油", "petrol", 30),
    GradeSpec("0", "0#柴油", "diesel", 40),
    GradeSpec("-10", "-10#柴油", "diesel", 50),
)

# Maximum retail prices in fen per litre (Yunnan, late 2026 level; demo data).
YUNNAN_CAPS_FEN: dict[str, int] = {"92": 790, "95": 845, "98": 935, "0": 765, "-10": 810}
