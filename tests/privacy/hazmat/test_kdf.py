from __future__ import annotations

import pytest

from privacy.hazmat.kdf import hkdf_sha256


def test_hkdf_sha256_rfc5869_test_case_1() -> None:
    okm = hkdf_sha256(
        key=b"\x0b" * 22, salt=bytes(range(13)), info=bytes(range(0xF0, 0xFA)), length=42
    )

    assert okm.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )


def test_hkdf_sha256_labels_give_independent_keys() -> None:
    key = bytes(range(32))

    assert hkdf_sha256(key=key, info=b"a") != hkdf_sha256(key=key, info=b"b")
    assert hkdf_sha256(key=key, info=b"a") == hkdf_sha256(key=key, info=b"a")


@pytest.mark.parametrize(
    ("key", "length", "message"),
    [(b"short", 32, "at least 16"), (bytes(32), 0, "length"), (bytes(32), 8161, "length")],
)
def test_hkdf_sha256_misuse_raises_value_error(key: bytes, length: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hkdf_sha256(key=key, info=b"x", length=length)
