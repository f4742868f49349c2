"""Exports: CSV with a BOM and xlsx parse back to the same rows; masked phones only."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

import httpx
from openpyxl import load_workbook

from forecourt.backoffice.exports import ORDER_HEADER, RECON_HEADER, SHIFT_HEADER
from forecourt.payment.models import Reconciliation
from tests.backoffice.conftest import Office, paid_order

API = "/api/v1/admin"


def _csv_rows(resp: httpx.Response) -> list[list[str]]:
    assert resp.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))


def _xlsx_rows(resp: httpx.Response) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(resp.content)).active
    assert sheet is not None
    return [["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)]


async def _both(
    office: Office, path: str, headers: dict[str, str], **query: Any
) -> list[list[str]]:
    """Fetch as CSV and as xlsx; both must hold the same rows."""
    got = []
    for fmt, media in (("csv", "text/csv"), ("xlsx", "application/vnd.openxmlformats")):
        resp = await office.http.get(path, params={"format": fmt, **query}, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith(media)
        assert resp.headers["content-disposition"].startswith("attachment; filename=")
        assert f".{fmt}" in resp.headers["content-disposition"]
        got.append(_csv_rows(resp) if fmt == "csv" else _xlsx_rows(resp))
    assert got[0] == got[1]
    return got[0]


async def test_orders_export(office: Office) -> None:
    ids = [
        await paid_order(office.runtime, station_id=office.a, member_id=office.member_id),
        await paid_order(
            office.runtime, station_id=office.a, member_id=office.member_id, provider="alipay"
        ),
    ]
    await paid_order(office.runtime, station_id=office.b, member_id=office.member_id)
    rows = await _both(office, f"{API}/stations/{office.a}/orders/export", office.attendant_a)
    assert rows[0] == list(ORDER_HEADER)
    assert [r[0] for r in rows[1:]] == ids[::-1]
    masked = f"{office.phone[:3]}****{office.phone[-4:]}"
    first = rows[2]
    assert first[2:4] == ["completed", "postpay"]
    assert first[6:13] == ["776", "30000", "23280", "0", "23280", "23280", "0"]
    assert (first[13], first[15]) == ("wechatpay", masked)
    text = "\n".join(",".join(r) for r in rows)
    assert office.phone not in text
    filtered = await _both(
        office, f"{API}/stations/{office.a}/orders/export", office.hq, status="refunded"
    )
    assert filtered == [list(ORDER_HEADER)]


async def test_shifts_export(office: Office) -> None:
    opened = await office.http.post(f"{API}/stations/{office.a}/shifts", headers=office.manager_a)
    closed = await office.http.post(
        f"{API}/shifts/{opened.json()['id']}/close",
        json={"cash_counted_fen": 150, "note": "正常"},
        headers=office.manager_a,
    )
    assert closed.status_code == 200, closed.text
    await office.http.post(f"{API}/stations/{office.a}/shifts", headers=office.attendant_a)
    rows = await _both(office, f"{API}/stations/{office.a}/shifts/export", office.manager_a)
    assert rows[0] == list(SHIFT_HEADER)
    assert [r[1] for r in rows[1:]] == ["open", "closed"]
    assert rows[2][6:] == ["0", "0", "0", "0", "150", "150", "正常"]
    assert rows[1][6:] == ["", "", "", "", "", "", ""]


async def test_reconciliation_export(office: Office) -> None:
    items = [
        {
            "problem": "missing_ours",
            "kind": "payment",
            "number": "P1",
            "bill_fen": 500,
            "our_fen": None,
            "transaction_id": "wx1",
        },
        {
            "problem": "amount_mismatch",
            "kind": "refund",
            "number": "R2",
            "bill_fen": 100,
            "our_fen": 90,
            "transaction_id": None,
        },
    ]
    async with office.runtime.db.unit_of_work() as session:
        for provider, day, found in (
            ("wechatpay", date(2026, 11, 20), items),
            ("alipay", date(2026, 11, 20), []),
            ("wechatpay", date(2026, 11, 19), []),
        ):
            session.add(
                Reconciliation(
                    provider=provider,
                    bill_date=day,
                    status="discrepancies" if found else "balanced",
                    bill_rows=3,
                    matched=2 if found else 3,
                    bill_total_fen=1_000,
                    our_total_fen=900 if found else 1_000,
                    items=found,
                )
            )
    path = f"{API}/reconciliations/export"
    rows = await _both(office, path, office.hq, provider="wechatpay", date="2026-11-20")
    head = ["wechatpay", "2026-11-20", "discrepancies", "3", "2", "1000", "900"]
    assert rows == [
        list(RECON_HEADER),
        [*head, "missing_ours", "payment", "P1", "500", "", "wx1"],
        [*head, "amount_mismatch", "refund", "R2", "100", "90", ""],
    ]
    every = await _both(office, path, office.hq)
    assert [(r[0], r[1], r[7]) for r in every[1:]] == [
        ("alipay", "2026-11-20", ""),
        ("wechatpay", "2026-11-20", "missing_ours"),
        ("wechatpay", "2026-11-20", "amount_mismatch"),
        ("wechatpay", "2026-11-19", ""),
    ]
    manager = await office.http.get(path, headers=office.manager_a)
    assert manager.status_code == 403


async def test_bad_format_names_the_field(office: Office) -> None:
    for path, headers in (
        (f"{API}/stations/{office.a}/orders/export", office.attendant_a),
        (f"{API}/stations/{office.a}/shifts/export", office.attendant_a),
        (f"{API}/reconciliations/export", office.hq),
    ):
        resp = await office.http.get(path, params={"format": "pdf"}, headers=headers)
        assert resp.status_code == 422, resp.text
        assert [e["field"] for e in resp.json()["errors"]] == ["query.format"]
    bad_date = await office.http.get(
        f"{API}/reconciliations/export", params={"date": "yesterday"}, headers=office.hq
    )
    assert [e["field"] for e in bad_date.json()["errors"]] == ["query.date"]
