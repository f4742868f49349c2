"""Wallet rules with the database: credit a top-up, pay, refund, withdraw (no 圈存)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.payment.errors import InsufficientBalance
from forecourt.wallet import domain, repository
from forecourt.wallet.models import WalletAccount, WalletEntry


async def balance(session: AsyncSession, member_id: int) -> WalletAccount:
    """The member's account (an empty one when they never topped up)."""
    row = await repository.account(session, member_id)
    return row or WalletAccount(member_id=member_id, principal_fen=0, bonus_fen=0)


async def credit_topup(
    session: AsyncSession, *, member_id: int, order_id: str, principal_fen: int, bonus_fen: int
) -> WalletEntry:
    """Credit a paid top-up and its bonus, once per order; usable at once."""
    account = await repository.lock_account(session, member_id)
    done = await repository.entry(session, member_id=member_id, kind="topup", ref=order_id)
    if done is not None:
        return done
    return await repository.append(
        session,
        account,
        kind="topup",
        ref=order_id,
        principal_fen=principal_fen,
        bonus_fen=bonus_fen,
    )


async def pay(
    session: AsyncSession, *, member_id: int, payment_id: str, amount_fen: int
) -> WalletEntry:
    """Debit a payment (bonus first); 409 insufficient_balance when it does not cover it."""
    account = await repository.lock_account(session, member_id)
    done = await repository.entry(session, member_id=member_id, kind="pay", ref=payment_id)
    if done is not None:
        return done
    split = domain.pay_split(
        amount_fen, principal_fen=account.principal_fen, bonus_fen=account.bonus_fen
    )
    if split is None:
        raise InsufficientBalance(
            f"wallet balance {account.principal_fen + account.bonus_fen} fen, need {amount_fen}"
        )
    return await repository.append(
        session,
        account,
        kind="pay",
        ref=payment_id,
        principal_fen=-split.principal_fen,
        bonus_fen=-split.bonus_fen,
    )


async def refund(
    session: AsyncSession, *, member_id: int, payment_id: str, refund_id: str, amount_fen: int
) -> WalletEntry:
    """Give (part of) a wallet payment back to the buckets it came from, once per refund."""
    account = await repository.lock_account(session, member_id)
    done = await repository.entry(session, member_id=member_id, kind="refund", ref=refund_id)
    if done is not None:
        return done
    paid = await repository.entry(session, member_id=member_id, kind="pay", ref=payment_id)
    if paid is None:
        raise ValueError(f"payment {payment_id} was not paid from the wallet")
    back = await repository.refunds_of(session, member_id=member_id, payment_id=payment_id)
    refunded = domain.Split(sum(e.principal_fen for e in back), sum(e.bonus_fen for e in back))
    split = domain.refund_split(
        amount_fen,
        paid=domain.Split(-paid.principal_fen, -paid.bonus_fen),
        refunded=refunded,
    )
    return await repository.append(
        session,
        account,
        kind="refund",
        ref=refund_id,
        origin=payment_id,
        principal_fen=split.principal_fen,
        bonus_fen=split.bonus_fen,
    )


async def withdraw(
    session: AsyncSession, *, member_id: int, withdrawal_id: str, principal_fen: int, bonus_fen: int
) -> None:
    """Take the withdrawn principal out and forfeit the bonus (locked account)."""
    account = await repository.lock_account(session, member_id)
    if principal_fen > account.principal_fen or bonus_fen > account.bonus_fen:
        raise InsufficientBalance("the balance changed; try again")
    if principal_fen:
        await repository.append(
            session,
            account,
            kind="withdraw",
            ref=withdrawal_id,
            principal_fen=-principal_fen,
            bonus_fen=0,
        )
    if bonus_fen:
        await repository.append(
            session,
            account,
            kind="forfeit",
            ref=withdrawal_id,
            principal_fen=0,
            bonus_fen=-bonus_fen,
        )


async def withdrawal_failed(
    session: AsyncSession, *, member_id: int, refund_id: str, amount_fen: int
) -> None:
    """A withdrawal refund the provider refused: the principal returns to the wallet."""
    account = await repository.lock_account(session, member_id)
    done = await repository.entry(session, member_id=member_id, kind="withdraw_back", ref=refund_id)
    if done is None:
        await repository.append(
            session,
            account,
            kind="withdraw_back",
            ref=refund_id,
            principal_fen=amount_fen,
            bonus_fen=0,
        )
