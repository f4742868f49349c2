"""Measured visual rules (R10) on the rendered page: font sizes, touch targets, contrast
ratios computed from the rendered colours, and the one primary action per screen in the
golden-ratio band, orange-red and distinct from the error colour."""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Page

MIN_BODY_PX = 14.0
MIN_FIGURE_PX = 17.0
MIN_TARGET_PX = 44.0
# The golden-ratio band: the primary action's centre sits around 61.8 % of the screen height.
GOLDEN = 0.618
GOLDEN_BAND = (0.50, 0.76)

MEASURE = (Path(__file__).parent / "measure.js").read_text()


def hue(rgb: list[float]) -> float:
    h, _, _ = colorsys.rgb_to_hls(rgb[0] / 255, rgb[1] / 255, rgb[2] / 255)
    return h * 360


def hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


@dataclass
class Audit:
    """What one screen measured, and every rule it breaks."""

    screen: str
    data: dict[str, Any]
    problems: list[str] = field(default_factory=list)

    @property
    def primary(self) -> dict[str, Any] | None:
        p = self.data["primaries"]
        return p[0] if p else None


async def audit(page: Page, screen: str, *, primary: bool | None = None) -> Audit:
    """Measure the screen; `primary=True` requires exactly one primary action in the band."""
    data: dict[str, Any] = await page.evaluate(MEASURE)
    a = Audit(screen=screen, data=data)
    for t in data["texts"]:
        if t["size"] < MIN_BODY_PX - 0.01:
            a.problems.append(f"text {t['text']!r} ({t['el']}) is {t['size']}px < {MIN_BODY_PX}px")
        large = t["size"] >= 24 or (t["size"] >= 18.66 and t["weight"] >= 700)
        need = 3.0 if large else 4.5
        if not t["disabled"] and t["contrast"] < need:
            a.problems.append(
                f"text {t['text']!r} ({t['el']}) contrast {t['contrast']:.2f} < {need} "
                f"(fg {t['fg']}, bg {t['bg']})"
            )
    for f in data["figures"]:
        if f["size"] < MIN_FIGURE_PX - 0.01:
            a.problems.append(f"key figure {f['text']!r} ({f['el']}) is {f['size']}px < 17px")
    for t in data["targets"]:
        if t["w"] < MIN_TARGET_PX - 0.5 or t["h"] < MIN_TARGET_PX - 0.5:
            a.problems.append(
                f"touch target {t['text']!r} ({t['el']}) is {t['w']:.0f}x{t['h']:.0f}px < 44x44"
            )
    prim = data["primaries"]
    if primary is not None:
        if primary and len(prim) != 1:
            a.problems.append(f"{len(prim)} primary actions visible, expected exactly one")
        if not primary and prim:
            a.problems.append(f"unexpected primary action {prim[0]['text']!r}")
    for p in prim:
        lo, hi = GOLDEN_BAND
        if not lo <= p["cy"] <= hi:
            a.problems.append(
                f"primary {p['text']!r} centre at {p['cy']:.3f} of the screen, outside the "
                f"golden-ratio band {lo}-{hi} (target {GOLDEN})"
            )
        if not p["disabled"]:
            h = hue(p["bg"])
            _, _light, sat = colorsys.rgb_to_hls(*(c / 255 for c in p["bg"][:3]))
            if not (8 <= h <= 30 and sat > 0.6):
                a.problems.append(
                    f"primary {p['text']!r} is not orange-red (hue {h:.0f}, sat {sat:.2f})"
                )
            for e in data["errors"]:
                d = hue_distance(h, hue(e["fg"]))
                if d < 25:
                    a.problems.append(
                        f"error colour {e['fg']} too close to the primary ({d:.0f} deg)"
                    )
    return a


def assert_clean(a: Audit) -> None:
    """Fail with every problem the screen has."""
    assert not a.problems, f"visual rules broken on {a.screen}:\n  " + "\n  ".join(a.problems)
