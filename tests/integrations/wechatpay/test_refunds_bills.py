"""Refunds (full, partial, NOT_ENOUGH, idempotent, notified) and the daily trade bill."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from forecourt.integrations.wechatpay.client import (
    BILL_COLUMNS,
    BILL_SUMMARY_COLUMNS,
    WeChatPayError,
)
from forecourt.integrations.wechatpay.provider import parse_trade_bill
from forecourt.kit import clock
from forecourt.payment.providers import BillRow, ProviderError, RefundRequest
from tests.integrations.wechatpay.conftest import MCHID, NOTIFY_URL, Rig, eventually


def _refund(rig: Rig, out_trade_no: str, out_refund_no: str, fen: int, total: int) -> RefundRequest:
    order = rig.sandbox.orders[out_trade_no]
    return RefundRequest(
        out_trade_no=out_trade_no,
        transaction_id=order.transaction_id or "",
        out_refund_no=out_refund_no,
        refund_fen=fen,
        total_fen=total,
        reason="加油金额有误",
        notify_url=NOTIFY_URL,
    )


async def test_full_refund_processes_then_succeeds_with_notification(rig: Rig) -> None:
    await rig.paid("FC20240201", 1234)
    result = await rig.provider.refund(_refund(rig, "FC20240201", "RF20240201", 1234, 1234))
    assert (result.out_refund_no, result.state, result.amount_fen) == (
        "RF20240201",
        "processing",
        1234,
    )
    assert result.refund_id is not None
    assert len(result.refund_id) == 29
    assert (await rig.provider.query("FC20240201")).state == "refunded"
    await eventually(lambda: len(rig.receiver.parsed) == 2)
    done = await rig.provider.query_refund("RF20240201")
    assert (done.state, done.refund_id, done.amount_fen) == ("succeeded", result.refund_id, 1234)
    note = rig.receiver.parsed[1]
    order = rig.sandbox.orders["FC20240201"]
    assert (note.kind, note.merchant_id, note.succeeded) == ("refund", MCHID, True)
    assert (note.out_trade_no, note.transaction_id) == ("FC20240201", order.transaction_id)
    assert (note.out_refund_no, note.refund_id, note.amount_fen) == (
        "RF20240201",
        result.refund_id,
        1234,
    )
    assert note.raw["amount"] == {
        "total": 1234,
        "refund": 1234,
        "payer_total": 1234,
        "payer_refund": 1234,
    }
    assert note.raw["refund_status"] == "SUCCESS"


async def test_partial_refunds_until_not_enough(rig: Rig) -> None:
    await rig.paid("FC20240202", 1234)
    first = await rig.provider.refund(_refund(rig, "FC20240202", "RF20240202A", 1000, 1234))
    second = await rig.provider.refund(_refund(rig, "FC20240202", "RF20240202B", 234, 1234))
    assert (first.amount_fen, second.amount_fen) == (1000, 234)
    with pytest.raises(ProviderError) as err:
        await rig.provider.refund(_refund(rig, "FC20240202", "RF20240202C", 1, 1234))
    assert (err.value.code, err.value.retryable) == ("NOT_ENOUGH", False)


async def test_refund_above_the_total_is_not_enough(rig: Rig) -> None:
    await rig.paid("FC20240203", 1234)
    with pytest.raises(ProviderError) as err:
        await rig.provider.refund(_refund(rig, "FC20240203", "RF20240203", 1235, 1234))
    assert err.value.code == "NOT_ENOUGH"


async def test_same_out_refund_no_is_the_same_refund(rig: Rig) -> None:
    await rig.paid("FC20240204", 1234)
    request = _refund(rig, "FC20240204", "RF20240204", 500, 1234)
    first = await rig.provider.refund(request)
    again = await rig.provider.refund(request)
    assert again.refund_id == first.refund_id
    assert len(rig.sandbox.refunds) == 1
    assert rig.sandbox.orders["FC20240204"].refunded == 500
    with pytest.raises(ProviderError) as err:
        await rig.provider.refund(_refund(rig, "FC20240204", "RF20240204", 600, 1234))
    assert err.value.code == "INVALID_REQUEST"


async def test_refund_errors(rig: Rig) -> None:
    await rig.paid("FC20240205", 1234)
    with pytest.raises(ProviderError) as err:
        await rig.provider.refund(_refund(rig, "FC20240205", "RF20240205", 100, 9999))
    assert err.value.code == "PARAM_ERROR"
    await rig.prepay("FC20240206")
    unpaid = RefundRequest("FC20240206", "", "RF20240206", 100, 1234, "r", NOTIFY_URL)
    with pytest.raises(ProviderError) as err:
        await rig.provider.refund(unpaid)
    assert err.value.code == "INVALID_REQUEST"
    unknown = RefundRequest("FC-NOPE-0001", "", "RF20240207", 100, 1234, "r", NOTIFY_URL)
    with pytest.raises(ProviderError) as err:
        await rig.provider.refund(unknown)
    assert err.value.code == "RESOURCE_NOT_EXISTS"
    with pytest.raises(ProviderError) as err:
        await rig.provider.query_refund("RF-NOPE")
    assert err.value.code == "RESOURCE_NOT_EXISTS"


async def test_refund_by_out_trade_no_only(rig: Rig) -> None:
    await rig.paid("FC20240208", 300)
    request = RefundRequest("FC20240208", "", "RF20240208", 300, 300, "", NOTIFY_URL)
    assert (await rig.provider.refund(request)).amount_fen == 300


def _noon(days_ago: int) -> datetime:
    day = clock.local(clock.now()).date() - timedelta(days=days_ago)
    return datetime(day.year, day.month, day.day, 12, tzinfo=clock.BUSINESS_TZ).astimezone(UTC)


async def _busy_day(rig: Rig) -> date:
    """Two days ago at noon (Beijing): pay 12.34 and 50.00, refund 20.00 of the second."""
    clock.travel(_noon(2) - clock.now())
    await rig.paid("FC20240301", 1234)
    await rig.paid("FC20240302", 5000)
    await rig.prepay("FC20240303", 700)  # never paid: not in the bill
    await rig.provider.refund(_refund(rig, "FC20240302", "RF20240302", 2000, 5000))
    await rig.sandbox.join()
    day = clock.local(clock.now()).date()
    clock.reset()
    return day


def _utc(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment.replace(microsecond=0)


async def test_bill_rows_in_exact_fen(rig: Rig) -> None:
    day = await _busy_day(rig)
    rows = await rig.provider.bill(day)
    a, b = rig.sandbox.orders["FC20240301"], rig.sandbox.orders["FC20240302"]
    refund = rig.sandbox.refunds["RF20240302"]
    assert rows == [
        BillRow("payment", "FC20240301", a.transaction_id or "", 1234, _utc(a.success_time)),
        BillRow("payment", "FC20240302", b.transaction_id or "", 5000, _utc(b.success_time)),
        BillRow(
            "refund",
            "FC20240302",
            b.transaction_id or "",
            2000,
            _utc(refund.success_time),
            out_refund_no="RF20240302",
            refund_id=refund.refund_id,
        ),
    ]
    assert await rig.provider.bill(day - timedelta(days=1)) == []  # no statement that day


async def test_bill_file_format(rig: Rig) -> None:
    day = await _busy_day(rig)
    content = await rig.client.trade_bill(day)
    lines = content.decode().splitlines()
    assert lines[0].split(",") == BILL_COLUMNS
    assert lines[4].split(",") == BILL_SUMMARY_COLUMNS
    assert all(cell.startswith("`") for line in lines[1:4] for cell in line.split(","))
    # 3 lines; settled 12.34 + 50.00; refunded 20.00; fees 0.07 + 0.30 - 0.12
    assert lines[5] == "`3,`62.34,`20.00,`0.00,`0.25,`62.34,`20.00"
    payment = dict(zip(BILL_COLUMNS, (c[1:] for c in lines[1].split(",")), strict=True))
    assert payment["商户号"] == MCHID
    assert (payment["交易状态"], payment["订单金额"], payment["手续费"]) == (
        "SUCCESS",
        "12.34",
        "0.07",
    )
    refund = dict(zip(BILL_COLUMNS, (c[1:] for c in lines[3].split(",")), strict=True))
    assert (refund["交易状态"], refund["退款状态"], refund["申请退款金额"]) == (
        "REFUND",
        "SUCCESS",
        "20.00",
    )


class _Tamper(httpx.AsyncBaseTransport):
    """Changes one byte of any downloaded bill."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        resp = await self.inner.handle_async_request(request)
        if request.url.path != "/v3/billdownload/file":
            return resp
        body = (await resp.aread()).replace(b"12.34", b"12.35")
        return httpx.Response(resp.status_code, headers=resp.headers, content=body)


