"""Signing, verification and AES-GCM against the official Go SDK's published test vectors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from forecourt.integrations.wechatpay import crypto
from forecourt.integrations.wechatpay.client import WeChatPayClient, fen_to_yuan, yuan_to_fen
from forecourt.integrations.wechatpay.sandbox import WeChatPaySandbox
from forecourt.integrations.wechatpay.sandbox.identity import TestMerchant

# The wechatpay-go SDK's PUBLISHED TEST KEY and vector (github.com/wechatpay-apiv3/wechatpay-go,
# core/auth/signers/sha256withrsa_signer_test.go and utils/sign_test.go). Stored, like the SDK
# does, under a "TESTING KEY" label that is renamed before loading. Public test data only.
GO_SDK_TESTING_KEY = """-----BEGIN TESTING KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDZUJN33V+dSfvd
fL0Mu+39XrZNXFFMQSy1V15FpncHeV47SmV0TzTqZc7hHB0ddqAdDi8Z5k3TKqb7
6sOwYr5TcAfuR6PIPaleyE0/0KrljBum2Isa2Nyq7Dgc3ElBQ6YN4l/a+DpvKaz1
FSKmKrhLNskqokWVSlu4g8OlKlbPXQ9ibII14MZRQrrkTmHYHzfi7GXXM0thAKuR
0HNvyhTHBh4/lrYM3GaMvmWwkwvsMavnOex6+eioZHBOb1/EIZ/LzC6zuHArPpyW
3daGaZ1rtQB1vVzTyERAVVFsXXgBHvfFud3w3ShsJYk8JvMwK2RpJ5/gV0QSARcm
LDRUAlPzAgMBAAECggEBAMc7rDeUaXiWv6bMGbZ3BTXpg1FhdddnWUnYE8HfX/km
OFI7XtBHXcgYFpcjYz4D5787pcsk7ezPidAj58zqenuclmjKnUmT3pfbI5eCA2v4
C9HnbYDrmUPK1ZcADtka4D6ScDccpNYNa1g2TFHzkIrEa6H+q7S3O2fqxY/DRVtN
0JIXalBb8daaqL5QVzSmM2BMVnHy+YITJWIkP2a3pKs9C0W65JGDsnG0wVrHinHF
+cnhFZIbaPEI//DAFMc9NkrWOKVRTEgcCUxCFaHOZVNxDWZD7A2ZfJB2rK6eg//y
gEiFDR2h6mTaDowMB4YF2n2dsIO4/dCG8vPHI20jn4ECgYEA/ZGu6lEMlO0XZnam
AZGtiNgLcCfM/C2ZERZE7QTRPZH1WdK92Al9ndldsswFw4baJrJLCmghjF/iG4zi
hhBvLnOLksnZUfjdumxoHDWXo2QBWbI5QsWIE7AuTiWgWj1I7X4fCXSQf6i+M/y2
6TogQ7d0ANpZFyOkTNMn/tiJvLECgYEA22XqlamG/yfAGWery5KNH2DGlTIyd6xJ
WtJ9j3jU99lZ0bCQ5xhiBbU9ImxCi3zgTsoqLWgA/p00HhNFNoUcTl9ofc0G3zwT
D1y0ZzcnVKxGJdZ6ohW52V0hJStAigtjYAsUgjm7//FH7PiQDBDP1Wa6xSRkDQU/
aSbQxvEE8+MCgYEA3bb8krW7opyM0XL9RHH0oqsFlVO30Oit5lrqebS0oHl3Zsr2
ZGgoBlWBsEzk3UqUhTFwm/DhJLTSJ/TQPRkxnhQ5/mewNhS9C7yua7wQkzVmWN+V
YeUGTvDGDF6qDz12/vJAgSwDDRym8x4NcXD5tTw7mmNRcwIfL22SkysThIECgYAV
BgccoEoXWS/HP2/u6fQr9ZIR6eV8Ij5FPbZacTG3LlS1Cz5XZra95UgebFFUHHtC
EY1JHJY7z8SWvTH8r3Su7eWNaIAoFBGffzqqSVazfm6aYZsOvRY6BfqPHT3p/H1h
Tq6AbBffxrcltgvXnCTORjHPglU0CjSxVs7awW3AEQKBgB5WtaC8VLROM7rkfVIq
+RXqE5vtJfa3e3N7W3RqxKp4zHFAPfr82FK5CX2bppEaxY7SEZVvVInKDc5gKdG/
jWNRBmvvftZhY59PILHO2X5vO4FXh7suEjy6VIh0gsnK36mmRboYIBGsNuDHjXLe
BDa+8mDLkWu5nHEhOxy2JJZl
-----END TESTING KEY-----
"""
GO_SDK_TEST_PRIVATE_KEY = GO_SDK_TESTING_KEY.replace("TESTING KEY", "PRIVATE KEY")
# Its public half, from core/auth/verifiers/sha256withrsa_pubkey_verifier_test.go.
GO_SDK_TEST_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2VCTd91fnUn73Xy9DLvt
/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXagHQ4vGeZN0yqm++rDsGK+
U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOmDeJf2vg6byms9RUipiq4
SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B834uxl1zNLYQCrkdBzb8oU
xwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGfy8wus7hwKz6clt3Whmmd
a7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtkaSef4FdEEgEXJiw0VAJT
8wIDAQAB
-----END PUBLIC KEY-----
"""
GO_SDK_MESSAGE = "source"
GO_SDK_SIGNATURE = (
    "BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6"
    "pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZ"
    "UguLli/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJ"
    "bknXG23bSlObuTCN7Ndj1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=="
)
# utils/aes_test.go (a 16-byte AES key: the helper is generic, the client insists on 32 bytes).
GO_SDK_AES = {
    "key": b"testAPIv3Key0000",
    "nonce": "wCq51qZv4Yfg",
    "associated_data": "Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8",
    "ciphertext": "FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC",
    "plaintext": b"Hello World",
}


