"""Reconciliation: match a provider's daily statement against our payments and refunds.

Each statement line is keyed by (kind, merchant number): the payment's out_trade_no or the
refund's out_refund_no. Lines only on the statement are `missing_ours` (money we did not
book: a lost notification, a payment for an order we do not know); ours only are
`missing_theirs`; both with different amounts are `amount_mismatch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.kit import clock
from forecourt.payment import repository
from forecourt.payment.errors import ProviderUnavailable
from forecourt.payment.gateways import Gateways
from forecourt.payment.models import Reconciliation
from forecourt.payment.providers import BillRow, ProviderError
from forecourt.payment.schemas import ReconciliationOut

Key = tuple[str, str]


def business_day(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a business day (Asia/Shanghai) in UTC."""
    start = datetime(day.year, day.month, day.day, tzinfo=clock.BUSINESS_TZ)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def match(
    bill: Sequence[BillRow], ours: Mapping[Key, tuple[int, str | None]]
) -> list[dict[str, Any]]:
    """Discrepancies between statement lines and our (amount, transaction id) per key."""
    items: list[dict[str, Any]] = []
    theirs: dict[Key, BillRow] = {}
    for row in bill:
        number = row.out_refund_no if row.kind == "refund" else row.out_trade_no
        theirs[(row.kind, number or "")] = row
    for key, row in sorted(theirs.items()):
        if key not in ours:
            items.append(
                _item("missing_ours", key, bill_fen=row.amount_fen, ref=row.transaction_id)
            )
        elif ours[key][0] != row.amount_fen:
            items.append(
                _item("amount_mismatch", key, bill_fen=row.amount_fen, our_fen=ours[key][0])
            )
    for key, (amount, ref) in sorted(ours.items()):
        if key not in theirs:
            items.append(_item("missing_theirs", key, our_fen=amount, ref=ref))
    return items


def _item(
    problem: str,
    key: Key,
    *,
    bill_fen: int | None = None,
    our_fen: int | None = None,
    ref: str | None = None,
) -> dict[str, Any]:
    return {
        "problem": problem,
        "kind": key[0],
        "number": key[1],
        "bill_fen": bill_fen,
        "our_fen": our_fen,
        "transaction_id": ref,
    }


async def run(
    session: AsyncSession, *, provider: str, bill_date: date, gateways: Gateways
) -> ReconciliationOut:
    """Download, parse and match one statement; the result is stored (a re-run replaces it)."""
    adapter = gateways.get(provider)
    try:
        bill = await adapter.bill(bill_date)
    except ProviderError as exc:
        raise ProviderUnavailable(f"{provider} statement: {exc.message}") from exc
    start, end = business_day(bill_date)
    ours: dict[Key, tuple[int, str | None]] = {}
    for payment in await repository.paid_between(session, provider=provider, start=start, end=end):
        ours[("payment", payment.id)] = (payment.amount_fen, payment.transaction_id)
    for refund in await repository.refunded_between(
        session, provider=provider, start=start, end=end
    ):
        ours[("refund", refund.id)] = (refund.amount_fen, refund.refund_ref)
    items = match(bill, ours)
    row = await repository.save_reconciliation(
        session,
        provider=provider,
        bill_date=bill_date,
        status="discrepancies" if items else "balanced",
        bill_rows=len(bill),
        matched=len(bill) - sum(1 for i in items if i["problem"] != "missing_theirs"),
        bill_total_fen=sum(r.amount_fen if r.kind == "payment" else -r.amount_fen for r in bill),
        our_total_fen=sum(a if k[0] == "payment" else -a for k, (a, _) in ours.items()),
        items=items,
        created_at=clock.now(),
    )
    return out(row)


def out(row: Reconciliation) -> ReconciliationOut:
    """The API view of a stored reconciliation."""
    return ReconciliationOut.model_validate(row, from_attributes=True)


async def stored(
    session: AsyncSession, *, provider: str | None, since: date | None, limit: int
) -> list[ReconciliationOut]:
    """Stored reconciliations, newest first."""
    rows = await repository.reconciliations(session, provider=provider, since=since, limit=limit)
    return [out(row) for row in rows]
