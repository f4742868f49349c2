"""SQL of loyalty: tiers, accounts under row locks, the append-only ledger, activity, history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.models import Member
from forecourt.db import lock_row, upsert_insert
from forecourt.loyalty.models import (
    Activity,
    LoyaltyAccount,
    LoyaltyTier,
    PointsEntry,
    TierChange,
)
from forecourt.loyalty.points import Move


def core_table(model: type[Any]) -> Table:
    """The Core table of a mapped class."""
    table: Table = model.__table__
    return table


class NegativeBalance(ValueError):
    """An entry would make the balance or the debt negative (a bug: rules check first)."""


# -- tiers -----------------------------------------------------------------------------------


async def tiers(session: AsyncSession) -> Sequence[LoyaltyTier]:
    """The configured tiers, lowest first (empty: the defaults apply)."""
    return (await session.scalars(select(LoyaltyTier).order_by(LoyaltyTier.rank))).all()


async def replace_tiers(session: AsyncSession, rows: Sequence[LoyaltyTier]) -> None:
    """Replace the whole tier configuration."""
    await session.execute(delete(LoyaltyTier))
    session.add_all(rows)
    await session.flush()


# -- accounts and the ledger -----------------------------------------------------------------


async def account(session: AsyncSession, member_id: int) -> LoyaltyAccount | None:
    """A member's account (no lock)."""
    return await session.get(LoyaltyAccount, member_id)


async def member(session: AsyncSession, member_id: int) -> Member | None:
    """The member row (existence and masked phone for look-ups)."""
    return await session.get(Member, member_id)


async def lock_account(
    session: AsyncSession, member_id: int, *, base_tier: str, now: datetime
) -> LoyaltyAccount:
    """A member's account under a row lock, created at the entry tier when missing."""
    await session.execute(
        upsert_insert(session, LoyaltyAccount)
        .values(
            member_id=member_id,
            tier_code=base_tier,
            tier_since=now,
            points_balance=0,
            points_debt=0,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["member_id"])
    )
    row: LoyaltyAccount = await lock_row(session, LoyaltyAccount, member_id)
    return row


async def entry(
    session: AsyncSession, *, member_id: int, kind: str, ref: str
) -> PointsEntry | None:
    """The entry of one kind for one reference (idempotency)."""
    stmt = select(PointsEntry).where(
        PointsEntry.member_id == member_id, PointsEntry.kind == kind, PointsEntry.ref == ref
    )
    return (await session.scalars(stmt)).first()


async def append(
    session: AsyncSession,
    account: LoyaltyAccount,
    move: Move,
    *,
    ref: str,
    now: datetime,
    **values: Any,
) -> PointsEntry:
    """Apply a move to a locked account and write the entry with the balances after it."""
    balance = account.points_balance + move.points
    debt = account.points_debt + move.debt
    if balance < 0 or debt < 0:
        raise NegativeBalance(f"points balance {balance}, debt {debt}")
    account.points_balance, account.points_debt, account.updated_at = balance, debt, now
    row = PointsEntry(
        member_id=account.member_id,
        kind=move.kind.value,
        ref=ref,
        points=move.points,
        debt=move.debt,
        balance_after=balance,
        debt_after=debt,
        created_at=now,
        **values,
    )
    session.add(row)
    await session.flush()
    return row


async def order_entries(
    session: AsyncSession, *, member_id: int, order_id: str
) -> Sequence[PointsEntry]:
    """The earn and reverse entries of one fuel order."""
    stmt = select(PointsEntry).where(
        PointsEntry.member_id == member_id, PointsEntry.order_id == order_id
    )
    return (await session.scalars(stmt.order_by(PointsEntry.id))).all()


async def entries(
    session: AsyncSession, *, member_id: int, before_id: int | None, limit: int
) -> Sequence[PointsEntry]:
    """A member's ledger, newest first."""
    stmt = select(PointsEntry).where(PointsEntry.member_id == member_id)
    if before_id is not None:
        stmt = stmt.where(PointsEntry.id < before_id)
    return (await session.scalars(stmt.order_by(PointsEntry.id.desc()).limit(limit))).all()


async def ledger_sums(session: AsyncSession, member_id: int) -> tuple[int, int]:
    """Sum of all point and debt changes (equal to the account when the ledger is whole)."""
    stmt = select(
        func.coalesce(func.sum(PointsEntry.points), 0), func.coalesce(func.sum(PointsEntry.debt), 0)
    ).where(PointsEntry.member_id == member_id)
    points, debt = (await session.execute(stmt)).one()
    return int(points), int(debt)


async def expiry_totals(session: AsyncSession, *, member_id: int, at: datetime) -> tuple[int, int]:
    """(credits of lots dated at or before `at`, everything ever taken out)."""
    old = case((PointsEntry.expires_at <= at, PointsEntry.points), else_=0)
    taken = case((PointsEntry.points < 0, -PointsEntry.points), else_=0)
    stmt = select(func.coalesce(func.sum(old), 0), func.coalesce(func.sum(taken), 0)).where(
        PointsEntry.member_id == member_id
    )
    credits, debits = (await session.execute(stmt)).one()
    return int(credits), int(debits)