def test_signer_reproduces_the_go_sdk_vector() -> None:
    key = crypto.load_private_key(GO_SDK_TEST_PRIVATE_KEY)
    assert crypto.sign(key, GO_SDK_MESSAGE) == GO_SDK_SIGNATURE


def test_verifier_accepts_the_go_sdk_vector_and_nothing_else() -> None:
    public = crypto.load_public_key(GO_SDK_TEST_PUBLIC_KEY)
    assert crypto.verify(public, GO_SDK_MESSAGE, GO_SDK_SIGNATURE) is True
    assert crypto.verify(public, "wrong source", GO_SDK_SIGNATURE) is False
    assert crypto.verify(public, GO_SDK_MESSAGE, "invalid base64 signature") is False
    assert crypto.verify(public, GO_SDK_MESSAGE, "") is False


def test_aes_gcm_opens_the_go_sdk_vector() -> None:
    v = GO_SDK_AES
    assert isinstance(v["key"], bytes)
    opened = crypto.aes_gcm_decrypt(
        v["key"], str(v["nonce"]), str(v["associated_data"]), str(v["ciphertext"])
    )
    assert opened == v["plaintext"]
    with pytest.raises(crypto.SignatureError):
        crypto.aes_gcm_decrypt(
            b"testAPIv3Key1111", str(v["nonce"]), str(v["associated_data"]), str(v["ciphertext"])
        )
    with pytest.raises(crypto.SignatureError):
        crypto.aes_gcm_decrypt(
            v["key"], str(v["nonce"]), str(v["associated_data"]), "SGVsbG8gV29ybGQK"
        )


def test_aes_gcm_round_trip_with_a_32_byte_key() -> None:
    key = b"0123456789abcdef0123456789abcdef"
    sealed = crypto.aes_gcm_encrypt(key, "abcdefghijkl", "transaction", b'{"a":1}')
    assert crypto.aes_gcm_decrypt(key, "abcdefghijkl", "transaction", sealed) == b'{"a":1}'
    with pytest.raises(crypto.SignatureError):
        crypto.aes_gcm_decrypt(key, "abcdefghijkl", "refund", sealed)


def test_request_and_response_messages_are_newline_terminated_lines() -> None:
    assert crypto.request_message("get", "/v3/certificates", "1554208460", "N1", b"") == (
        b"GET\n/v3/certificates\n1554208460\nN1\n\n"
    )
    assert crypto.request_message("POST", "/v3/x?a=1", "1", "N", b'{"k":"v"}') == (
        b'POST\n/v3/x?a=1\n1\nN\n{"k":"v"}\n'
    )
    assert crypto.response_message("1", "N", b"") == b"1\nN\n\n"


