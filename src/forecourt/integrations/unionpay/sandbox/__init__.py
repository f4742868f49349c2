"""A wire-exact emulator of the UnionPay online gateway (5.1.0, signMethod 01), as ASGI app.

In-process (tests, demo) the real `UnionPayClient` talks to `sandbox.app` through
`httpx.ASGITransport`; standalone it runs with
`uvicorn --factory forecourt.integrations.unionpay.sandbox:create_app`.

It generates its own test-only CA (root + middle) and signing certificate, verifies the
merchant's signature by certId (respCode 11), names a missing field (13) or a malformed one
(10), signs every answer and sends `signPubKeyCert` with it, and POSTs notifications to
backUrl in the background, resending until the receiver answers HTTP 200.

frontTransReq (手机网页支付) is the payer's browser submitting our signed form: it answers
with the cashier page (or an error page with respCode/respMsg), and after paying sends the
browser on to frontUrl with an auto-submitted form of the signed front notification.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable
from html import escape
from typing import Literal
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from forecourt.integrations.unionpay import crypto
from forecourt.integrations.unionpay.client import (
    APP_PATH,
    BACK_PATH,
    FILE_PATH,
    FRONT_PATH,
    QUERY_PATH,
)
from forecourt.integrations.unionpay.sandbox import cashier
from forecourt.integrations.unionpay.sandbox.delivery import DeliveryAttempt, notifier
from forecourt.integrations.unionpay.sandbox.ledger import OK_MSG, Ledger, RespError, Txn
from forecourt.integrations.unionpay.sandbox.pki import make_sandbox_pki, sandbox_cert_id
from forecourt.kit import clock, rsa

__all__ = ["DeliveryAttempt", "Txn", "UnionPaySandbox", "create_app"]

MEDIA = "text/html;charset=UTF-8"
COMMON = ("version", "encoding", "signMethod", "txnType", "accessType", "merId")
ENDPOINTS: dict[str, tuple[str, str]] = {  # path: (txnType, required fields)
    APP_PATH: ("01", "txnSubType bizType channelType orderId txnTime txnAmt currencyCode backUrl"),
    FRONT_PATH: (
        "01",
        "txnSubType bizType channelType orderId txnTime txnAmt currencyCode frontUrl backUrl",
    ),
    QUERY_PATH: ("00", "txnSubType bizType orderId txnTime"),
    BACK_PATH: ("04", "txnSubType bizType channelType orderId txnTime txnAmt origQryId backUrl"),
    FILE_PATH: ("76", "txnSubType bizType txnTime settleDate fileType"),
}
FORMATS = {
    "version": re.compile(r"^5\.1\.0$"),
    "encoding": re.compile(r"^(?i:utf-8)$"),
    "signMethod": re.compile(r"^01$"),
    "orderId": re.compile(r"^[0-9A-Za-z]{8,32}$"),
    "txnTime": re.compile(r"^\d{14}$"),
    "txnAmt": re.compile(r"^[1-9]\d{0,11}$"),
    "currencyCode": re.compile(r"^156$"),
    "backUrl": re.compile(r"^https?://\S+$"),
    "frontUrl": re.compile(r"^https?://[^\s/?#]+\S*$"),
    "channelType": re.compile(r"^0[78]$"),
    "settleDate": re.compile(r"^\d{4}$"),
    "fileType": re.compile(r"^00$"),
}
CONSUME = {"txnSubType": "01", "bizType": "000201"}
FIXED = {APP_PATH: CONSUME, FRONT_PATH: CONSUME}
ECHO = ("version", "encoding", "signMethod", "txnType", "txnSubType", "bizType", "accessType",
        "merId", "orderId", "txnTime", "reqReserved")  # fmt: skip
Tamper = Literal["amount", "signature"]


class UnionPaySandbox:
    """State of the emulated UnionPay: one merchant, its transactions, deliveries and faults."""

    def __init__(
        self,
        *,
        mer_id: str,
        cert_id: str,
        merchant_public_key: rsa_keys.RSAPublicKey,
        resend_scale: float = 1.0,
    ) -> None:
        self.mer_id = mer_id
        self.cert_id = cert_id
        self._merchant_key = merchant_public_key
        self.pki = make_sandbox_pki()  # test-only CA and signing certificate
        self.ledger = Ledger(mer_id)
        self.deliver_transport: httpx.AsyncBaseTransport | None = None
        self._notifier = notifier(scale=resend_scale)
        self._tamper: deque[Tamper] = deque()
        self._faults: deque[str] = deque()
        self.calls: deque[str] = deque(maxlen=1000)
        routes = [
            Route(path, self._endpoint(path), methods=["POST"])
            for path in ENDPOINTS
            if path != FRONT_PATH
        ]
        routes.append(Route(FRONT_PATH, self._front, methods=["POST"]))
        self.app = Starlette(
            routes=[
                *routes,
                Route("/sandbox/cashier", self._cashier, methods=["GET"]),
                Route("/sandbox/pay", self._pay, methods=["POST"]),
                Route("/sandbox/keys", self._keys, methods=["GET"]),
            ]
        )

    # -- controls for tests and the demo ---------------------------------------------------

    @property
    def root_bundle_pem(self) -> str:
        """Root + middle certificates (PEM): the value for `unionpay_root_cert`."""
        return self.pki.bundle_pem

    @property
    def deliveries(self) -> list[DeliveryAttempt]:
        """Every notification POST so far, oldest first."""
        return self._notifier.attempts

    def order(self, order_id: str) -> Txn | None:
        """The sandbox's record of a consume or refund."""
        return self.ledger.txns.get(order_id)

    def _payable(self, txn: Txn) -> bool:
        expired = txn.pay_timeout is not None and clock.now() >= txn.pay_timeout
        return txn.txn_type == "01" and not txn.done and not expired

    async def complete(self, out_trade_no: str) -> None:
        """Act as the payer: pay the open order and notify backUrl (ValueError if not open)."""
        txn = self.ledger.txns.get(out_trade_no)
        if txn is None or not self._payable(txn):
            raise ValueError(f"order {out_trade_no} cannot be paid")
        txn.complete()
        self._notify(txn)

    def tamper_next(self, mode: Tamper) -> None:
        """Spoil the next notification: a wrong amount (validly signed) or a broken signature."""
        self._tamper.append(mode)

    def fail_next(self, resp_code: str = "06", *, times: int = 1) -> None:
        """Answer the next `times` gateway calls with this respCode (06 = system busy)."""
        self._faults.extend([resp_code] * times)

    async def settle(self) -> None:
        """Wait until every notification has been acknowledged or abandoned."""
        await self._notifier.settle()

    async def aclose(self) -> None:
        """Cancel pending notification deliveries."""
        await self._notifier.aclose()

    # -- signing and notifications ---------------------------------------------------------

    def _signed(self, fields: dict[str, str]) -> dict[str, str]:
        out = {**fields, "signPubKeyCert": self.pki.signing_pem}
        out["signature"] = crypto.sign(self.pki.signing_key, out)
        return out

    def _notice(self, txn: Txn) -> dict[str, str]:
        """The unsigned notification fields of a done transaction (backUrl and frontUrl)."""
        fields = {
            "version": crypto.VERSION,
            "encoding": "UTF-8",
            "signMethod": crypto.SIGN_METHOD,
            "txnType": txn.txn_type,
            "txnSubType": "01" if txn.txn_type == "01" else "00",
            "bizType": "000201",
            "accessType": "0",
            "merId": self.mer_id,
            "orderId": txn.order_id,
            "txnTime": txn.txn_time,
            "txnAmt": str(txn.amount_fen),
            "currencyCode": "156",
            "queryId": txn.query_id,
            "traceNo": txn.trace_no,
            "traceTime": txn.trace_time,
            "settleAmt": str(txn.amount_fen),
            "settleCurrencyCode": "156",
            "settleDate": txn.trace_time[:4],
            "respCode": "00",
            "respMsg": OK_MSG,
        }
        if txn.orig is not None:
            fields["origQryId"] = txn.orig.query_id
        else:
            fields.update(accNo="6216***********0018", payCardType="01", payType="0001")
        if txn.reserved:
            fields["reqReserved"] = txn.reserved
        return fields

    def _notify(self, txn: Txn) -> None:
        fields = self._notice(txn)
        mode = self._tamper.popleft() if self._tamper else None
        if mode == "amount":
            fields["txnAmt"] = fields["settleAmt"] = str(txn.amount_fen + 1)
        signed = self._signed(fields)
        if mode == "signature":
            sig = signed["signature"]
            signed["signature"] = ("B" if sig[0] == "A" else "A") + sig[1:]
        self._notifier.send(txn.back_url, signed, transport=self.deliver_transport)

    # -- the gateway -----------------------------------------------------------------------

    def _answer(self, request_fields: dict[str, str], result: dict[str, str]) -> Response:
        echo = {k: request_fields[k] for k in ECHO if request_fields.get(k)}
        body = urlencode(self._signed({**echo, **result}))
        return Response(body, media_type=MEDIA)

    def _refuse(self, f: dict[str, str], code: str, message: str) -> Response:
        return self._answer(f, {"respCode": code, "respMsg": message})

    def _check(self, path: str, f: dict[str, str]) -> None:
        if not f.get("signature") or not f.get("certId"):
            raise RespError("13", "报文交易要素缺失[signature/certId]")
        if f["certId"] != self.cert_id or f.get("merId") != self.mer_id:
            raise RespError("11", "验证签名失败[certId与merId不匹配]")
        if not crypto.verify(self._merchant_key, f):
            raise RespError("11", "验证签名失败")
        txn_type, required = ENDPOINTS[path]
        for name in (*COMMON, *required.split()):
            if not f.get(name):
                raise RespError("13", f"报文交易要素缺失[{name}]")
        if f["txnType"] != txn_type:
            raise RespError("10", "报文格式错误[txnType]")
        for name, value in FIXED.get(path, {}).items():
            if f[name] != value:
                raise RespError("10", f"报文格式错误[{name}]")
        for name, pattern in FORMATS.items():
            if name in f and not pattern.match(f[name]):
                raise RespError("10", f"报文格式错误[{name}]")
        try:
            crypto.parse_time(f["txnTime"])
            if f.get("payTimeout"):
                crypto.parse_time(f["payTimeout"])
        except ValueError:
            raise RespError("10", "报文格式错误[txnTime/payTimeout]") from None

    def _endpoint(self, path: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await self._gateway(path, request)

        return endpoint

    async def _gateway(self, path: str, request: Request) -> Response:
        body = (await request.body()).decode("utf-8", errors="replace")
        f = dict(parse_qsl(body, keep_blank_values=True))
        self.calls.append(path)
        try:
            self._check(path, f)
            if self._faults:
                raise RespError(self._faults.popleft(), "系统繁忙，请稍后再试（沙箱注入）")
            if path == APP_PATH:
                result = self.ledger.consume(f)
            elif path == QUERY_PATH:
                result = self.ledger.query(f)
            elif path == BACK_PATH:
                txn = self.ledger.refund(f)
                self._notify(txn)
                result = {"origQryId": txn.orig.query_id if txn.orig else ""}
            else:
                result = self.ledger.file(f["settleDate"])
        except RespError as exc:
            return self._refuse(f, exc.code, exc.message)
        return self._answer(f, {"respCode": "00", "respMsg": OK_MSG, **result})

    async def _front(self, request: Request) -> Response:
        """frontTransReq: the browser's form; the cashier page, or an error page."""
        body = (await request.body()).decode("utf-8", errors="replace")
        f = dict(parse_qsl(body, keep_blank_values=True))
        self.calls.append(FRONT_PATH)
        try:
            self._check(FRONT_PATH, f)
            if self._faults:
                raise RespError(self._faults.popleft(), "系统繁忙，请稍后再试（沙箱注入）")
            txn = self.ledger.front(f)
        except RespError as exc:
            return HTMLResponse(cashier.error(exc.code, exc.message), status_code=400)
        root = request.scope.get("root_path", "")
        return HTMLResponse(cashier.cashier(txn, root, payable=self._payable(txn)))

    def _front_return(self, txn: Txn) -> Response | None:
        """The page that takes the browser to frontUrl with the signed front notification."""
        target = cashier.safe_url(txn.front_url)
        if target is None:
            return None
        # Browsers submit form values with CR LF line ends: the certificate is sent that way.
        cert = self.pki.signing_pem.replace("\r\n", "\n").replace("\n", "\r\n")
        fields = {**self._notice(txn), "signPubKeyCert": cert}
        fields["signature"] = crypto.sign(self.pki.signing_key, fields)
        return HTMLResponse(cashier.auto_submit(target, fields))

    # -- sandbox pages ---------------------------------------------------------------------

    async def _cashier(self, request: Request) -> Response:
        txn = self.ledger.txns.get(request.query_params.get("out_trade_no", ""))
        if txn is None or txn.txn_type != "01":
            return HTMLResponse(cashier.page("not found", "<p>订单不存在 / no such order</p>"), 404)
        root = request.scope.get("root_path", "")
        return HTMLResponse(cashier.cashier(txn, root, payable=self._payable(txn)))

    async def _pay(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
        try:
            await self.complete(form.get("out_trade_no", ""))
        except ValueError as exc:
            body = f"<p>{escape(str(exc))}</p>"
            return HTMLResponse(cashier.page("refused", body), status_code=409)
        txn = self.ledger.txns[form["out_trade_no"]]
        if txn.front_url and (back := self._front_return(txn)) is not None:
            return back
        return HTMLResponse(cashier.page("paid", "<p>支付成功 / paid (sandbox)</p>"))

    async def _keys(self, request: Request) -> Response:
        body = {"root_cert": self.root_bundle_pem, "mer_id": self.mer_id, "cert_id": self.cert_id}
        return Response(orjson.dumps(body), media_type="application/json")


def create_app() -> Starlette:
    """Standalone sandbox for FORECOURT_UNIONPAY_MER_ID; its CA is shown at /sandbox/keys."""
    from forecourt.config import Settings

    settings = Settings()
    given = settings.unionpay_private_key
    key = rsa.load_private_key(given.get_secret_value()) if given else rsa.generate_test_key()
    cert_id = (
        settings.unionpay_cert_id if given and settings.unionpay_cert_id else sandbox_cert_id()
    )
    sandbox = UnionPaySandbox(
        mer_id=settings.unionpay_mer_id,
        cert_id=cert_id,
        merchant_public_key=key.public_key(),
        resend_scale=settings.sandbox_resend_scale,
    )
    if not given:
        pem = rsa.private_pem(key)  # test-only merchant key, published for the demo

        async def test_only_merchant_key(request: Request) -> Response:
            return Response(pem, media_type="text/plain")

        sandbox.app.add_route("/sandbox/test-only-merchant-key", test_only_merchant_key)
    return sandbox.app
