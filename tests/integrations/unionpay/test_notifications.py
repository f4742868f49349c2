"""backUrl notifications: delivery, acknowledgement, resends, tampering, untrusted certs."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlencode

import pytest

from forecourt.integrations.unionpay import crypto
from forecourt.integrations.unionpay.sandbox.delivery import RESEND_AFTER_SECONDS
from forecourt.integrations.unionpay.sandbox.pki import SIGNING_CN, issue, name, pem
from forecourt.kit import rsa
from forecourt.payment.providers import InvalidNotification, NotificationAck, ProviderNotification
from tests.integrations.unionpay.conftest import MER_ID, NOTIFY_URL, Rig

ORDER = "UP2024011500001"


async def test_payment_notification_is_verified_and_acknowledged(rig: Rig) -> None:
    query_id = await rig.paid(ORDER, 12345)
    txn = rig.sandbox.order(ORDER)
    assert txn is not None
    assert txn.done_at is not None
    [attempt] = rig.sandbox.deliveries
    assert (attempt.url, attempt.attempt, attempt.status, attempt.body, attempt.acked) == (
        NOTIFY_URL,
        1,
        200,
        "ok",
        True,
    )
    [note] = rig.receiver.parsed
    assert note == ProviderNotification(
        kind="payment",
        event_id=f"{query_id}-01",
        merchant_id=MER_ID,
        out_trade_no=ORDER,
        transaction_id=query_id,
        amount_fen=12345,
        succeeded=True,
        occurred_at=txn.done_at.replace(microsecond=0),
        raw=note.raw,
    )
    assert (note.raw["respCode"], note.raw["traceNo"]) == ("00", txn.trace_no)
    assert "signPubKeyCert" not in note.raw
    assert "signature" not in note.raw


async def test_refund_notification(rig: Rig) -> None:
    query_id = await rig.paid(ORDER)
    await rig.refund(ORDER, query_id, "RF2024011500001", 1000)
    await rig.sandbox.settle()
    refund_txn = rig.sandbox.order("RF2024011500001")
    assert refund_txn is not None
    assert refund_txn.done_at is not None
    _, note = rig.receiver.parsed
    assert note == ProviderNotification(
        kind="refund",
        event_id=f"{refund_txn.query_id}-04",
        merchant_id=MER_ID,
        out_trade_no=ORDER,
        transaction_id=query_id,
        amount_fen=1000,
        succeeded=True,
        occurred_at=refund_txn.done_at.replace(microsecond=0),
        out_refund_no="RF2024011500001",
        refund_id=refund_txn.query_id,
        raw=note.raw,
    )
    assert note.raw["reqReserved"] == ORDER


async def test_resent_until_http_200(rig: Rig) -> None:
    rig.receiver.fail_first = 2
    await rig.paid(ORDER)
    attempts = rig.sandbox.deliveries
    assert [(a.attempt, a.status, a.acked) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert len({a.event_id for a in attempts}) == 1
    assert len(rig.receiver.parsed) == 1


async def test_gives_up_after_five_resends(rig: Rig) -> None:
    rig.receiver.fail_first = 100
    await rig.paid(ORDER)
    assert len(rig.sandbox.deliveries) == 1 + len(RESEND_AFTER_SECONDS) == 6


async def test_broken_signature_is_rejected_by_the_adapter(rig: Rig) -> None:
    rig.sandbox.tamper_next("signature")
    await rig.paid(ORDER)
    assert rig.receiver.parsed == []
    assert rig.receiver.rejected == ["notification signature or certificate not trusted"] * 6


async def test_wrong_amount_is_validly_signed_and_reported_as_sent(rig: Rig) -> None:
    rig.sandbox.tamper_next("amount")
    await rig.paid(ORDER, 30000)
    [note] = rig.receiver.parsed
    assert note.amount_fen == 30001  # the payment service compares this with the order


async def test_notification_signed_under_a_foreign_certificate_is_rejected(rig: Rig) -> None:
    await rig.paid(ORDER)
    fields = dict(parse_qsl(rig.receiver.bodies[0].decode()))
    impostor = rsa.generate_test_key()
    cert = issue(name(SIGNING_CN), impostor.public_key(), name(SIGNING_CN), impostor, ca=True)
    fields["signPubKeyCert"] = pem(cert)
    fields["signature"] = crypto.sign(impostor, fields)
    with pytest.raises(InvalidNotification, match="not trusted"):
        rig.provider.parse_notification({}, urlencode(fields).encode())
    genuine = dict(parse_qsl(rig.receiver.bodies[0].decode()))
    assert rig.provider.parse_notification({}, urlencode(genuine).encode()).out_trade_no == ORDER


def test_parse_rejects_garbage_and_missing_fields(rig: Rig) -> None:
    parse = rig.provider.parse_notification
    with pytest.raises(InvalidNotification, match="not a UTF-8 form"):
        parse({}, b"\xff")
    with pytest.raises(InvalidNotification, match="repeated"):
        parse({}, b"orderId=1&orderId=2")
    fields = {"respCode": "00", "merId": MER_ID, "signPubKeyCert": rig.sandbox.pki.signing_pem}
    fields["signature"] = crypto.sign(rig.sandbox.pki.signing_key, fields)
    with pytest.raises(InvalidNotification, match="without orderId"):
        parse({}, urlencode(fields).encode())


def test_acknowledgements(rig: Rig) -> None:
    assert rig.provider.acknowledge(True) == NotificationAck(200, b"ok", "text/plain")
    assert rig.provider.acknowledge(False) == NotificationAck(500, b"fail", "text/plain")


async def test_aclose_cancels_pending_resends(rig: Rig) -> None:
    rig.sandbox._notifier.scale = 1.0  # the one-minute wait would outlive the test
    rig.receiver.fail_first = 1
    await rig.open(ORDER)
    await rig.sandbox.complete(ORDER)
    async with asyncio.timeout(5):
        while not rig.sandbox.deliveries:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await rig.sandbox.aclose()
    assert [a.acked for a in rig.sandbox.deliveries] == [False]
    assert rig.sandbox._notifier.pending == 0
