"""Mobile-web (H5) payments: frontTransReq form, sandbox cashier, frontUrl return, order ops."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from html.parser import HTMLParser

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Mount

from forecourt.integrations import unionpay
from forecourt.integrations.unionpay import crypto
from forecourt.integrations.unionpay.sandbox.pki import make_sandbox_pki
from forecourt.kit import clock, rsa
from forecourt.payment.providers import (
    BillRow,
    PrepayRequest,
    PrepayResult,
    ProviderError,
    RefundResult,
)
from tests.integrations.unionpay.conftest import MER_ID, NOTIFY_URL, Rig, settings

ORDER = "H52024011500001"
RESULT_PAGE = "https://forecourt.test/pay/unionpay/front"
ACTION = "https://forecourt.test/sandbox/unionpay/gateway/api/frontTransReq.do"


class _Form(HTMLParser):
    """The first form of a page: its action and input values, as a browser reads them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.action = a.get("action", "")
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def _as_submitted(fields: dict[str, str]) -> dict[str, str]:
    """What a browser posts for a form: every line end becomes CR LF."""
    return {k: v.replace("\r\n", "\n").replace("\n", "\r\n") for k, v in fields.items()}


@pytest.fixture
async def browser(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on the app's origin, which mounts the sandbox at /sandbox/unionpay."""
    host = Starlette(routes=[Mount("/sandbox/unionpay", app=rig.sandbox.app)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=host), base_url="https://forecourt.test"
    ) as http:
        yield http


async def _h5(rig: Rig, order_id: str = ORDER, amount_fen: int = 30000) -> PrepayResult:
    return await rig.provider.prepay(
        PrepayRequest(
            out_trade_no=order_id,
            amount_fen=amount_fen,
            description="92#汽油 40.00L",
            notify_url=NOTIFY_URL,
            expires_at=clock.now() + timedelta(minutes=15),
        )
    )


def _fields(result: PrepayResult) -> dict[str, str]:
    fields: dict[str, str] = json.loads(result.client_params["form_fields"])
    return fields


async def test_prepay_without_payer_signs_a_front_form_and_calls_nothing(rig: Rig) -> None:
    rig.provider.return_url = RESULT_PAGE
    expires = clock.now() + timedelta(minutes=15)
    result = await _h5(rig)
    assert result.provider_ref == ORDER  # no tn for a front transaction
    assert set(result.client_params) == {"form_action", "form_fields", "cashier_url"}
    assert result.client_params["form_action"] == ACTION
    assert result.client_params["cashier_url"] == (
        f"https://forecourt.test/sandbox/unionpay/sandbox/cashier?out_trade_no={ORDER}"
    )
    fields = _fields(result)
    business = {k: v for k, v in fields.items() if k not in ("signature", "txnTime")}
    assert business == {
        "version": "5.1.0",
        "encoding": "UTF-8",
        "signMethod": "01",
        "accessType": "0",
        "merId": MER_ID,
        "certId": rig.sandbox.cert_id,
        "txnType": "01",
        "txnSubType": "01",
        "bizType": "000201",
        "channelType": "08",
        "orderId": ORDER,
        "txnAmt": "30000",
        "currencyCode": "156",
        "frontUrl": RESULT_PAGE,
        "backUrl": NOTIFY_URL,
        "payTimeout": crypto.wire_time(expires),
    }
    assert crypto.verify(rig.provider.client._key.public_key(), fields)
    assert rig.sandbox.order(ORDER) is None
    assert list(rig.sandbox.calls) == []


async def test_without_return_url_front_url_is_the_notify_origin(rig: Rig) -> None:
    assert _fields(await _h5(rig))["frontUrl"] == "http://merchant.test/"


async def test_cashier_pays_notifies_and_returns_to_front_url(
    rig: Rig, browser: httpx.AsyncClient
) -> None:
    rig.provider.return_url = RESULT_PAGE
    result = await _h5(rig)
    page = await browser.post(result.client_params["form_action"], data=_fields(result))
    assert page.status_code == 200
    assert "沙箱 / sandbox, no real money" in page.text
    assert "¥300.00" in page.text
    assert "tn:" not in page.text
    assert 'action="/sandbox/unionpay/sandbox/pay"' in page.text
    assert (await rig.provider.query(ORDER)).state == "pending"
    cashier = await browser.get(result.client_params["cashier_url"])
    assert cashier.status_code == 200
    reload = await browser.post(ACTION, data=_fields(result))  # the same form again
    assert reload.status_code == 200
    paid = await browser.post("/sandbox/unionpay/sandbox/pay", data={"out_trade_no": ORDER})
    assert paid.status_code == 200
    assert 'document.getElementById("front").submit()' in paid.text
    form = _Form(paid.text)
    assert form.action == RESULT_PAGE
    txn = rig.sandbox.order(ORDER)
    assert txn is not None
    front = _as_submitted(form.fields)
    assert {k: front[k] for k in ("orderId", "txnAmt", "respCode", "queryId", "merId")} == {
        "orderId": ORDER,
        "txnAmt": "30000",
        "respCode": "00",
        "queryId": txn.query_id,
        "merId": MER_ID,
    }
    assert rig.provider.client.verify(front)
    assert not rig.provider.client.verify({**front, "txnAmt": "1"})
    await rig.sandbox.settle()
    [note] = rig.receiver.parsed
    assert (note.kind, note.out_trade_no, note.transaction_id, note.amount_fen) == (
        "payment",
        ORDER,
        txn.query_id,
        30000,
    )
    status = await rig.provider.query(ORDER)
    assert (status.state, status.transaction_id, status.amount_fen) == ("paid", txn.query_id, 30000)
    after = await browser.post(ACTION, data=_fields(result))
    assert (after.status_code, '<code id="respCode">12</code>' in after.text) == (400, True)


async def test_a_front_order_refunds_closes_and_settles_like_any_other(
    rig: Rig, browser: httpx.AsyncClient
) -> None:
    now = clock.local(clock.now())
    clock.travel(now.replace(hour=12, minute=0, second=0, microsecond=0) - now)
    day = clock.local(clock.now()).date()
    result = await _h5(rig)
    await browser.post(ACTION, data=_fields(result))
    await rig.sandbox.complete(ORDER)
    txn = rig.sandbox.order(ORDER)
    assert txn is not None
    assert txn.done_at is not None
    clock.travel(timedelta(minutes=5))
    refund = await rig.refund(ORDER, txn.query_id, "RF2024011500001", 1000)
    assert refund == RefundResult("RF2024011500001", None, "processing", 1000)
    await rig.sandbox.settle()
    assert [(n.kind, n.amount_fen) for n in rig.receiver.parsed] == [
        ("payment", 30000),
        ("refund", 1000),
    ]
    with pytest.raises(ProviderError) as err:
        await rig.provider.close(ORDER)
    assert err.value.code == "TRADE_NOT_CLOSABLE"
    clock.travel(timedelta(days=1))
    rows = await rig.provider.bill(day)
    assert rows[0] == BillRow(
        "payment", ORDER, txn.query_id, 30000, txn.done_at.replace(microsecond=0)
    )
    assert [(r.kind, r.amount_fen) for r in rows] == [("payment", 30000), ("refund", 1000)]


async def test_an_unsubmitted_front_order_is_pending_and_closes_quietly(rig: Rig) -> None:
    await _h5(rig)
    assert (await rig.provider.query(ORDER)).state == "pending"  # respCode 34
    await rig.provider.close(ORDER)
    with pytest.raises(ValueError, match="cannot be paid"):
        await rig.sandbox.complete(ORDER)


async def test_a_different_amount_for_the_same_order_is_refused(
    rig: Rig, browser: httpx.AsyncClient
) -> None:
    assert (await browser.post(ACTION, data=_fields(await _h5(rig)))).status_code == 200
    other = await browser.post(ACTION, data=_fields(await _h5(rig, amount_fen=100)))
    assert other.status_code == 400
    assert "重复交易[orderId]" in other.text
    txn = rig.sandbox.order(ORDER)
    assert txn is not None
    assert txn.amount_fen == 30000


async def test_a_bad_signature_gets_the_error_page(rig: Rig, browser: httpx.AsyncClient) -> None:
    fields = {**_fields(await _h5(rig)), "txnAmt": "1"}
    page = await browser.post(ACTION, data=fields)
    assert page.status_code == 400
    assert '<code id="respCode">11</code>' in page.text
    assert "验证签名失败" in page.text
    assert "沙箱 / sandbox" in page.text
    assert rig.sandbox.order(ORDER) is None


@pytest.mark.parametrize(
    ("change", "code", "named"),
    [
        ({"frontUrl": ""}, "13", "frontUrl"),
        ({"backUrl": ""}, "13", "backUrl"),
        ({"frontUrl": "javascript:alert(document.cookie)"}, "10", "frontUrl"),
        ({"frontUrl": "https:///no-host"}, "10", "frontUrl"),
        ({"bizType": "000000"}, "10", "bizType"),
        ({"txnSubType": "02"}, "10", "txnSubType"),
        ({"orderId": "H5-2024"}, "10", "orderId"),
        ({"txnAmt": "0"}, "10", "txnAmt"),
    ],
)
async def test_bad_fields_are_named_on_the_error_page(
    rig: Rig, browser: httpx.AsyncClient, change: dict[str, str], code: str, named: str
) -> None:
    fields = {**_fields(await _h5(rig)), **change}
    fields = rig.provider.client.signed({k: v for k, v in fields.items() if k != "signature"})
    page = await browser.post(ACTION, data=fields)
    assert page.status_code == 400
    assert f'<code id="respCode">{code}</code>' in page.text
    assert f"[{named}]" in page.text
    assert rig.sandbox.order(ORDER) is None


async def test_production_form_posts_to_the_real_gateway() -> None:
    key = rsa.generate_test_key()
    provider, sandbox = unionpay.from_settings(
        settings(
            unionpay_gateway=unionpay.PRODUCTION_GATEWAY,
            unionpay_private_key=SecretStr(rsa.private_pem(key)),
            unionpay_cert_id="69629715588",
            unionpay_root_cert=make_sandbox_pki().bundle_pem,
        )
    )
    assert sandbox is None
    provider.return_url = "https://forecourt.example/pay/unionpay/front"
    result = await provider.prepay(
        PrepayRequest(ORDER, 100, "x", "https://forecourt.example/pay/unionpay/notify", clock.now())
    )
    assert set(result.client_params) == {"form_action", "form_fields"}
    assert result.client_params["form_action"] == (
        "https://gateway.95516.com/gateway/api/frontTransReq.do"
    )
    fields = _fields(result)
    assert fields["frontUrl"] == "https://forecourt.example/pay/unionpay/front"
    assert crypto.verify(key.public_key(), fields)
    await provider.client.aclose()
