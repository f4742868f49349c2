"""The sandbox's ledger: consumes and refunds of its one merchant, with UnionPay's rules.

Handlers take the verified request fields and return the answer's business fields, or raise
`RespError` with a UnionPay respCode (12 duplicate, 33 amount over limit, 34 not found,
35 original transaction missing or in the wrong state, 98 file missing).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime

from forecourt.integrations.unionpay import crypto, settlement
from forecourt.kit import clock

OK_MSG = "成功[0000000]"


class RespError(Exception):
    """A refusal with respCode and respMsg."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Txn:
    """One consume or refund as UnionPay keeps it."""

    txn_type: str  # 01 consume, 04 refund
    order_id: str
    txn_time: str
    amount_fen: int
    back_url: str
    created_at: datetime
    tn: str = ""  # app consumes only
    front_url: str = ""  # front (browser) consumes only
    pay_timeout: datetime | None = None
    orig: Txn | None = None  # a refund's consume
    reserved: str = ""
    query_id: str = ""
    trace_no: str = ""
    trace_time: str = ""
    done_at: datetime | None = None

    @property
    def done(self) -> bool:
        """Paid (consume) or refunded (refund)."""
        return self.done_at is not None

    def settle_date(self) -> date | None:
        """The business day (Asia/Shanghai) the transaction settles on."""
        return clock.local(self.done_at).date() if self.done_at else None

    def complete(self) -> None:
        """Mark the transaction done now, with UnionPay's ids."""
        now = clock.now()
        self.done_at = now
        self.query_id = (
            clock.local(now).strftime("%Y%m%d%H%M%S") + f"{secrets.randbelow(10**7):07d}"
        )
        self.trace_no = f"{secrets.randbelow(10**6):06d}"
        self.trace_time = clock.local(now).strftime("%m%d%H%M%S")


def _fee(fen: int) -> int:
    return (fen * 6 + 500) // 1000


class Ledger:
    """Every transaction by orderId."""

    def __init__(self, mer_id: str) -> None:
        self.mer_id = mer_id
        self.txns: dict[str, Txn] = {}

    def _new(self, f: dict[str, str], txn_type: str) -> Txn:
        if f["orderId"] in self.txns:
            raise RespError("12", "重复交易[orderId]")
        return Txn(
            txn_type=txn_type,
            order_id=f["orderId"],
            txn_time=f["txnTime"],
            amount_fen=int(f["txnAmt"]),
            back_url=f["backUrl"],
            created_at=clock.now(),
            reserved=f.get("reqReserved", ""),
        )

    def consume(self, f: dict[str, str]) -> dict[str, str]:
        """App consume: an open order and its `tn`."""
        txn = self._new(f, "01")
        if f.get("payTimeout"):
            txn.pay_timeout = crypto.parse_time(f["payTimeout"])
        txn.tn = f"{secrets.randbelow(10**21):021d}"
        self.txns[txn.order_id] = txn
        return {"tn": txn.tn}

    def front(self, f: dict[str, str]) -> Txn:
        """Front consume (frontTransReq): an open order. The browser submitting the same
        order again (reload, back) gets the same open order; anything else is 12."""
        same = self.txns.get(f["orderId"])
        if (
            same is not None
            and same.front_url
            and not same.done
            and (same.txn_time, str(same.amount_fen)) == (f["txnTime"], f["txnAmt"])
        ):
            return same
        txn = self._new(f, "01")
        if f.get("payTimeout"):
            txn.pay_timeout = crypto.parse_time(f["payTimeout"])
        txn.front_url = f["frontUrl"]
        self.txns[txn.order_id] = txn
        return txn

    def refund(self, f: dict[str, str]) -> Txn:
        """Refund against `origQryId`: accepted and done at once (notification follows)."""
        orig = next(
            (t for t in self.txns.values() if t.txn_type == "01" and t.query_id == f["origQryId"]),
            None,
        )
        if orig is None or not orig.done:
            raise RespError("35", "原交易不存在或状态不正确[origQryId]")
        txn = self._new(f, "04")
        refunded = sum(t.amount_fen for t in self.refunds_of(orig))
        if refunded + txn.amount_fen > orig.amount_fen:
            raise RespError("33", "交易金额超限[退货金额超过原交易可退金额]")
        txn.orig = orig
        txn.complete()
        self.txns[txn.order_id] = txn
        return txn

    def refunds_of(self, orig: Txn) -> list[Txn]:
        """The refunds made against a consume."""
        return [t for t in self.txns.values() if t.orig is orig]

    def query(self, f: dict[str, str]) -> dict[str, str]:
        """Status of orderId + txnTime; 34 until a consume is paid."""
        txn = self.txns.get(f["orderId"])
        if txn is None or txn.txn_time != f["txnTime"] or not txn.done:
            raise RespError("34", "查无此交易")
        return {
            "origRespCode": "00",
            "origRespMsg": OK_MSG,
            "queryId": txn.query_id,
            "traceNo": txn.trace_no,
            "traceTime": txn.trace_time,
            "txnAmt": str(txn.amount_fen),
            "settleAmt": str(txn.amount_fen),
            "settleCurrencyCode": "156",
            "settleDate": txn.trace_time[:4],
            "currencyCode": "156",
            "txnType": txn.txn_type,
            "txnSubType": "01" if txn.txn_type == "01" else "00",
            "orderId": txn.order_id,
            "txnTime": txn.txn_time,
            **({"origQryId": txn.orig.query_id} if txn.orig else {}),
        }

    def file(self, settle_mmdd: str) -> dict[str, str]:
        """The settlement file of the latest past day with that MMdd (98 for today on)."""
        today = clock.local(clock.now()).date()
        try:
            day = date(today.year, int(settle_mmdd[:2]), int(settle_mmdd[2:]))
        except ValueError:
            raise RespError("10", "报文格式错误[settleDate]") from None
        if day > today:
            day = day.replace(year=today.year - 1)
        if day >= today:
            raise RespError("98", "文件不存在")
        records = [self._record(t) for t in self.txns.values() if t.settle_date() == day]
        records.sort(key=lambda r: (r.trace_time, r.trace_no))
        name = f"{self.mer_id}_{day:%Y%m%d}.zip"
        content = settlement.encode_file(self.mer_id, day, records)
        return {"fileName": name, "fileContent": content, "settleDate": settle_mmdd}

    def _record(self, txn: Txn) -> settlement.Record:
        fee = _fee(txn.amount_fen)
        refund = txn.orig is not None
        return settlement.Record(
            txn_code=settlement.REFUND if refund else settlement.CONSUME,
            trace_no=txn.trace_no,
            trace_time=txn.trace_time,
            txn_amt=txn.amount_fen,
            query_id=txn.query_id,
            order_id=txn.order_id,
            orig_query_id=txn.orig.query_id if txn.orig else "",
            orig_order_id=txn.orig.order_id if txn.orig else "",
            mer_id=self.mer_id,
            txn_time=txn.txn_time,
            fee=-fee if refund else fee,
            settle_amt=(fee - txn.amount_fen) if refund else (txn.amount_fen - fee),
        )
