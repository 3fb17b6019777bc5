from __future__ import annotations

import pytest

from privacy import DecryptionError
from privacy.hazmat.keywrap import WRAPPED_BYTES, unwrap_key, wrap_key

KEK = bytes(range(32))
DEK = bytes(range(100, 132))


def test_wrap_then_unwrap_round_trips() -> None:
    wrapped = wrap_key(kek=KEK, key=DEK, aad=b"subject-a")

    assert len(wrapped) == WRAPPED_BYTES
    assert DEK not in wrapped
    assert unwrap_key(kek=KEK, wrapped=wrapped, aad=b"subject-a") == DEK


@pytest.mark.parametrize(
    ("kek", "aad", "edit"),
    [
        pytest.param(bytes(range(1, 33)), b"subject-a", None, id="other-kek"),
        pytest.param(KEK, b"subject-b", None, id="other-owner"),
        pytest.param(KEK, b"subject-a", 0, id="format-byte"),
        pytest.param(KEK, b"subject-a", 30, id="body-byte"),
    ],
)
def test_unwrap_key_wrong_context_raises_opaque_error(
    kek: bytes, aad: bytes, edit: int | None
) -> None:
    wrapped = bytearray(wrap_key(kek=KEK, key=DEK, aad=b"subject-a"))
    if edit is not None:
        wrapped[edit] ^= 0x01

    with pytest.raises(DecryptionError):
        unwrap_key(kek=kek, wrapped=bytes(wrapped), aad=aad)


def test_unwrap_key_truncated_raises_opaque_error() -> None:
    wrapped = wrap_key(kek=KEK, key=DEK, aad=b"a")

    with pytest.raises(DecryptionError):
        unwrap_key(kek=KEK, wrapped=wrapped[:-1], aad=b"a")


def test_wrap_key_wrong_key_length_is_misuse() -> None:
    with pytest.raises(ValueError, match="key must be 32 bytes"):
        wrap_key(kek=KEK, key=b"short", aad=b"a")
