"""trade_status_sync notifications: delivery, acknowledgement, resends, tampering."""

from __future__ import annotations

import asyncio
import itertools
from urllib.parse import parse_qsl, urlencode

import pytest

from forecourt.integrations.alipay import crypto
from forecourt.integrations.alipay.sandbox.delivery import RESEND_AFTER_SECONDS
from forecourt.payment.providers import (
    InvalidNotification,
    NotificationAck,
    ProviderNotification,
    RefundRequest,
)
from tests.integrations.alipay.conftest import APP_ID, BUYER_ID, NOTIFY_URL, RESEND_SCALE, Rig


async def test_payment_notification_is_verified_and_acknowledged(rig: Rig) -> None:
    trade_no = await rig.paid("T1", 12345)
    trade = rig.sandbox.trade("T1")
    assert trade is not None
    assert trade.paid_at is not None
    [attempt] = rig.sandbox.deliveries
    assert (attempt.url, attempt.attempt, attempt.status, attempt.body, attempt.acked) == (
        NOTIFY_URL,
        1,
        200,
        "success",
        True,
    )
    [note] = rig.receiver.parsed
    assert note == ProviderNotification(
        kind="payment",
        event_id=attempt.event_id,
        merchant_id=APP_ID,
        out_trade_no="T1",
        transaction_id=trade_no,
        amount_fen=12345,
        succeeded=True,
        occurred_at=trade.paid_at.replace(microsecond=0),
        raw=note.raw,
    )
    assert note.raw["trade_status"] == "TRADE_SUCCESS"
    assert note.raw["buyer_id"] == BUYER_ID
    assert "sign" not in note.raw
    fields = dict(parse_qsl(rig.receiver.bodies[0].decode()))
    assert fields["notify_type"] == "trade_status_sync"
    assert (fields["sign_type"], fields["charset"], fields["version"]) == ("RSA2", "utf-8", "1.0")


async def test_refund_sends_a_trade_status_sync_with_refund_fields(rig: Rig) -> None:
    trade_no = await rig.paid("T1", 30000)
    for out_refund_no, fen in (("R1", 1000), ("R2", 29000)):
        await rig.provider.refund(
            RefundRequest("T1", trade_no, out_refund_no, fen, 30000, "退款", NOTIFY_URL)
        )
    await rig.sandbox.settle()
    payment, first, second = rig.receiver.parsed
    assert payment.kind == "payment"
    assert [(n.kind, n.out_refund_no, n.amount_fen, n.transaction_id) for n in (first, second)] == [
        ("refund", "R1", 1000, trade_no),
        ("refund", "R2", 30000, trade_no),  # refund_fee is Alipay's cumulative total
    ]
    assert (first.raw["trade_status"], second.raw["trade_status"]) == (
        "TRADE_SUCCESS",
        "TRADE_CLOSED",
    )
    assert first.occurred_at is not None
    assert first.succeeded


async def test_resent_until_success(rig: Rig) -> None:
    rig.receiver.fail_first = 3
    await rig.paid("T1")
    attempts = rig.sandbox.deliveries
    assert [(a.attempt, a.body, a.acked) for a in attempts] == [
        (1, "fail", False),
        (2, "fail", False),
        (3, "fail", False),
        (4, "success", True),
    ]
    assert len({a.event_id for a in attempts}) == 1  # a resend keeps its notify_id
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(attempts)]
    for gap, scheduled in zip(gaps, RESEND_AFTER_SECONDS, strict=False):
        assert gap >= scheduled * RESEND_SCALE * 0.9
    assert len(rig.receiver.parsed) == 1


async def test_gives_up_after_the_schedule(rig: Rig) -> None:
    rig.receiver.fail_first = 100
    await rig.paid("T1")
    assert len(rig.sandbox.deliveries) == 1 + len(RESEND_AFTER_SECONDS) == 8


async def test_broken_signature_is_rejected_by_the_adapter(rig: Rig) -> None:
    rig.sandbox.tamper_next("signature")
    await rig.open("T1")
    await rig.sandbox.complete("T1")
    await rig.sandbox.settle()
    assert rig.receiver.parsed == []
    assert rig.receiver.rejected == ["notification signature does not verify"] * 8


async def test_wrong_amount_is_validly_signed_and_reported_as_sent(rig: Rig) -> None:
    rig.sandbox.tamper_next("amount")
    await rig.paid("T1", 30000)
    [note] = rig.receiver.parsed
    assert note.amount_fen == 30001  # the payment service compares this with the order


def test_parse_rejects_garbage_and_missing_fields(rig: Rig) -> None:
    parse = rig.provider.parse_notification
    with pytest.raises(InvalidNotification, match="not a UTF-8 form"):
        parse({}, b"\xff\xfe")
    with pytest.raises(InvalidNotification, match="signature does not verify"):
        parse({}, b"notify_id=1&sign=abc")
    with pytest.raises(InvalidNotification, match="repeated"):
        parse({}, b"notify_id=1&notify_id=2&sign=abc")
    fields = {"notify_type": "trade_status_sync", "app_id": APP_ID, "sign_type": "RSA2"}
    fields["sign"] = crypto.sign_notification(rig.sandbox._key, fields)
    with pytest.raises(InvalidNotification, match="without notify_id"):
        parse({}, urlencode(fields).encode())


def test_acknowledgements(rig: Rig) -> None:
    assert rig.provider.acknowledge(True) == NotificationAck(200, b"success", "text/plain")
    assert rig.provider.acknowledge(False) == NotificationAck(200, b"fail", "text/plain")


async def test_aclose_cancels_pending_resends(rig: Rig) -> None:
    rig.sandbox._notifier.scale = 1.0  # the 4-minute wait would outlive the test
    rig.receiver.fail_first = 1
    await rig.open("T1")
    await rig.sandbox.complete("T1")
    async with asyncio.timeout(5):
        while not rig.sandbox.deliveries:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert rig.sandbox._notifier.pending == 1
    await rig.sandbox.aclose()
    assert [a.acked for a in rig.sandbox.deliveries] == [False]
    assert rig.sandbox._notifier.pending == 0
