"""Client, provider and sandbox in-process: prepay, paySign, notifications, query, close."""

from __future__ import annotations

import itertools
from datetime import timedelta

import orjson
import pytest

from forecourt.integrations.wechatpay import crypto
from forecourt.integrations.wechatpay.client import WeChatPayError, rfc3339
from forecourt.integrations.wechatpay.sandbox import RESEND_DELAYS
from forecourt.kit import clock
from forecourt.payment.providers import ProviderError
from tests.integrations.wechatpay.conftest import (
    APPID,
    MCHID,
    NOTIFY_URL,
    OPENID,
    MakeRig,
    Rig,
    eventually,
)


async def test_prepay_answers_a_prepay_id_and_signed_pay_params(rig: Rig) -> None:
    result = await rig.prepay("FC20240001", 1234)
    assert result.provider_ref.startswith("wx")
    assert len(result.provider_ref) == 36
    params = result.client_params
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["appId"] == APPID
    assert params["package"] == f"prepay_id={result.provider_ref}"
    assert params["signType"] == "RSA"
    assert len(params["nonceStr"]) == 32
    message = f"{APPID}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    assert crypto.verify(rig.merchant.key.public_key(), message, params["paySign"])
    order = rig.sandbox.orders["FC20240001"]
    assert (order.total, order.openid, order.notify_url) == (1234, OPENID, NOTIFY_URL)
    assert order.request["amount"] == {"total": 1234, "currency": "CNY"}
    assert order.request["time_expire"].endswith("+08:00")


async def test_prepay_is_idempotent_for_the_same_body_only(rig: Rig) -> None:
    expires = clock.now() + timedelta(minutes=15)
    kwargs = {
        "description": "95# 汽油",
        "out_trade_no": "FC20240002",
        "notify_url": NOTIFY_URL,
        "openid": OPENID,
        "time_expire": expires,
    }
    first = await rig.client.prepay_jsapi(total_fen=500, **kwargs)  # type: ignore[arg-type]
    again = await rig.client.prepay_jsapi(total_fen=500, **kwargs)  # type: ignore[arg-type]
    assert again == first
    with pytest.raises(WeChatPayError) as err:
        await rig.client.prepay_jsapi(total_fen=501, **kwargs)  # type: ignore[arg-type]
    assert (err.value.code, err.value.status, err.value.retryable) == (
        "INVALID_REQUEST",
        400,
        False,
    )


def _body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "appid": APPID,
        "mchid": MCHID,
        "description": "0# 柴油",
        "out_trade_no": "FC20240003",
        "notify_url": NOTIFY_URL,
        "amount": {"total": 100, "currency": "CNY"},
        "payer": {"openid": OPENID},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"description": None}, 400, "PARAM_ERROR"),
        ({"out_trade_no": "abc"}, 400, "PARAM_ERROR"),
        ({"amount": {"total": 0}}, 400, "PARAM_ERROR"),
        ({"amount": {"total": 1.5}}, 400, "PARAM_ERROR"),
        ({"amount": {"total": 100, "currency": "USD"}}, 400, "PARAM_ERROR"),
        ({"payer": {}}, 400, "PARAM_ERROR"),
        ({"notify_url": "https://merchant.test/n?x=1"}, 400, "PARAM_ERROR"),
        ({"time_expire": "2024-01-01 10:00:00"}, 400, "PARAM_ERROR"),
        ({"mchid": "1900000002"}, 400, "MCH_NOT_EXISTS"),
        ({"appid": "wx-someone-else"}, 400, "APPID_MCHID_NOT_MATCH"),
        ({}, 200, None),
    ],
)
async def test_prepay_validation(
    rig: Rig, changes: dict[str, object], status: int, code: str | None
) -> None:
    resp = await rig.raw("POST", "/v3/pay/transactions/jsapi", _body(**changes))
    assert resp.status_code == status
    if code is None:
        assert set(resp.json()) == {"prepay_id"}
    else:
        assert resp.json()["code"] == code
        assert resp.json()["message"]
    # every answer, errors included, is signed
    rig.client.verify_headers(resp.headers, resp.content)


async def test_complete_notifies_and_the_provider_parses_it(rig: Rig) -> None:
    await rig.prepay("FC20240004", 1234)
    await rig.sandbox.complete("FC20240004")
    await eventually(lambda: len(rig.receiver.parsed) == 1)
    order = rig.sandbox.orders["FC20240004"]
    note = rig.receiver.parsed[0]
    headers, body = rig.receiver.received[0]
    envelope = orjson.loads(body)
    assert envelope["event_type"] == "TRANSACTION.SUCCESS"
    assert envelope["resource_type"] == "encrypt-resource"
    assert envelope["resource"]["algorithm"] == "AEAD_AES_256_GCM"
    assert envelope["resource"]["original_type"] == "transaction"
    assert len(envelope["resource"]["nonce"]) == 12
    assert headers["wechatpay-serial"] == rig.sandbox.identity.certificate_serial
    assert headers["content-type"] == "application/json"
    assert (note.kind, note.event_id, note.merchant_id) == ("payment", envelope["id"], MCHID)
    assert (note.out_trade_no, note.transaction_id) == ("FC20240004", order.transaction_id)
    assert (note.amount_fen, note.succeeded) == (1234, True)
    assert order.success_time is not None
    assert note.occurred_at == order.success_time.replace(microsecond=0)
    assert note.raw["trade_state"] == "SUCCESS"
    assert note.raw["payer"] == {"openid": OPENID}
    await rig.sandbox.join()
    assert [(d.attempt, d.status) for d in rig.sandbox.delivered] == [(1, 204)]


