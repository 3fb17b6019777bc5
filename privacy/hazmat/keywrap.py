"""Key wrapping with AES-256-GCM: a data key sealed under a key-encryption key (KEK).

Unlike AES-KW (RFC 3394) a GCM wrap takes associated data, so a wrapped key is bound to its
owner (subject, key version, KEK id) and cannot be swapped onto another row. The wrapped
form is ``format byte || nonce || sealed key || tag`` (61 bytes for a 32-byte key).
Hazmat: use ``privacy.crypto.MasterKeyRing``.
"""

from __future__ import annotations

import os

from ..errors import DecryptionError
from .aead import KEY_BYTES, RandomBytes, frame, open_sealed, seal

#: First byte of every wrapped key (the wrapping format version).
WRAP_FORMAT = b"\x01"
#: Domain-separation label included in the associated data of every wrap.
WRAP_LABEL = b"fedprofile/key-wrap/v1"
#: Length of a wrapped 32-byte key.
WRAPPED_BYTES = 1 + 12 + KEY_BYTES + 16


def wrap_key(
    *,
    kek: bytes,
    key: bytes,
    aad: bytes,
    random_bytes: RandomBytes = os.urandom,
) -> bytes:
    """Seal a 32-byte key under ``kek``, bound to ``aad``.

    Parameters
    ----------
    kek : bytes
        32-byte key-encryption key.
    key : bytes
        The 32-byte key to wrap.
    aad : bytes
        What the wrapped key is bound to (framed by the caller).
    random_bytes : Callable[[int], bytes]
        Nonce source.

    Returns
    -------
    bytes
        The wrapped key (:data:`WRAPPED_BYTES` long).

    Raises
    ------
    ValueError
        If ``kek`` or ``key`` is not 32 bytes.
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"key must be {KEY_BYTES} bytes")
    sealed = seal(
        key=kek, plaintext=key, aad=frame(WRAP_LABEL, WRAP_FORMAT, aad), random_bytes=random_bytes
    )
    return WRAP_FORMAT + sealed


def unwrap_key(*, kek: bytes, wrapped: bytes, aad: bytes) -> bytes:
    """Open a key wrapped by :func:`wrap_key`.

    Parameters
    ----------
    kek : bytes
        The key-encryption key it was wrapped with.
    wrapped : bytes
        The wrapped key.
    aad : bytes
        The associated data it was wrapped with.

    Returns
    -------
    bytes
        The 32-byte key.

    Raises
    ------
    DecryptionError
        For any failure (opaque): other KEK or associated data, edited bytes, unknown format.
    """
    if len(wrapped) != WRAPPED_BYTES or wrapped[:1] != WRAP_FORMAT:
        raise DecryptionError()
    key = open_sealed(key=kek, sealed=wrapped[1:], aad=frame(WRAP_LABEL, WRAP_FORMAT, aad))
    if len(key) != KEY_BYTES:
        raise DecryptionError()
    return key
