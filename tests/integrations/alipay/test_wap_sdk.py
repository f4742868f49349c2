"""alipay.trade.wap.pay checked against the independent PyPI SDK `python-alipay-sdk`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import alipay as alipay_sdk  # type: ignore[import-untyped]
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from forecourt.integrations.alipay import crypto
from forecourt.kit import clock, rsa
from forecourt.payment.providers import PrepayRequest
from tests.integrations.alipay.conftest import APP_ID, NOTIFY_URL, Rig

RESULT_PAGE = "https://forecourt.test/app/#/pages/result/result"


@pytest.fixture
async def browser(rig: Rig) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on the app's origin, which mounts the sandbox at /sandbox/alipay."""
    host = Starlette(routes=[Mount("/sandbox/alipay", app=rig.sandbox.app)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=host), base_url="https://forecourt.test"
    ) as http:
        yield http


def _sdk(rig: Rig) -> Any:
    return alipay_sdk.AliPay(
        appid=APP_ID,
        app_notify_url=None,
        app_private_key_string=rsa.private_pem(rig.provider.client._key),
        alipay_public_key_string=rig.sandbox.alipay_public_key_pem,
        sign_type="RSA2",
    )


def _freeze_sdk_clock(monkeypatch: pytest.MonkeyPatch, timestamp: str) -> None:
    fixed = datetime.strptime(timestamp, crypto.TIME_FORMAT)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Frozen:
            return cls.combine(fixed.date(), fixed.time())

    monkeypatch.setattr(alipay_sdk, "datetime", Frozen)


def test_the_wap_url_equals_the_sdks_byte_for_byte(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = rig.provider.client
    expires = clock.now() + timedelta(minutes=15)
    ours = client.wap_pay_url(
        out_trade_no="W20240115001",
        amount_fen=1234,
        subject="Fuel 92# 40.00L",
        notify_url=NOTIFY_URL,
        expires_at=expires,
        quit_url=RESULT_PAGE,
        return_url=RESULT_PAGE,
    )
    query = urlsplit(ours).query
    ours_fields = dict(parse_qsl(query))
    _freeze_sdk_clock(monkeypatch, ours_fields["timestamp"])
    theirs = _sdk(rig).api_alipay_trade_wap_pay(
        subject="Fuel 92# 40.00L",
        out_trade_no="W20240115001",
        total_amount="12.34",
        return_url=RESULT_PAGE,
        notify_url=NOTIFY_URL,
        product_code="QUICK_WAP_WAY",
        time_expire=crypto.wire_time(expires),
        quit_url=RESULT_PAGE,
    )
    assert dict(parse_qsl(theirs)) == ours_fields
    assert query == theirs  # same fields, order, encoding and signature


async def test_the_sandbox_opens_an_sdk_url_with_escaped_chinese(
    rig: Rig, browser: httpx.AsyncClient
) -> None:
    query = _sdk(rig).api_alipay_trade_wap_pay(
        subject="92号汽油",
        out_trade_no="W1",
        total_amount="88.80",
        notify_url=NOTIFY_URL,
        return_url=RESULT_PAGE,
        product_code="QUICK_WAP_WAY",
        quit_url=RESULT_PAGE,
    )
    assert "\\u6c7d" in dict(parse_qsl(query))["biz_content"]  # the SDK writes ASCII JSON
    page = await browser.get(f"{rig.provider.client.page_gateway}?{query}")
    assert page.status_code == 200, page.text
    assert "92号汽油" in page.text
    trade = rig.sandbox.trade("W1")
    assert trade is not None
    assert (trade.total_fen, trade.return_url, trade.expires_at) == (8880, RESULT_PAGE, None)


async def test_the_sdk_verifies_the_sync_return(rig: Rig, browser: httpx.AsyncClient) -> None:
    rig.provider.return_url = RESULT_PAGE
    result = await rig.provider.prepay(
        PrepayRequest("W1", 5000, "0号柴油", NOTIFY_URL, clock.now() + timedelta(minutes=15))
    )
    await browser.get(result.client_params["pay_url"])
    paid = await browser.post("/sandbox/alipay/sandbox/pay", data={"out_trade_no": "W1"})
    back = dict(parse_qsl(urlsplit(paid.headers["location"]).query))
    signature = back.pop("sign")
    sdk = _sdk(rig)
    assert sdk.verify(dict(back), signature) is True
    assert sdk.verify({**back, "out_trade_no": "W2"}, signature) is False
    await rig.sandbox.settle()