async def test_resends_until_the_handler_answers_2xx(rig: Rig) -> None:
    rig.receiver.statuses = [500, 503]
    await rig.prepay("FC20240005")
    await rig.sandbox.complete("FC20240005")
    await rig.sandbox.join()
    delivered = rig.sandbox.delivered
    assert [(d.attempt, d.status) for d in delivered] == [(1, 500), (2, 503), (3, 204)]
    assert len({d.event_id for d in delivered}) == 1
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(delivered)]
    assert all(g >= 15 * rig.sandbox.resend_scale * 0.9 for g in gaps)
    bodies = {body for _, body in rig.receiver.received}
    assert len(bodies) == 1  # same notification body; each attempt signed afresh
    assert len({h["wechatpay-nonce"] for h, _ in rig.receiver.received}) == 3
    assert len(rig.receiver.parsed) == 1


async def test_resend_schedule_is_sixteen_attempts(make_rig: MakeRig) -> None:
    rig = make_rig(resend_scale=0.00001)
    rig.receiver.statuses = [500] * 20
    await rig.prepay("FC20240006")
    await rig.sandbox.complete("FC20240006")
    await rig.sandbox.join()
    assert len(RESEND_DELAYS) == 15
    assert sum(RESEND_DELAYS) == 24 * 3600 + 4 * 60
    assert [d.attempt for d in rig.sandbox.delivered] == list(range(1, 17))
    assert {d.status for d in rig.sandbox.delivered} == {500}


async def test_query_reports_each_state(rig: Rig) -> None:
    await rig.prepay("FC20240007", 800)
    status = await rig.provider.query("FC20240007")
    assert (status.state, status.amount_fen, status.transaction_id, status.paid_at) == (
        "pending",
        800,
        None,
        None,
    )
    await rig.prepay("FC20240008")
    rig.sandbox.fail("FC20240008")
    assert (await rig.provider.query("FC20240008")).state == "failed"
    await rig.paid("FC20240009", 900)
    paid = await rig.provider.query("FC20240009")
    order = rig.sandbox.orders["FC20240009"]
    assert order.success_time is not None
    assert (paid.state, paid.amount_fen, paid.transaction_id) == ("paid", 900, order.transaction_id)
    assert paid.paid_at == order.success_time.replace(microsecond=0)
    with pytest.raises(ProviderError) as err:
        await rig.provider.query("FC-UNKNOWN-1")
    assert err.value.code == "ORDER_NOT_EXIST"


async def test_close(rig: Rig) -> None:
    await rig.prepay("FC20240010")
    await rig.provider.close("FC20240010")
    assert (await rig.provider.query("FC20240010")).state == "closed"
    await rig.provider.close("FC20240010")  # closing twice is fine
    with pytest.raises(WeChatPayError) as err:
        await rig.prepay("FC20240010")
    assert err.value.code == "ORDER_CLOSED"
    with pytest.raises(ValueError, match="CLOSED"):
        await rig.sandbox.complete("FC20240010")
    await rig.paid("FC20240011")
    with pytest.raises(WeChatPayError) as err:
        await rig.provider.close("FC20240011")
    assert err.value.code == "ORDERPAID"
    with pytest.raises(WeChatPayError) as err:
        await rig.prepay("FC20240011")
    assert err.value.code == "ORDERPAID"
    with pytest.raises(ProviderError) as perr:
        await rig.provider.close("FC-UNKNOWN-2")
    assert perr.value.code == "ORDER_NOT_EXIST"


async def test_expired_order_cannot_be_paid(rig: Rig) -> None:
    await rig.prepay("FC20240012")
    clock.travel(timedelta(minutes=16))
    with pytest.raises(ValueError, match="expired"):
        await rig.sandbox.complete("FC20240012")


async def test_prepay_without_openid_is_refused_locally(rig: Rig) -> None:
    from forecourt.payment.providers import PrepayRequest

    request = PrepayRequest("FC20240013", 100, "x", NOTIFY_URL, clock.now(), payer_id=None)
    with pytest.raises(ProviderError) as err:
        await rig.provider.prepay(request)
    assert err.value.code == "PARAM_ERROR"
    assert rig.sandbox.orders == {}


def test_rfc3339_is_beijing_time() -> None:
    moment = clock.now().replace(microsecond=0)
    text = rfc3339(moment)
    assert text.endswith("+08:00")
    assert clock.local(moment).strftime("%Y-%m-%dT%H:%M:%S") == text[:19]
