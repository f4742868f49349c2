"""The settlement (对账) file: fixed-width records, modelled on UnionPay's INN…ZM flow file.

`fileTransReq.do` answers `fileContent` = Base64(zlib(ZIP)); the ZIP holds
`INN<yyMMdd>88ZM_<merId>`, GBK text, one record per line, fields in `FIELDS` order, each
padded to its width (numbers right-aligned with zeros, text left-aligned with spaces) and
separated by one space:

| field | width | meaning |
|---|---|---|
| txn_code | 3 | `S22` consume, `S30` refund |
| trace_no | 6 | system trace number |
| trace_time | 10 | `MMddHHmmss` (Asia/Shanghai) |
| txn_amt | 12 | amount in fen |
| query_id | 21 | UnionPay's transaction id |
| order_id | 32 | our orderId (the refund number for refunds) |
| orig_query_id | 21 | refunds: the payment's queryId |
| orig_order_id | 32 | refunds: the payment's orderId |
| mer_id | 15 | merchant |
| txn_time | 14 | `yyyyMMddHHmmss` our order time |
| fee | 13 | `D`/`C` + 12 digits: fee debited / returned |
| settle_amt | 13 | `+`/`-` + 12 digits: net amount settled |
"""

from __future__ import annotations

import base64
import binascii
import io
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date

from forecourt.integrations.unionpay.crypto import trace_moment
from forecourt.payment.providers import BillRow

FIELDS = (
    ("txn_code", 3),
    ("trace_no", 6),
    ("trace_time", 10),
    ("txn_amt", 12),
    ("query_id", 21),
    ("order_id", 32),
    ("orig_query_id", 21),
    ("orig_order_id", 32),
    ("mer_id", 15),
    ("txn_time", 14),
    ("fee", 13),
    ("settle_amt", 13),
)
NUMERIC = frozenset({"txn_amt"})
CONSUME = "S22"
REFUND = "S30"


@dataclass(frozen=True)
class Record:
    """One settled transaction."""

    txn_code: str
    trace_no: str
    trace_time: str
    txn_amt: int
    query_id: str
    order_id: str
    orig_query_id: str
    orig_order_id: str
    mer_id: str
    txn_time: str
    fee: int  # positive = fee debited, negative = fee returned
    settle_amt: int  # signed net


def _cell(name: str, width: int, record: Record) -> str:
    if name == "fee":
        return ("D" if record.fee >= 0 else "C") + f"{abs(record.fee):012d}"
    if name == "settle_amt":
        return ("+" if record.settle_amt >= 0 else "-") + f"{abs(record.settle_amt):012d}"
    value = getattr(record, name)
    text = f"{value:0{width}d}" if name in NUMERIC else str(value).ljust(width)
    if len(text) != width:
        raise ValueError(f"{name} does not fit {width} characters")
    return text


def file_name(mer_id: str, settle_date: date) -> str:
    """The flow file's name inside the ZIP."""
    return f"INN{settle_date:%y%m%d}88ZM_{mer_id}"


def encode_file(mer_id: str, settle_date: date, records: list[Record]) -> str:
    """The `fileContent` of a day: Base64 of the zlib-compressed ZIP."""
    lines = [" ".join(_cell(n, w, r) for n, w in FIELDS) for r in records]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        text = "".join(line + "\r\n" for line in lines)
        zf.writestr(file_name(mer_id, settle_date), text.encode("gbk"))
    return base64.b64encode(zlib.compress(archive.getvalue())).decode()


def _record(line: str) -> dict[str, str]:
    cells: dict[str, str] = {}
    pos = 0
    for name, width in FIELDS:
        cells[name] = line[pos : pos + width].strip()
        pos += width + 1
    return cells


def parse_file(file_content: str) -> list[BillRow]:
    """The consume and refund records of a `fileContent` as `BillRow`s."""
    try:
        archive = zlib.decompress(base64.b64decode(file_content, validate=True))
    except (binascii.Error, zlib.error) as exc:
        raise ValueError("fileContent is not Base64 zlib data") from exc
    rows: list[BillRow] = []
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        names = [n for n in zf.namelist() if "ZM_" in n]
        if not names:
            raise ValueError("no ZM flow file in the archive")
        text = zf.read(names[0]).decode("gbk")
    for line in text.splitlines():
        if not line.strip():
            continue
        cell = _record(line)
        moment = trace_moment(cell["trace_time"], cell["txn_time"])
        if cell["txn_code"] == CONSUME:
            rows.append(
                BillRow(
                    kind="payment",
                    out_trade_no=cell["order_id"],
                    transaction_id=cell["query_id"],
                    amount_fen=int(cell["txn_amt"]),
                    occurred_at=moment,
                )
            )
        elif cell["txn_code"] == REFUND:
            rows.append(
                BillRow(
                    kind="refund",
                    out_trade_no=cell["orig_order_id"],
                    transaction_id=cell["orig_query_id"],
                    amount_fen=int(cell["txn_amt"]),
                    occurred_at=moment,
                    out_refund_no=cell["order_id"],
                    refund_id=cell["query_id"],
                )
            )
    return rows
