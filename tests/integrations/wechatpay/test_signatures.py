"""Signature faults both ways, timestamp windows, the two platform-key modes, tampering."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from forecourt.integrations.wechatpay import crypto
from forecourt.integrations.wechatpay.client import WeChatPayError
from forecourt.kit import clock
from forecourt.payment.providers import InvalidNotification
from tests.integrations.wechatpay.conftest import MakeRig, Rig, eventually


async def test_request_signed_with_another_key_is_refused_401(
    rig: Rig, other_key: rsa.RSAPrivateKey
) -> None:
    intruder = rig.client_for(private_key=other_key)
    with pytest.raises(WeChatPayError) as err:
        await intruder.query_order("FC-ANY-0001")
    assert (err.value.code, err.value.status, err.value.retryable) == ("SIGN_ERROR", 401, False)
    await intruder.aclose()
    resp = await rig.raw("GET", "/v3/certificates", key=other_key)
    assert resp.status_code == 401
    assert resp.json()["code"] == "SIGN_ERROR"
    resp = await rig.raw("GET", "/v3/certificates", serial="0123456789ABCDEF")
    assert (resp.status_code, resp.json()["code"]) == (401, "SIGN_ERROR")


async def test_signature_covers_path_query_and_body(rig: Rig) -> None:
    await rig.prepay("FC20240101")
    good = await rig.raw("GET", "/v3/pay/transactions/out-trade-no/FC20240101?mchid=1900000001")
    assert good.status_code == 200
    body = orjson.dumps({"mchid": "1900000001"})
    auth = crypto.authorization(
        mchid="1900000001",
        serial_no=rig.merchant.serial,
        key=rig.merchant.key,
        method="POST",
        path_with_query="/v3/pay/transactions/out-trade-no/FC20240101/close",
        body=body,
        timestamp=str(int(clock.now().timestamp())),
        nonce="N0",
    )
    transport = httpx.ASGITransport(app=rig.sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as http:
        resp = await http.post(
            "/v3/pay/transactions/out-trade-no/FC20240101/close",
            content=body + b" ",  # not the bytes that were signed
            headers={"Authorization": auth},
        )
    assert (resp.status_code, resp.json()["code"]) == (401, "SIGN_ERROR")
    assert rig.sandbox.orders["FC20240101"].trade_state == "NOTPAY"


async def test_request_timestamp_five_minutes_old_is_refused(rig: Rig) -> None:
    now = int(clock.now().timestamp())
    stale = await rig.raw("GET", "/v3/certificates", timestamp=now - 300)
    assert (stale.status_code, stale.json()["code"]) == (401, "SIGN_ERROR")
    assert "5分钟" in stale.json()["message"]
    ahead = await rig.raw("GET", "/v3/certificates", timestamp=now + 301)
    assert ahead.status_code == 401
    fresh = await rig.raw("GET", "/v3/certificates", timestamp=now - 298)
    assert fresh.status_code == 200


class _Resigning(httpx.AsyncBaseTransport):
    """Re-signs the sandbox's answers with a shifted timestamp (a clock-skewed WeChat)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, key: rsa.RSAPrivateKey, shift: int):
        self.inner, self.key, self.shift = inner, key, shift

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        resp = await self.inner.handle_async_request(request)
        body = await resp.aread()
        stamp = str(int(clock.now().timestamp()) + self.shift)
        headers = dict(resp.headers)
        headers["wechatpay-timestamp"] = stamp
        headers["wechatpay-signature"] = crypto.sign(
            self.key, crypto.response_message(stamp, headers["wechatpay-nonce"], body)
        )
        return httpx.Response(resp.status_code, headers=headers, content=body)


@pytest.mark.parametrize(
    ("shift", "accepted"), [(-300, False), (-298, True), (298, True), (301, False)]
)
async def test_answer_timestamp_window(
    rig: Rig, platform_key: rsa.RSAPrivateKey, shift: int, accepted: bool
) -> None:
    inner = httpx.ASGITransport(app=rig.sandbox.app)
    skewed = rig.client_for(transport=_Resigning(inner, platform_key, shift))
    if accepted:
        assert (await skewed.prepay_jsapi(**_PREPAY)).startswith("wx")  # type: ignore[arg-type]
    else:
        with pytest.raises(WeChatPayError) as err:
            await skewed.prepay_jsapi(**_PREPAY)  # type: ignore[arg-type]
        assert err.value.code == "INVALID_SIGNATURE"
        assert "five-minute" in err.value.message
    await skewed.aclose()


_PREPAY: dict[str, object] = {
    "description": "x",
    "out_trade_no": "FC20240102",
    "notify_url": "http://merchant.test/n",
    "total_fen": 1,
    "openid": "o1",
}


async def test_answer_with_a_wrong_signature_is_refused(
    rig: Rig, other_key: rsa.RSAPrivateKey
) -> None:
    inner = httpx.ASGITransport(app=rig.sandbox.app)
    forged = rig.client_for(transport=_Resigning(inner, other_key, 0))
    with pytest.raises(WeChatPayError) as err:
        await forged.prepay_jsapi(**_PREPAY)  # type: ignore[arg-type]
    assert (err.value.code, err.value.message) == (
        "INVALID_SIGNATURE",
        "Wechatpay-Signature does not verify",
    )
    await forged.aclose()


