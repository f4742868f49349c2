"""Interop with the independent PyPI SDK `wechatpayv3` against the sandbox on a loopback port.

The SDK (requests-based, synchronous) runs in a worker thread; the sandbox is served by
uvicorn in the test's event loop. The SDK hard-codes its gateway, so it is repointed after
construction (in certificate mode the constructor would download certificates from the
real gateway, so that first download is held back until the gateway is repointed).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from wechatpayv3 import WeChatPay, WeChatPayType  # type: ignore[import-untyped]
from wechatpayv3.core import Core  # type: ignore[import-untyped]

from forecourt.integrations.wechatpay import crypto
from forecourt.integrations.wechatpay.sandbox import WeChatPaySandbox
from forecourt.kit import clock
from tests.integrations.wechatpay.conftest import APPID, MCHID, NOTIFY_URL, OPENID, MakeRig, Rig


@pytest.fixture
async def live(make_rig: MakeRig, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Rig, str]]:
    """A rig (mode from the test's `public_key_mode` param) served on 127.0.0.1:<free port>."""
    rig = make_rig(public_key_mode=request.param)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(rig.sandbox.app, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
            await asyncio.sleep(0.01)
    yield rig, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    sock.close()


def _sdk(
    sandbox: WeChatPaySandbox, gateway: str, key: rsa.RSAPrivateKey, serial: str, apiv3: str
) -> Any:
    """The SDK configured for the sandbox's mode and pointed at `gateway`."""
    common = {
        "wechatpay_type": WeChatPayType.MINIPROG,
        "mchid": MCHID,
        "private_key": crypto.private_pem(key),
        "cert_serial_no": serial,
        "appid": APPID,
        "apiv3_key": apiv3,
        "notify_url": NOTIFY_URL,
        "timeout": (5, 10),
    }
    if sandbox.identity.public_key_mode:
        pay = WeChatPay(
            **common,
            public_key=crypto.public_pem(sandbox.identity.public_key),
            public_key_id=sandbox.identity.public_key_id,
        )
        pay._core._gate_way = gateway
        return pay
    with mock.patch.object(Core, "_init_certificates"):
        pay = WeChatPay(**common)
    pay._core._gate_way = gateway
    pay._core._init_certificates()  # the real download + AES-GCM decrypt of /v3/certificates
    return pay


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep requests from routing loopback calls through an environment proxy."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.mark.parametrize("live", [False, True], ids=["certificate", "public_key"], indirect=True)
async def test_sdk_pays_refunds_and_verifies_our_signatures(live: tuple[Rig, str]) -> None:
    rig, gateway = live
    m = rig.merchant
    pay = await asyncio.to_thread(_sdk, rig.sandbox, gateway, m.key, m.serial, m.apiv3_key)
    if not rig.sandbox.identity.public_key_mode:
        [cert] = pay._core._certificates
        assert crypto.certificate_serial(cert) == rig.sandbox.identity.certificate_serial

    expire = (clock.local(clock.now()) + timedelta(minutes=15)).isoformat(timespec="seconds")
    code, text = await asyncio.to_thread(
        pay.pay,
        description="92# 汽油",
        out_trade_no="SDK20240001",
        amount={"total": 1234},
        payer={"openid": OPENID},
        time_expire=expire,
    )
    assert code == 200  # and the SDK verified our answer's signature, or it would raise
    prepay_id = json.loads(text)["prepay_id"]
    assert rig.sandbox.orders["SDK20240001"].prepay_id == prepay_id

    # paySign: the SDK's and ours agree byte for byte (PKCS#1 v1.5 is deterministic)
    params = rig.client.pay_params(prepay_id)
    fields = [params["appId"], params["timeStamp"], params["nonceStr"], params["package"]]
    assert await asyncio.to_thread(pay.sign, fields) == params["paySign"]

    code, text = await asyncio.to_thread(pay.query, out_trade_no="SDK20240001")
    assert (code, json.loads(text)["trade_state"]) == (200, "NOTPAY")

    # our notification passes the SDK's own verify + decrypt helper
    await rig.sandbox.complete("SDK20240001")
    await rig.sandbox.join()
    headers, body = rig.receiver.received[0]
    result = await asyncio.to_thread(pay.callback, headers, body)
    assert result is not None
    assert result["event_type"] == "TRANSACTION.SUCCESS"
    resource = result["resource"]
    assert (resource["out_trade_no"], resource["trade_state"]) == ("SDK20240001", "SUCCESS")
    assert resource["amount"]["total"] == 1234
    assert (
        await asyncio.to_thread(pay.callback, headers, body.replace(b"SUCCESS", b"FAILED")) is None
    )

    code, text = await asyncio.to_thread(
        pay.refund,
        out_refund_no="SDKRF20240001",
        amount={"refund": 234, "total": 1234, "currency": "CNY"},
        out_trade_no="SDK20240001",
        reason="test",
    )
    assert (code, json.loads(text)["status"]) == (200, "PROCESSING")
    code, text = await asyncio.to_thread(pay.query_refund, out_refund_no="SDKRF20240001")
    assert (code, json.loads(text)["amount"]["refund"]) == (200, 234)

    code, text = await asyncio.to_thread(
        pay.pay,
        description="x",
        out_trade_no="SDK20240002",
        amount={"total": 1},
        payer={"openid": OPENID},
    )
    assert code == 200
    code, _ = await asyncio.to_thread(pay.close, out_trade_no="SDK20240002")
    assert code == 204  # an empty, signed answer the SDK verified
    assert rig.sandbox.orders["SDK20240002"].trade_state == "CLOSED"


@pytest.mark.parametrize("live", [True], ids=["public_key"], indirect=True)
async def test_sdk_downloads_a_gzip_bill(live: tuple[Rig, str]) -> None:
    rig, gateway = live
    clock.travel(timedelta(days=-2))
    await rig.paid("SDK20240003", 4321)
    day = clock.local(clock.now()).date()
    clock.reset()
    m = rig.merchant
    pay = await asyncio.to_thread(_sdk, rig.sandbox, gateway, m.key, m.serial, m.apiv3_key)
    code, text = await asyncio.to_thread(pay.trade_bill, bill_date=day.isoformat())
    assert code == 200
    info = json.loads(text)
    assert info["download_url"].startswith(gateway)
    code, content = await asyncio.to_thread(pay.download_bill, info["download_url"])
    plain = gzip.decompress(content)
    assert hashlib.sha1(plain, usedforsecurity=False).hexdigest() == info["hash_value"]
    assert "`43.21" in plain.decode()


@pytest.mark.parametrize("live", [True], ids=["public_key"], indirect=True)
async def test_sdk_signed_with_a_wrong_key_is_refused(
    live: tuple[Rig, str], other_key: rsa.RSAPrivateKey
) -> None:
    rig, gateway = live
    m = rig.merchant
    pay = await asyncio.to_thread(_sdk, rig.sandbox, gateway, other_key, m.serial, m.apiv3_key)
    code, text = await asyncio.to_thread(
        pay.pay,
        description="x",
        out_trade_no="SDK20240004",
        amount={"total": 1},
        payer={"openid": OPENID},
    )
    assert code == 401
    assert json.loads(text)["code"] == "SIGN_ERROR"
    assert "SDK20240004" not in rig.sandbox.orders


@pytest.mark.parametrize("live", [True], ids=["public_key"], indirect=True)
async def test_sdk_refuses_answers_from_an_untrusted_platform_key(
    live: tuple[Rig, str], other_key: rsa.RSAPrivateKey
) -> None:
    """Control: the SDK really checks our signatures (it fails when trusting another key)."""
    rig, gateway = live
    m = rig.merchant
    pay = await asyncio.to_thread(_sdk, rig.sandbox, gateway, m.key, m.serial, m.apiv3_key)
    pay._core._public_key = other_key.public_key()
    with pytest.raises(Exception, match="failed to verify the signature"):
        await asyncio.to_thread(
            pay.pay,
            description="x",
            out_trade_no="SDK20240005",
            amount={"total": 1},
            payer={"openid": OPENID},
        )


@pytest.mark.parametrize("live", [True], ids=["public_key"], indirect=True)
async def test_sdk_h5_prepay_and_callback(live: tuple[Rig, str]) -> None:
    """The SDK's H5 prepay (WeChatPayType.H5) gets a verified h5_url; MWEB in query and callback."""
    rig, gateway = live
    m = rig.merchant
    pay = await asyncio.to_thread(_sdk, rig.sandbox, gateway, m.key, m.serial, m.apiv3_key)
    code, text = await asyncio.to_thread(
        pay.pay,
        description="92# 汽油",
        out_trade_no="SDK20240010",
        amount={"total": 888},
        scene_info={"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}},
        pay_type=WeChatPayType.H5,
    )
    assert code == 200  # and the SDK verified our answer's signature, or it would raise
    h5_url = json.loads(text)["h5_url"]
    order = rig.sandbox.orders["SDK20240010"]
    assert h5_url.startswith(f"{gateway}/sandbox/cashier?prepay_id={order.prepay_id}&package=")
    assert (order.trade_type, order.openid) == ("MWEB", None)
    await rig.sandbox.complete("SDK20240010")
    await rig.sandbox.join()
    code, text = await asyncio.to_thread(pay.query, out_trade_no="SDK20240010")
    assert (code, json.loads(text)["trade_type"]) == (200, "MWEB")
    headers, body = rig.receiver.received[0]
    result = await asyncio.to_thread(pay.callback, headers, body)
    assert result is not None
    assert result["resource"]["trade_type"] == "MWEB"
