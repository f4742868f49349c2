"""A brute-force nearby search (numpy haversine over every station) to check the fast paths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

R = 6371008.8


@dataclass(frozen=True)
class Stations:
    """Station attributes as arrays (WGS-84 degrees; hours in minutes, -1 when absent)."""

    ids: npt.NDArray[np.int64]
    lat: npt.NDArray[np.float64]
    lng: npt.NDArray[np.float64]
    listed: npt.NDArray[np.bool_]
    open_24h: npt.NDArray[np.bool_]
    opens: npt.NDArray[np.int64]
    closes: npt.NDArray[np.int64]
    since: dict[str, npt.NDArray[np.float64]]  # grade -> earliest price start (inf: none)


def distances(s: Stations, lat: float, lng: float) -> npt.NDArray[np.float64]:
    """Haversine metres from one point to every station."""
    p1, p2 = np.radians(lat), np.radians(s.lat)
    dp = p2 - p1
    dl = np.radians(s.lng - lng)
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    d: npt.NDArray[np.float64] = 2 * R * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return d


def open_mask(s: Stations, minute: int) -> npt.NDArray[np.bool_]:
    """Stations open at a minute of the day (overnight spans wrap)."""
    known = (s.opens >= 0) & (s.closes >= 0)
    day = (s.opens < s.closes) & (s.opens <= minute) & (minute < s.closes)
    night = (s.opens > s.closes) & ((minute >= s.opens) | (minute < s.closes))
    same = s.opens == s.closes
    mask: npt.NDArray[np.bool_] = s.open_24h | (known & (day | night | same))
    return mask


def nearest(
    s: Stations,
    lat: float,
    lng: float,
    *,
    k: int,
    radius_m: float,
    at: float,
    grade: str | None = None,
    open_minute: int | None = None,
) -> list[tuple[int, float]]:
    """(id, metres) of the k nearest matching stations, sorted by (distance, id)."""
    d = distances(s, lat, lng)
    keep = s.listed & (d <= radius_m)
    if grade is not None:
        since = s.since.get(grade)
        if since is None:
            return []
        keep &= since <= at
    if open_minute is not None:
        keep &= open_mask(s, open_minute)
    idx = np.flatnonzero(keep)
    order = np.lexsort((s.ids[idx], d[idx]))[:k]
    return [(int(s.ids[i]), float(d[i])) for i in idx[order]]
