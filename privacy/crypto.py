"""Record encryption recipes: AES-256-GCM under a subject's data key, bound to its row.

- :func:`encrypt_record` / :func:`decrypt_record` seal a record under a
  :class:`~privacy.keyring.DataKey` with a random 96-bit nonce; the data key's version is
  part of the associated data;
- :class:`FieldCipher` binds a profile field's ciphertext to (subject, field name, key
  version), so a ciphertext copied onto another row or subject does not open.

Data keys are created, wrapped and rotated by ``privacy.keyring``; erasing a subject destroys
its wrapped key (crypto-shredding). Every failure to decrypt raises one opaque
``DecryptionError``; no ``repr`` shows key material; nothing here logs.
"""

from __future__ import annotations

import os

from .errors import DecryptionError
from .hazmat.aead import RandomBytes, frame, open_sealed, seal
from .keyring import DataKey

#: First byte of every record ciphertext (the record format version).
RECORD_FORMAT = b"\x01"
_RECORD_LABEL = b"fedprofile/record/v1"
_FIELD_LABEL = b"fedprofile/profile-field/v1"


def encrypt_record(
    *, key: DataKey, plaintext: bytes, aad: bytes, random_bytes: RandomBytes = os.urandom
) -> bytes:
    """Seal a record under a data key (AES-256-GCM, random 96-bit nonce).

    Parameters
    ----------
    key : DataKey
        The data key; its version is bound into the associated data.
    plaintext : bytes
        The record.
    aad : bytes
        What the ciphertext is bound to (e.g. its row); needed again to decrypt.
    random_bytes : Callable[[int], bytes]
        Nonce source.

    Returns
    -------
    bytes
        ``format byte || nonce || ciphertext || tag`` (29 bytes longer than the plaintext).
    """
    return RECORD_FORMAT + seal(
        key=key._secret,
        plaintext=plaintext,
        aad=_record_aad(key.version, aad),
        random_bytes=random_bytes,
    )


def decrypt_record(*, key: DataKey, ciphertext: bytes, aad: bytes) -> bytes:
    """Open a record sealed by :func:`encrypt_record`.

    Parameters
    ----------
    key : DataKey
        The data key it was sealed under.
    ciphertext : bytes
        The sealed record.
    aad : bytes
        The associated data it was sealed with.

    Returns
    -------
    bytes
        The record.

    Raises
    ------
    DecryptionError
        For any failure (opaque): another key or key version, other associated data, edited
        or truncated bytes, unknown format.
    """
    if ciphertext[:1] != RECORD_FORMAT:
        raise DecryptionError()
    return open_sealed(key=key._secret, sealed=ciphertext[1:], aad=_record_aad(key.version, aad))


class FieldCipher:
    """Seals one subject's profile field values, each bound to (subject, field name, version).

    Parameters
    ----------
    subject : str
        The subject's pseudonym.
    data_key : DataKey
        The subject's data key.
    """

    __slots__ = ("_key", "_subject")

    def __init__(self, *, subject: str, data_key: DataKey) -> None:
        if not subject:
            raise ValueError("subject must not be empty")
        self._subject = subject
        self._key = data_key

    @property
    def subject(self) -> str:
        """The subject whose fields this cipher seals."""
        return self._subject

    @property
    def key_version(self) -> int:
        """Version of the data key (store it next to the ciphertext)."""
        return self._key.version

    def encrypt(
        self, *, field: str, plaintext: bytes, random_bytes: RandomBytes = os.urandom
    ) -> bytes:
        """Seal one field's value.

        Parameters
        ----------
        field : str
            The catalogued field name.
        plaintext : bytes
            The encoded value.
        random_bytes : Callable[[int], bytes]
            Nonce source.

        Returns
        -------
        bytes
            The ciphertext.
        """
        return encrypt_record(
            key=self._key, plaintext=plaintext, aad=self._aad(field), random_bytes=random_bytes
        )

    def decrypt(self, *, field: str, ciphertext: bytes) -> bytes:
        """Open one field's value.

        Parameters
        ----------
        field : str
            The field name the value was sealed for.
        ciphertext : bytes
            The sealed value.

        Returns
        -------
        bytes
            The encoded value.

        Raises
        ------
        DecryptionError
            If the ciphertext was sealed for another subject, field or key, or was edited.
        """
        return decrypt_record(key=self._key, ciphertext=ciphertext, aad=self._aad(field))

    def _aad(self, field: str) -> bytes:
        """Associated data of ``field`` for this subject."""
        return frame(_FIELD_LABEL, self._subject.encode(), field.encode())

    def __repr__(self) -> str:
        return f"FieldCipher(key_version={self._key.version}, key=<hidden>)"


def _record_aad(version: int, aad: bytes) -> bytes:
    """Associated data of a record: format, data key version and the caller's binding."""
    return frame(_RECORD_LABEL, RECORD_FORMAT, str(version).encode(), aad)
