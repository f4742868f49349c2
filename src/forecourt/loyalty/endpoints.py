"""HTTP routes of membership: tiers, the member card, the points ledger, shares, back office."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, status
from pydantic import BaseModel

from forecourt.backoffice import audit
from forecourt.deps import HqAdmin, Member, Public, ReadSession, RuntimeDep, Session
from forecourt.kit import clock
from forecourt.loyalty import crm, repository, service, views
from forecourt.loyalty.domain import TierLadder
from forecourt.loyalty.errors import BadTierConfig
from forecourt.loyalty.pricing import replace_tiers, tier_of_row
from forecourt.loyalty.schemas import (
    AdjustIn,
    AdminEntryOut,
    AdminTierOut,
    CardOut,
    EntryOut,
    ExternalIdIn,
    MemberLoyaltyOut,
    ShareIn,
    ShareOut,
    TierOut,
    TiersIn,
)
from forecourt.payment import idempotency

router = APIRouter(tags=["loyalty"])
admin = APIRouter(prefix="/admin/loyalty", tags=["loyalty admin"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
Limit = Annotated[int, Query(ge=1, le=100)]


class Queued(BaseModel):
    """A job was sent to the task queue."""

    queued: str


@router.get("/loyalty/tiers", response_model=list[TierOut], dependencies=[Public])
async def tiers(session: ReadSession) -> list[TierOut]:
    """The membership levels, their thresholds and discounts."""
    return [views.tier_out(t) for t in (await views.tiers(session)).tiers]


@router.get("/loyalty/card", response_model=CardOut)
async def my_card(session: ReadSession, runtime: RuntimeDep, principal: Member) -> CardOut:
    """The caller's member card: tier, growth, points."""
    return await views.card(
        session,
        member_id=principal.id,
        window_days=runtime.settings.loyalty_window_days,
        now=clock.now(),
    )


@router.get("/loyalty/points/entries", response_model=list[EntryOut])
async def my_entries(
    session: ReadSession, principal: Member, before_id: int | None = None, limit: Limit = 50
) -> list[EntryOut]:
    """The caller's points ledger, newest first."""
    rows = await repository.entries(
        session, member_id=principal.id, before_id=before_id, limit=limit
    )
    return [views.entry_out(row) for row in rows]


@router.post("/loyalty/shares", response_model=ShareOut, status_code=status.HTTP_201_CREATED)
async def share(
    session: Session, runtime: RuntimeDep, principal: Member, body: ShareIn
) -> ShareOut:
    """The app reports a share; it adds growth for the first few of each day."""
    cap = runtime.settings.loyalty_share_daily_cap
    result = await service.record_share(
        session, member_id=principal.id, channel=body.channel, daily_cap=cap, now=clock.now()
    )
    return ShareOut(
        counted=result.counted,
        growth=result.growth,
        shares_today=result.shares_today,
        daily_cap=cap,
    )


# -- back office -----------------------------------------------------------------------------


@admin.get("/tiers", response_model=list[AdminTierOut])
async def admin_tiers(session: ReadSession, principal: HqAdmin) -> list[AdminTierOut]:
    """The tier configuration in force."""
    return [views.admin_tier_out(t) for t in (await views.tiers(session)).tiers]


@admin.put("/tiers", response_model=list[AdminTierOut])
async def set_tiers(session: Session, principal: HqAdmin, body: TiersIn) -> list[AdminTierOut]:
    """Replace the tier configuration (the lowest tier must have no thresholds)."""
    rows = [views.tier_row(t) for t in body.tiers]
    try:
        ladder = TierLadder([tier_of_row(r) for r in rows])
    except ValueError as exc:
        raise BadTierConfig(str(exc)) from exc
    await replace_tiers(session, rows)
    return [views.admin_tier_out(t) for t in ladder.tiers]


@admin.get("/members/{member_id}", response_model=MemberLoyaltyOut)
async def member(
    session: ReadSession, runtime: RuntimeDep, principal: HqAdmin, member_id: int
) -> MemberLoyaltyOut:
    """Look a member up: card, WeCom state, tier history (masked phone only)."""
    return await views.member_lookup(
        session,
        member_id=member_id,
        window_days=runtime.settings.loyalty_window_days,
        now=clock.now(),
    )


@admin.get("/members/{member_id}/entries", response_model=list[AdminEntryOut])
async def member_entries(
    session: ReadSession,
    principal: HqAdmin,
    member_id: int,
    before_id: int | None = None,
    limit: Limit = 50,
) -> list[AdminEntryOut]:
    """A member's ledger with who made each entry."""
    rows = await repository.entries(session, member_id=member_id, before_id=before_id, limit=limit)
    return [views.admin_entry_out(row) for row in rows]


@admin.post(
    "/members/{member_id}/adjustments",
    response_model=AdminEntryOut,
    status_code=status.HTTP_201_CREATED,
)
async def adjust(
    session: Session,
    principal: HqAdmin,
    member_id: int,
    body: AdjustIn,
    idempotency_key: IdempotencyKey = None,
) -> AdminEntryOut:
    """Add or deduct points with a reason (audited: who, when, why)."""

    async def work() -> AdminEntryOut:
        row = await service.adjust(
            session,
            member_id=member_id,
            delta=body.points,
            reason=body.reason,
            actor=principal.subject,
            now=clock.now(),
        )
        audit.record(
            session,
            principal,
            "points.adjusted",
            subject_type="member",
            subject_id=member_id,
            details={"points": body.points, "reason": body.reason, "entry_id": row.id},
        )
        return views.admin_entry_out(row)

    return await idempotency.run(
        session,
        subject=principal.subject,
        route=f"loyalty.adjust.{member_id}",
        key=idempotency_key,
        request=body.model_dump(mode="json"),
        model=AdminEntryOut,
        work=work,
    )


@admin.put("/members/{member_id}/wecom", response_model=MemberLoyaltyOut)
async def set_wecom_contact(
    session: Session, runtime: RuntimeDep, principal: HqAdmin, member_id: int, body: ExternalIdIn
) -> MemberLoyaltyOut:
    """Record the member's WeCom external contact id; their tier tag is synced."""
    now = clock.now()
    await crm.set_external_userid(
        session, member_id=member_id, external_userid=body.external_userid, now=now
    )
    await session.flush()
    return await views.member_lookup(
        session, member_id=member_id, window_days=runtime.settings.loyalty_window_days, now=now
    )


@admin.post("/retier", response_model=Queued, status_code=status.HTTP_202_ACCEPTED)
async def retier_now(runtime: RuntimeDep, principal: HqAdmin) -> Queued:
    """Queue a re-tiering run now (it also runs nightly)."""
    await runtime.tasks.run_job("loyalty.retier")
    return Queued(queued="loyalty.retier")
