"""UnionPay online gateway (全渠道) client, version 5.1.0, signMethod 01.

Every call is a signed `application/x-www-form-urlencoded` POST; the answer is a form too.
An answer is trusted only when its `signPubKeyCert` chains to the configured root and its
`signature` verifies; `respCode` other than 00 becomes a `ProviderError` named by the code.

Front (browser) transactions make no call: the client signs the fields and the payer's
browser auto-submits them as a form to `{front_gateway}/gateway/api/frontTransReq.do`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

from forecourt.integrations.unionpay import crypto
from forecourt.payment.providers import ProviderError

log = logging.getLogger(__name__)

PRODUCTION_GATEWAY = "https://gateway.95516.com"
APP_PATH = "/gateway/api/appTransReq.do"
FRONT_PATH = "/gateway/api/frontTransReq.do"
QUERY_PATH = "/gateway/api/queryTrans.do"
BACK_PATH = "/gateway/api/backTransReq.do"
FILE_PATH = "/gateway/api/fileTransReq.do"
SUCCESS = "00"
RETRYABLE = frozenset({"03", "04", "05", "06"})
PROCESSING = frozenset({"03", "04", "05"})


def file_url_for(gateway: str) -> str:
    """UnionPay serves files from `filedownload.` next to `gateway.`; others on FILE_PATH."""
    parts = urlsplit(gateway)
    if parts.hostname and parts.hostname.startswith("gateway."):
        host = "filedownload." + parts.netloc.removeprefix("gateway.")
        return f"{parts.scheme}://{host}/"
    return gateway.rstrip("/") + FILE_PATH


class UnionPayClient:
    """httpx client for the UnionPay gateway (or the sandbox, through an injected transport)."""

    def __init__(
        self,
        *,
        mer_id: str,
        private_key: rsa_keys.RSAPrivateKey,
        cert_id: str,
        trust: crypto.CertTrust,
        gateway: str = PRODUCTION_GATEWAY,
        front_gateway: str | None = None,
        file_url: str | None = None,
        channel_type: str = "08",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.mer_id = mer_id
        self.cert_id = cert_id
        self.gateway = gateway.rstrip("/")
        self.front_gateway = (front_gateway or gateway).rstrip("/")  # what the browser reaches
        self.file_url = file_url or file_url_for(gateway)
        self.channel_type = channel_type
        self.trust = trust
        self._key = private_key
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)

    def signed(self, fields: Mapping[str, str]) -> dict[str, str]:
        """The common fields plus `fields` (empty values dropped), with `signature`."""
        out = {
            "version": crypto.VERSION,
            "encoding": "UTF-8",
            "signMethod": crypto.SIGN_METHOD,
            "accessType": "0",
            "merId": self.mer_id,
            "certId": self.cert_id,
            **fields,
        }
        out = {k: v for k, v in out.items() if v != ""}
        out["signature"] = crypto.sign(self._key, out)
        return out

    async def post(self, url: str, fields: Mapping[str, str]) -> dict[str, str]:
        """Send one signed request; the verified answer with respCode 00, or ProviderError."""
        try:
            resp = await self._http.post(url, data=self.signed(fields))
        except httpx.HTTPError as exc:
            log.warning("unionpay unreachable", extra={"error": type(exc).__name__})
            raise ProviderError("NETWORK_ERROR", "unionpay unreachable", retryable=True) from exc
        if resp.status_code != 200:
            raise ProviderError(
                f"HTTP_{resp.status_code}",
                "unionpay gateway error",
                retryable=resp.status_code >= 500,
            )
        answer = dict(parse_qsl(resp.text, keep_blank_values=True))
        signed_ok = bool(answer.get("signature")) and self.trust.verify(answer)
        code = answer.get("respCode", "")
        if code != SUCCESS:
            # A refusal is believed even unsigned: it can only make us do less.
            log.info("unionpay refused", extra={"respCode": code})
            message = answer.get("respMsg") or "refused"
            raise ProviderError(code or "INVALID_RESPONSE", message, retryable=code in RETRYABLE)
        if not signed_ok:
            raise ProviderError("INVALID_RESPONSE_SIGNATURE", "answer signature does not verify")
        return answer

    async def consume(
        self,
        *,
        order_id: str,
        txn_time: str,
        amount_fen: int,
        back_url: str,
        pay_timeout: datetime | None,
    ) -> dict[str, str]:
        """App consume (txnType 01): the answer carries `tn` for the UnionPay app SDK."""
        fields = {
            "txnType": "01",
            "txnSubType": "01",
            "bizType": "000201",
            "channelType": self.channel_type,
            "orderId": order_id,
            "txnTime": txn_time,
            "txnAmt": str(amount_fen),
            "currencyCode": "156",
            "backUrl": back_url,
            "payTimeout": crypto.wire_time(pay_timeout) if pay_timeout else "",
        }
        return await self.post(self.gateway + APP_PATH, fields)

    def front_consume(
        self,
        *,
        order_id: str,
        txn_time: str,
        amount_fen: int,
        front_url: str,
        back_url: str,
        pay_timeout: datetime | None,
    ) -> tuple[str, dict[str, str]]:
        """Mobile-web consume (手机网页支付, channelType 08): the form's action and signed fields.

        Nothing is sent: the payer's browser POSTs the fields (auto-submitted form) to the
        action; UnionPay shows its cashier, notifies `back_url` and sends the browser to
        `front_url` with the signed front notification.
        """
        fields = {
            "txnType": "01",
            "txnSubType": "01",
            "bizType": "000201",
            "channelType": "08",
            "orderId": order_id,
            "txnTime": txn_time,
            "txnAmt": str(amount_fen),
            "currencyCode": "156",
            "frontUrl": front_url,
            "backUrl": back_url,
            "payTimeout": crypto.wire_time(pay_timeout) if pay_timeout else "",
        }
        return self.front_gateway + FRONT_PATH, self.signed(fields)

    def verify(self, fields: Mapping[str, str]) -> bool:
        """True when fields from UnionPay (e.g. the frontUrl form) carry a trusted signature."""
        return bool(fields.get("signature")) and self.trust.verify(fields)

    async def query(self, *, order_id: str, txn_time: str) -> dict[str, str]:
        """Transaction status query (txnType 00) of our orderId + txnTime."""
        fields = {
            "txnType": "00",
            "txnSubType": "00",
            "bizType": "000000",
            "orderId": order_id,
            "txnTime": txn_time,
        }
        return await self.post(self.gateway + QUERY_PATH, fields)

    async def refund(
        self,
        *,
        order_id: str,
        txn_time: str,
        orig_qry_id: str,
        amount_fen: int,
        back_url: str,
        reserved: str = "",
    ) -> dict[str, str]:
        """Refund (txnType 04); accepted here, the result comes by notification and query."""
        fields = {
            "txnType": "04",
            "txnSubType": "00",
            "bizType": "000201",
            "channelType": "07",
            "orderId": order_id,
            "txnTime": txn_time,
            "txnAmt": str(amount_fen),
            "currencyCode": "156",
            "origQryId": orig_qry_id,
            "backUrl": back_url,
            "reqReserved": reserved,
        }
        return await self.post(self.gateway + BACK_PATH, fields)

    async def settlement_file(self, settle_date: date) -> dict[str, str]:
        """File download (txnType 76, fileType 00): `fileContent` and `fileName` of a day."""
        fields = {
            "txnType": "76",
            "txnSubType": "01",
            "bizType": "000000",
            "settleDate": settle_date.strftime("%m%d"),
            "txnTime": crypto.wire_time(),
            "fileType": "00",
        }
        return await self.post(self.file_url, fields)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()
