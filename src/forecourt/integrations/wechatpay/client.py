"""WeChat Pay API v3 wire client (JSAPI / mini-program and H5 payments, refunds, bills).

Every request carries a `WECHATPAY2-SHA256-RSA2048` Authorization signed with the merchant
key; every 2xx answer is checked against the platform keys (certificate serials and/or a
`PUB_KEY_ID_…` public key) and its timestamp window. Error answers are
`{"code": "...", "message": "..."}` with a 4xx/5xx status and become `WeChatPayError`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import orjson
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from forecourt.integrations.wechatpay import crypto
from forecourt.kit import clock
from forecourt.payment.providers import ProviderError

log = logging.getLogger(__name__)

PRODUCTION_BASE = "https://api.mch.weixin.qq.com"
USER_AGENT = "forecourt-wechatpay/1 (httpx)"
RETRYABLE_CODES = frozenset({"SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANK_ERROR", "NETWORK_ERROR"})


class WeChatPayError(ProviderError):
    """WeChat Pay refused a call, could not be reached, or answered something untrustworthy."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        retryable = code in RETRYABLE_CODES or (status is not None and status >= 500)
        super().__init__(code, message, retryable=retryable)
        self.status = status


def fen_to_yuan(fen: int) -> str:
    """Integer fen as a yuan string with two decimals ("12.34", "-0.05")."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def yuan_to_fen(text: str) -> int:
    """A yuan string ("12.34", "12.3", "12") as integer fen; ValueError if not whole fen."""
    try:
        value = Decimal(text.strip()) * 100
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if value != value.to_integral_value():
        raise ValueError(f"amount below one fen: {text!r}")
    return int(value)


def rfc3339(moment: datetime) -> str:
    """A moment as WeChat writes times: RFC 3339 in Beijing time ("…T10:34:56+08:00")."""
    return clock.local(moment).isoformat(timespec="seconds")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time from WeChat as an aware UTC datetime; ValueError if naive."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time without offset: {text!r}")
    return moment.astimezone(UTC)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class WeChatPayClient:
    """httpx client for api.mch.weixin.qq.com (or the sandbox, through an injected transport)."""

    def __init__(
        self,
        *,
        mchid: str,
        appid: str,
        private_key: str | rsa.RSAPrivateKey,
        cert_serial: str,
        apiv3_key: str | bytes,
        platform_keys: Mapping[str, str | rsa.RSAPublicKey] | None = None,
        base_url: str = PRODUCTION_BASE,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        if isinstance(private_key, str):
            self._key = crypto.load_private_key(private_key)
        else:
            self._key = private_key
            crypto.checked_public_key(private_key.public_key())
        self._apiv3_key = apiv3_key.encode() if isinstance(apiv3_key, str) else apiv3_key
        if len(self._apiv3_key) != 32:
            raise ValueError("the APIv3 key must be 32 bytes")
        self.mchid = mchid
        self.appid = appid
        self.cert_serial = cert_serial
        self.platform_keys: dict[str, rsa.RSAPublicKey] = {
            serial: crypto.load_public_key(k)
            if isinstance(k, str)
            else crypto.checked_public_key(k)
            for serial, k in (platform_keys or {}).items()
        }
        self.base_url = httpx.URL(base_url)
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)

    # -- plumbing --------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        payload: Mapping[str, Any] | None = None,
        verify: bool = True,
    ) -> httpx.Response:
        body = orjson.dumps(payload) if payload is not None else b""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        request = self._http.build_request(
            method, url, params=params, content=body, headers=headers
        )
        request.headers["Authorization"] = crypto.authorization(
            mchid=self.mchid,
            serial_no=self.cert_serial,
            key=self._key,
            method=method,
            path_with_query=request.url.raw_path.decode("ascii"),
            body=body,
            timestamp=str(int(clock.now().timestamp())),
            nonce=crypto.nonce_str(),
        )
        try:
            resp = await self._http.send(request)
        except httpx.HTTPError as exc:
            log.warning("wechatpay unreachable", extra={"error": type(exc).__name__})
            raise WeChatPayError("NETWORK_ERROR", "wechatpay unreachable") from exc
        if resp.status_code >= 400:
            raise self._error(resp)
        if verify:
            try:
                self.verify_headers(resp.headers, resp.content)
            except crypto.SignatureError as exc:
                log.warning("wechatpay answer failed verification", extra={"error": str(exc)})
                raise WeChatPayError(
                    "INVALID_SIGNATURE", str(exc), status=resp.status_code
                ) from exc
        return resp

    @staticmethod
    def _error(resp: httpx.Response) -> WeChatPayError:
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and body.get("code"):
            code, message = str(body["code"]), str(body.get("message", ""))
        else:
            code, message = f"HTTP_{resp.status_code}", "unexpected answer"
        log.info("wechatpay refused", extra={"code": code, "status": resp.status_code})
        return WeChatPayError(code, message, status=resp.status_code)

    @staticmethod
    def _json(resp: httpx.Response) -> dict[str, Any]:
        try:
            body = orjson.loads(resp.content)
        except orjson.JSONDecodeError as exc:
            raise WeChatPayError("INVALID_RESPONSE", "answer is not JSON") from exc
        if not isinstance(body, dict):
            raise WeChatPayError("INVALID_RESPONSE", "answer is not a JSON object")
        return body

    def verify_headers(self, headers: Mapping[str, str], body: bytes) -> str:
        """Check a signed answer or notification (any header case); the serial that signed it."""
        return crypto.verify_signed(self.platform_keys, _lower(headers), body, clock.now())

    def decrypt_resource(self, resource: Mapping[str, Any]) -> bytes:
        """Open an `encrypt-resource` / `encrypt_certificate` object with the APIv3 key."""
        if resource.get("algorithm") != crypto.AES_ALGORITHM:
            raise crypto.SignatureError(f"unsupported algorithm {resource.get('algorithm')}")
        return crypto.aes_gcm_decrypt(
            self._apiv3_key,
            str(resource.get("nonce", "")),
            str(resource.get("associated_data", "")),
            str(resource.get("ciphertext", "")),
        )

    def open_notification(
        self, headers: Mapping[str, str], body: bytes
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Verify a callback and decrypt it: (envelope, resource); raises ValueError."""
        self.verify_headers(headers, body)
        envelope = orjson.loads(body)
        if not isinstance(envelope, dict) or envelope.get("resource_type") != "encrypt-resource":
            raise ValueError("not an encrypt-resource notification")
        resource = orjson.loads(self.decrypt_resource(envelope.get("resource") or {}))
        if not isinstance(resource, dict):
            raise ValueError("resource is not a JSON object")
        return envelope, resource

    # -- API -------------------------------------------------------------------------------

    def _prepay_body(
        self,
        *,
        description: str,
        out_trade_no: str,
        notify_url: str,
        total_fen: int,
        time_expire: datetime | None,
        attach: str | None,
        **scene: Any,
    ) -> dict[str, Any]:
        """A prepay body: the fields JSAPI and H5 share, `scene` (payer / scene_info), options."""
        payload: dict[str, Any] = {
            "appid": self.appid,
            "mchid": self.mchid,
            "description": description,
            "out_trade_no": out_trade_no,
            "notify_url": notify_url,
            "amount": {"total": total_fen, "currency": "CNY"},
            **scene,
        }
        if time_expire is not None:
            payload["time_expire"] = rfc3339(time_expire)
        if attach is not None:
            payload["attach"] = attach
        return payload

    async def prepay_jsapi(
        self,
        *,
        description: str,
        out_trade_no: str,
        notify_url: str,
        total_fen: int,
        openid: str,
        time_expire: datetime | None = None,
        attach: str | None = None,
    ) -> str:
        """POST /v3/pay/transactions/jsapi; the prepay_id."""
        payload = self._prepay_body(
            description=description,
            out_trade_no=out_trade_no,
            notify_url=notify_url,
            total_fen=total_fen,
            time_expire=time_expire,
            attach=attach,
            payer={"openid": openid},
        )
        body = self._json(await self._send("POST", "/v3/pay/transactions/jsapi", payload=payload))
        prepay_id = body.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise WeChatPayError("INVALID_RESPONSE", "answer without prepay_id")
        return prepay_id

    async def prepay_h5(
        self,
        *,
        description: str,
        out_trade_no: str,
        notify_url: str,
        total_fen: int,
        payer_client_ip: str,
        time_expire: datetime | None = None,
        attach: str | None = None,
    ) -> str:
        """POST /v3/pay/transactions/h5 (手机网站支付); the h5_url to open in the browser.

        The caller may append `&redirect_url=<URL-encoded http(s) URL>` to the h5_url; nothing
        else of it may be changed.
        """
        payload = self._prepay_body(
            description=description,
            out_trade_no=out_trade_no,
            notify_url=notify_url,
            total_fen=total_fen,
            time_expire=time_expire,
            attach=attach,
            scene_info={"payer_client_ip": payer_client_ip, "h5_info": {"type": "Wap"}},
        )
        body = self._json(await self._send("POST", "/v3/pay/transactions/h5", payload=payload))
        h5_url = body.get("h5_url")
        if not isinstance(h5_url, str) or not h5_url:
            raise WeChatPayError("INVALID_RESPONSE", "answer without h5_url")
        try:
            scheme = httpx.URL(h5_url).scheme
        except httpx.InvalidURL as exc:
            raise WeChatPayError("INVALID_RESPONSE", "h5_url is not a URL") from exc
        if scheme not in ("http", "https"):
            raise WeChatPayError("INVALID_RESPONSE", "h5_url is not an http(s) URL")
        return h5_url

    def pay_params(self, prepay_id: str) -> dict[str, str]:
        """The fields of wx.requestPayment for a prepay_id (paySign by the merchant key)."""
        timestamp = str(int(clock.now().timestamp()))
        nonce = crypto.nonce_str()
        package = f"prepay_id={prepay_id}"
        return {
            "appId": self.appid,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": crypto.pay_sign(
                self._key, app_id=self.appid, timestamp=timestamp, nonce=nonce, package=package
            ),
        }

    async def query_order(self, out_trade_no: str) -> dict[str, Any]:
        """GET /v3/pay/transactions/out-trade-no/{out_trade_no}: the transaction."""
        path = f"/v3/pay/transactions/out-trade-no/{out_trade_no}"
        return self._json(await self._send("GET", path, params={"mchid": self.mchid}))

    async def close_order(self, out_trade_no: str) -> None:
        """POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close (answer 204)."""
        path = f"/v3/pay/transactions/out-trade-no/{out_trade_no}/close"
        await self._send("POST", path, payload={"mchid": self.mchid})

    async def create_refund(
        self,
        *,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
        notify_url: str | None,
        transaction_id: str | None = None,
        out_trade_no: str | None = None,
    ) -> dict[str, Any]:
        """POST /v3/refund/domestic/refunds (by transaction_id, else out_trade_no)."""
        payload: dict[str, Any] = {"out_refund_no": out_refund_no}
        if transaction_id:
            payload["transaction_id"] = transaction_id
        elif out_trade_no:
            payload["out_trade_no"] = out_trade_no
        else:
            raise ValueError("transaction_id or out_trade_no is required")
        if reason:
            payload["reason"] = reason
        if notify_url:
            payload["notify_url"] = notify_url
        payload["amount"] = {"refund": refund_fen, "total": total_fen, "currency": "CNY"}
        return self._json(await self._send("POST", "/v3/refund/domestic/refunds", payload=payload))

    async def query_refund(self, out_refund_no: str) -> dict[str, Any]:
        """GET /v3/refund/domestic/refunds/{out_refund_no}."""
        return self._json(await self._send("GET", f"/v3/refund/domestic/refunds/{out_refund_no}"))

    async def trade_bill(self, bill_date: date) -> bytes:
        """Apply for and download the ALL trade bill of a day; raw CSV bytes, SHA1 checked."""
        info = self._json(
            await self._send(
                "GET",
                "/v3/bill/tradebill",
                params={"bill_date": bill_date.isoformat(), "bill_type": "ALL"},
            )
        )
        url = httpx.URL(str(info.get("download_url", "")))
        if (url.scheme, url.host, url.port) != (
            self.base_url.scheme,
            self.base_url.host,
            self.base_url.port,
        ):
            raise WeChatPayError("INVALID_RESPONSE", "bill download_url on another host")
        # The file itself is not signed: its integrity is the hash from the signed answer.
        content = (await self._send("GET", str(url), verify=False)).content
        if str(info.get("hash_type", "")).upper() != "SHA1":
            raise WeChatPayError("INVALID_RESPONSE", f"unsupported hash {info.get('hash_type')}")
        digest = hashlib.sha1(content, usedforsecurity=False).hexdigest()
        if not hmac.compare_digest(digest, str(info.get("hash_value", "")).lower()):
            raise WeChatPayError("BILL_HASH_MISMATCH", "downloaded bill does not match its SHA1")
        return content

    async def refresh_certificates(self) -> dict[str, x509.Certificate]:
        """GET /v3/certificates: decrypt the platform certificates and trust their keys."""
        resp = await self._send("GET", "/v3/certificates", verify=False)
        found: dict[str, x509.Certificate] = {}
        now = clock.now()
        for item in self._json(resp).get("data") or []:
            try:
                pem = self.decrypt_resource(item["encrypt_certificate"])
                cert = x509.load_pem_x509_certificate(pem)
            except (KeyError, TypeError, ValueError) as exc:
                raise WeChatPayError("INVALID_RESPONSE", "undecryptable certificate") from exc
            serial = crypto.certificate_serial(cert)
            if serial != str(item.get("serial_no", "")).upper():
                raise WeChatPayError("INVALID_RESPONSE", "certificate serial mismatch")
            if cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
                found[serial] = cert
        keys = dict(self.platform_keys)
        keys.update({s: crypto.checked_public_key(c.public_key()) for s, c in found.items()})
        try:  # the answer must be signed by one of the certificates it carries (or one we had)
            crypto.verify_signed(keys, _lower(resp.headers), resp.content, now)
        except crypto.SignatureError as exc:
            raise WeChatPayError("INVALID_SIGNATURE", str(exc)) from exc
        self.platform_keys = keys
        return found

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()


# Columns of the ALL trade bill, in WeChat's order; detail fields start with a backtick.
BILL_COLUMNS = [
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号",
    "用户标识", "交易类型", "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额",
    "微信退款单号", "商户退款单号", "退款金额", "充值券退款金额", "退款类型", "退款状态",
    "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额", "费率备注",
]  # fmt: skip
BILL_SUMMARY_COLUMNS = [
    "总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额",
    "订单总金额", "申请退款总金额",
]  # fmt: skip
BILL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
