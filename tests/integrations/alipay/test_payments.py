"""AlipayProvider against the in-process sandbox: prepay, query, close, refunds, errors."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from forecourt.integrations.alipay import AlipayClient, AlipayProvider
from forecourt.kit import clock, rsa
from forecourt.payment.providers import (
    PaymentProvider,
    PaymentSandbox,
    PrepayRequest,
    ProviderError,
    ProviderName,
    RefundRequest,
    RefundResult,
    TradeStatus,
)
from tests.integrations.alipay.conftest import APP_ID, BUYER_ID, NOTIFY_URL, Rig


def _refund(out_refund_no: str, fen: int, out_trade_no: str = "T1") -> RefundRequest:
    return RefundRequest(
        out_trade_no=out_trade_no,
        transaction_id="",
        out_refund_no=out_refund_no,
        refund_fen=fen,
        total_fen=30000,
        reason="加油未完成",
        notify_url=NOTIFY_URL,
    )


async def test_prepay_gives_the_trade_no_for_my_trade_pay(rig: Rig) -> None:
    result = await rig.provider.prepay(
        PrepayRequest(
            out_trade_no="T1",
            amount_fen=30000,
            description="92#汽油 40.00L",
            notify_url=NOTIFY_URL,
            expires_at=clock.now() + timedelta(minutes=15),
            payer_id=BUYER_ID,
        )
    )
    trade = rig.sandbox.trade("T1")
    assert trade is not None
    assert len(result.provider_ref) == 28
    assert result.client_params == {
        "tradeNO": trade.trade_no,
        "cashier_url": "https://forecourt.test/sandbox/alipay/sandbox/cashier?out_trade_no=T1",
    }
    assert (trade.total_fen, trade.subject, trade.buyer_id) == (30000, "92#汽油 40.00L", BUYER_ID)
    assert trade.notify_url == NOTIFY_URL
    assert rig.provider.name is ProviderName.ALIPAY
    assert rig.provider.merchant_id == APP_ID
    again = await rig.open("T1")
    assert again == trade.trade_no  # a repeat with the same content is the same trade


async def test_open_id_payer_and_missing_payer(rig: Rig) -> None:
    expires = clock.now() + timedelta(minutes=15)
    await rig.provider.prepay(PrepayRequest("T2", 100, "x", NOTIFY_URL, expires, "074a1CcTG1"))
    trade = rig.sandbox.trade("T2")
    assert trade is not None
    assert (trade.buyer_id, trade.buyer_open_id) == (None, "074a1CcTG1")
    with pytest.raises(ProviderError) as err:
        await rig.provider.prepay(PrepayRequest("T3", 100, "x", NOTIFY_URL, expires, ""))
    assert err.value.code == "ACQ.INVALID_PARAMETER"
    assert "buyer_open_id" in err.value.message


async def test_query_follows_the_trade(rig: Rig) -> None:
    trade_no = await rig.open("T1")
    assert await rig.provider.query("T1") == TradeStatus(
        out_trade_no="T1", state="pending", transaction_id=trade_no, amount_fen=30000
    )
    await rig.sandbox.complete("T1")
    trade = rig.sandbox.trade("T1")
    assert trade is not None
    assert trade.paid_at is not None
    assert await rig.provider.query("T1") == TradeStatus(
        out_trade_no="T1",
        state="paid",
        transaction_id=trade_no,
        amount_fen=30000,
        paid_at=trade.paid_at.replace(microsecond=0),
    )
    assert await rig.provider.query("NOPE") == TradeStatus(out_trade_no="NOPE", state="pending")


async def test_close_and_expiry(rig: Rig) -> None:
    await rig.open("T1")
    await rig.provider.close("T1")
    assert (await rig.provider.query("T1")).state == "closed"
    await rig.provider.close("T1")  # closing twice is fine
    await rig.provider.close("NEVER-OPENED")
    with pytest.raises(ValueError, match="TRADE_CLOSED"):
        await rig.sandbox.complete("T1")
    await rig.open("T2")
    clock.travel(timedelta(minutes=15))
    assert (await rig.provider.query("T2")).state == "closed"
    await rig.paid("T3")
    with pytest.raises(ProviderError) as err:
        await rig.provider.close("T3")
    assert err.value.code == "TRADE_NOT_CLOSABLE"


async def test_partial_refunds_then_full(rig: Rig) -> None:
    await rig.paid("T1")
    first = await rig.provider.refund(_refund("R1", 10000))
    assert first == RefundResult("R1", None, "succeeded", 10000)
    repeat = await rig.provider.refund(_refund("R1", 10000))
    assert repeat == RefundResult("R1", None, "succeeded", 10000)
    trade = rig.sandbox.trade("T1")
    assert trade is not None
    assert trade.refunded_fen == 10000
    assert (await rig.provider.query("T1")).state == "paid"
    with pytest.raises(ProviderError) as err:
        await rig.provider.refund(_refund("R2", 20001))
    assert (err.value.code, err.value.retryable) == ("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", False)
    with pytest.raises(ProviderError) as err:
        await rig.provider.refund(_refund("R1", 500))
    assert err.value.code == "ACQ.DISCORDANT_REPEAT_REQUEST"
    assert await rig.provider.refund(_refund("R2", 20000)) == RefundResult(
        "R2", None, "succeeded", 20000
    )
    assert trade.refunded_fen == 30000
    assert (await rig.provider.query("T1")).state == "refunded"
    assert await rig.provider.query_refund("R2") == RefundResult("R2", None, "succeeded", 20000)
    assert await rig.provider.query_refund("R9", out_trade_no="T1") == RefundResult(
        "R9", None, "failed", 0
    )
    with pytest.raises(ProviderError) as err:
        await rig.provider.query_refund("R-unknown")
    assert err.value.code == "UNKNOWN_REFUND"


async def test_refund_of_an_unpaid_trade_is_refused(rig: Rig) -> None:
    await rig.open("T1")
    with pytest.raises(ProviderError) as err:
        await rig.provider.refund(_refund("R1", 100))
    assert err.value.code == "ACQ.TRADE_STATUS_ERROR"


async def test_paying_twice_is_refused(rig: Rig) -> None:
    await rig.paid("T1")
    with pytest.raises(ProviderError) as err:
        await rig.open("T1")
    assert err.value.code == "ACQ.TRADE_HAS_SUCCESS"


async def test_bad_signature_is_refused_by_the_sandbox(rig: Rig) -> None:
    impostor = AlipayClient(
        app_id=APP_ID,
        private_key=rsa.generate_test_key(),
        alipay_public_key=rig.sandbox.alipay_public_key,
        gateway="http://alipay-sandbox/gateway.do",
        transport=httpx.ASGITransport(app=rig.sandbox.app),
    )
    with pytest.raises(ProviderError) as err:
        await AlipayProvider(impostor).query("T1")
    assert err.value.code == "isv.invalid-signature"
    await impostor.aclose()


async def test_answer_signed_by_someone_else_is_refused(rig: Rig) -> None:
    trusting_wrong_key = AlipayClient(
        app_id=APP_ID,
        private_key=rig.provider.client._key,
        alipay_public_key=rsa.generate_test_key().public_key(),
        gateway="http://alipay-sandbox/gateway.do",
        transport=httpx.ASGITransport(app=rig.sandbox.app),
    )
    with pytest.raises(ProviderError) as err:
        await trusting_wrong_key.trade_query("T1")
    assert err.value.code == "INVALID_RESPONSE_SIGNATURE"
    await trusting_wrong_key.aclose()


async def test_common_parameters_are_checked(rig: Rig) -> None:
    client = rig.provider.client
    params = client.signed_params("alipay.trade.query", {"out_trade_no": "T1"})
    gateway = "http://alipay-sandbox/gateway.do"
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.sandbox.app))
    missing = {k: v for k, v in params.items() if k != "timestamp"}
    body = (await http.post(gateway, data=missing)).json()
    assert body["alipay_trade_query_response"] == {
        "code": "40001",
        "msg": "Missing Required Arguments",
        "sub_code": "isv.missing-timestamp",
        "sub_msg": "缺少timestamp",
    }
    unknown = client.signed_params("alipay.trade.nothing", {})
    body = (await http.post(gateway, data=unknown)).json()
    assert body["error_response"]["sub_code"] == "isv.invalid-method"
    assert "sign" in body
    await http.aclose()


async def test_injected_system_error_is_retryable(rig: Rig) -> None:
    rig.sandbox.fail_next("ACQ.SYSTEM_ERROR")
    with pytest.raises(ProviderError) as err:
        await rig.provider.query("T1")
    assert (err.value.code, err.value.retryable) == ("ACQ.SYSTEM_ERROR", True)


async def test_cashier_page_works_under_a_prefix(rig: Rig) -> None:
    await rig.open("T1")
    host = Starlette(routes=[Mount("/sandbox/alipay", app=rig.sandbox.app)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=host), base_url="https://forecourt.test"
    ) as http:
        page = await http.get("/sandbox/alipay/sandbox/cashier", params={"out_trade_no": "T1"})
        assert page.status_code == 200
        assert "沙箱 / sandbox, no real money" in page.text
        assert "¥300.00" in page.text
        assert 'action="/sandbox/alipay/sandbox/pay"' in page.text
        paid = await http.post("/sandbox/alipay/sandbox/pay", data={"out_trade_no": "T1"})
        assert paid.status_code == 200
        again = await http.post("/sandbox/alipay/sandbox/pay", data={"out_trade_no": "T1"})
        assert again.status_code == 409
        missing = await http.get("/sandbox/alipay/sandbox/cashier?out_trade_no=NOPE")
        assert missing.status_code == 404
    await rig.sandbox.settle()
    trade = rig.sandbox.trade("T1")
    assert trade is not None
    assert (trade.status, trade.buyer_id) == ("TRADE_SUCCESS", BUYER_ID)
    assert [n.out_trade_no for n in rig.receiver.parsed] == ["T1"]


def test_adapter_and_sandbox_satisfy_the_protocols(rig: Rig) -> None:
    provider: PaymentProvider = rig.provider
    sandbox: PaymentSandbox = rig.sandbox
    assert (provider.name, callable(sandbox.complete)) == (ProviderName.ALIPAY, True)
