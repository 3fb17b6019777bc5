"""Raw AES-256-GCM with random 96-bit nonces, and unambiguous associated-data framing.

Hazmat: callers choose the key and the associated data and must never reuse a key past
about 2**32 messages (random nonces; NIST SP 800-38D §8.3). Use the recipes in
``privacy.crypto`` instead. Every failure to open a sealed message raises one opaque
``DecryptionError`` whatever the cause (wrong key, edited bytes, other associated data,
truncated input).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import DecryptionError

#: AES-256 key length in bytes.
KEY_BYTES = 32
#: GCM nonce length in bytes (96 bits, the length GCM is specified for).
NONCE_BYTES = 12
#: GCM tag length in bytes.
TAG_BYTES = 16
#: Source of random bytes (``os.urandom``: the operating system's CSPRNG).
RandomBytes = Callable[[int], bytes]


def generate_key(random_bytes: RandomBytes = os.urandom) -> bytes:
    """Return a fresh AES-256 key.

    Parameters
    ----------
    random_bytes : Callable[[int], bytes]
        Randomness source; tests may pass a deterministic one.

    Returns
    -------
    bytes
        32 random bytes.
    """
    return _checked(random_bytes(KEY_BYTES), KEY_BYTES, "random_bytes")


def frame(*parts: bytes) -> bytes:
    """Encode byte strings so that no two different lists give the same bytes.

    Each part is prefixed with its length (4 bytes, big-endian), so ``("ab", "c")`` and
    ``("a", "bc")`` never collide when used as associated data.

    Parameters
    ----------
    *parts : bytes
        The parts, in order.

    Returns
    -------
    bytes
        The framed concatenation.
    """
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def seal(
    *,
    key: bytes,
    plaintext: bytes,
    aad: bytes,
    random_bytes: RandomBytes = os.urandom,
) -> bytes:
    """Encrypt and authenticate ``plaintext``; return ``nonce || ciphertext || tag``.

    Parameters
    ----------
    key : bytes
        32-byte AES key.
    plaintext : bytes
        What to encrypt.
    aad : bytes
        Associated data: authenticated, not encrypted, not included in the output; the same
        bytes are needed to open the message.
    random_bytes : Callable[[int], bytes]
        Nonce source (96 random bits per message).

    Returns
    -------
    bytes
        ``12 + len(plaintext) + 16`` bytes.

    Raises
    ------
    ValueError
        If the key is not 32 bytes or the nonce source returns the wrong length.
    """
    nonce = _checked(random_bytes(NONCE_BYTES), NONCE_BYTES, "random_bytes")
    return nonce + AESGCM(_checked(key, KEY_BYTES, "key")).encrypt(nonce, plaintext, aad)


def open_sealed(*, key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Verify and decrypt the output of :func:`seal`.

    Parameters
    ----------
    key : bytes
        The key it was sealed with.
    sealed : bytes
        ``nonce || ciphertext || tag``.
    aad : bytes
        The associated data it was sealed with.

    Returns
    -------
    bytes
        The plaintext.

    Raises
    ------
    DecryptionError
        For any failure (opaque): wrong key or key length, other associated data, edited or
        truncated input.
    """
    if len(key) != KEY_BYTES or len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise DecryptionError()
    nonce, body = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise DecryptionError() from None


def _checked(value: bytes, length: int, name: str) -> bytes:
    """Return ``value`` if it has ``length`` bytes, else raise ValueError naming ``name``."""
    if not isinstance(value, bytes) or len(value) != length:
        raise ValueError(f"{name} must give {length} bytes")
    return value
