"""All SQL of the wallet: accounts under row locks and the append-only ledger."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.db import lock_row, upsert_insert
from forecourt.kit import clock
from forecourt.wallet.models import WalletAccount, WalletEntry


async def account(session: AsyncSession, member_id: int) -> WalletAccount | None:
    """A member's account (no lock)."""
    return await session.get(WalletAccount, member_id)


async def lock_account(session: AsyncSession, member_id: int) -> WalletAccount:
    """A member's account under a row lock, created empty when missing."""
    await session.execute(
        upsert_insert(session, WalletAccount)
        .values(member_id=member_id, principal_fen=0, bonus_fen=0, updated_at=clock.now())
        .on_conflict_do_nothing(index_elements=["member_id"])
    )
    row: WalletAccount = await lock_row(session, WalletAccount, member_id)
    return row


async def entry(
    session: AsyncSession, *, member_id: int, kind: str, ref: str
) -> WalletEntry | None:
    """The ledger entry of one kind for one reference (idempotency)."""
    stmt = select(WalletEntry).where(
        WalletEntry.member_id == member_id, WalletEntry.kind == kind, WalletEntry.ref == ref
    )
    return (await session.scalars(stmt)).first()


async def append(
    session: AsyncSession,
    account: WalletAccount,
    *,
    kind: str,
    ref: str,
    principal_fen: int,
    bonus_fen: int,
    origin: str | None = None,
) -> WalletEntry:
    """Change a locked account's buckets and write the ledger entry with the balances after."""
    account.principal_fen += principal_fen
    account.bonus_fen += bonus_fen
    if account.principal_fen < 0 or account.bonus_fen < 0:
        raise ValueError("wallet balance would go negative")
    now = clock.now()
    account.updated_at = now
    row = WalletEntry(
        member_id=account.member_id,
        kind=kind,
        ref=ref,
        origin=origin,
        principal_fen=principal_fen,
        bonus_fen=bonus_fen,
        principal_after_fen=account.principal_fen,
        bonus_after_fen=account.bonus_fen,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def entries(
    session: AsyncSession, *, member_id: int, before_id: int | None, limit: int
) -> Sequence[WalletEntry]:
    """A member's ledger, newest first."""
    stmt = select(WalletEntry).where(WalletEntry.member_id == member_id)
    if before_id is not None:
        stmt = stmt.where(WalletEntry.id < before_id)
    return (await session.scalars(stmt.order_by(WalletEntry.id.desc()).limit(limit))).all()


async def refunds_of(
    session: AsyncSession, *, member_id: int, payment_id: str
) -> Sequence[WalletEntry]:
    """The refund entries of one wallet payment."""
    stmt = select(WalletEntry).where(
        WalletEntry.member_id == member_id,
        WalletEntry.kind == "refund",
        WalletEntry.origin == payment_id,
    )
    return (await session.scalars(stmt.order_by(WalletEntry.id))).all()


async def ledger_sums(session: AsyncSession, member_id: int) -> tuple[int, int]:
    """Sum of all principal and bonus changes (equals the balance when the ledger is whole)."""
    stmt = select(
        func.coalesce(func.sum(WalletEntry.principal_fen), 0),
        func.coalesce(func.sum(WalletEntry.bonus_fen), 0),
    ).where(WalletEntry.member_id == member_id)
    principal, bonus = (await session.execute(stmt)).one()
    return int(principal), int(bonus)
