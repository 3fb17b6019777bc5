from __future__ import annotations

from collections.abc import Callable

import pytest

from privacy import DecryptionError
from privacy.hazmat.aead import (
    KEY_BYTES,
    NONCE_BYTES,
    TAG_BYTES,
    frame,
    generate_key,
    open_sealed,
    seal,
)

KEY = bytes(range(32))


def zeros(n: int) -> bytes:
    return bytes(n)


def test_seal_known_answer_gcm_test_case_14() -> None:
    # McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14 (AES-256).
    sealed = seal(key=bytes(32), plaintext=bytes(16), aad=b"", random_bytes=zeros)

    assert sealed.hex() == (
        "000000000000000000000000"
        "cea7403d4d606b6e074ec5d3baf39d18"
        "d0d1c8a799996bf0265b98b5d48ab919"
    )


def test_seal_then_open_round_trips_with_fresh_nonces() -> None:
    first = seal(key=KEY, plaintext=b"payload", aad=b"row-1")
    second = seal(key=KEY, plaintext=b"payload", aad=b"row-1")

    assert open_sealed(key=KEY, sealed=first, aad=b"row-1") == b"payload"
    assert first[:NONCE_BYTES] != second[:NONCE_BYTES]
    assert len(first) == NONCE_BYTES + len(b"payload") + TAG_BYTES


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda s: (bytes(range(1, 33)), s, b"row-1"), id="other-key"),
        pytest.param(lambda s: (KEY, s, b"row-2"), id="other-aad"),
        pytest.param(lambda s: (KEY, s[:-1] + bytes([s[-1] ^ 1]), b"row-1"), id="flipped-tag"),
        pytest.param(lambda s: (KEY, s[:5] + bytes([s[5] ^ 1]) + s[6:], b"row-1"),
                     id="flipped-nonce"),
        pytest.param(lambda s: (KEY, s[:20], b"row-1"), id="truncated"),
        pytest.param(lambda s: (KEY, b"", b"row-1"), id="empty"),
        pytest.param(lambda s: (KEY[:16], s, b"row-1"), id="short-key"),
    ],
)
def test_open_sealed_any_tampering_raises_one_opaque_error(
    tamper: Callable[[bytes], tuple[bytes, bytes, bytes]],
) -> None:
    sealed = seal(key=KEY, plaintext=b"secret value", aad=b"row-1")
    key, data, aad = tamper(sealed)

    with pytest.raises(DecryptionError) as info:
        open_sealed(key=key, sealed=data, aad=aad)

    assert str(info.value) == ""


def test_seal_wrong_key_length_is_misuse() -> None:
    with pytest.raises(ValueError, match="key must give 32 bytes"):
        seal(key=b"short", plaintext=b"x", aad=b"")


def test_seal_bad_random_source_is_misuse() -> None:
    with pytest.raises(ValueError, match="random_bytes"):
        seal(key=KEY, plaintext=b"x", aad=b"", random_bytes=lambda n: b"\x00")


def test_generate_key_returns_distinct_32_byte_keys() -> None:
    keys = {generate_key() for _ in range(8)}

    assert len(keys) == 8 and all(len(k) == KEY_BYTES for k in keys)


@pytest.mark.parametrize(
    ("left", "right"),
    [((b"ab", b"c"), (b"a", b"bc")), ((b"",), (b"", b"")), ((b"a", b""), (b"", b"a"))],
)
def test_frame_different_part_lists_never_collide(
    left: tuple[bytes, ...], right: tuple[bytes, ...]
) -> None:
    assert frame(*left) != frame(*right)
