"""RSA2 signing vectors checked against python-alipay-sdk, key rules and settings."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl

import pytest
from alipay import AliPay  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys
from pydantic import SecretStr

from forecourt.integrations import alipay
from forecourt.integrations.alipay import crypto
from forecourt.kit import rsa
from tests.integrations.alipay.conftest import APP_ID, settings


@pytest.fixture(scope="module")
def key() -> rsa_keys.RSAPrivateKey:
    """A test-only RSA-2048 key."""
    return rsa.generate_test_key()


def _sdk(app_key: rsa_keys.RSAPrivateKey, alipay_key: rsa_keys.RSAPublicKey) -> AliPay:
    return AliPay(
        appid=APP_ID,
        app_private_key_string=rsa.private_pem(app_key),
        alipay_public_key_string=rsa.public_pem(alipay_key),
        sign_type="RSA2",
    )


PARAMS = {
    "app_id": APP_ID,
    "method": "alipay.trade.query",
    "format": "JSON",
    "charset": "utf-8",
    "sign_type": "RSA2",
    "timestamp": "2024-01-15 10:00:00",
    "version": "1.0",
    "notify_url": "",
    "biz_content": '{"out_trade_no":"T20240115001"}',
}
EXPECTED = (
    'app_id=2021000000000001&biz_content={"out_trade_no":"T20240115001"}&charset=utf-8'
    "&format=JSON&method=alipay.trade.query&sign_type=RSA2&timestamp=2024-01-15 10:00:00"
    "&version=1.0"
)


def test_request_string_leaves_out_sign_and_empty_values() -> None:
    assert crypto.request_content({**PARAMS, "sign": "x"}) == EXPECTED


def test_request_signature_equals_the_sdks(key: rsa_keys.RSAPrivateKey) -> None:
    sdk = _sdk(key, key.public_key())
    assert crypto.sign_request(key, PARAMS) == sdk._sign(EXPECTED)


def test_sdk_signed_request_verifies(key: rsa_keys.RSAPrivateKey) -> None:
    sdk = _sdk(key, key.public_key())
    data = sdk.build_body("alipay.trade.create", {"out_trade_no": "T1", "subject": "汽油"})
    signed = dict(parse_qsl(sdk.sign_data(data)))
    assert crypto.verify_request(key.public_key(), signed)
    signed["biz_content"] = signed["biz_content"].replace("T1", "T2")
    assert not crypto.verify_request(key.public_key(), signed)


def test_notification_signature_matches_the_sdk(key: rsa_keys.RSAPrivateKey) -> None:
    fields = {
        "notify_id": "n1",
        "notify_type": "trade_status_sync",
        "out_trade_no": "T1",
        "subject": "92#汽油 a=b&c",
        "total_amount": "12.34",
        "sign_type": "RSA2",
    }
    text = "notify_id=n1&notify_type=trade_status_sync&out_trade_no=T1&subject=92#汽油 a=b&c"
    assert crypto.notify_content(fields) == text + "&total_amount=12.34"
    sign = crypto.sign_notification(key, fields)
    sdk = _sdk(key, key.public_key())
    assert sign == sdk._sign(text + "&total_amount=12.34")
    assert sdk.verify(dict(fields), sign) is True
    assert crypto.verify_notification(key.public_key(), {**fields, "sign": sign})
    assert not crypto.verify_notification(key.public_key(), {**fields, "sign": sign[:-4] + "AAA="})


def test_response_node_is_the_exact_raw_text() -> None:
    node = '{"code":"10000","msg":"Success","subject":"a}b{c \\"q\\"","n":{"x":[1,{"y":2}]}}'
    raw = f'{{ "sign" : "abc",\n "alipay_trade_query_response" :  {node} }}'
    assert crypto.response_node(raw, "alipay_trade_query_response") == node
    assert crypto.response_node(raw, "error_response") is None
    assert crypto.response_node("not json", "x") is None


def test_sdk_accepts_a_signed_answer(key: rsa_keys.RSAPrivateKey) -> None:
    raw = crypto.signed_answer(
        key, "alipay_trade_query_response", {"code": "10000", "s": "92#汽油"}
    )
    sdk = _sdk(key, key.public_key())
    assert sdk._verify_and_return_sync_response(raw, "alipay_trade_query_response") == {
        "code": "10000",
        "s": "92#汽油",
    }


def test_yuan_amounts_convert_without_floats() -> None:
    assert [crypto.fen(v) for v in ("12.34", "0.5", "300", "-1.50", "0.01")] == [
        1234,
        50,
        30000,
        -150,
        1,
    ]
    assert crypto.amount(30000) == "300.00"
    for bad in ("1.234", "1e3", "", "12,00", "NaN"):
        with pytest.raises(ValueError, match="not a yuan amount"):
            crypto.fen(bad)


def test_keys_under_2048_bits_are_refused() -> None:
    short = rsa_keys.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    pem = short.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    der = short.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="1024 bits refused"):
        rsa.load_private_key(pem)
    with pytest.raises(ValueError, match="1024 bits refused"):
        rsa.load_public_key(base64.b64encode(der).decode())
    with pytest.raises(ValueError, match="1024 bits refused"):
        rsa.sign(short, b"x")
    with pytest.raises(ValueError, match="1024 bits refused"):
        alipay.from_settings(
            settings(
                alipay_gateway="https://openapi.alipay.com/gateway.do",
                alipay_private_key=SecretStr(pem.decode()),
                alipay_public_key=rsa.public_pem(rsa.generate_test_key().public_key()),
            )
        )


def test_bare_base64_keys_load(key: rsa_keys.RSAPrivateKey) -> None:
    body = "".join(rsa.public_pem(key.public_key()).splitlines()[1:-1])
    assert rsa.load_public_key(body).public_numbers() == key.public_key().public_numbers()


def test_production_settings_need_every_key(key: rsa_keys.RSAPrivateKey) -> None:
    gateway = "https://openapi.alipay.com/gateway.do"
    with pytest.raises(RuntimeError, match="FORECOURT_ALIPAY_PRIVATE_KEY"):
        alipay.from_settings(settings(alipay_gateway=gateway))
    private = SecretStr(rsa.private_pem(key))
    with pytest.raises(RuntimeError, match="FORECOURT_ALIPAY_PUBLIC_KEY"):
        alipay.from_settings(settings(alipay_gateway=gateway, alipay_private_key=private))
    provider, sandbox = alipay.from_settings(
        settings(
            alipay_gateway=gateway,
            alipay_private_key=private,
            alipay_public_key=rsa.public_pem(key.public_key()),
        )
    )
    assert sandbox is None
    assert provider.client.gateway == gateway
    assert provider.merchant_id == APP_ID
    assert provider.cashier_base is None