async def test_tampered_bill_fails_its_sha1(rig: Rig) -> None:
    day = await _busy_day(rig)
    tampered = rig.client_for(transport=_Tamper(httpx.ASGITransport(app=rig.sandbox.app)))
    with pytest.raises(WeChatPayError) as err:
        await tampered.trade_bill(day)
    assert err.value.code == "BILL_HASH_MISMATCH"
    await tampered.aclose()


async def test_todays_bill_does_not_exist_yet(rig: Rig) -> None:
    await rig.paid("FC20240304")
    today = clock.local(clock.now()).date()
    with pytest.raises(ProviderError) as err:
        await rig.provider.bill(today)
    assert (err.value.code, err.value.retryable) == ("STATEMENT_NOT_READY", True)
    with pytest.raises(WeChatPayError) as werr:
        await rig.client.trade_bill(today)
    assert (werr.value.code, werr.value.status) == ("NO_STATEMENT_EXIST", 400)


async def test_gzip_bill_hash_is_of_the_plain_file(rig: Rig) -> None:
    day = await _busy_day(rig)
    resp = await rig.raw("GET", f"/v3/bill/tradebill?bill_date={day}&bill_type=ALL&tar_type=GZIP")
    info = resp.json()
    url = httpx.URL(info["download_url"])
    target = url.raw_path.decode()
    download = await rig.raw("GET", target)
    plain = gzip.decompress(download.content)
    assert hashlib.sha1(plain, usedforsecurity=False).hexdigest() == info["hash_value"]
    assert "wechatpay-signature" not in download.headers  # the file is not signed
    assert len(parse_trade_bill(plain)) == 3


def test_bill_totals_must_add_up() -> None:
    header = ",".join(BILL_COLUMNS)
    values = dict.fromkeys(BILL_COLUMNS, "")
    values.update(
        {
            "交易时间": "2024-05-01 12:00:00",
            "交易状态": "SUCCESS",
            "商户订单号": "FC1",
            "微信订单号": "4200",
            "订单金额": "1.00",
        }
    )
    line = ",".join("`" + values[c] for c in BILL_COLUMNS)
    summary = ",".join(BILL_SUMMARY_COLUMNS)
    good = f"{header}\r\n{line}\r\n{summary}\r\n`1,`1.00,`0.00,`0.00,`0.01,`1.00,`0.00\r\n"
    assert parse_trade_bill(good.encode()) == [
        BillRow("payment", "FC1", "4200", 100, datetime(2024, 5, 1, 4, tzinfo=UTC))
    ]
    bad = good.replace("`1.00,`0.00\r\n", "`2.00,`0.00\r\n")
    with pytest.raises(ValueError, match="do not add up"):
        parse_trade_bill(bad.encode())