async def next_lot_expiry(
    session: AsyncSession, *, member_id: int, now: datetime
) -> datetime | None:
    """The earliest lot date still ahead."""
    stmt = select(func.min(PointsEntry.expires_at)).where(
        PointsEntry.member_id == member_id, PointsEntry.expires_at > now
    )
    value: datetime | None = await session.scalar(stmt)
    return value


async def members_with_lapsed_lots(
    session: AsyncSession, *, now: datetime, after: int, limit: int
) -> list[int]:
    """Members with a positive balance and a lot past its date (candidates for expiry)."""
    stmt = (
        select(PointsEntry.member_id)
        .join(LoyaltyAccount, LoyaltyAccount.member_id == PointsEntry.member_id)
        .where(
            PointsEntry.expires_at <= now,
            PointsEntry.member_id > after,
            LoyaltyAccount.points_balance > 0,
        )
        .group_by(PointsEntry.member_id)
        .order_by(PointsEntry.member_id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


# -- activity (growth value and RFM facts) ---------------------------------------------------


async def add_activity(session: AsyncSession, **values: Any) -> None:
    """Append an activity fact."""
    session.add(Activity(**values))
    await session.flush()


async def order_activity(session: AsyncSession, order_id: str) -> Sequence[Activity]:
    """The visit of a fuel order and its refund corrections."""
    stmt = select(Activity).where(Activity.order_id == order_id).order_by(Activity.id)
    return (await session.scalars(stmt)).all()


async def shares_on(session: AsyncSession, *, member_id: int, day: int) -> int:
    """How many shares of the member counted on a business day."""
    stmt = select(func.count()).where(
        Activity.member_id == member_id, Activity.kind == "share", Activity.day == day
    )
    return int(await session.scalar(stmt) or 0)


async def member_totals(
    session: AsyncSession, *, member_id: int, since_day: int
) -> tuple[int, int, int, int | None]:
    """(visits, fen kept, growth, last visit day) of one member inside the window."""
    rows = await activity_totals(session, lo=member_id, hi=member_id, since_day=since_day)
    if not rows:
        return 0, 0, 0, None
    _, visits, amount, growth, last_day = rows[0]
    return visits, amount, growth, last_day


async def activity_totals(
    session: AsyncSession, *, lo: int, hi: int, since_day: int
) -> list[tuple[int, int, int, int, int | None]]:
    """Per member in [lo, hi]: (member, visits, fen kept, growth, last visit day) in the window."""
    last_visit = case((Activity.kind == "visit", Activity.day), else_=None)
    stmt = (
        select(
            Activity.member_id,
            func.sum(Activity.visits),
            func.sum(Activity.amount_fen),
            func.sum(Activity.growth),
            func.max(last_visit),
        )
        .where(Activity.member_id.between(lo, hi), Activity.day >= since_day)
        .group_by(Activity.member_id)
    )
    return [
        (int(m), int(v or 0), int(a or 0), int(g or 0), None if d is None else int(d))
        for m, v, a, g, d in await (await session.connection()).execute(stmt)
    ]


# -- re-tiering ------------------------------------------------------------------------------


async def account_page(
    session: AsyncSession, *, after: int, limit: int
) -> list[tuple[int, str, datetime | None]]:
    """(member, tier, grace deadline) of the next accounts by member id."""
    stmt = (
        select(LoyaltyAccount.member_id, LoyaltyAccount.tier_code, LoyaltyAccount.grace_until)
        .where(LoyaltyAccount.member_id > after)
        .order_by(LoyaltyAccount.member_id)
        .limit(limit)
    )
    rows = await (await session.connection()).execute(stmt)  # Core: no ORM overhead per row
    return [(int(m), str(t), g) for m, t, g in rows]


async def set_tiers(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Move members to new tiers (grace cleared), each only if still at the tier read (`was`)."""
    table = core_table(LoyaltyAccount)
    stmt = (
        update(table)
        .where(table.c.member_id == bindparam("m"), table.c.tier_code == bindparam("was"))
        .values(
            tier_code=bindparam("tier"),
            tier_since=bindparam("at"),
            grace_until=None,
            updated_at=bindparam("at"),
        )
    )
    if rows:
        await (await session.connection()).execute(stmt, list(rows))


async def set_grace(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Start or clear members' downgrade grace, each only if still at the tier read (`was`)."""
    table = core_table(LoyaltyAccount)
    stmt = (
        update(table)
        .where(table.c.member_id == bindparam("m"), table.c.tier_code == bindparam("was"))
        .values(grace_until=bindparam("grace"), updated_at=bindparam("at"))
    )
    if rows:
        await (await session.connection()).execute(stmt, list(rows))


async def add_tier_changes(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Append tier history rows (bulk)."""
    if rows:
        await session.execute(insert(TierChange), list(rows))


async def tier_changes(
    session: AsyncSession, *, member_id: int, limit: int
) -> Sequence[TierChange]:
    """A member's tier history, newest first."""
    stmt = (
        select(TierChange)
        .where(TierChange.member_id == member_id)
        .order_by(TierChange.id.desc())
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()
