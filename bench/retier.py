"""Re-tiering benchmark: 1,000,000 generated members, time and peak memory.

1. `generate` builds a database with N members, their loyalty accounts (tiers spread so that
   members move both up and down, some already in their grace period) and their activity in
   the rolling window: visits per member drawn from a skewed distribution (mean ~3, 30 % with
   none), lognormal spend per visit, shares for one member in ten. Not timed.
2. `run` (a child process, so its peak RSS is the re-tiering alone) runs the production
   `loyalty.retier.retier` once ("first night": many changes) and again an hour later
   ("same night": nothing to change), with a progress bar, and prints time and peak memory.

    .venv/bin/python bench/retier.py [--members 1000000] [--database-url URL] [--keep]

Without --database-url a SQLite file in a temporary directory is used. A PostgreSQL URL must
name an empty database (created if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from forecourt import migrate
from forecourt.auth.models import Member
from forecourt.db import Database, make_engine
from forecourt.loyalty import domain, retier
from forecourt.loyalty.models import Activity, LoyaltyAccount

NOW = datetime(2026, 6, 30, 18, 30, tzinfo=UTC)  # 02:30 business time, the job's hour
CHUNK = 50_000
TIERS = np.array(["standard", "silver", "gold", "diamond"])


async def _create_database(url: str) -> None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return
    admin = make_engine(str(parsed.set(database="postgres")))
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        found = await conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}
        )
        if not found:
            await conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    await admin.dispose()


async def generate(url: str, members: int, seed: int) -> dict[str, Any]:
    """Fill an empty database with members, accounts and activity."""
    await _create_database(url)
    db = Database(url)
    await migrate.upgrade_engine(db.engine)
    rng = np.random.default_rng(seed)
    today = domain.business_day(NOW)
    started, rows_total = time.perf_counter(), 0
    with Progress(
        TextColumn("generate"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    ) as bar:
        task = bar.add_task("members", total=members)
        for first in range(1, members + 1, CHUNK):
            ids = np.arange(first, min(first + CHUNK, members + 1))
            n = len(ids)
            visits = np.where(rng.random(n) < 0.3, 0, rng.geometric(0.25, n))
            tiers = rng.choice(4, n, p=[0.6, 0.2, 0.13, 0.07])
            grace = rng.random(n) < 0.05
            activity: list[dict[str, Any]] = []
            for member_id, count in zip(ids.tolist(), visits.tolist(), strict=True):
                last = int(rng.integers(0, 365))
                for i in range(count):
                    fen = int(min(150_000, rng.lognormal(9.9, 0.5)))
                    day = today - min(364, last + i * 7)
                    activity.append(
                        {
                            "member_id": member_id,
                            "kind": "visit",
                            "ref": f"o{member_id}-{i}",
                            "order_id": f"o{member_id}-{i}",
                            "day": day,
                            "visits": 1,
                            "amount_fen": fen,
                            "growth": domain.visit_growth(fen),
                            "created_at": NOW,
                        }
                    )
                if member_id % 10 == 0:
                    for i in range(int(rng.integers(1, 40))):
                        activity.append(
                            {
                                "member_id": member_id,
                                "kind": "share",
                                "ref": f"s{member_id}-{i}",
                                "order_id": None,
                                "day": today - int(rng.integers(0, 365)),
                                "visits": 0,
                                "amount_fen": 0,
                                "growth": domain.SHARE_GROWTH,
                                "created_at": NOW,
                            }
                        )
            async with db.engine.begin() as conn:
                await conn.execute(
                    insert(Member),
                    [{"id": i, "status": "active", "created_at": NOW} for i in ids.tolist()],
                )
                await conn.execute(
                    insert(LoyaltyAccount),
                    [
                        {
                            "member_id": m,
                            "tier_code": str(TIERS[t]),
                            "tier_since": NOW - timedelta(days=200),
                            "grace_until": NOW - timedelta(days=1) if g else None,
                            "points_balance": 0,
                            "points_debt": 0,
                            "updated_at": NOW,
                        }
                        for m, t, g in zip(
                            ids.tolist(), tiers.tolist(), grace.tolist(), strict=True
                        )
                    ],
                )
                for start in range(0, len(activity), CHUNK):
                    await conn.execute(insert(Activity), activity[start : start + CHUNK])
            rows_total += len(activity)
            bar.advance(task, n)
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    await db.dispose()
    return {
        "members": members,
        "activity_rows": rows_total,
        "seconds": time.perf_counter() - started,
    }


async def run(url: str, batch: int) -> dict[str, Any]:
    """Re-tier twice (first night, then the same night again) with a progress bar."""
    db = Database(url)
    out: dict[str, Any] = {}
    for label, now in (("first", NOW), ("again", NOW + timedelta(hours=1))):
        with Progress(
            TextColumn(f"retier ({label}) {{task.description}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ) as bar:
            tasks: dict[str, Any] = {}

            def progress(phase: str, done: int, tasks: dict[str, Any] = tasks) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(phase, total=None)
                bar.update(tasks[phase], completed=done)

            result = await retier.retier(
                db, now=now, window_days=365, grace_days=30, batch=batch, progress=progress
            )
        out[label] = result.__dict__
    await db.dispose()
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    """Generate, then run the re-tiering in a child process and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="all", choices=["all", "generate", "run"])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the generated SQLite file")
    args = parser.parse_args()
    if args.command == "run":
        print(json.dumps(asyncio.run(run(args.database_url, args.batch))))
        return
    workdir = None if args.database_url else Path(tempfile.mkdtemp(prefix="retier-bench-"))
    url = args.database_url or f"sqlite+aiosqlite:///{Path(str(workdir)) / 'retier.db'}"
    made = asyncio.run(generate(url, args.members, args.seed))
    print(
        f"generated {made['members']:,} members, {made['activity_rows']:,} activity rows "
        f"in {made['seconds']:.0f} s"
    )
    if args.command == "generate":
        print(url)
        return
    child = subprocess.run(
        [sys.executable, __file__, "run", "--database-url", url, "--batch", str(args.batch)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    report = json.loads(child.stdout.strip().splitlines()[-1])
    for label in ("first", "again"):
        r = report[label]
        print(
            f"{label:>5}: {r['members']:,} members ({r['active']:,} active) "
            f"in {r['seconds']:.1f} s; up {r['upgrades']:,}, down {r['downgrades']:,}, "
            f"grace started {r['graces_started']:,}, cleared {r['graces_cleared']:,}"
        )
    print(f"peak RSS of the re-tiering process: {report['peak_rss_mib']:.0f} MiB")
    if workdir is not None and not args.keep:
        for path in workdir.iterdir():
            path.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
