"""Signatures for evidence: Ed25519 over canonical JSON.

Consent receipts, erasure receipts and audit-log checkpoints are evidence a subject or a
regulator may check without trusting our database (PIPL Art. 69 puts the burden of proof on
the processor). Each is a JSON document signed with the server's Ed25519 key; anyone holding
the public key can verify it offline. Canonical JSON (sorted keys, no insignificant
whitespace, UTF-8, no NaN) makes the signed bytes independent of how the document was built.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import DecryptionError, KeyFileError
from .keys import check_private_mode

SIGNATURE_ALGORITHM = "Ed25519"


def canonical_json(document: Any) -> bytes:
    """Return the canonical UTF-8 JSON encoding of ``document``.

    Parameters
    ----------
    document : Any
        JSON-serialisable data (dicts, lists, strings, numbers, booleans, None).

    Returns
    -------
    bytes
        Sorted keys, ``,``/``:`` separators, non-ASCII kept as UTF-8.

    Raises
    ------
    ValueError
        If the document holds NaN or infinity (not representable in JSON).
    """
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VerifyKey:
    """A public key that checks signatures (safe to publish).

    Parameters
    ----------
    raw : bytes
        The 32-byte Ed25519 public key.
    """

    raw: bytes

    @property
    def key_id(self) -> str:
        """Short, stable id of the key (first 16 hex digits of its SHA-256)."""
        return hashlib.sha256(self.raw).hexdigest()[:16]

    def to_text(self) -> str:
        """Return the key as unpadded base64url, for documents and console display."""
        return _b64(self.raw)

    @classmethod
    def from_text(cls, text: str) -> VerifyKey:
        """Parse ``to_text`` output.

        Raises
        ------
        ValueError
            If the text is not a 32-byte base64url key.
        """
        raw = _unb64(text)
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        return cls(raw)

    def verify(self, document: Any, signature: str) -> None:
        """Check ``signature`` over the canonical JSON of ``document``.

        Raises
        ------
        DecryptionError
            If the signature does not verify (deliberately opaque).
        """
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(
                _unb64(signature), canonical_json(document)
            )
        except (InvalidSignature, ValueError):
            raise DecryptionError("signature does not verify") from None


class SigningKey:
    """An Ed25519 private key that signs evidence documents.

    Parameters
    ----------
    private_key : Ed25519PrivateKey
        The key; build it with ``generate`` or ``load_signing_key_file``.
    """

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.verify_key.key_id!r})"

    @classmethod
    def generate(cls) -> SigningKey:
        """Return a new random key."""
        return cls(Ed25519PrivateKey.generate())

    @property
    def verify_key(self) -> VerifyKey:
        """The matching public key."""
        raw = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return VerifyKey(raw)

    def sign(self, document: Any) -> str:
        """Return the base64url Ed25519 signature over the canonical JSON of ``document``."""
        return _b64(self._key.sign(canonical_json(document)))

    def signed(self, document: dict[str, Any]) -> dict[str, Any]:
        """Return ``{"document", "signature", "algorithm", "key_id", "public_key"}``."""
        key = self.verify_key
        return {
            "document": document,
            "signature": self.sign(document),
            "algorithm": SIGNATURE_ALGORITHM,
            "key_id": key.key_id,
            "public_key": key.to_text(),
        }


def verify_signed(envelope: dict[str, Any], *, trusted: VerifyKey | None = None) -> None:
    """Verify a ``SigningKey.signed`` envelope.

    Parameters
    ----------
    envelope : dict[str, Any]
        The signed envelope.
    trusted : VerifyKey or None
        The key the envelope must be signed with; ``None`` uses the envelope's own public key
        (checks integrity only: pin the key to check authenticity).

    Raises
    ------
    DecryptionError
        If the envelope is malformed, signed by another key, or does not verify.
    """
    try:
        key = trusted or VerifyKey.from_text(str(envelope["public_key"]))
        if envelope.get("algorithm") != SIGNATURE_ALGORITHM or envelope.get("key_id") != key.key_id:
            raise DecryptionError("signature does not verify")
        key.verify(envelope["document"], str(envelope["signature"]))
    except (KeyError, TypeError, ValueError):
        raise DecryptionError("signature does not verify") from None


def create_signing_key_file(path: Path) -> SigningKey:
    """Create a new Ed25519 key file (PKCS#8 PEM, mode 0600) and return the key.

    Raises
    ------
    KeyFileError
        If the file exists (keys are never overwritten) or cannot be written.
    """
    key = SigningKey.generate()
    pem = key._key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def load_signing_key_file(path: Path) -> SigningKey:
    """Load an Ed25519 key file, refusing files that group or others can read.

    Raises
    ------
    KeyFileError
        If the file is missing, exposed, or not an Ed25519 private key.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist; create it first") from None
    except OSError:
        raise KeyFileError(f"key file {path} cannot be read") from None
    check_private_mode(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"key file {path} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"key file {path} does not hold an Ed25519 key")
    return SigningKey(key)


def load_or_create_signing_key_file(path: Path) -> SigningKey:
    """Load the signing key at ``path``, creating it first if it does not exist."""
    if not path.exists():
        return create_signing_key_file(path)
    return load_signing_key_file(path)
