"""A refund of an invoiced order: red-letter invoice, then a blue one for what is left."""

from __future__ import annotations

import io
from typing import Any

import httpx
from pypdf import PdfReader
from sqlalchemy import select

from forecourt.app import create_app
from forecourt.integrations.nuonuo import NuonuoSandbox
from forecourt.invoice.models import Invoice, InvoiceSeller
from forecourt.outbox.models import OutboxEvent
from tests.fixtures.auth import make_staff, staff_headers
from tests.payment.conftest import Forecourt
from tests.pump.helpers import eventually

SELLER = "91530100MA6K0FC01K"


async def _paid_order(fc: Forecourt) -> str:
    await fc.sale(seq=1, nozzle=1, volume_ml=30_000)  # 30 L of 92# at 7.76 = 232.80
    order = (
        await fc.post(
            "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1}
        )
    ).json()
    payment = (
        await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"})
    ).json()
    await fc.wechat.complete(payment["id"])
    await fc.wechat.join()
    assert (await fc.get(f"/api/v1/orders/{order['id']}")).json()["status"] == "completed"
    return str(order["id"])


async def _rows(fc: Forecourt) -> list[Invoice]:
    async with fc.runtime.db.read_only() as session:
        rows = list(await session.scalars(select(Invoice).order_by(Invoice.id)))
        session.expunge_all()
        return rows


async def _settled(fc: Forecourt, count: int) -> list[Invoice]:
    """Wait until there are `count` invoices, none under way, and the outbox is empty."""

    async def done() -> list[Invoice] | None:
        rows = await _rows(fc)
        busy = any(r.status in ("requested", "issuing", "reversing") for r in rows)
        async with fc.runtime.db.read_only() as session:
            pending = (
                await session.scalars(
                    select(OutboxEvent.id).where(OutboxEvent.dispatched_at.is_(None))
                )
            ).first()
        return rows if len(rows) == count and not busy and pending is None else None

    return await eventually(done, within=20, what=f"{count} invoices settled")


async def _quota(fc: Forecourt) -> int:
    async with fc.runtime.db.read_only() as session:
        return int((await session.scalars(select(InvoiceSeller.quota_ml))).one())


async def _refund(fc: Forecourt, headers: dict[str, str], order_id: str, amount: int) -> None:
    made = await fc.http.post(
        f"/api/v1/admin/orders/{order_id}/refunds",
        json={"amount_fen": amount, "reason": "油品价格调整"},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    await fc.wechat.join()


def _summary(rows: list[Invoice]) -> list[tuple[Any, ...]]:
    return [
        (r.kind, r.status, r.total_fen, r.volume_ml, r.original_id, r.replaces_id) for r in rows
    ]


async def test_partial_then_full_refund_reverses_and_reissues(forecourt: Forecourt) -> None:
    fc = forecourt
    fc.runtime.invoicing.route_callbacks(httpx.ASGITransport(app=create_app(runtime=fc.runtime)))
    sandbox = fc.runtime.invoicing.sandbox
    assert isinstance(sandbox, NuonuoSandbox)
    order_id = await _paid_order(fc)
    title = {"kind": "company", "name": "华为技术有限公司", "tax_id": "914403001922038216"}
    made = await fc.post("/api/v1/invoices", {"order_ids": [order_id], "title": title}, key="inv")
    assert made.status_code == 201, made.text
    [blue] = await _settled(fc, 1)
    assert (blue.status, blue.total_fen) == ("issued", 23_280)
    assert await _quota(fc) == 10_000_000 - 30_000

    manager = await make_staff(fc.runtime, role="station_manager", station_ids=[fc.station_id])
    headers = staff_headers(fc.runtime, manager)
    await _refund(fc, headers, order_id, 2_000)
    rows = await _settled(fc, 3)
    assert _summary(rows) == [
        ("blue", "reversed", 23_280, 30_000, None, None),
        ("red", "issued", -23_280, -30_000, blue.id, None),
        ("blue", "issued", 21_280, 30_000, None, blue.id),
    ]
    red, reissued = rows[1], rows[2]
    assert (red.net_fen, red.tax_fen) == (-20_602, -2_678)
    assert (reissued.net_fen, reissued.tax_fen) == (18_832, 2_448)
    red_call = next(
        body for method, body in sandbox.requests if body.get("order", {}).get("invoiceType") == "2"
    )
    assert red_call["order"]["invoiceNum"] == blue.invoice_number
    assert red_call["order"]["redReason"] == "2"
    assert red_call["order"]["invoiceDetail"][0]["num"] == "-30.000"
    assert await _quota(fc) == 10_000_000 - 30_000
    assert sandbox.quota_litres(SELLER) == 10_000 - 30

    pdf = await fc.get(f"/api/v1/invoices/{red.id}/pdf")
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    for expected in (
        "销项负数",
        f"被红冲蓝字数电发票号码：{blue.invoice_number}",
        "¥-232.80",
        "负贰佰叁拾贰圆捌角整",
    ):
        assert expected in text, expected
    mine = (await fc.get("/api/v1/invoices")).json()["items"]
    assert [(i["kind"], i["status"]) for i in mine] == [
        ("blue", "issued"),
        ("red", "issued"),
        ("blue", "reversed"),
    ]

    await _refund(fc, headers, order_id, 21_280)
    rows = await _settled(fc, 4)
    assert (await fc.get(f"/api/v1/orders/{order_id}")).json()["status"] == "refunded"
    assert _summary(rows)[2:] == [
        ("blue", "reversed", 21_280, 30_000, None, blue.id),
        ("red", "issued", -21_280, -30_000, reissued.id, None),
    ]
    assert await _quota(fc) == 10_000_000
    assert sandbox.quota_litres(SELLER) == 10_000
    again = await fc.post("/api/v1/invoices", {"order_ids": [order_id], "title": title})
    assert (again.status_code, again.json()["code"]) == (409, "order_refunded")
