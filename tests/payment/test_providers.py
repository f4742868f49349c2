"""The same post-pay flow and refund through each external provider's sandbox."""

from __future__ import annotations

import json
from typing import Any

import pytest

from forecourt.payment.providers import ProviderName
from tests.fixtures.auth import make_member, make_staff, member_headers, next_phone, staff_headers
from tests.payment.conftest import Forecourt
from tests.pump.helpers import eventually


async def _settle(sandbox: Any) -> None:
    if hasattr(sandbox, "join"):
        await sandbox.join()
    else:
        await sandbox.settle()


async def _open_pay_page(fc: Forecourt, params: dict[str, str]) -> None:
    """What the driver's browser does with an H5 payment: open the page / submit the form."""
    host = "http://127.0.0.1:8000"
    if "pay_url" in params:
        page = await fc.http.get(params["pay_url"].removeprefix(host))
    else:
        fields = json.loads(params["form_fields"])
        page = await fc.http.post(params["form_action"].removeprefix(host), data=fields)
    assert page.status_code == 200, page.text
    assert "沙箱" in page.text


@pytest.mark.parametrize("provider", ["wechatpay", "alipay", "unionpay"])
async def test_pay_and_partial_refund(forecourt: Forecourt, provider: str) -> None:
    fc = forecourt
    sandbox = fc.runtime.gateways.sandboxes[ProviderName(provider)]
    await fc.sale(seq=1, nozzle=2, volume_ml=40_000)  # 40 L of 95# at 8.32 = 332.80
    order = (
        await fc.post(
            "/api/v1/orders", {"kind": "postpay", "station_id": fc.station_id, "nozzle": 2}
        )
    ).json()
    payment = await fc.post(f"/api/v1/orders/{order['id']}/payments", {"provider": provider})
    assert payment.status_code == 201, payment.text
    params = payment.json()["client_params"]
    if provider == "wechatpay":
        assert "paySign" in params  # the mini-program's wx.requestPayment
    else:
        for value in (params.get("pay_url"), params.get("form_action")):
            assert value is None or value.startswith(f"http://127.0.0.1:8000/sandbox/{provider}/")
        await _open_pay_page(fc, params)
    await sandbox.complete(payment.json()["id"])
    await _settle(sandbox)

    async def completed() -> bool:
        body = (await fc.get(f"/api/v1/orders/{order['id']}")).json()
        return bool(body["status"] == "completed")

    await eventually(completed, what=f"{provider} payment posted")
    manager = await make_staff(fc.runtime, role="station_manager", station_ids=[fc.station_id])
    refund = await fc.http.post(
        f"/api/v1/admin/orders/{order['id']}/refunds",
        json={"amount_fen": 3_280, "reason": "优惠补退"},
        headers=staff_headers(fc.runtime, manager),
    )
    assert refund.status_code == 201, refund.text
    await _settle(sandbox)

    async def refunded() -> dict[str, Any] | None:
        body: dict[str, Any] = (await fc.get(f"/api/v1/orders/{order['id']}")).json()
        return body if body["refunded_fen"] == 3_280 else None

    body = await eventually(refunded, what=f"{provider} refund confirmed")
    assert (body["status"], body["paid_fen"], body["provider"]) == ("completed", 33_280, provider)


async def test_h5_channel_gets_a_page_and_miniprogram_needs_an_openid(forecourt: Forecourt) -> None:
    fc = forecourt
    member = await make_member(fc.runtime, phone=next_phone())  # an H5 (SMS) login: no openid
    headers = member_headers(fc.runtime, member.id)
    await fc.sale(seq=1, nozzle=1)
    order = (
        await fc.post(
            "/api/v1/orders",
            {"kind": "postpay", "station_id": fc.station_id, "nozzle": 1},
            headers=headers,
        )
    ).json()
    mp = await fc.post(
        f"/api/v1/orders/{order['id']}/payments", {"provider": "wechatpay"}, headers=headers
    )
    assert (mp.status_code, mp.json()["code"]) == (422, "payer_unknown")
    h5 = await fc.post(
        f"/api/v1/orders/{order['id']}/payments",
        {"provider": "wechatpay", "channel": "h5"},
        headers=headers,
    )
    assert h5.status_code == 201, h5.text
    url = h5.json()["client_params"]["h5_url"]
    assert url.startswith("http://127.0.0.1:8000/sandbox/wechatpay/")
    page = await fc.http.get(url.removeprefix("http://127.0.0.1:8000"))
    assert page.status_code == 200
    assert "沙箱" in page.text
    again = await fc.post(
        f"/api/v1/orders/{order['id']}/payments",
        {"provider": "wechatpay", "channel": "h5"},
        headers=headers,
    )
    assert again.json()["id"] == h5.json()["id"]  # a double tap reuses the fresh link


async def test_browser_return_goes_to_the_result_page(forecourt: Forecourt) -> None:
    fc = forecourt
    number = "261125062238T962FWQXSFATRTMYYEMD"
    back = await fc.http.get(f"/api/v1/payments/return/alipay?out_trade_no={number}&x=1")
    assert back.status_code == 303
    assert (
        back.headers["location"] == f"/app/#/pages/result/result?payment={number}&provider=alipay"
    )
    posted = await fc.http.post("/api/v1/payments/return/unionpay", data={"orderId": number})
    assert posted.headers["location"].endswith(f"payment={number}&provider=unionpay")
    evil = await fc.http.get("/api/v1/payments/return/alipay?out_trade_no=//evil.example")
    assert evil.headers["location"] == "/app/#/pages/result/result"
