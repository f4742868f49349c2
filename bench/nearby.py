"""Nearby-search benchmark on a generated 110k-station China-wide set.

1. In process: `SpatialIndex.nearest` (k=10) against a direct scipy ``cKDTree.query`` (k=10) on
   the same unit vectors, timed call by call and interleaved so both see the same machine load,
   and against numpy brute force; results are checked against brute force.
2. The database: a SQLite file with the stations, grades and prices; index rebuild time from it
   and the cost of the freshness check.
3. HTTP: `uvicorn` on one core (``taskset -c 0``) serving that database; wrk on another core
   sends GET /api/v1/stations/nearby at fixed rates (bench/fixed_rate.lua) for a bounded time,
   loopback only.

    .venv/bin/python bench/nearby.py [--stations 110000] [--rates 100,250,500] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import random
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from forecourt import migrate
from forecourt.db import Database
from forecourt.fuel.catalog import DEFAULT_GRADES
from forecourt.kit.geo import EARTH_RADIUS_M, wgs84_to_gcj02
from forecourt.search.index import PriceRows, SpatialIndex, StationColumns, unit_vectors
from forecourt.search.service import NearbySearch

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "fixed_rate.lua"

# (lat, lng, weight): large cities, WGS-84. Stations cluster around them, some are rural.
CITIES: tuple[tuple[float, float, int], ...] = (
    (39.904, 116.407, 10), (31.230, 121.474, 9), (39.125, 117.190, 6), (29.563, 106.551, 9),
    (23.129, 113.264, 10), (22.543, 114.058, 8), (23.021, 113.752, 5), (32.060, 118.797, 7),
    (31.299, 120.585, 7), (30.274, 120.155, 8), (29.868, 121.544, 5), (36.651, 117.120, 6),
    (36.067, 120.383, 6), (34.747, 113.625, 8), (38.042, 114.514, 6), (30.593, 114.305, 8),
    (28.228, 112.939, 7), (30.573, 104.066, 9), (34.341, 108.940, 7), (41.806, 123.432, 6),
    (38.914, 121.615, 4), (43.817, 125.324, 5), (45.803, 126.535, 6), (31.821, 117.227, 6),
    (26.075, 119.296, 5), (24.480, 118.089, 4), (28.683, 115.858, 5), (37.871, 112.549, 5),
    (40.842, 111.749, 4), (22.817, 108.366, 5), (20.044, 110.199, 3), (26.647, 106.630, 5),
    (25.038, 102.718, 6), (29.650, 91.100, 1), (36.061, 103.834, 4), (36.617, 101.778, 2),
    (38.487, 106.231, 2), (43.825, 87.617, 4), (39.470, 75.989, 2),
)  # fmt: skip
BRANDS = ("中国石化", "中国石油", "壳牌", "中化石油", "中海油", "民营")
GRADE_OFFSETS = {"92": 760, "95": 815, "98": 900, "0": 740}


@dataclass(frozen=True)
class StationSet:
    """Generated stations (WGS-84) with hours, status and which grades they sell."""

    lat: npt.NDArray[np.float64]
    lng: npt.NDArray[np.float64]
    open_24h: list[bool]
    opens_at: list[str | None]
    closes_at: list[str | None]
    active: list[bool]
    sells_98: list[bool]


def generate(n: int, seed: int) -> StationSet:
    """N stations: 85 % around cities (Gaussian spread), 15 % anywhere in eastern China."""
    rng = np.random.default_rng(seed)
    weights = np.array([c[2] for c in CITIES], dtype=np.float64)
    city = rng.choice(len(CITIES), size=n, p=weights / weights.sum())
    centre_lat = np.array([CITIES[i][0] for i in city])
    centre_lng = np.array([CITIES[i][1] for i in city])
    spread = 0.05 + 0.03 * np.array([CITIES[i][2] for i in city])
    rural = rng.random(n) < 0.15
    lat = np.where(rural, rng.uniform(21.0, 45.0, n), centre_lat + rng.normal(0.0, 1.0, n) * spread)
    lng = np.where(
        rural, rng.uniform(100.0, 122.0, n), centre_lng + rng.normal(0.0, 1.0, n) * spread
    )
    open_24h = (rng.random(n) < 0.7).tolist()
    opens = rng.integers(5 * 60, 8 * 60, n).tolist()
    closes = rng.integers(20 * 60, 24 * 60, n).tolist()
    return StationSet(
        lat=np.round(lat, 6),
        lng=np.round(lng, 6),
        open_24h=open_24h,
        opens_at=[None if a else _hhmm(o) for a, o in zip(open_24h, opens, strict=True)],
        closes_at=[None if a else _hhmm(c) for a, c in zip(open_24h, closes, strict=True)],
        active=(rng.random(n) < 0.97).tolist(),
        sells_98=(rng.random(n) < 0.35).tolist(),
    )


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def query_points(
    stations: StationSet, n: int, seed: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Drivers' positions: near a random station (a few km off), WGS-84."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(stations.lat), n)
    return (
        stations.lat[pick] + rng.normal(0.0, 0.03, n),
        stations.lng[pick] + rng.normal(0.0, 0.03, n),
    )


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def summary_us(samples_ns: Sequence[int]) -> dict[str, float]:
    """p50, p99 and mean in microseconds."""
    us = [s / 1000 for s in samples_ns]
    return {"p50": percentile(us, 50), "p99": percentile(us, 99), "mean": statistics.fmean(us)}


def brute_force(
    lat: npt.NDArray[np.float64],
    lng: npt.NDArray[np.float64],
    ids: npt.NDArray[np.int64],
    qlat: float,
    qlng: float,
    k: int,
    radius_m: float,
) -> list[int]:
    """Ids of the k nearest within radius by numpy haversine over every station."""
    p1, p2 = np.radians(qlat), np.radians(lat)
    h = (
        np.sin((p2 - p1) / 2) ** 2
        + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lng - qlng) / 2) ** 2
    )
    d = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    near = np.argpartition(d, k)[: k + 1] if len(d) > k + 1 else np.arange(len(d))
    near = near[d[near] <= radius_m]
    order = np.lexsort((ids[near], d[near]))[:k]
    return [int(i) for i in ids[near][order]]


def in_process(stations: StationSet, *, queries: int, seed: int) -> dict[str, object]:
    """Index vs direct cKDTree vs brute force, k=10, radius 10 km, interleaved timings."""
    listed = np.flatnonzero(np.array(stations.active))
    ids = (listed + 1).astype(np.int64)
    lat, lng = stations.lat[listed], stations.lng[listed]
    columns = StationColumns(
        ids=ids.tolist(),
        lats=lat.tolist(),
        lngs=lng.tolist(),
        open_24h=[stations.open_24h[i] for i in listed],
        opens_at=[stations.opens_at[i] for i in listed],
        closes_at=[stations.closes_at[i] for i in listed],
    )
    grades = [g for g in GRADE_OFFSETS if g != "98"]
    count = len(ids) * len(grades)
    prices = PriceRows(
        station_ids=[int(i) for i in ids for _ in grades],
        grades=[g for _ in ids for g in grades],
        effective=[0.0] * count,
        ids=list(range(1, count + 1)),
        price_fen=[800] * count,
    )
    started = time.perf_counter()
    index = SpatialIndex(stations=columns, prices=prices, built_at=time.time())
    build_s = time.perf_counter() - started
    xyz = unit_vectors(lat, lng)
    started = time.perf_counter()
    tree = cKDTree(xyz)
    ckd_build_s = time.perf_counter() - started
    qlat, qlng = query_points(stations, queries, seed)
    qxyz = [tuple(v) for v in unit_vectors(qlat, qlng).tolist()]
    at = time.time()
    for i in range(2000):  # warm caches and branch predictors for both
        tree.query(qxyz[i], k=10)
        index.nearest(float(qlat[i]), float(qlng[i]), k=10, radius_m=10_000, at=at)
    variants: dict[str, dict[str, object]] = {}
    extras: tuple[tuple[str, dict[str, Any]], ...] = (
        ("plain", {}),
        ("grade=95", {"grade": "95"}),
        ("open_now (12:00)", {"open_minute": 12 * 60}),
        ("open_now (23:30)", {"open_minute": 23 * 60 + 30}),
    )
    for name, extra in extras:
        direct: list[int] = []
        ours: list[int] = []
        clock = time.perf_counter_ns
        for i in range(queries):
            q = qxyz[i]
            la, ln = float(qlat[i]), float(qlng[i])
            t0 = clock()
            tree.query(q, k=10)
            t1 = clock()
            index.nearest(la, ln, k=10, radius_m=10_000, at=at, **extra)
            t2 = clock()
            direct.append(t1 - t0)
            ours.append(t2 - t1)
        d, o = summary_us(direct), summary_us(ours)
        variants[name] = {
            "ckdtree_us": d,
            "index_us": o,
            "ratio_p50": o["p50"] / d["p50"],
            "ratio_mean": o["mean"] / d["mean"],
        }
    brute_n = min(queries, 1000)
    brute: list[int] = []
    identical = 0
    for i in range(brute_n):
        la, ln = float(qlat[i]), float(qlng[i])
        t0 = time.perf_counter_ns()
        want = brute_force(lat, lng, ids, la, ln, 10, 10_000)
        brute.append(time.perf_counter_ns() - t0)
        got = [h.station_id for h in index.nearest(la, ln, k=10, radius_m=10_000, at=at)]
        identical += got == want
    batched = np.array(qxyz)
    t0 = time.perf_counter_ns()
    tree.query(batched, k=10)
    batched_us = (time.perf_counter_ns() - t0) / 1000 / len(batched)
    return {
        "stations_indexed": len(ids),
        "index_build_s": build_s,
        "ckdtree_build_s": ckd_build_s,
        "queries": queries,
        "variants": variants,
        "brute_force_us": summary_us(brute),
        "ckdtree_batched_us_per_query": batched_us,
        "identical_to_brute_force": f"{identical}/{brute_n}",
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed_sqlite(path: Path, stations: StationSet, seed: int) -> dict[str, int]:
    """Migrate a new SQLite file and bulk-insert grades, stations and prices."""
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url)
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    created = _iso(now - timedelta(days=40))
    effective = _iso(now - timedelta(days=30))
    conn = sqlite3.connect(path)
    try:
        conn.executemany(
            "INSERT INTO grades (code, name, kind, sort_order, active) VALUES (?, ?, ?, ?, 1)",
            [(g.code, g.name, g.kind, g.sort_order) for g in DEFAULT_GRADES],
        )

        def station_rows() -> Iterator[tuple[object, ...]]:
            for i in range(len(stations.lat)):
                yield (
                    i + 1,
                    f"N{i + 1:07d}",
                    f"基准加油站{i + 1}",
                    BRANDS[i % len(BRANDS)],
                    f"基准路{i % 997 + 1}号",
                    "基准省",
                    "基准市",
                    float(stations.lat[i]),
                    float(stations.lng[i]),
                    "0871-60000000",
                    int(stations.open_24h[i]),
                    stations.opens_at[i],
                    stations.closes_at[i],
                    '["shop"]' if i % 5 else "[]",
                    "active" if stations.active[i] else "paused",
                    created,
                    created,
                )

        conn.executemany(
            "INSERT INTO stations (id, code, name, brand, address, province, city, lat, lng, "
            "phone, open_24h, opens_at, closes_at, services, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            station_rows(),
        )

        def price_rows() -> Iterator[tuple[object, ...]]:
            for i in range(len(stations.lat)):
                for grade, base in GRADE_OFFSETS.items():
                    if grade == "98" and not stations.sells_98[i]:
                        continue
                    yield (i + 1, grade, base - rnd.randint(0, 40), effective, created)

        conn.executemany(
            "INSERT INTO station_prices (station_id, grade_code, price_fen, effective_at, "
            "created_at) VALUES (?, ?, ?, ?, ?)",
            price_rows(),
        )
        conn.commit()
        counts = {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
            for table in ("stations", "station_prices", "grades")
        }
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("ANALYZE")
    finally:
        conn.close()
    return counts


async def database_costs(path: Path) -> dict[str, float]:
    """Index build from the tables, and one freshness check, on the SQLite file."""
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        search = NearbySearch(backend="memory", refresh_seconds=3600)
        started = time.perf_counter()
        index = await search.index(db)
        build_s = time.perf_counter() - started
        search.refresh_seconds = 0.0  # every call now reads the fingerprint (and finds no change)
        checks: list[int] = []
        for _ in range(50):
            t0 = time.perf_counter_ns()
            await search.index(db)
            checks.append(time.perf_counter_ns() - t0)
        assert search.rebuilds == 1
        return {
            "stations_indexed": float(len(index)),
            "rebuild_from_db_s": build_s,
            "freshness_check_ms_p50": percentile(checks, 50) / 1e6,
        }
    finally:
        await db.dispose()


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_paths(
    stations: StationSet,
    path: Path,
    *,
    n: int,
    seed: int,
    grade_share: float = 0.5,
    open_share: float = 0.2,
) -> None:
    """Request paths: GCJ-02 positions as phones send them; some ask for 95#, some open now."""
    qlat, qlng = query_points(stations, n, seed)
    rnd = random.Random(seed)
    with path.open("w") as fh:
        for la, ln in zip(qlat.tolist(), qlng.tolist(), strict=True):
            glat, glng = wgs84_to_gcj02(la, ln)
            extra = "&grade=95" if rnd.random() < grade_share else ""
            extra += "&open_now=true" if rnd.random() < open_share else ""
            fh.write(f"/api/v1/stations/nearby?lat={glat:.6f}&lng={glng:.6f}&coord=gcj02{extra}\n")


