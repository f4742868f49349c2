"""Exports of orders, shifts and reconciliations (masked phones, never card numbers)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from forecourt.auth.tokens import Principal
from forecourt.backoffice import repository, sales_repository, totals
from forecourt.backoffice.schemas import Totals
from forecourt.backoffice.tables import Cell, Table
from forecourt.errors import NotFound
from forecourt.kit import clock
from forecourt.kit.scope import require_station
from forecourt.order import service as orders
from forecourt.station import repository as station_repository

ORDER_HEADER = (
    "订单号",
    "下单时间",
    "状态",
    "类型",
    "枪号",
    "油品",
    "单价(分/升)",
    "油量(毫升)",
    "原价(分)",
    "优惠(分)",
    "应付(分)",
    "实付(分)",
    "退款(分)",
    "支付方式",
    "付款时间",
    "付款人手机",
)
SHIFT_HEADER = (
    "班次",
    "状态",
    "开班时间",
    "开班人",
    "交班时间",
    "交班人",
    "订单数",
    "油量(毫升)",
    "净额(分)",
    "应有现金(分)",
    "实点现金(分)",
    "长短款(分)",
    "备注",
)
RECON_HEADER = (
    "渠道",
    "账单日",
    "状态",
    "账单笔数",
    "已匹配",
    "账单金额(分)",
    "我方金额(分)",
    "差异类型",
    "交易类型",
    "商户单号",
    "账单金额差异项(分)",
    "我方金额差异项(分)",
    "渠道交易号",
)


def when(moment: datetime | None) -> str | None:
    """A time as Asia/Shanghai wall-clock text."""
    return clock.local(moment).strftime("%Y-%m-%d %H:%M:%S") if moment else None


async def _station(session: AsyncSession, principal: Principal, station_id: int) -> None:
    require_station(principal, station_id)
    if await station_repository.get(session, station_id) is None:
        raise NotFound(f"station {station_id} not found")


async def orders_table(
    session: AsyncSession,
    *,
    principal: Principal,
    station_id: int,
    status: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> Table:
    """A station's orders, newest first, with payers' masked phones."""
    await _station(session, principal, station_id)
    rows = await sales_repository.station_orders(
        session, station_id=station_id, status=status, since=since, until=until, limit=limit
    )
    views = await orders.staff_views(session, rows)
    data: list[list[Cell]] = [
        [
            v.id,
            when(v.created_at),
            v.status,
            v.kind,
            v.nozzle,
            v.grade,
            v.unit_price_fen,
            v.volume_ml,
            v.list_fen,
            v.discount_fen,
            v.payable_fen,
            v.paid_fen,
            v.refunded_fen,
            v.provider,
            when(v.paid_at),
            v.payer_phone,
        ]
        for v in views
    ]
    return Table(title="订单", header=ORDER_HEADER, rows=data)


async def shifts_table(
    session: AsyncSession, *, principal: Principal, station_id: int, limit: int
) -> Table:
    """A station's shifts, newest first, with their close-time totals."""
    await _station(session, principal, station_id)
    rows = await repository.shifts(session, station_id=station_id, before_id=None, limit=limit)
    ids = {r.opened_by for r in rows} | {r.closed_by for r in rows if r.closed_by}
    names = await repository.staff_names(session, ids)
    data: list[list[Cell]] = []
    for r in rows:
        t = Totals.model_validate(r.expected["totals"]) if r.expected else None
        expected = totals.cash_expected(t) if t else None
        counted = r.cash_counted_fen
        data.append(
            [
                r.id,
                r.status,
                when(r.opened_at),
                names.get(r.opened_by),
                when(r.closed_at),
                names.get(r.closed_by) if r.closed_by else None,
                t.total.orders if t else None,
                t.total.volume_ml if t else None,
                t.total.net_fen if t else None,
                expected,
                counted,
                counted - expected if counted is not None and expected is not None else None,
                r.note,
            ]
        )
    return Table(title="交接班", header=SHIFT_HEADER, rows=data)


async def reconciliation_table(
    session: AsyncSession, *, provider: str | None, bill_date: date | None
) -> Table:
    """Stored reconciliations: one row per discrepancy (one row for a balanced day)."""
    data: list[list[Cell]] = []
    for rec in await sales_repository.reconciliations(
        session, provider=provider, bill_date=bill_date
    ):
        head: list[Cell] = [
            rec.provider,
            rec.bill_date.isoformat(),
            rec.status,
            rec.bill_rows,
            rec.matched,
            rec.bill_total_fen,
            rec.our_total_fen,
        ]
        if not rec.items:
            data.append([*head, None, None, None, None, None, None])
        for item in rec.items:
            data.append(
                [
                    *head,
                    item.get("problem"),
                    item.get("kind"),
                    item.get("number"),
                    item.get("bill_fen"),
                    item.get("our_fen"),
                    item.get("transaction_id"),
                ]
            )
    return Table(title="对账", header=RECON_HEADER, rows=data)
