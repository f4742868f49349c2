"""SQL of the WeCom CRM sync: the wanted tag per member, due rows, versioned outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.models import Member
from forecourt.db import upsert_insert
from forecourt.loyalty.models import CrmSync, LoyaltyAccount


async def want_tags(
    session: AsyncSession, rows: Sequence[tuple[int, str]], *, now: datetime
) -> None:
    """Record the tier each member should carry in WeCom (a newer wish bumps the version)."""
    for member_id, tier_code in rows:
        stmt = upsert_insert(session, CrmSync).values(
            member_id=member_id,
            tier_code=tier_code,
            version=1,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["member_id"],
            set_={
                "tier_code": stmt.excluded.tier_code,
                "version": CrmSync.version + 1,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "last_error": None,
                "updated_at": now,
            },
        )
        await session.execute(stmt)


@dataclass(frozen=True, slots=True)
class DueSync:
    """A pending tag sync with what is known of the member's WeChat identity."""

    member_id: int
    tier_code: str
    version: int
    attempts: int
    external_userid: str | None
    openid: str | None
    unionid: str | None


async def due_syncs(session: AsyncSession, *, now: datetime, limit: int) -> list[DueSync]:
    """Pending syncs that are due, oldest first."""
    stmt = (
        select(
            CrmSync.member_id,
            CrmSync.tier_code,
            CrmSync.version,
            CrmSync.attempts,
            LoyaltyAccount.external_userid,
            Member.openid,
            Member.unionid,
        )
        .join(Member, Member.id == CrmSync.member_id)
        .outerjoin(LoyaltyAccount, LoyaltyAccount.member_id == CrmSync.member_id)
        .where(CrmSync.status == "pending", CrmSync.next_attempt_at <= now)
        .order_by(CrmSync.next_attempt_at, CrmSync.member_id)
        .limit(limit)
    )
    return [DueSync(*row) for row in await session.execute(stmt)]


async def finish_sync(
    session: AsyncSession, *, member_id: int, version: int, values: dict[str, Any]
) -> bool:
    """Record a sync attempt unless a newer wish arrived meanwhile."""
    stmt = (
        update(CrmSync)
        .where(CrmSync.member_id == member_id, CrmSync.version == version)
        .values(**values)
    )
    result = await session.execute(stmt)
    return bool(getattr(result, "rowcount", 0))


async def sync_row(session: AsyncSession, member_id: int) -> CrmSync | None:
    """A member's sync state."""
    return await session.get(CrmSync, member_id, populate_existing=True)
