"""The demo cashier (also under a mount prefix), the /sandbox/ controls and `from_settings`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Mount

from forecourt.config import Settings
from forecourt.integrations.wechatpay import SANDBOX_BASE, crypto, from_settings
from forecourt.integrations.wechatpay.sandbox import TestMerchant
from forecourt.kit import clock
from forecourt.payment.providers import PrepayRequest
from tests.integrations.wechatpay.conftest import MCHID, MakeRig, Rig

PREFIX = "/pay-sandbox/wechat"


@pytest.fixture
async def mounted(make_rig: MakeRig) -> AsyncIterator[tuple[Rig, httpx.AsyncClient]]:
    """A rig whose sandbox is mounted under PREFIX, and a browser on that app."""
    rig = make_rig(prefix=PREFIX)
    transport = httpx.ASGITransport(app=Starlette(routes=[Mount(PREFIX, app=rig.sandbox.app)]))
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as browser:
        yield rig, browser


async def test_api_and_bill_links_work_under_a_prefix(
    mounted: tuple[Rig, httpx.AsyncClient],
) -> None:
    rig, _ = mounted
    result = await rig.prepay("FC20240401", 1234)
    assert result.provider_ref.startswith("wx")
    assert (await rig.provider.query("FC20240401")).state == "pending"


async def test_cashier_page_pays_under_a_prefix(mounted: tuple[Rig, httpx.AsyncClient]) -> None:
    rig, browser = mounted
    result = await rig.prepay("FC20240402", 1234)
    page = await browser.get(f"{PREFIX}/sandbox/cashier", params={"prepay_id": result.provider_ref})
    assert page.status_code == 200
    html = page.text
    assert "微信支付 沙箱" in html
    assert "no real money" in html
    assert "92# 汽油 8.20L" in html
    assert "¥12.34" in html
    assert f'action="{PREFIX}/sandbox/pay"' in html
    paid = await browser.post(f"{PREFIX}/sandbox/pay", data={"out_trade_no": "FC20240402"})
    assert paid.status_code == 200
    assert "支付成功" in paid.text
    await rig.sandbox.join()
    assert [(n.out_trade_no, n.amount_fen) for n in rig.receiver.parsed] == [("FC20240402", 1234)]
    again = await browser.post(f"{PREFIX}/sandbox/pay", data={"out_trade_no": "FC20240402"})
    assert again.status_code == 409
    page = await browser.get(f"{PREFIX}/sandbox/cashier", params={"out_trade_no": "FC20240402"})
    assert "确认支付" not in page.text
    missing = await browser.get(f"{PREFIX}/sandbox/cashier", params={"out_trade_no": "nope"})
    assert missing.status_code == 404


async def test_http_controls(rig: Rig) -> None:
    await rig.prepay("FC20240403", 800)
    transport = httpx.ASGITransport(app=rig.sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as http:
        armed = await http.post("/sandbox/tamper", json={"amount": 1})
        assert armed.json() == {"armed": True}
        done = await http.post("/sandbox/complete", json={"out_trade_no": "FC20240403"})
        assert done.json()["trade_state"] == "SUCCESS"
        assert done.json()["transaction_id"] == rig.sandbox.orders["FC20240403"].transaction_id
        assert (await http.post("/sandbox/complete", json={"out_trade_no": "x"})).status_code == 404
        await rig.sandbox.join()
        rows = (await http.get("/sandbox/deliveries")).json()["deliveries"]
        assert [(r["event_type"], r["attempt"], r["status"]) for r in rows] == [
            ("TRANSACTION.SUCCESS", 1, 204)
        ]
        keys = (await http.get("/sandbox/keys")).json()
    assert rig.receiver.parsed[0].amount_fen == 1
    assert keys["mode"] == "certificate"
    assert keys["serial"] == rig.sandbox.identity.certificate_serial
    assert keys["public_key_id"].startswith("PUB_KEY_ID_")
    assert crypto.load_public_key(keys["platform_certificate"]).public_numbers() == (
        rig.sandbox.identity.public_key.public_numbers()
    )


def _settings(**values: object) -> Settings:
    return Settings(env="test", **values)  # type: ignore[arg-type]


async def test_from_settings_builds_an_in_process_sandbox() -> None:
    provider, sandbox = from_settings(_settings(sandbox_resend_scale=0.01))
    assert sandbox is not None
    assert (provider.merchant_id, str(provider.client.base_url)) == (MCHID, SANDBOX_BASE)
    assert sandbox.identity.public_key_mode is True
    assert sandbox.resend_scale == 0.01
    assert sandbox.deliver_transport is None
    request = PrepayRequest("FC20240404", 100, "x", "http://m.test/n", clock.now(), "o1")
    assert (await provider.prepay(request)).provider_ref.startswith("wx")
    assert (await provider.query("FC20240404")).state == "pending"
    await sandbox.aclose()
    await provider.client.aclose()


_PRODUCTION_KEYS = ("private_key", "cert_serial", "apiv3_key", "platform_public_key")


def _production(merchant: TestMerchant, platform: rsa.RSAPrivateKey) -> dict[str, object]:
    return {
        "wechatpay_api_base": "https://api.mch.weixin.qq.com",
        "wechatpay_private_key": SecretStr(crypto.private_pem(merchant.key)),
        "wechatpay_cert_serial": merchant.serial,
        "wechatpay_apiv3_key": SecretStr(merchant.apiv3_key),
        "wechatpay_platform_public_key": crypto.public_pem(platform.public_key()),
        "wechatpay_platform_key_id": "PUB_KEY_ID_0119000000012024000000000001",
    }


@pytest.mark.parametrize("missing", [*_PRODUCTION_KEYS, "platform_key_id"])
def test_production_requires_every_key(
    merchant: TestMerchant, platform_key: rsa.RSAPrivateKey, missing: str
) -> None:
    values = _production(merchant, platform_key)
    values[f"wechatpay_{missing}"] = None
    with pytest.raises(RuntimeError, match=f"FORECOURT_WECHATPAY_{missing.upper()} is required"):
        from_settings(_settings(**values))


async def test_production_points_at_the_api_base(
    merchant: TestMerchant, platform_key: rsa.RSAPrivateKey
) -> None:
    provider, sandbox = from_settings(_settings(**_production(merchant, platform_key)))
    assert sandbox is None
    assert str(provider.client.base_url) == "https://api.mch.weixin.qq.com"
    assert list(provider.client.platform_keys) == ["PUB_KEY_ID_0119000000012024000000000001"]
    await provider.client.aclose()
