"""Phone numbers: validation, masking, encryption and blind index (no database)."""

from __future__ import annotations

import os

import pytest

from forecourt.kit import phones

KEY = bytes(range(32))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13800138000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("0086-199-1234-5678", "19912345678"),
    ],
)
def test_normalize_accepts_mainland_mobiles(raw: str, expected: str) -> None:
    assert phones.normalize(raw) == expected


@pytest.mark.parametrize(
    "raw", ["12800138000", "1380013800", "138001380001", "1380013800a", "", "+85261234567"]
)
def test_normalize_refuses_other_numbers(raw: str) -> None:
    with pytest.raises(phones.InvalidPhone):
        phones.normalize(raw)
    assert phones.is_valid(raw) is False


def test_mask() -> None:
    assert phones.mask("13812345678") == "138****5678"


def test_encrypt_round_trip_with_random_nonce() -> None:
    first = phones.encrypt(KEY, "13812345678")
    second = phones.encrypt(KEY, "13812345678")
    assert first != second
    assert len(first) == 1 + 12 + 11 + 16
    assert first[:1] == b"\x01"
    assert b"13812345678" not in first
    assert phones.decrypt(KEY, first) == "13812345678"
    assert phones.decrypt(KEY, second) == "13812345678"


def test_decrypt_refuses_tampering_and_wrong_key() -> None:
    blob = bytearray(phones.encrypt(KEY, "13812345678"))
    blob[-1] ^= 1
    with pytest.raises(ValueError, match="failed authentication"):
        phones.decrypt(KEY, bytes(blob))
    with pytest.raises(ValueError, match="failed authentication"):
        phones.decrypt(os.urandom(32), phones.encrypt(KEY, "13812345678"))
    with pytest.raises(ValueError, match="unknown phone ciphertext format"):
        phones.decrypt(KEY, b"\x02" + bytes(40))


def test_blind_index_is_keyed_and_stable() -> None:
    index = phones.blind_index(KEY, "13812345678")
    assert len(index) == 64
    assert index == phones.blind_index(KEY, "13812345678")
    assert index != phones.blind_index(KEY, "13812345679")
    assert index != phones.blind_index(os.urandom(32), "13812345678")
    assert phones.derive_key(KEY, "phone-index") != KEY


def test_only_ascii_digits() -> None:
    with pytest.raises(phones.InvalidPhone):
        phones.normalize("1３８00138000")
