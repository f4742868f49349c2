"""scrypt password hashes (no database)."""

from __future__ import annotations

from forecourt.auth.passwords import hash_password, verify_password


def test_hash_and_verify() -> None:
    stored = hash_password("correct horse battery")
    scheme, n, r, p, salt, key = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(salt) == 22
    assert len(key) == 43
    assert verify_password("correct horse battery", stored) is True
    assert verify_password("correct horse batterY", stored) is False


def test_salt_is_random() -> None:
    assert hash_password("same password") != hash_password("same password")


def test_garbage_hashes_never_match() -> None:
    assert verify_password("x", "") is False
    assert verify_password("x", "bcrypt$1$2$3$4$5") is False
    assert verify_password("x", "scrypt$notanumber$8$1$AAAA$AAAA") is False
