"""Mobile-web (H5) payments: alipay.trade.wap.pay URL, sandbox cashier, sync return, trade ops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import orjson
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Mount

from forecourt.integrations import alipay
from forecourt.integrations.alipay import AlipayClient, crypto
from forecourt.kit import clock, rsa
from forecourt.payment.providers import (
    BillRow,
    PrepayRequest,
    PrepayResult,
    ProviderError,
    RefundRequest,
    RefundResult,
)
from tests.integrations.alipay.conftest import APP_ID, NOTIFY_URL, Rig, settings

RESULT_PAGE = "https://forecourt.test/app/#/pages/result/result"
GATEWAY = "https://forecourt.test/sandbox/alipay/gateway.do"


@pytest.fixture
async def browser(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on the app's origin, which mounts the sandbox at /sandbox/alipay."""
    host = Starlette(routes=[Mount("/sandbox/alipay", app=rig.sandbox.app)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=host), base_url="https://forecourt.test"
    ) as http:
        yield http


async def _h5(rig: Rig, out_trade_no: str, amount_fen: int = 30000) -> PrepayResult:
    return await rig.provider.prepay(
        PrepayRequest(
            out_trade_no=out_trade_no,
            amount_fen=amount_fen,
            description="92#汽油 40.00L",
            notify_url=NOTIFY_URL,
            expires_at=clock.now() + timedelta(minutes=15),
        )
    )


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


async def test_prepay_without_payer_signs_a_wap_url_and_calls_nothing(rig: Rig) -> None:
    rig.provider.return_url = RESULT_PAGE
    expires = clock.now() + timedelta(minutes=15)
    result = await _h5(rig, "W1")
    assert result.provider_ref == "W1"  # no trade_no before the payer opens the page
    assert list(result.client_params) == ["pay_url"]
    url = result.client_params["pay_url"]
    assert url.startswith(GATEWAY + "?")
    params = _query(url)
    keys = list(params)
    assert (keys[-1], keys[:-1]) == ("sign", sorted(keys[:-1]))
    assert {k: params[k] for k in ("app_id", "method", "charset", "sign_type", "version")} == {
        "app_id": APP_ID,
        "method": "alipay.trade.wap.pay",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "version": "1.0",
    }
    assert (params["notify_url"], params["return_url"]) == (NOTIFY_URL, RESULT_PAGE)
    assert "format" not in params
    assert orjson.loads(params["biz_content"]) == {
        "subject": "92#汽油 40.00L",
        "out_trade_no": "W1",
        "total_amount": "300.00",
        "product_code": "QUICK_WAP_WAY",
        "time_expire": crypto.wire_time(expires),
        "quit_url": RESULT_PAGE,
    }
    assert crypto.verify_request(rig.provider.client._key.public_key(), params)
    assert rig.sandbox.trade("W1") is None
    assert list(rig.sandbox.calls) == []


async def test_without_return_url_quit_goes_to_the_notify_origin(rig: Rig) -> None:
    params = _query((await _h5(rig, "W1")).client_params["pay_url"])
    assert "return_url" not in params
    assert orjson.loads(params["biz_content"])["quit_url"] == "http://merchant.test/"


async def test_cashier_pays_notifies_and_returns_signed(
    rig: Rig, browser: httpx.AsyncClient
) -> None:
    rig.provider.return_url = RESULT_PAGE
    url = (await _h5(rig, "W1")).client_params["pay_url"]
    page = await browser.get(url)
    assert page.status_code == 200
    assert "沙箱 / sandbox, no real money" in page.text
    assert "¥300.00" in page.text
    assert 'action="/sandbox/alipay/sandbox/pay"' in page.text
    assert f'href="{RESULT_PAGE}"' in page.text  # quit_url
    trade = rig.sandbox.trade("W1")
    assert trade is not None
    assert (trade.status, trade.product_code, trade.notify_url) == (
        "WAIT_BUYER_PAY",
        "QUICK_WAP_WAY",
        NOTIFY_URL,
    )
    assert (await rig.provider.query("W1")).state == "pending"
    paid = await browser.post("/sandbox/alipay/sandbox/pay", data={"out_trade_no": "W1"})
    assert paid.status_code == 303
    location = paid.headers["location"]
    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "https",
        "forecourt.test",
        "/app/",
        "/pages/result/result",
    )
    back = _query(location)
    assert {k: back[k] for k in ("method", "out_trade_no", "trade_no", "total_amount")} == {
        "method": "alipay.trade.wap.pay.return",
        "out_trade_no": "W1",
        "trade_no": trade.trade_no,
        "total_amount": "300.00",
    }
    assert (back["app_id"], back["seller_id"], back["sign_type"]) == (
        APP_ID,
        rig.sandbox.seller_id,
        "RSA2",
    )
    crypto.parse_time(back["timestamp"])
    assert rig.provider.client.verify_notification(back)
    assert not rig.provider.client.verify_notification({**back, "total_amount": "0.01"})
    await rig.sandbox.settle()
    [note] = rig.receiver.parsed
    assert (note.kind, note.out_trade_no, note.transaction_id, note.amount_fen) == (
        "payment",
        "W1",
        trade.trade_no,
        30000,
    )
    status = await rig.provider.query("W1")
    assert (status.state, status.transaction_id, status.amount_fen) == (
        "paid",
        trade.trade_no,
        30000,
    )
    again = await browser.post("/sandbox/alipay/sandbox/pay", data={"out_trade_no": "W1"})
    assert again.status_code == 409


