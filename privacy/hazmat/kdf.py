"""HKDF-SHA256 (RFC 5869): derive independent sub-keys from one secret.

Hazmat: the ``info`` label is what separates derived keys; every use in fedprofile has its
own label (``fedprofile/<purpose>/v<n>``).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: Largest output HKDF-SHA256 can produce (255 hash lengths).
MAX_LENGTH = 255 * 32


def hkdf_sha256(*, key: bytes, info: bytes, length: int = 32, salt: bytes | None = None) -> bytes:
    """Derive ``length`` bytes from ``key`` for the use named by ``info``.

    Parameters
    ----------
    key : bytes
        Input keying material (at least 16 bytes; fedprofile keys are 32 random bytes).
    info : bytes
        Context label; different labels give independent outputs.
    length : int
        Output length in bytes (1 to 8160).
    salt : bytes or None
        Optional salt; ``None`` means a string of zeros (RFC 5869 §2.2).

    Returns
    -------
    bytes
        The derived bytes.

    Raises
    ------
    ValueError
        If ``key`` is shorter than 16 bytes or ``length`` is out of range.
    """
    if len(key) < 16:
        raise ValueError("key must hold at least 16 bytes")
    if not 1 <= length <= MAX_LENGTH:
        raise ValueError(f"length must be between 1 and {MAX_LENGTH}")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key)