def test_authorization_header_carries_a_verifiable_signature() -> None:
    key = crypto.load_private_key(GO_SDK_TEST_PRIVATE_KEY)
    header = crypto.authorization(
        mchid="1234567890",
        serial_no="F5765756002FDD77",
        key=key,
        method="GET",
        path_with_query="/v3/certificates",
        body=b"",
        timestamp="1554208460",
        nonce="593BEC0C930BF1AFEB40B4A08C8FB242",
    )
    assert header.startswith("WECHATPAY2-SHA256-RSA2048 ")
    fields = crypto.parse_authorization(header)
    assert fields is not None
    assert {k: v for k, v in fields.items() if k != "signature"} == {
        "mchid": "1234567890",
        "nonce_str": "593BEC0C930BF1AFEB40B4A08C8FB242",
        "timestamp": "1554208460",
        "serial_no": "F5765756002FDD77",
    }
    message = b"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"
    assert crypto.verify(
        crypto.load_public_key(GO_SDK_TEST_PUBLIC_KEY), message, fields["signature"]
    )
    assert crypto.parse_authorization("Bearer x") is None


def test_pay_sign_covers_four_lines_and_not_sign_type() -> None:
    key = crypto.load_private_key(GO_SDK_TEST_PRIVATE_KEY)
    signature = crypto.pay_sign(
        key, app_id="wx8888888888888888", timestamp="1414561699", nonce="5K8264", package="p=1"
    )
    expected = crypto.sign(key, "wx8888888888888888\n1414561699\n5K8264\np=1\n")
    assert signature == expected


def test_timestamp_window_is_strictly_under_five_minutes() -> None:
    def at(seconds: float) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    assert crypto.timestamp_fresh("1000", at(1299.999)) is True
    assert crypto.timestamp_fresh("1000", at(1300)) is False
    assert crypto.timestamp_fresh("1000", at(701)) is True
    assert crypto.timestamp_fresh("1000", at(700.999)) is False
    assert crypto.timestamp_fresh("1000", at(1000)) is True
    assert crypto.timestamp_fresh("soon", at(1000)) is False


@pytest.fixture(scope="module")
def small_key() -> rsa.RSAPrivateKey:
    """A 1024-bit key, which must be refused everywhere."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


def test_keys_under_2048_bits_are_refused(
    small_key: rsa.RSAPrivateKey, merchant: TestMerchant
) -> None:
    base = {"mchid": "1", "appid": "wx", "cert_serial": "AB", "apiv3_key": merchant.apiv3_key}
    with pytest.raises(ValueError, match="1024 bits refused"):
        WeChatPayClient(private_key=small_key, **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1024 bits refused"):
        WeChatPayClient(private_key=crypto.private_pem(small_key), **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1024 bits refused"):
        WeChatPayClient(
            private_key=merchant.key,
            platform_keys={"PUB_KEY_ID_0": small_key.public_key()},
            **base,  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match="1024 bits refused"):
        WeChatPaySandbox(
            mchid="1",
            appid="wx",
            merchant_public_key=crypto.public_pem(small_key.public_key()),
            merchant_serial="AB",
            apiv3_key=merchant.apiv3_key,
        )
    with pytest.raises(ValueError, match="32 bytes"):
        WeChatPayClient(
            private_key=merchant.key,
            **{**base, "apiv3_key": "short"},  # type: ignore[arg-type]
        )


@pytest.mark.parametrize(
    ("fen", "yuan"),
    [(0, "0.00"), (5, "0.05"), (1234, "12.34"), (100000, "1000.00"), (-12, "-0.12")],
)
def test_fen_yuan_round_trip(fen: int, yuan: str) -> None:
    assert fen_to_yuan(fen) == yuan
    assert yuan_to_fen(yuan) == fen


def test_yuan_parsing_is_exact() -> None:
    assert yuan_to_fen("12") == 1200
    assert yuan_to_fen("0.1") == 10
    assert yuan_to_fen("19.99") == 1999
    with pytest.raises(ValueError, match="below one fen"):
        yuan_to_fen("0.001")
    with pytest.raises(ValueError, match="not an amount"):
        yuan_to_fen("abc")