async def test_a_wap_trade_refunds_closes_and_bills_like_any_other(
    rig: Rig, browser: httpx.AsyncClient
) -> None:
    now = clock.local(clock.now())
    clock.travel(now.replace(hour=12, minute=0, second=0, microsecond=0) - now)
    day: date = clock.local(clock.now()).date()
    await browser.get((await _h5(rig, "W1")).client_params["pay_url"])
    await rig.sandbox.complete("W1")
    trade = rig.sandbox.trade("W1")
    assert trade is not None
    assert trade.paid_at is not None
    clock.travel(timedelta(minutes=5))
    refund = RefundRequest("W1", trade.trade_no, "R1", 1000, 30000, "少加", NOTIFY_URL)
    assert await rig.provider.refund(refund) == RefundResult("R1", None, "succeeded", 1000)
    await rig.sandbox.settle()
    assert [(n.kind, n.amount_fen) for n in rig.receiver.parsed] == [
        ("payment", 30000),
        ("refund", 1000),
    ]
    with pytest.raises(ProviderError) as err:
        await rig.provider.close("W1")
    assert err.value.code == "TRADE_NOT_CLOSABLE"
    await browser.get((await _h5(rig, "W2", 500)).client_params["pay_url"])
    await rig.provider.close("W2")
    assert (await rig.provider.query("W2")).state == "closed"
    page = await browser.get("/sandbox/alipay/sandbox/cashier", params={"out_trade_no": "W2"})
    assert "确认付款" not in page.text
    clock.travel(timedelta(days=1))
    rows = await rig.provider.bill(day)
    assert [(r.kind, r.out_trade_no, r.amount_fen) for r in rows] == [
        ("payment", "W1", 30000),
        ("refund", "W1", 1000),
    ]
    assert rows[0] == BillRow(
        "payment", "W1", trade.trade_no, 30000, trade.paid_at.replace(microsecond=0)
    )


async def test_an_unopened_wap_trade_is_pending_and_closes_quietly(rig: Rig) -> None:
    await _h5(rig, "W1")
    assert (await rig.provider.query("W1")).state == "pending"  # ACQ.TRADE_NOT_EXIST
    await rig.provider.close("W1")
    with pytest.raises(ValueError, match="no trade W1"):
        await rig.sandbox.complete("W1")


async def test_the_form_post_opens_the_same_trade(rig: Rig, browser: httpx.AsyncClient) -> None:
    client = rig.provider.client
    fields = client.wap_pay_params(
        out_trade_no="W1",
        amount_fen=1234,
        subject="0号柴油",
        notify_url=NOTIFY_URL,
        expires_at=clock.now() + timedelta(minutes=15),
        quit_url=RESULT_PAGE,
    )
    page = await browser.post(client.page_gateway, data=fields)
    assert page.status_code == 200
    trade = rig.sandbox.trade("W1")
    assert trade is not None
    assert (trade.total_fen, trade.subject, trade.return_url) == (1234, "0号柴油", None)
    again = await browser.post(client.page_gateway, data=fields)  # reload: same trade
    assert again.status_code == 200
    assert rig.sandbox.trade("W1") is trade
    paid = await browser.post("/sandbox/alipay/sandbox/pay", data={"out_trade_no": "W1"})
    assert paid.status_code == 200  # no return_url: the sandbox's own result page
    assert f'href="{RESULT_PAGE}"' in paid.text


async def test_a_different_amount_for_the_same_order_is_refused(
    rig: Rig, browser: httpx.AsyncClient
) -> None:
    first = await browser.get((await _h5(rig, "W1", 30000)).client_params["pay_url"])
    assert first.status_code == 200
    other = await browser.get((await _h5(rig, "W1", 100)).client_params["pay_url"])
    assert other.status_code == 400
    assert "ACQ.CONTEXT_INCONSISTENT" in other.text
    trade = rig.sandbox.trade("W1")
    assert trade is not None
    assert trade.total_fen == 30000