def wait_ready(base: str, timeout_s: float = 60.0) -> None:
    """Poll /healthz until the server answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def warm_up(base: str, paths: Path, n: int = 300) -> None:
    """First requests build the index; then a few hundred more."""
    lines = paths.read_text().splitlines()
    with urllib.request.urlopen(f"{base}{lines[0]}", timeout=60) as resp:  # noqa: S310
        body = json.loads(resp.read())
        assert body["count"] > 0, body
    for line in lines[1:n]:
        with urllib.request.urlopen(f"{base}{line}", timeout=10) as resp:  # noqa: S310
            resp.read()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_wrk(
    base: str, paths: Path, *, rate: int, duration: int, connections: int, core: str
) -> dict[str, float]:
    """One fixed-rate wrk run; the parsed FIXED_RATE_RESULT line."""
    cmd = [
        *(["taskset", "-c", core] if core else []),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        base,
        "--",
        str(rate),
        str(paths),
        "1",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True)
    for line in out.stdout.splitlines():
        if line.startswith("FIXED_RATE_RESULT "):
            result: dict[str, float] = json.loads(line.split(" ", 1)[1])
            result["achieved_rps"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError(f"no result from wrk:\n{out.stdout}\n{out.stderr}")


def http(
    db_path: Path,
    stations: StationSet,
    *,
    rates: Sequence[int],
    duration: int,
    server_core: str,
    client_core: str,
    access_log: bool,
    grade_share: float,
    open_share: float,
) -> dict[str, object]:
    """Serve the database with uvicorn on one core and load it with wrk at fixed rates."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "FORECOURT_ENV": "prod",
        "FORECOURT_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
        "FORECOURT_JWT_SECRET": secrets.token_urlsafe(32),
        "FORECOURT_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        # Only the API: no outbox dispatcher, scheduler, pump link, speakers or simulator.
        "FORECOURT_RUN_DISPATCHER": "false",
        "FORECOURT_RUN_SCHEDULER": "false",
        "FORECOURT_RUN_PUMP_LINK": "false",
        "FORECOURT_RUN_SPEAKER": "false",
        "FORECOURT_RUN_SIMULATOR": "false",
        "FORECOURT_SPATIAL_BACKEND": "memory",
        "FORECOURT_ACCESS_LOG": "true" if access_log else "false",
        "FORECOURT_LOG_JSON": "true",
    }
    server_cmd = [
        *(["taskset", "-c", server_core] if server_core else []),
        sys.executable,
        "-m",
        "uvicorn",
        "forecourt.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    paths = db_path.with_suffix(".paths")
    write_paths(stations, paths, n=20_000, seed=99, grade_share=grade_share, open_share=open_share)
    log = db_path.with_suffix(".server.log").open("w")
    server = subprocess.Popen(server_cmd, env=env, stdout=log, stderr=log)
    results: dict[str, object] = {
        "access_log": access_log,
        "grade_share": grade_share,
        "open_share": open_share,
    }
    try:
        wait_ready(base)
        warm_up(base, paths)
        runs = []
        for rate in rates:
            connections = max(16, rate // 5)
            cpu_before = process_cpu_s(server.pid)
            result = run_wrk(
                base,
                paths,
                rate=rate,
                duration=duration,
                connections=connections,
                core=client_core,
            )
            cpu = process_cpu_s(server.pid) - cpu_before
            result["rate"] = rate
            result["connections"] = connections
            result["server_cpu_ms_per_request"] = cpu / max(1.0, result["requests"]) * 1000
            result["server_cpu_utilisation"] = cpu / (result["duration_us"] / 1e6)
            runs.append(result)
            print(
                f"  {rate:>4} req/s: achieved {result['achieved_rps']:.0f}/s, "
                f"p50 {result['p50_us'] / 1000:.2f} ms, p99 {result['p99_us'] / 1000:.2f} ms, "
                f"p99.9 {result['p999_us'] / 1000:.2f} ms, max {result['max_us'] / 1000:.2f} ms, "
                f"errors {result['errors'] + result['status_errors']:.0f}, "
                f"schedule lag max {result['max_lag_us'] / 1000:.1f} ms, "
                f"server CPU {result['server_cpu_ms_per_request']:.2f} ms/request "
                f"({result['server_cpu_utilisation']:.0%} of its core)",
                flush=True,
            )
        results["runs"] = runs
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    return results


def main(argv: Sequence[str] | None = None) -> None:
    """Run every part and print the figures (and a JSON summary)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=110_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--rates", default="100,250,500")
    parser.add_argument("--duration", type=int, default=10, help="seconds per rate (max 60)")
    parser.add_argument("--server-core", default="0", help="taskset CPU list; empty: no pinning")
    parser.add_argument("--client-core", default="1", help="taskset CPU list for wrk")
    parser.add_argument("--no-access-log", action="store_true", help="disable the app log line")
    parser.add_argument("--grade-share", type=float, default=0.5, help="requests with grade=95")
    parser.add_argument("--open-share", type=float, default=0.2, help="requests with open_now")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    duration = max(1, min(60, args.duration))

    print(f"generating {args.stations} stations (seed {args.seed})", flush=True)
    stations = generate(args.stations, args.seed)
    report: dict[str, object] = {"stations": args.stations, "seed": args.seed}

    print("in-process, k=10, radius 10 km:", flush=True)
    proc = in_process(stations, queries=args.queries, seed=args.seed + 1)
    report["in_process"] = proc
    print(
        f"  index build {proc['index_build_s']:.3f} s "
        f"(cKDTree alone {proc['ckdtree_build_s']:.3f} s), "
        f"{proc['stations_indexed']} listed stations"
    )
    variants = proc["variants"]
    assert isinstance(variants, dict)
    for name, v in variants.items():
        d, o = v["ckdtree_us"], v["index_us"]
        print(
            f"  {name:<17} index p50 {o['p50']:.1f} µs p99 {o['p99']:.1f} µs "
            f"mean {o['mean']:.1f} µs | cKDTree p50 {d['p50']:.1f} µs p99 {d['p99']:.1f} µs "
            f"mean {d['mean']:.1f} µs | ratio p50 {v['ratio_p50']:.2f}x "
            f"mean {v['ratio_mean']:.2f}x"
        )
    b = proc["brute_force_us"]
    assert isinstance(b, dict)
    print(
        f"  brute force (numpy) p50 {b['p50']:.0f} µs p99 {b['p99']:.0f} µs "
        f"mean {b['mean']:.0f} µs;"
        f" cKDTree batched {proc['ckdtree_batched_us_per_query']:.2f} µs/query;"
        f" identical to brute force: {proc['identical_to_brute_force']}"
    )

    workdir = Path(tempfile.mkdtemp(prefix="forecourt-bench-"))
    try:
        db_path = workdir / "bench.db"
        print("seeding SQLite", flush=True)
        started = time.perf_counter()
        counts = seed_sqlite(db_path, stations, args.seed)
        print(f"  {counts} in {time.perf_counter() - started:.1f} s")
        costs = asyncio.run(database_costs(db_path))
        report["database"] = {"counts": counts, **costs}
        print(
            f"  index rebuild from the tables {costs['rebuild_from_db_s']:.2f} s, "
            f"freshness check {costs['freshness_check_ms_p50']:.2f} ms"
        )
        if not args.skip_http:
            rates = [int(r) for r in args.rates.split(",") if r]
            log = "off" if args.no_access_log else "on"
            print(
                f"HTTP GET /api/v1/stations/nearby ({args.grade_share:.0%} with grade=95, "
                f"{args.open_share:.0%} open_now; access log {log}), "
                f"uvicorn on core {args.server_core or 'any'}, wrk fixed rate on core "
                f"{args.client_core or 'any'}, {duration} s per rate:",
                flush=True,
            )
            report["http"] = http(
                db_path,
                stations,
                rates=rates,
                duration=duration,
                server_core=args.server_core,
                client_core=args.client_core,
                access_log=not args.no_access_log,
                grade_share=args.grade_share,
                open_share=args.open_share,
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
