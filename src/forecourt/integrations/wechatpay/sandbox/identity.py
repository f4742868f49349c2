"""The sandbox's side of the keys: its (test-only) platform key, certificate and key id.

It signs every answer and notification with the platform key, under the platform
certificate's serial (certificate mode) or under a `PUB_KEY_ID_…` (public-key mode), and
checks each request's Authorization against the merchant's public key and serial.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from forecourt.integrations.wechatpay import crypto
from forecourt.integrations.wechatpay.client import rfc3339


class WireError(Exception):
    """An error answer of the emulated API: status and WeChat's `{code, message}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _digits(n: int) -> str:
    return "".join(str(secrets.randbelow(10)) for _ in range(n))


@dataclass
class PlatformIdentity:
    """WeChat Pay's keys as the sandbox holds them (generated, test-only)."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    public_key_id: str
    public_key_mode: bool = False
    certificate_serial: str = field(init=False)

    def __post_init__(self) -> None:
        self.certificate_serial = crypto.certificate_serial(self.certificate)

    @classmethod
    def generate(
        cls,
        *,
        mchid: str,
        now: datetime,
        public_key_mode: bool = False,
        key: rsa.RSAPrivateKey | None = None,
    ) -> PlatformIdentity:
        """A test-only platform key (or `key`), a self-signed certificate and a key id."""
        key = key or crypto.generate_test_key()
        cert = crypto.self_signed_certificate(
            key,
            common_name=f"WeChat Pay sandbox platform {mchid} (test-only)",
            not_before=now - timedelta(days=1),
            days=5 * 365,
        )
        key_id = f"{crypto.PUBLIC_KEY_ID_PREFIX}01{mchid}{_digits(12)}"
        return cls(key=key, certificate=cert, public_key_id=key_id, public_key_mode=public_key_mode)

    @property
    def serial(self) -> str:
        """The Wechatpay-Serial the sandbox signs under in its mode."""
        return self.public_key_id if self.public_key_mode else self.certificate_serial

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The platform public key (in the certificate too)."""
        return self.key.public_key()

    def trusted_keys(self) -> dict[str, rsa.RSAPublicKey]:
        """What a client must trust to verify this sandbox: serial (mode's) -> key."""
        return {self.serial: self.public_key}

    def sign_headers(self, body: bytes, now: datetime, corrupt: bool = False) -> dict[str, str]:
        """Wechatpay-* headers for an answer or notification body (`corrupt`: bad signature)."""
        timestamp = str(int(now.timestamp()))
        nonce = crypto.nonce_str()
        signed = body + b" " if corrupt else body
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": crypto.sign(
                self.key, crypto.response_message(timestamp, nonce, signed)
            ),
            "Wechatpay-Serial": self.serial,
            "Wechatpay-Signature-Type": crypto.SCHEMA,
        }

    def certificates_body(self, apiv3_key: bytes) -> dict[str, object]:
        """The /v3/certificates answer: the certificate PEM encrypted with the APIv3 key."""
        nonce = crypto.nonce_str(12)
        pem = crypto.certificate_pem(self.certificate).encode()
        return {
            "data": [
                {
                    "serial_no": self.certificate_serial,
                    "effective_time": rfc3339(self.certificate.not_valid_before_utc),
                    "expire_time": rfc3339(self.certificate.not_valid_after_utc),
                    "encrypt_certificate": {
                        "algorithm": crypto.AES_ALGORITHM,
                        "nonce": nonce,
                        "associated_data": "certificate",
                        "ciphertext": crypto.aes_gcm_encrypt(apiv3_key, nonce, "certificate", pem),
                    },
                }
            ]
        }


def authenticate(
    *,
    header: str,
    method: str,
    target: str,
    body: bytes,
    mchid: str,
    merchant_serial: str,
    merchant_key: rsa.RSAPublicKey,
    now: datetime,
) -> None:
    """Check a request's Authorization like WeChat does; raises WireError 401 SIGN_ERROR."""
    fields = crypto.parse_authorization(header)
    if fields is None:
        raise WireError(
            401, "SIGN_ERROR", "Authorization 头缺失或认证类型不是 WECHATPAY2-SHA256-RSA2048"
        )
    missing = [
        k
        for k in ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
        if not fields.get(k)
    ]
    if missing:
        raise WireError(401, "SIGN_ERROR", f"Authorization 缺少字段 {','.join(missing)}")
    if fields["mchid"] != mchid:
        raise WireError(401, "SIGN_ERROR", "商户号与签名不匹配")
    if fields["serial_no"].upper() != merchant_serial.upper():
        raise WireError(401, "SIGN_ERROR", "商户证书序列号有误")
    if not crypto.timestamp_fresh(fields["timestamp"], now):
        raise WireError(401, "SIGN_ERROR", "请求的时间戳与当前时间相差超过5分钟")
    message = crypto.request_message(method, target, fields["timestamp"], fields["nonce_str"], body)
    if not crypto.verify(merchant_key, message, fields["signature"]):
        raise WireError(401, "SIGN_ERROR", "签名错误，请检查后再试")


@dataclass(frozen=True)
class TestMerchant:
    """Generated merchant credentials for a sandbox run (test-only, never for production)."""

    key: rsa.RSAPrivateKey
    serial: str
    apiv3_key: str

    __test__ = False  # not a pytest test class

    @classmethod
    def generate(cls) -> TestMerchant:
        """A fresh test-only RSA-2048 merchant key, a 40-hex serial and a 32-character APIv3 key."""
        return cls(
            key=crypto.generate_test_key(),
            serial=secrets.token_hex(20).upper(),
            apiv3_key=crypto.nonce_str(32),
        )
