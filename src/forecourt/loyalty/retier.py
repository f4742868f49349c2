"""Nightly re-tiering: growth value + RFM quantile scores -> tiers, streamed in batches.

1. Read every account with its activity totals inside the rolling window, a page of member
   ids at a time, into compact arrays (about 50 bytes per member).
2. Score R, F and M over the whole population (quantiles need everyone) and find each
   member's qualifying tier, vectorised.
3. Decide only for members whose tier or grace changes, and write those in batches, each
   batch one unit of work with its history rows and one `loyalty.tiers_changed` event per
   thousand changes. A second run on the same day changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from forecourt import outbox
from forecourt.db import Database
from forecourt.loyalty import domain, pricing, repository
from forecourt.loyalty.domain import IntArray, Outcome, TierLadder

TIERS_CHANGED = "loyalty.tiers_changed"  # outbox: {changes: [{member_id, from, to, outcome}]}
EVENT_CHANGES = 1_000
Progress = Callable[[str, int], None]  # (phase, members done in it)


@dataclass
class RetierResult:
    """What a run did."""

    members: int = 0
    active: int = 0
    upgrades: int = 0
    downgrades: int = 0
    graces_started: int = 0
    graces_cleared: int = 0
    seconds: float = 0.0


@dataclass
class _Population:
    """Every account's facts as parallel arrays."""

    ids: IntArray
    position: IntArray
    grace: IntArray  # epoch seconds, 0 = none
    last_day: IntArray
    visits: IntArray
    spend: IntArray
    growth: IntArray


async def _read(
    db: Database, tiers: TierLadder, *, since_day: int, batch: int, progress: Progress | None
) -> _Population:
    positions = {tier.code: i for i, tier in enumerate(tiers.tiers)}
    parts: list[list[IntArray]] = []
    after, done = 0, 0
    async with db.read_only() as session:
        while True:
            page = await repository.account_page(session, after=after, limit=batch)
            if not page:
                break
            lo, hi = page[0][0], page[-1][0]
            totals = {
                row[0]: row
                for row in await repository.activity_totals(
                    session, lo=lo, hi=hi, since_day=since_day
                )
            }
            cols: list[list[int]] = [[], [], [], [], [], [], []]
            for member_id, code, grace in page:
                _, visits, spend, growth, last = totals.get(member_id, (0, 0, 0, 0, None))
                cols[0].append(member_id)
                cols[1].append(positions.get(code, 0))
                cols[2].append(int(grace.timestamp()) if grace is not None else 0)
                cols[3].append(last or 0)
                cols[4].append(visits)
                cols[5].append(spend)
                cols[6].append(growth)
            parts.append([np.asarray(col, dtype=np.int64) for col in cols])
            after, done = hi, done + len(page)
            if progress is not None:
                progress("read", done)

    def column(i: int) -> IntArray:
        return np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, dtype=np.int64)

    return _Population(*(column(i) for i in range(7)))


def _decisions(
    pop: _Population, tiers: TierLadder, *, now: datetime, grace: timedelta, result: RetierResult
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(tier moves, grace changes, history rows) for the members whose standing changes."""
    r, f, m = domain.rfm_scores(pop.last_day, pop.visits, pop.spend)
    target = tiers.qualifying_many(pop.growth, r + f + m)
    candidates = np.flatnonzero((target != pop.position) | (pop.grace != 0))
    moves: list[dict[str, Any]] = []
    graces: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    for i in candidates.tolist():
        was = tiers.tiers[int(pop.position[i])].code
        held = int(pop.grace[i])
        held_until = datetime.fromtimestamp(held, UTC) if held else None
        decision = domain.decide(
            current=int(pop.position[i]),
            target=int(target[i]),
            grace_until=held_until,
            now=now,
            grace=grace,
        )
        member_id = int(pop.ids[i])
        if decision.outcome in (Outcome.UPGRADE, Outcome.DOWNGRADE):
            to = tiers.tiers[decision.position].code
            moves.append({"m": member_id, "was": was, "tier": to, "at": now})
            history.append(
                {
                    "member_id": member_id,
                    "from_tier": was,
                    "to_tier": to,
                    "reason": decision.outcome.value,
                    "growth": int(pop.growth[i]),
                    "rfm": f"{r[i]}-{f[i]}-{m[i]}",
                    "created_at": now,
                }
            )
            if decision.outcome is Outcome.UPGRADE:
                result.upgrades += 1
            else:
                result.downgrades += 1
        elif decision.grace_until != held_until:
            graces.append({"m": member_id, "was": was, "grace": decision.grace_until, "at": now})
            if decision.outcome is Outcome.GRACE:
                result.graces_started += 1
            else:
                result.graces_cleared += 1
    return moves, graces, history


async def _write(
    db: Database,
    moves: list[dict[str, Any]],
    graces: list[dict[str, Any]],
    history: list[dict[str, Any]],
    *,
    batch: int,
    progress: Progress | None,
) -> None:
    events = [
        {
            "member_id": h["member_id"],
            "from": h["from_tier"],
            "to": h["to_tier"],
            "outcome": h["reason"],
        }
        for h in history
    ] + [
        {"member_id": g["m"], "from": g["was"], "to": g["was"], "outcome": Outcome.GRACE.value}
        for g in graces
        if g["grace"] is not None
    ]
    done = 0
    for start in range(0, max(len(moves), len(graces), len(events)), batch):
        async with db.unit_of_work() as session:
            await repository.set_tiers(session, moves[start : start + batch])
            await repository.set_grace(session, graces[start : start + batch])
            await repository.add_tier_changes(session, history[start : start + batch])
            chunk = events[start : start + batch]
            for first in range(0, len(chunk), EVENT_CHANGES):
                outbox.publish(
                    session, TIERS_CHANGED, {"changes": chunk[first : first + EVENT_CHANGES]}
                )
        done += batch
        if progress is not None:
            progress("write", min(done, max(len(moves), len(graces), len(events))))


async def retier(
    db: Database,
    *,
    now: datetime,
    window_days: int,
    grace_days: int,
    batch: int = 10_000,
    progress: Progress | None = None,
) -> RetierResult:
    """Re-tier every member with an account (safe to run twice)."""
    started = time.perf_counter()
    async with db.read_only() as session:
        tiers = await pricing.ladder(session)
    since_day = domain.window_start_day(now, window_days)
    pop = await _read(db, tiers, since_day=since_day, batch=batch, progress=progress)
    result = RetierResult(members=len(pop.ids), active=int(np.count_nonzero(pop.visits > 0)))
    moves, graces, history = _decisions(
        pop, tiers, now=now, grace=timedelta(days=grace_days), result=result
    )
    del pop
    await _write(db, moves, graces, history, batch=batch, progress=progress)
    result.seconds = time.perf_counter() - started
    return result
