"""Nuonuo wire client and sandbox: signing, authentication, refined-oil checks, quota, results."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import pytest

from forecourt.integrations.nuonuo.client import NuonuoError, sign
from forecourt.integrations.nuonuo.provider import order_body
from forecourt.invoice.domain import split, unit_price
from forecourt.invoice.providers import IssueLine, IssueRequest
from forecourt.kit import clock
from tests.integrations.nuonuo.conftest import APP_KEY, SECRET, SELLER, Pair


def test_sign_matches_an_independent_hmac_sha1() -> None:
    # printf '%s' "a=services&l=v1&p=open&k=…&f={body}" \
    #   | openssl dgst -sha1 -hmac SECRET -binary | base64
    body = '{"serialNos":["20261125103000123001"],"orderNos":[],"isOfferInvoiceDetail":"0"}'
    assert (
        sign(
            SECRET,
            app_key=APP_KEY,
            senid="a5a4c3fb0d7a4e9bb0e4c0c6c1e0b8f2",
            nonce="12345678",
            timestamp="1764000000",
            body=body,
        )
        == "XPAObbT/k8wS7JvbhQe7haE+D14="
    )


def _line(amount: int = 23_280, volume: int = 30_000, **changes: Any) -> IssueLine:
    parts = split(amount)
    values: dict[str, Any] = {
        "goods_name": "*汽油*92号车用汽油",
        "tax_code": "1070101010100000000",
        "unit": "升",
        "volume_ml": volume,
        "unit_price": unit_price(amount, volume),
        "amount_fen": parts.amount_fen,
        "net_fen": parts.net_fen,
        "tax_fen": parts.tax_fen,
    }
    return IssueLine(**(values | changes))


def _request(order_no: str = "FC261125AAAABBBBCCCC", **changes: Any) -> IssueRequest:
    values: dict[str, Any] = {
        "order_no": order_no,
        "kind": "blue",
        "seller_tax_id": SELLER,
        "seller_name": "演示能源",
        "seller_address": "昆明",
        "buyer_kind": "company",
        "buyer_name": "华为技术有限公司",
        "buyer_tax_id": "914403001922038216",
        "lines": (_line(),),
        "issued_at": datetime(2026, 11, 25, 2, 0, tzinfo=UTC),
        "clerk": "系统",
        "callback_url": "http://app/api/v1/invoices/notify/nuonuo",
    }
    return IssueRequest(**(values | changes))


async def test_issue_is_asynchronous_with_callback_and_query(pair: Pair) -> None:
    serial = await pair.provider.issue(_request())
    assert len(serial) == 20
    assert serial.isdigit()
    first = await pair.provider.query(serial, seller_tax_id=SELLER)
    assert first is not None
    assert (first.state, first.invoice_number) == ("issuing", None)
    await pair.sandbox.join()
    result = await pair.provider.query(serial, seller_tax_id=SELLER)
    assert result is not None
    assert result.state == "issued"
    assert result.invoice_number is not None
    assert len(result.invoice_number) == 20
    assert (result.total_fen, result.net_fen, result.tax_fen) == (23_280, 20_602, 2_678)
    assert result.qr_content is not None
    assert result.qr_content.startswith(f"01,32,,{result.invoice_number},232.80,")
    [callback] = pair.callbacks
    form = parse_qs(callback.content.decode())
    assert form["operater"] == ["callback"]
    content = orjson.loads(form["content"][0])
    assert (content["c_fpqqlsh"], content["c_status"]) == (serial, "2")
    note = pair.provider.parse_callback(dict(callback.headers), callback.content)
    assert (note.serial, note.order_no) == (serial, "FC261125AAAABBBBCCCC")
    assert pair.sandbox.quota_litres(SELLER) == Decimal("70.000")


async def test_a_repeated_order_number_returns_the_first_serial(pair: Pair) -> None:
    first = await pair.provider.issue(_request())
    again = await pair.provider.issue(_request())
    assert again == first
    assert len(pair.sandbox.invoices) == 1
    assert pair.sandbox.quota_litres(SELLER) == Decimal("70.000")


@pytest.mark.parametrize(
    ("changes", "code", "text"),
    [
        (
            {"buyer_tax_id": "914403001922038215"},
            "E9103",
            "购方税号校验失败：check character is '5'",
        ),
        ({"buyer_tax_id": None}, "E9103", "购方税号不能为空"),
        ({"lines": (_line(unit="公斤"),)}, "E9201", "成品油单位必须为升或吨"),
        ({"lines": (_line(goods_name="92号车用汽油"),)}, "E9101", "税收分类简称"),
        ({"lines": (_line(tax_code="3040407040000000000"),)}, "E9203", "只能开具成品油商品"),
        ({"lines": (_line(tax_fen=2_600, net_fen=20_680),)}, "E9204", "税额误差超过0.06元"),
        ({"lines": (_line(net_fen=20_000),)}, "E9101", "价税合计不等于金额加税额"),
        ({"lines": (_line(unit_price="8.00"),)}, "E9101", "单价乘数量"),
        ({"lines": (_line(volume=40_000, amount=31_040),) * 3}, "E9206", "成品油库存不足"),
        ({"seller_tax_id": "91440300708461136T"}, "E9102", "userTax"),
    ],
)
async def test_sandbox_refuses_what_the_platform_refuses(
    pair: Pair, changes: dict[str, Any], code: str, text: str
) -> None:
    request = _request(**changes)
    if "seller_tax_id" in changes:  # signed as our seller, but the order names another
        body = order_body(_request()) | {"salerTaxNum": changes["seller_tax_id"]}
        with pytest.raises(NuonuoError) as caught:
            await pair.client.request_billing(body, user_tax=SELLER)
    else:
        with pytest.raises(NuonuoError) as caught:
            await pair.provider.issue(request)
    assert caught.value.code == code
    assert text in caught.value.message
    assert not caught.value.retryable
    assert pair.sandbox.invoices == {}
    assert pair.sandbox.quota_litres(SELLER) == Decimal(100)


async def test_missing_quantity_is_refused(pair: Pair) -> None:
    body = order_body(_request())
    body["invoiceDetail"][0]["num"] = ""
    with pytest.raises(NuonuoError) as caught:
        await pair.client.request_billing(body, user_tax=SELLER)
    assert (caught.value.code, caught.value.message) == ("E9202", "第1行成品油数量、单价不能为空")


async def test_personal_buyer_needs_no_tax_id(pair: Pair) -> None:
    serial = await pair.provider.issue(
        _request(buyer_kind="personal", buyer_tax_id=None, buyer_name="李雷")
    )
    _, sent = pair.sandbox.requests[-1]
    assert sent["order"]["naturalPersonFlag"] == "1"
    assert serial in pair.sandbox.invoices


async def test_red_letter_reverses_once_and_returns_the_quota(pair: Pair) -> None:
    serial = await pair.provider.issue(_request())
    await pair.sandbox.join()
    blue = await pair.provider.query(serial, seller_tax_id=SELLER)
    assert blue is not None
    assert blue.invoice_number is not None
    negative = _line(amount=-23_280, volume=-30_000, unit_price="7.76")
    red_request = _request(
        "FC261125REDREDREDRED",
        kind="red",
        lines=(negative,),
        original_number=blue.invoice_number,
        red_reason="2",
    )
    red_serial = await pair.provider.issue(red_request)
    await pair.sandbox.join()
    red = await pair.provider.query(red_serial, seller_tax_id=SELLER)
    assert red is not None
    assert (red.state, red.total_fen) == ("issued", -23_280)
    assert pair.sandbox.quota_litres(SELLER) == Decimal(100)
    with pytest.raises(NuonuoError) as twice:
        await pair.provider.issue(
            _request(
                "FC261125REDAGAINREDX",
                kind="red",
                lines=(negative,),
                original_number=blue.invoice_number,
                red_reason="2",
            )
        )
    assert (twice.value.code, twice.value.message) == ("E9302", "原蓝字发票已红冲")


async def test_failed_issuance_gives_the_quota_back(pair: Pair) -> None:
    pair.sandbox.fail_next("税务局系统繁忙")
    serial = await pair.provider.issue(_request())
    await pair.sandbox.join()
    result = await pair.provider.query(serial, seller_tax_id=SELLER)
    assert result is not None
    assert (result.state, result.failure) == ("failed", "税务局系统繁忙")
    assert pair.sandbox.quota_litres(SELLER) == Decimal(100)


async def _raw_call(
    pair: Pair, *, params: dict[str, str], headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=pair.sandbox.app)) as http:
        resp = await http.post(
            "http://nuonuo/open/v1/services", params=params, headers=headers, content=body
        )
    answer: dict[str, Any] = orjson.loads(resp.content)
    return answer


async def test_wire_authentication(pair: Pair) -> None:
    token = pair.sandbox.issue_token()
    body = b'{"serialNos":["1"],"orderNos":[],"isOfferInvoiceDetail":"0"}'
    ts = str(int(clock.now().timestamp()))

    def call(
        senid: str,
        *,
        key: str = APP_KEY,
        t: str = ts,
        secret: str = SECRET,
        tok: str = token,
        tax: str = SELLER,
        method: str = "nuonuo.OpeMplatform.queryInvoiceResult",
    ) -> tuple[dict[str, str], dict[str, str]]:
        signature = sign(
            secret, app_key=key, senid=senid, nonce="11111111", timestamp=t, body=body.decode()
        )
        params = {"senid": senid, "nonce": "11111111", "timestamp": t, "appkey": key}
        headers = {"X-Nuonuo-Sign": signature, "accessToken": tok, "userTax": tax, "method": method}
        return params, headers

    ok = await _raw_call(
        pair, **dict(zip(("params", "headers"), call("a" * 32), strict=True)), body=body
    )
    assert (ok["code"], ok["result"]) == ("E0000", [])
    cases = [
        (call("a" * 32), "070305"),  # senid replayed
        (call("b" * 32, secret="wrong"), "070301"),
        (call("c" * 32, key="other"), "070302"),
        (call("d" * 32, t=str(int(ts) - 3600)), "070304"),
        (call("e" * 32, tok="expired"), "070303"),
        (call("f" * 32, tax="91530100MA6K0FC01X"), "070306"),
        (call("0" * 32, method="nuonuo.Other.thing"), "070307"),
    ]
    for (params, headers), code in cases:
        answer = await _raw_call(pair, params=params, headers=headers, body=body)
        assert answer["code"] == code, (code, answer)


async def test_access_token_by_client_credentials(pair: Pair) -> None:
    token = await pair.client.access_token()
    assert token in pair.sandbox.tokens
    assert await pair.client.access_token() == token  # cached
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=pair.sandbox.app)) as http:
        refused = await http.post(
            "http://nuonuo/accessToken",
            data={
                "client_id": APP_KEY,
                "client_secret": "nope",
                "grant_type": "client_credentials",
            },
        )
    assert refused.status_code == 400
