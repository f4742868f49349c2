"""The settlement file: Base64(zlib(ZIP)) of fixed-width records, parsed into `BillRow`s."""

from __future__ import annotations

import base64
import io
import zipfile
import zlib
from datetime import date, datetime, timedelta

import pytest

from forecourt.kit import clock
from forecourt.payment.providers import BillRow, ProviderError
from tests.integrations.unionpay.conftest import MER_ID, Rig


def _to_local_noon() -> date:
    """Move the clock to 12:00 today in Asia/Shanghai; today's date there."""
    now = clock.local(clock.now())
    clock.travel(now.replace(hour=12, minute=0, second=0, microsecond=0) - now)
    return now.date()


def _done_at(rig: Rig, order_id: str) -> datetime:
    txn = rig.sandbox.order(order_id)
    assert txn is not None
    assert txn.done_at is not None
    return txn.done_at.replace(microsecond=0)


def _query_id(rig: Rig, order_id: str) -> str:
    txn = rig.sandbox.order(order_id)
    assert txn is not None
    return txn.query_id


async def test_settlement_lists_the_days_payments_and_refunds(rig: Rig) -> None:
    day = _to_local_noon()
    q1 = await rig.paid("UP2024011500001", 30000)
    clock.travel(timedelta(minutes=5))
    q2 = await rig.paid("UP2024011500002", 5000)
    await rig.open("UP2024011500003", 700)  # never paid
    clock.travel(timedelta(minutes=5))
    await rig.refund("UP2024011500001", q1, "RF2024011500001", 1000)
    clock.travel(timedelta(days=1))
    await rig.paid("UP2024011600001", 100)  # the next day
    rows = await rig.provider.bill(day)
    assert rows == [
        BillRow("payment", "UP2024011500001", q1, 30000, _done_at(rig, "UP2024011500001")),
        BillRow("payment", "UP2024011500002", q2, 5000, _done_at(rig, "UP2024011500002")),
        BillRow(
            "refund",
            "UP2024011500001",
            q1,
            1000,
            _done_at(rig, "RF2024011500001"),
            out_refund_no="RF2024011500001",
            refund_id=_query_id(rig, "RF2024011500001"),
        ),
    ]


async def test_file_content_layout(rig: Rig) -> None:
    day = _to_local_noon()
    query_id = await rig.paid("UP2024011500001", 30000)
    txn = rig.sandbox.order("UP2024011500001")
    assert txn is not None
    clock.travel(timedelta(days=1))
    answer = await rig.provider.client.settlement_file(day)
    assert (answer["fileName"], answer["settleDate"]) == (
        f"{MER_ID}_{day:%Y%m%d}.zip",
        f"{day:%m%d}",
    )
    archive = zlib.decompress(base64.b64decode(answer["fileContent"]))
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert zf.namelist() == [f"INN{day:%y%m%d}88ZM_{MER_ID}"]
        [line] = zf.read(zf.namelist()[0]).decode("gbk").splitlines()
    expected = " ".join(
        [
            "S22",
            txn.trace_no,
            txn.trace_time,
            "000000030000",
            query_id,
            "UP2024011500001".ljust(32),
            " " * 21,
            " " * 32,
            MER_ID,
            txn.txn_time,
            "D000000000180",
            "+000000029820",
        ]
    )
    assert line == expected


async def test_todays_file_does_not_exist_yet(rig: Rig) -> None:
    with pytest.raises(ProviderError) as err:
        await rig.provider.bill(clock.local(clock.now()).date())
    assert (err.value.code, err.value.message) == ("98", "文件不存在")


async def test_a_quiet_day_has_an_empty_file(rig: Rig) -> None:
    day = clock.local(clock.now()).date() - timedelta(days=3)
    assert await rig.provider.bill(day) == []