async def test_public_key_mode(make_rig: MakeRig) -> None:
    rig = make_rig(public_key_mode=True)
    key_id = rig.sandbox.identity.public_key_id
    assert key_id.startswith("PUB_KEY_ID_")
    assert set(rig.sandbox.platform_keys()) == {key_id}
    resp = await rig.raw("GET", "/v3/certificates")
    assert resp.headers["wechatpay-serial"] == key_id
    await rig.paid("FC20240103", 4321)
    assert rig.receiver.received[0][0]["wechatpay-serial"] == key_id
    assert [(n.kind, n.amount_fen) for n in rig.receiver.parsed] == [("payment", 4321)]
    cert_only = rig.client_for(
        platform_keys={rig.sandbox.identity.certificate_serial: rig.sandbox.identity.public_key}
    )
    with pytest.raises(WeChatPayError) as err:
        await cert_only.query_order("FC20240103")
    assert err.value.code == "INVALID_SIGNATURE"
    assert f"unknown Wechatpay-Serial {key_id}" in err.value.message
    await cert_only.aclose()


async def test_certificate_mode_trusts_downloaded_certificates(rig: Rig) -> None:
    fresh = rig.client_for(platform_keys={})
    with pytest.raises(WeChatPayError) as err:
        await fresh.prepay_jsapi(**_PREPAY)  # type: ignore[arg-type]
    assert err.value.code == "INVALID_SIGNATURE"
    assert err.value.message.startswith("unknown Wechatpay-Serial ")
    certs = await fresh.refresh_certificates()
    serial = rig.sandbox.identity.certificate_serial
    assert list(certs) == [serial]
    assert crypto.checked_public_key(certs[serial].public_key()).public_numbers() == (
        rig.sandbox.identity.public_key.public_numbers()
    )
    assert list(fresh.platform_keys) == [serial]
    assert (await fresh.prepay_jsapi(**_PREPAY)).startswith("wx")  # type: ignore[arg-type]
    await fresh.aclose()
    wrong_v3 = rig.client_for(platform_keys={}, apiv3_key="x" * 32)
    with pytest.raises(WeChatPayError) as err:
        await wrong_v3.refresh_certificates()
    assert err.value.code == "INVALID_RESPONSE"
    await wrong_v3.aclose()


async def test_tampered_amount_is_validly_signed_but_different(rig: Rig) -> None:
    rig.sandbox.tamper_next_notification(amount=1)
    await rig.paid("FC20240104", 1234)
    assert [(n.out_trade_no, n.amount_fen) for n in rig.receiver.parsed] == [("FC20240104", 1)]
    assert rig.sandbox.orders["FC20240104"].total == 1234  # the service must compare


async def test_tampered_signature_is_rejected_and_resent(rig: Rig) -> None:
    rig.sandbox.tamper_next_notification(signature=True)
    await rig.prepay("FC20240105")
    await rig.sandbox.complete("FC20240105")
    await eventually(lambda: len(rig.sandbox.delivered) >= 2)
    assert rig.receiver.parsed == []
    assert rig.receiver.rejected[0] == "Wechatpay-Signature does not verify"
    assert [d.status for d in rig.sandbox.delivered[:2]] == [500, 500]
    await rig.sandbox.aclose()  # cancels the remaining resends
    count = len(rig.sandbox.delivered)
    assert count < 16
    await asyncio.sleep(0.1)
    assert len(rig.sandbox.delivered) == count


async def test_notification_checks(rig: Rig) -> None:
    await rig.paid("FC20240106", 555)
    headers, body = rig.receiver.received[0]
    parse = rig.provider.parse_notification
    upper = {k.upper(): v for k, v in headers.items()}
    titled = {k.title(): v for k, v in headers.items()}
    assert parse(upper, body).amount_fen == 555
    assert parse(titled, body).amount_fen == 555
    forged = body.replace(b'"TRANSACTION.SUCCESS"', b'"REFUND.SUCCESS"')
    with pytest.raises(InvalidNotification, match="does not verify"):
        parse(headers, forged)
    with pytest.raises(InvalidNotification, match="headers missing"):
        parse({k: v for k, v in headers.items() if k != "wechatpay-signature"}, body)
    clock.travel(timedelta(seconds=295))
    assert parse(headers, body).amount_fen == 555
    clock.travel(timedelta(seconds=6))
    with pytest.raises(InvalidNotification, match="five-minute"):
        parse(headers, body)


def test_acknowledge(rig: Rig) -> None:
    ok = rig.provider.acknowledge(True)
    assert (ok.status, ok.body) == (204, b"")
    fail = rig.provider.acknowledge(False)
    assert (fail.status, fail.media_type) == (500, "application/json")
    assert orjson.loads(fail.body) == {"code": "FAIL", "message": "失败"}
