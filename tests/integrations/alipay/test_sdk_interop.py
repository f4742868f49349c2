"""Interop with the independent PyPI SDK `python-alipay-sdk` against the sandbox on loopback.

The SDK (urllib-based, synchronous, GET with the signed query string) runs in a worker
thread; the sandbox is served by uvicorn in the test's event loop.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import uvicorn
from alipay import AliPay  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from forecourt.integrations.alipay import crypto
from forecourt.kit import rsa
from tests.integrations.alipay.conftest import APP_ID, BUYER_ID, NOTIFY_URL, Rig


@pytest.fixture
async def gateway(rig: Rig) -> AsyncIterator[str]:
    """The rig's sandbox served on 127.0.0.1:<free port>; its gateway URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(rig.sandbox.app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
            await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}/gateway.do"
    server.should_exit = True
    await task
    sock.close()


def _sdk(rig: Rig, gateway: str, app_key: rsa_keys.RSAPrivateKey) -> Any:
    sdk = AliPay(
        appid=APP_ID,
        app_notify_url=NOTIFY_URL,
        app_private_key_string=rsa.private_pem(app_key),
        alipay_public_key_string=rig.sandbox.alipay_public_key_pem,
        sign_type="RSA2",
    )
    sdk._gateway = gateway
    return sdk


async def test_sdk_pays_queries_and_refunds_through_the_sandbox(rig: Rig, gateway: str) -> None:
    sdk = _sdk(rig, gateway, rig.provider.client._key)
    created = await asyncio.to_thread(
        sdk.api_alipay_trade_create,
        subject="92号汽油",
        out_trade_no="SDK1",
        total_amount="12.34",
        buyer_id=BUYER_ID,
    )
    trade = rig.sandbox.trade("SDK1")
    assert trade is not None
    assert created == {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": "SDK1",
        "trade_no": trade.trade_no,
    }
    assert (trade.total_fen, trade.subject, trade.notify_url) == (1234, "92号汽油", NOTIFY_URL)
    await rig.sandbox.complete("SDK1")
    await rig.sandbox.settle()
    queried = await asyncio.to_thread(sdk.api_alipay_trade_query, out_trade_no="SDK1")
    assert (queried["trade_status"], queried["total_amount"]) == ("TRADE_SUCCESS", "12.34")
    refunded = await asyncio.to_thread(
        sdk.api_alipay_trade_refund, "1.00", out_trade_no="SDK1", out_request_no="R1"
    )
    assert (refunded["fund_change"], refunded["refund_fee"]) == ("Y", "1.00")
    looked_up = await asyncio.to_thread(
        sdk.api_alipay_trade_fastpay_refund_query, "R1", out_trade_no="SDK1"
    )
    assert (looked_up["refund_amount"], looked_up["refund_status"]) == ("1.00", "REFUND_SUCCESS")
    closed = await asyncio.to_thread(sdk.api_alipay_trade_close, out_trade_no="SDK1")
    assert (closed["code"], closed["sub_code"]) == ("40004", "ACQ.TRADE_STATUS_ERROR")


async def test_sdk_with_a_wrong_key_gets_invalid_signature(rig: Rig, gateway: str) -> None:
    sdk = _sdk(rig, gateway, rsa.generate_test_key())
    answer = await asyncio.to_thread(sdk.api_alipay_trade_query, out_trade_no="SDK1")
    assert (answer["code"], answer["sub_code"]) == ("40002", "isv.invalid-signature")


async def test_sdk_verifies_the_sandbox_notification(rig: Rig) -> None:
    await rig.paid("T1", 30000)
    sdk = AliPay(
        appid=APP_ID,
        app_private_key_string=rsa.private_pem(rsa.generate_test_key()),
        alipay_public_key_string=rig.sandbox.alipay_public_key_pem,
    )
    data = dict(parse_qsl(rig.receiver.bodies[0].decode()))
    signature = data.pop("sign")
    assert sdk.verify(dict(data), signature) is True
    data["total_amount"] = "300.01"
    assert sdk.verify(dict(data), signature) is False


def test_adapter_accepts_a_notification_the_sdk_signed(rig: Rig) -> None:
    as_alipay = AliPay(
        appid=APP_ID,
        app_private_key_string=rsa.private_pem(rig.sandbox._key),
        alipay_public_key_string=rig.sandbox.alipay_public_key_pem,
    )
    fields = {
        "notify_time": crypto.wire_time(),
        "notify_type": "trade_status_sync",
        "notify_id": "2024011500222100000000000000000000",
        "app_id": APP_ID,
        "charset": "utf-8",
        "version": "1.0",
        "trade_no": "2024011522001400000000000001",
        "out_trade_no": "T9",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "88.80",
        "gmt_payment": "2024-01-15 12:00:00",
        "subject": "0号柴油 a&b=c",
    }
    signed = {**fields, "sign_type": "RSA2", "sign": as_alipay._sign(crypto.notify_content(fields))}
    note = rig.provider.parse_notification({}, urlencode(signed).encode())
    assert (note.out_trade_no, note.amount_fen, note.event_id) == ("T9", 8880, fields["notify_id"])
    assert note.occurred_at == datetime(2024, 1, 15, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
