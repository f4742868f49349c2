"""UnionPayProvider against the in-process sandbox: prepay, query, close, refunds, errors."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from forecourt.integrations.unionpay import CertTrust, UnionPayClient
from forecourt.integrations.unionpay.client import APP_PATH
from forecourt.integrations.unionpay.sandbox.pki import make_sandbox_pki
from forecourt.kit import clock, rsa
from forecourt.payment.providers import (
    PaymentProvider,
    PaymentSandbox,
    PrepayRequest,
    ProviderError,
    ProviderName,
    RefundResult,
    TradeStatus,
)
from tests.integrations.unionpay.conftest import APP_PAYER, MER_ID, NOTIFY_URL, Rig

ORDER = "UP2024011500001"


def _client(rig: Rig, **overrides: object) -> UnionPayClient:
    values: dict[str, object] = {
        "mer_id": MER_ID,
        "private_key": rig.provider.client._key,
        "cert_id": rig.sandbox.cert_id,
        "trust": rig.provider.client.trust,
        "gateway": "http://unionpay-sandbox",
        "transport": httpx.ASGITransport(app=rig.sandbox.app),
    }
    values.update(overrides)
    return UnionPayClient(**values)  # type: ignore[arg-type]


async def test_prepay_gives_the_tn(rig: Rig) -> None:
    tn = await rig.open(ORDER, 30000)
    txn = rig.sandbox.order(ORDER)
    assert txn is not None
    assert (txn.tn, txn.amount_fen, txn.back_url, len(tn)) == (tn, 30000, NOTIFY_URL, 21)
    assert txn.pay_timeout is not None
    assert rig.provider.name is ProviderName.UNIONPAY
    assert rig.provider.merchant_id == MER_ID
    result = await rig.provider.prepay(_prepay("UP2024011500002"))
    assert result.client_params == {
        "tn": result.provider_ref,
        "cashier_url": (
            "https://forecourt.test/sandbox/unionpay/sandbox/cashier?out_trade_no=UP2024011500002"
        ),
    }


def _prepay(order_id: str) -> PrepayRequest:
    expires = clock.now() + timedelta(minutes=15)
    return PrepayRequest(order_id, 100, "x", NOTIFY_URL, expires, APP_PAYER)


async def test_query_follows_the_order(rig: Rig) -> None:
    await rig.open(ORDER)
    assert await rig.provider.query(ORDER) == TradeStatus(out_trade_no=ORDER, state="pending")
    await rig.sandbox.complete(ORDER)
    txn = rig.sandbox.order(ORDER)
    assert txn is not None
    assert txn.done_at is not None
    assert await rig.provider.query(ORDER) == TradeStatus(
        out_trade_no=ORDER,
        state="paid",
        transaction_id=txn.query_id,
        amount_fen=30000,
        paid_at=txn.done_at.replace(microsecond=0),
    )
    with pytest.raises(ProviderError) as err:
        await rig.provider.query("UNKNOWN0001")
    assert err.value.code == "UNKNOWN_TXN_TIME"


async def test_duplicate_order_is_refused(rig: Rig) -> None:
    await rig.open(ORDER)
    with pytest.raises(ProviderError) as err:
        await rig.open(ORDER)
    assert (err.value.code, err.value.message) == ("12", "重复交易[orderId]")


async def test_close_expiry_and_paid(rig: Rig) -> None:
    await rig.open(ORDER)
    await rig.provider.close(ORDER)  # no wire close: the tn dies at payTimeout
    await rig.provider.close("NEVERSENT01")
    clock.travel(timedelta(minutes=15))
    with pytest.raises(ValueError, match="cannot be paid"):
        await rig.sandbox.complete(ORDER)
    await rig.paid("UP2024011500002")
    with pytest.raises(ProviderError) as err:
        await rig.provider.close("UP2024011500002")
    assert err.value.code == "TRADE_NOT_CLOSABLE"


async def test_refunds_partial_repeat_over_and_full(rig: Rig) -> None:
    query_id = await rig.paid(ORDER)
    first = await rig.refund(ORDER, query_id, "RF2024011500001", 10000)
    assert first == RefundResult("RF2024011500001", None, "processing", 10000)
    refund_txn = rig.sandbox.order("RF2024011500001")
    assert refund_txn is not None
    done = RefundResult("RF2024011500001", refund_txn.query_id, "succeeded", 10000)
    assert await rig.provider.query_refund("RF2024011500001") == done
    assert await rig.refund(ORDER, query_id, "RF2024011500001", 10000) == done  # idempotent
    with pytest.raises(ProviderError) as err:
        await rig.refund(ORDER, query_id, "RF2024011500002", 20001)
    assert (err.value.code, err.value.retryable) == ("33", False)
    full = await rig.refund(ORDER, query_id, "RF2024011500003", 20000)
    assert full.state == "processing"
    with pytest.raises(ProviderError) as err:
        await rig.refund(ORDER, query_id, "RF2024011500004", 1)
    assert err.value.code == "33"
    with pytest.raises(ProviderError) as err:
        await rig.refund(ORDER, "000000000000000000000", "RF2024011500005", 1)
    assert err.value.code == "35"
    assert await rig.provider.query_refund("RF2024011500009", txn_time="20240115120000") == (
        RefundResult("RF2024011500009", None, "failed", 0)
    )


async def test_bad_signature_is_refused_by_the_sandbox(rig: Rig) -> None:
    impostor = _client(rig, private_key=rsa.generate_test_key())
    with pytest.raises(ProviderError) as err:
        await impostor.query(order_id=ORDER, txn_time="20240115120000")
    assert (err.value.code, err.value.message) == ("11", "验证签名失败")
    await impostor.aclose()


async def test_answer_from_an_untrusted_certificate_is_refused(rig: Rig) -> None:
    await rig.open(ORDER)
    await rig.sandbox.complete(ORDER)
    doubting = _client(rig, trust=CertTrust(make_sandbox_pki().bundle_pem))
    txn = rig.sandbox.order(ORDER)
    assert txn is not None
    with pytest.raises(ProviderError) as err:
        await doubting.query(order_id=ORDER, txn_time=txn.txn_time)
    assert err.value.code == "INVALID_RESPONSE_SIGNATURE"
    await doubting.aclose()


async def test_missing_and_malformed_fields_are_named(rig: Rig) -> None:
    client = rig.provider.client
    url = client.gateway + APP_PATH
    consume = {
        "txnType": "01",
        "txnSubType": "01",
        "bizType": "000201",
        "channelType": "08",
        "txnTime": "20240115120000",
        "txnAmt": "100",
        "currencyCode": "156",
        "backUrl": NOTIFY_URL,
    }
    with pytest.raises(ProviderError) as err:
        await client.post(url, consume)
    assert (err.value.code, err.value.message) == ("13", "报文交易要素缺失[orderId]")
    with pytest.raises(ProviderError) as err:
        await client.post(url, {**consume, "orderId": "UP-2024-01"})
    assert (err.value.code, err.value.message) == ("10", "报文格式错误[orderId]")
    with pytest.raises(ProviderError) as err:
        await client.post(url, {**consume, "orderId": ORDER, "txnAmt": "1.00"})
    assert (err.value.code, err.value.message) == ("10", "报文格式错误[txnAmt]")


async def test_answers_are_signed_forms_with_the_certificate(rig: Rig) -> None:
    signed = rig.provider.client.signed({"txnType": "00", "txnSubType": "00", "bizType": "000000"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rig.sandbox.app)) as http:
        resp = await http.post("http://unionpay-sandbox/gateway/api/queryTrans.do", data=signed)
    answer = dict(parse_qsl(resp.text))
    assert (answer["respCode"], answer["respMsg"]) == ("13", "报文交易要素缺失[orderId]")
    assert answer["signPubKeyCert"] == rig.sandbox.pki.signing_pem
    assert rig.provider.client.trust.verify(answer)


async def test_injected_busy_is_retryable(rig: Rig) -> None:
    rig.sandbox.fail_next("06")
    with pytest.raises(ProviderError) as err:
        await rig.open(ORDER)
    assert (err.value.code, err.value.retryable) == ("06", True)


async def test_cashier_page_works_under_a_prefix(rig: Rig) -> None:
    tn = await rig.open(ORDER)
    host = Starlette(routes=[Mount("/sandbox/unionpay", app=rig.sandbox.app)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=host), base_url="https://forecourt.test"
    ) as http:
        page = await http.get("/sandbox/unionpay/sandbox/cashier", params={"out_trade_no": ORDER})
        assert page.status_code == 200
        assert "沙箱 / sandbox, no real money" in page.text
        assert f"tn: {tn}" in page.text
        assert "¥300.00" in page.text
        assert 'action="/sandbox/unionpay/sandbox/pay"' in page.text
        paid = await http.post("/sandbox/unionpay/sandbox/pay", data={"out_trade_no": ORDER})
        assert paid.status_code == 200
        again = await http.post("/sandbox/unionpay/sandbox/pay", data={"out_trade_no": ORDER})
        assert again.status_code == 409
    await rig.sandbox.settle()
    assert [n.out_trade_no for n in rig.receiver.parsed] == [ORDER]


def test_adapter_and_sandbox_satisfy_the_protocols(rig: Rig) -> None:
    provider: PaymentProvider = rig.provider
    sandbox: PaymentSandbox = rig.sandbox
    assert (provider.name, callable(sandbox.complete)) == (ProviderName.UNIONPAY, True)
