"""HTTP routes of the wallet: balance, ledger, top-up, withdrawal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, status

from forecourt.deps import Member, ReadSession, RuntimeDep, Session
from forecourt.kit import clock
from forecourt.order import service as orders
from forecourt.order.schemas import OrderOut, TopUpIn
from forecourt.payment import idempotency, refunds
from forecourt.wallet import domain, repository, service
from forecourt.wallet.schemas import BonusTierOut, EntryOut, WalletOut, WithdrawalOut

router = APIRouter(prefix="/wallet", tags=["wallet"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]


@router.get("", response_model=WalletOut)
async def my_wallet(session: ReadSession, principal: Member) -> WalletOut:
    """The caller's balance and the top-up bonus tiers."""
    account = await service.balance(session, principal.id)
    return WalletOut(
        balance_fen=account.principal_fen + account.bonus_fen,
        principal_fen=account.principal_fen,
        bonus_fen=account.bonus_fen,
        withdrawable_fen=account.principal_fen,
        bonus_tiers=[
            BonusTierOut(min_fen=t.min_fen, bonus_fen=t.bonus_fen) for t in domain.DEFAULT_BONUS
        ],
        topup_min_fen=domain.TOPUP_MIN_FEN,
        topup_max_fen=domain.TOPUP_MAX_FEN,
    )


@router.get("/entries", response_model=list[EntryOut])
async def my_entries(
    session: ReadSession,
    principal: Member,
    before_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[EntryOut]:
    """The caller's ledger, newest first."""
    rows = await repository.entries(
        session, member_id=principal.id, before_id=before_id, limit=limit
    )
    return [EntryOut.model_validate(row, from_attributes=True) for row in rows]


@router.post("/topups", response_model=OrderOut, status_code=status.HTTP_201_CREATED)
async def top_up(
    session: Session,
    runtime: RuntimeDep,
    principal: Member,
    body: TopUpIn,
    idempotency_key: IdempotencyKey = None,
) -> OrderOut:
    """Create a top-up order (pay it with POST /orders/{id}/payments); bonus fixed now."""

    async def work() -> OrderOut:
        order = await orders.create_topup(
            session,
            principal=principal,
            amount_fen=body.amount_fen,
            settings=runtime.settings,
            serial_key=runtime.serial_key,
            device=f"member:{principal.id}",
            now=clock.now(),
        )
        return orders.out(order)

    return await idempotency.run(
        session,
        subject=principal.subject,
        route="wallet.topup",
        key=idempotency_key,
        request=body.model_dump(mode="json"),
        model=OrderOut,
        work=work,
    )


@router.post("/withdrawals", response_model=WithdrawalOut, status_code=status.HTTP_201_CREATED)
async def withdraw(
    session: Session,
    runtime: RuntimeDep,
    principal: Member,
    idempotency_key: IdempotencyKey = None,
) -> WithdrawalOut:
    """Return the whole principal to the channels it came from; the bonus is forfeited."""

    async def work() -> WithdrawalOut:
        before = await service.balance(session, principal.id)
        principal_fen, bonus_fen = before.principal_fen, before.bonus_fen
        made = await refunds.withdraw_wallet(
            session, member_id=principal.id, gateways=runtime.gateways, now=clock.now()
        )
        return WithdrawalOut(
            principal_fen=principal_fen if made else 0,
            forfeited_bonus_fen=bonus_fen,
            refunds=[r.id for r in made],
        )

    return await idempotency.run(
        session,
        subject=principal.subject,
        route="wallet.withdraw",
        key=idempotency_key,
        request={},
        model=WithdrawalOut,
        work=work,
    )
