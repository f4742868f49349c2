"""signMethod 01 vectors built by hand, certificate trust, key rules and settings."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from pydantic import SecretStr

from forecourt.integrations import unionpay
from forecourt.integrations.unionpay import crypto
from forecourt.integrations.unionpay.client import file_url_for
from forecourt.integrations.unionpay.sandbox.pki import (
    SIGNING_CN,
    issue,
    make_sandbox_pki,
    name,
    pem,
)
from forecourt.kit import clock, rsa
from tests.integrations.unionpay.conftest import settings

FIELDS = {
    "version": "5.1.0",
    "encoding": "UTF-8",
    "signMethod": "01",
    "txnType": "01",
    "txnSubType": "01",
    "bizType": "000201",
    "channelType": "08",
    "accessType": "0",
    "merId": "777290058110048",
    "orderId": "UP2024011500001",
    "txnTime": "20240115120000",
    "txnAmt": "30000",
    "currencyCode": "156",
    "backUrl": "http://merchant.test/n?a=1&b=2",
    "certId": "69629715588",
}


@pytest.fixture(scope="module")
def key() -> rsa_keys.RSAPrivateKey:
    """A test-only RSA-2048 key."""
    return rsa.generate_test_key()


def test_signature_is_rsa_over_the_hex_digest_of_the_sorted_string(
    key: rsa_keys.RSAPrivateKey,
) -> None:
    text = (
        "accessType=0&backUrl=http://merchant.test/n?a=1&b=2&bizType=000201&certId=69629715588"
        "&channelType=08&currencyCode=156&encoding=UTF-8&merId=777290058110048"
        "&orderId=UP2024011500001&signMethod=01&txnAmt=30000&txnSubType=01"
        "&txnTime=20240115120000&txnType=01&version=5.1.0"
    )
    assert crypto.sign_content({**FIELDS, "signature": "ignored"}) == text
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert crypto.digest_hex(FIELDS) == digest
    signature = crypto.sign(key, FIELDS)
    key.public_key().verify(
        base64.b64decode(signature), digest.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    with pytest.raises(InvalidSignature):  # it is the hex string that is signed, not the text
        key.public_key().verify(
            base64.b64decode(signature), text.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    assert crypto.verify(key.public_key(), {**FIELDS, "signature": signature})
    assert not crypto.verify(
        key.public_key(), {**FIELDS, "txnAmt": "30001", "signature": signature}
    )


def test_sandbox_certificate_is_trusted_and_others_are_not() -> None:
    pki = make_sandbox_pki()
    trust = crypto.CertTrust(pki.bundle_pem)
    key = trust.public_key(pki.signing_pem)
    assert key.public_numbers() == pki.signing_key.public_key().public_numbers()
    signed = {**FIELDS, "signPubKeyCert": pki.signing_pem}
    signed["signature"] = crypto.sign(pki.signing_key, signed)
    assert trust.verify(signed)
    assert not crypto.CertTrust(make_sandbox_pki().bundle_pem).verify(signed)

    impostor_key = rsa.generate_test_key()
    self_signed = issue(
        name(SIGNING_CN), impostor_key.public_key(), name(SIGNING_CN), impostor_key, ca=True
    )
    with pytest.raises(ValueError, match="does not chain"):
        trust.public_key(pem(self_signed))
    forged = {**FIELDS, "signPubKeyCert": pem(self_signed)}
    forged["signature"] = crypto.sign(impostor_key, forged)
    assert not trust.verify(forged)


def test_certificate_must_name_unionpay_and_be_current() -> None:
    root_key, leaf_key = rsa.generate_test_key(), rsa.generate_test_key()
    root = issue(name("Test Root"), root_key.public_key(), name("Test Root"), root_key, ca=True)
    trust = crypto.CertTrust(pem(root))
    other = issue(
        name("041@Z12@某某科技有限公司@1"),
        leaf_key.public_key(),
        name("Test Root"),
        root_key,
        ca=False,
    )
    with pytest.raises(ValueError, match="does not name UnionPay"):
        trust.public_key(pem(other))
    expired = issue(
        name(SIGNING_CN),
        leaf_key.public_key(),
        name("Test Root"),
        root_key,
        ca=False,
        not_before=clock.now() - timedelta(days=10),
        days=5,
    )
    with pytest.raises(ValueError, match="validity"):
        trust.public_key(pem(expired))
    good = issue(name(SIGNING_CN), leaf_key.public_key(), name("Test Root"), root_key, ca=False)
    assert trust.public_key(pem(good)).key_size == 2048
    clock.travel(timedelta(days=3651))
    with pytest.raises(ValueError, match="validity"):
        trust.public_key(pem(good))


def test_short_signing_key_is_refused() -> None:
    root_key = rsa.generate_test_key()
    short = rsa_keys.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    root = issue(name("Test Root"), root_key.public_key(), name("Test Root"), root_key, ca=True)
    leaf = issue(name(SIGNING_CN), short.public_key(), name("Test Root"), root_key, ca=False)
    with pytest.raises(ValueError, match="1024 bits refused"):
        crypto.CertTrust(pem(root)).public_key(pem(leaf))


def test_trace_time_takes_the_year_of_the_order() -> None:
    assert crypto.trace_moment("0115120005", "20240115115959") == crypto.parse_time(
        "20240115120005"
    )
    assert crypto.trace_moment("0101000010", "20231231235959") == crypto.parse_time(
        "20240101000010"
    )


def test_file_download_host() -> None:
    assert file_url_for("https://gateway.95516.com") == "https://filedownload.95516.com/"
    assert file_url_for("https://gateway.test.95516.com/") == "https://filedownload.test.95516.com/"
    assert file_url_for("http://unionpay-sandbox") == (
        "http://unionpay-sandbox/gateway/api/fileTransReq.do"
    )


def test_production_settings_need_every_key(key: rsa_keys.RSAPrivateKey) -> None:
    gateway = "https://gateway.95516.com"
    private = SecretStr(rsa.private_pem(key))
    bundle = make_sandbox_pki().bundle_pem
    with pytest.raises(RuntimeError, match="FORECOURT_UNIONPAY_PRIVATE_KEY"):
        unionpay.from_settings(settings(unionpay_gateway=gateway))
    with pytest.raises(RuntimeError, match="FORECOURT_UNIONPAY_CERT_ID"):
        unionpay.from_settings(settings(unionpay_gateway=gateway, unionpay_private_key=private))
    with pytest.raises(RuntimeError, match="FORECOURT_UNIONPAY_ROOT_CERT"):
        unionpay.from_settings(
            settings(unionpay_gateway=gateway, unionpay_private_key=private, unionpay_cert_id="1")
        )
    provider, sandbox = unionpay.from_settings(
        settings(
            unionpay_gateway=gateway,
            unionpay_private_key=private,
            unionpay_cert_id="69629715588",
            unionpay_root_cert=bundle,
        )
    )
    assert sandbox is None
    assert (provider.client.gateway, provider.client.file_url) == (
        gateway,
        "https://filedownload.95516.com/",
    )
    assert (provider.merchant_id, provider.client.cert_id) == ("777290058110048", "69629715588")
    assert provider.cashier_base is None