async def test_a_bad_signature_gets_the_error_page(rig: Rig, browser: httpx.AsyncClient) -> None:
    impostor = AlipayClient(
        app_id=APP_ID,
        private_key=rsa.generate_test_key(),
        alipay_public_key=rig.sandbox.alipay_public_key,
        page_gateway=GATEWAY,
    )
    url = impostor.wap_pay_url(
        out_trade_no="W1",
        amount_fen=100,
        subject="x",
        notify_url=NOTIFY_URL,
        expires_at=clock.now() + timedelta(minutes=15),
        quit_url=RESULT_PAGE,
    )
    page = await browser.get(url)
    assert page.status_code == 400
    assert '<code id="sub_code">isv.invalid-signature</code>' in page.text
    assert "沙箱 / sandbox" in page.text
    tampered = _query((await _h5(rig, "W2")).client_params["pay_url"])
    tampered["biz_content"] = tampered["biz_content"].replace("300.00", "0.01")
    page = await browser.get(GATEWAY, params=tampered)
    assert "isv.invalid-signature" in page.text
    assert rig.sandbox.trade("W1") is None
    assert rig.sandbox.trade("W2") is None
    await impostor.aclose()


@pytest.mark.parametrize(
    ("biz", "extra", "named"),
    [
        ({"subject": ""}, {}, "subject"),
        ({"total_amount": "abc"}, {}, "total_amount"),
        ({"total_amount": "0.00"}, {}, "total_amount"),
        ({"product_code": "FAST_INSTANT_TRADE_PAY"}, {}, "product_code"),
        ({"quit_url": ""}, {}, "quit_url"),
        ({"quit_url": "javascript:alert(1)"}, {}, "quit_url"),
        ({"time_expire": "tomorrow"}, {}, "time_expire"),
        ({}, {"return_url": "javascript:alert(document.cookie)"}, "return_url"),
        ({}, {"return_url": "//evil.test/x"}, "return_url"),
    ],
)
async def test_bad_fields_are_named_on_the_error_page(
    rig: Rig, browser: httpx.AsyncClient, biz: dict[str, str], extra: dict[str, str], named: str
) -> None:
    content = {
        "subject": "x",
        "out_trade_no": "W1",
        "total_amount": "1.00",
        "product_code": "QUICK_WAP_WAY",
        "quit_url": RESULT_PAGE,
        **biz,
    }
    client = rig.provider.client
    params = client.page_params("alipay.trade.wap.pay", content, notify_url=NOTIFY_URL)
    params.update(extra)
    params["sign"] = crypto.sign_request(client._key, params)
    page = await browser.get(f"{GATEWAY}?{urlencode(params)}")
    assert page.status_code == 400
    assert '<code id="sub_code">ACQ.INVALID_PARAMETER</code>' in page.text
    assert named in page.text
    assert rig.sandbox.trade("W1") is None


async def test_common_parameter_errors_and_faults_show_pages(
    rig: Rig, browser: httpx.AsyncClient
) -> None:
    params = _query((await _h5(rig, "W1")).client_params["pay_url"])
    missing = {k: v for k, v in params.items() if k != "timestamp"}
    page = await browser.get(GATEWAY, params=missing)
    assert (page.status_code, "isv.missing-timestamp" in page.text) == (400, True)
    rig.sandbox.fail_next("ACQ.SYSTEM_ERROR")
    page = await browser.get(GATEWAY, params=params)
    assert (page.status_code, "ACQ.SYSTEM_ERROR" in page.text) == (400, True)
    assert (await browser.get(GATEWAY, params=params)).status_code == 200


async def test_production_pay_url_is_the_real_gateway() -> None:
    key = rsa.generate_test_key()
    provider, sandbox = alipay.from_settings(
        settings(
            alipay_gateway=alipay.PRODUCTION_GATEWAY,
            alipay_private_key=SecretStr(rsa.private_pem(key)),
            alipay_public_key=rsa.public_pem(rsa.generate_test_key().public_key()),
        )
    )
    assert sandbox is None
    provider.return_url = "https://forecourt.example/app/#/pages/result/result"
    result = await provider.prepay(
        PrepayRequest("W1", 100, "x", "https://forecourt.example/pay/alipay/notify", clock.now())
    )
    url = result.client_params["pay_url"]
    assert url.startswith("https://openapi.alipay.com/gateway.do?app_id=")
    assert crypto.verify_request(key.public_key(), _query(url))
    await provider.client.aclose()
