"""The daily trade bill: a ZIP of GBK CSV files, parsed into exact `BillRow`s."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, timedelta

import pytest

from forecourt.integrations.alipay.bill import DETAIL_HEADER, parse_bill
from forecourt.kit import clock
from forecourt.payment.providers import BillRow, ProviderError, RefundRequest
from tests.integrations.alipay.conftest import NOTIFY_URL, Rig


def _to_local_noon() -> date:
    """Move the clock to 12:00 today in Asia/Shanghai; today's date there."""
    now = clock.local(clock.now())
    clock.travel(now.replace(hour=12, minute=0, second=0, microsecond=0) - now)
    return now.date()


def _paid_at(rig: Rig, out_trade_no: str) -> datetime:
    trade = rig.sandbox.trade(out_trade_no)
    assert trade is not None
    assert trade.paid_at is not None
    return trade.paid_at.replace(microsecond=0)


async def test_bill_lists_the_days_payments_and_refunds(rig: Rig) -> None:
    day = _to_local_noon()
    t1 = await rig.paid("T1", 30000)
    clock.travel(timedelta(minutes=5))
    t2 = await rig.paid("T2", 5000)
    await rig.open("T3", 700)  # never paid: not in the bill
    clock.travel(timedelta(minutes=5))
    await rig.provider.refund(RefundRequest("T1", t1, "R1", 1000, 30000, "少加", NOTIFY_URL))
    refunded_at = clock.now().replace(microsecond=0)
    clock.travel(timedelta(days=1))
    await rig.paid("T4", 100)  # the next day: not in this bill
    rows = await rig.provider.bill(day)
    assert rows == [
        BillRow("payment", "T1", t1, 30000, _paid_at(rig, "T1")),
        BillRow("refund", "T1", t1, 1000, refunded_at, out_refund_no="R1"),
        BillRow("payment", "T2", t2, 5000, _paid_at(rig, "T2")),
    ]


async def test_bill_file_is_alipay_shaped(rig: Rig) -> None:
    day = _to_local_noon()
    trade_no = await rig.paid("T1", 30000)
    clock.travel(timedelta(days=1))
    url = await rig.provider.client.bill_download_url(day)
    assert url.startswith("http://alipay-sandbox/downloadBillFile.resource?bizType=trade&")
    archive = await rig.provider.client.download(url)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        names = sorted(zf.namelist())
        stamp = f"{day:%Y%m%d}"
        assert names == [
            f"2088102177846881_{stamp}_业务明细(汇总).csv",
            f"2088102177846881_{stamp}_业务明细.csv",
        ]
        lines = zf.read(names[1]).decode("gbk").split("\r\n")
        summary = zf.read(names[0]).decode("gbk").split("\r\n")
    assert summary[3] == ",合计,1,0,300.00,300.00,-1.80,298.20"
    assert lines[0] == "#支付宝业务明细查询"
    assert lines[4] == ",".join(DETAIL_HEADER)
    cells = lines[5].split(",")
    assert cells[:3] == [f"{trade_no}\t", "T1\t", "交易"]
    assert (cells[11], cells[12], cells[22]) == ("300.00", "300.00", "-1.80")
    assert lines[7] == "#交易合计：1笔，退款合计：0笔"
    assert parse_bill(archive) == [BillRow("payment", "T1", trade_no, 30000, _paid_at(rig, "T1"))]


async def test_todays_bill_does_not_exist_yet(rig: Rig) -> None:
    with pytest.raises(ProviderError) as err:
        await rig.provider.bill(clock.local(clock.now()).date())
    assert err.value.code == "isp.bill_not_exist"


async def test_download_url_expires(rig: Rig) -> None:
    url = await rig.provider.client.bill_download_url(date(2024, 1, 15))
    clock.travel(timedelta(seconds=31))
    with pytest.raises(ProviderError) as err:
        await rig.provider.client.download(url)
    assert err.value.code == "HTTP_404"


async def test_unreadable_bill_is_a_provider_error(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def download(url: str) -> bytes:
        return b"not a zip"

    monkeypatch.setattr(rig.provider.client, "download", download)
    with pytest.raises(ProviderError) as err:
        await rig.provider.bill(date(2024, 1, 15))
    assert err.value.code == "INVALID_BILL"
