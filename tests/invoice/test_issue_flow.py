"""Request -> provider -> callback -> issued -> PDF and e-mail, for one and several orders."""

from __future__ import annotations

import io

from pypdf import PdfReader
from sqlalchemy import select

from forecourt.invoice.models import InvoiceSeller
from tests.invoice.conftest import World


async def test_one_order_is_issued_mailed_and_downloadable(world: World) -> None:
    order_id = await world.order(grade="92", volume_ml=30_000)  # 30 L x 7.76 = 232.80
    made = await world.request([order_id], email="Driver.Li@Example.COM")
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["status"] == "requested"
    assert (body["total_fen"], body["net_fen"], body["tax_fen"]) == (23_280, 20_602, 2_678)
    assert body["email"] == "D***@example.com"
    [line] = body["lines"]
    assert line == {
        "order_id": order_id,
        "goods_name": "*汽油*92号车用汽油",
        "tax_code": "1070101010100000000",
        "unit": "升",
        "quantity": "30.000",
        "unit_price": "7.76",
        "amount_fen": 23_280,
        "net_fen": 20_602,
        "tax_fen": 2_678,
        "tax_rate": "0.13",
    }
    issued = await world.final(body["id"])
    assert issued["status"] == "issued", issued
    number = issued["invoice_number"]
    assert len(number) == 20
    assert issued["pdf_url"] == f"/api/v1/invoices/{body['id']}/pdf"
    pdf = await world.get(issued["pdf_url"])
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    for expected in (
        number,
        "电子发票（普通发票）",
        "*汽油*92号车用汽油",
        "30.000",
        "¥232.80",
        "贰佰叁拾贰圆捌角整",
        "91440300708461136T",
        "91530100MA6K0FC01K",
    ):
        assert expected in text, expected
    [msg] = world.inbox.messages
    assert world.inbox.recipients == [["Driver.Li@example.com"]]
    assert number in str(msg["Subject"])
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == f"{number}.pdf"
    method, sent = world.sandbox.requests[0]
    assert method == "nuonuo.OpeMplatform.requestBillingNew"
    detail = sent["order"]["invoiceDetail"][0]
    assert (detail["unit"], detail["num"], detail["taxIncludedAmount"]) == (
        "升",
        "30.000",
        "232.80",
    )
    assert sent["order"]["specificFactor"] == "1"
    async with world.runtime.db.read_only() as session:
        quota = (await session.scalars(select(InvoiceSeller.quota_ml))).one()
    assert quota == 10_000_000 - 30_000
    assert world.sandbox.quota_litres("91530100MA6K0FC01K") == 10_000 - 30
