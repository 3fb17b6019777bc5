"""Per-subject data keys and the master key ring that wraps them (envelope encryption).

- each subject gets a random AES-256 **data key** (:class:`DataKey`), used in memory only;
- it is stored **wrapped** (:class:`WrappedDataKey`) under the current :class:`MasterKey`
  of a :class:`MasterKeyRing`, bound to the subject, the key version and the master key id,
  so a wrapped key copied onto another subject's row does not open;
- the ring rotates like ``cryptography``'s ``MultiFernet``: the first key wraps, every key
  unwraps, :meth:`MasterKeyRing.rotate` re-wraps under the first.

Destroying a subject's wrapped key shreds everything sealed under its data key
(``privacy.crypto``), provided no copy of that wrapped key stays openable: copies in
database backups stop opening when the master key that wrapped them is retired
(``docs/keys.md``). Every failure to unwrap raises one opaque ``DecryptionError``; no
``repr`` shows key material; nothing here logs.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

from .errors import DecryptionError
from .hazmat.aead import KEY_BYTES, RandomBytes, frame, generate_key
from .hazmat.kdf import hkdf_sha256
from .hazmat.keywrap import unwrap_key, wrap_key

_SUBJECT_KEY_LABEL = b"fedprofile/subject-key/v1"
_KEK_INFO = b"fedprofile/master-kek/v1"
_KID_INFO = b"fedprofile/master-key-id/v1"
#: Prefix of master key ids.
MASTER_KID_PREFIX = "mk_"


class DataKey:
    """A subject's AES-256 data key (keep it in memory only; store it wrapped).

    Parameters
    ----------
    secret : bytes
        32 key bytes.
    version : int
        Generation of the subject's data key (1 for the first), part of the associated
        data of everything sealed under it.

    Raises
    ------
    ValueError
        If ``secret`` is not 32 bytes or ``version`` is below 1.
    """

    # ``_secret`` is read inside the privacy room only (``privacy.crypto``); nothing else
    # exposes the key bytes.
    __slots__ = ("_secret", "_version")

    def __init__(self, secret: bytes, *, version: int = 1) -> None:
        if len(secret) != KEY_BYTES:
            raise ValueError(f"secret must be {KEY_BYTES} bytes")
        if version < 1:
            raise ValueError("version must be >= 1")
        self._secret = secret
        self._version = version

    @classmethod
    def generate(cls, *, version: int = 1, random_bytes: RandomBytes = os.urandom) -> Self:
        """Return a new random data key.

        Parameters
        ----------
        version : int
            Its generation.
        random_bytes : Callable[[int], bytes]
            Randomness source (the OS CSPRNG by default).

        Returns
        -------
        DataKey
            The key.
        """
        return cls(generate_key(random_bytes), version=version)

    @property
    def version(self) -> int:
        """Generation of the key."""
        return self._version

    def __repr__(self) -> str:
        return f"DataKey(version={self._version}, secret=<hidden>)"


@dataclass(frozen=True)
class WrappedDataKey:
    """A data key sealed under a master key: what the database stores.

    Parameters
    ----------
    master_kid : str
        Id of the master key that wrapped it.
    version : int
        Generation of the data key.
    blob : bytes
        The wrapped key (61 bytes).
    """

    master_kid: str
    version: int
    blob: bytes = field(repr=False)


class MasterKey:
    """A key-encryption key; its id is a public fingerprint derived from it.

    The 32 bytes are never used directly: the wrapping key and the id are derived from them
    with HKDF under separate labels.

    Parameters
    ----------
    secret : bytes
        32 random bytes (a master key file holds them hex-encoded).

    Raises
    ------
    ValueError
        If ``secret`` is not 32 bytes.
    """

    __slots__ = ("_kek", "_kid")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise ValueError(f"secret must be {KEY_BYTES} bytes")
        self._kek = hkdf_sha256(key=secret, info=_KEK_INFO)
        self._kid = MASTER_KID_PREFIX + hkdf_sha256(key=secret, info=_KID_INFO, length=8).hex()

    @classmethod
    def generate(cls, *, random_bytes: RandomBytes = os.urandom) -> Self:
        """Return a new random master key.

        Parameters
        ----------
        random_bytes : Callable[[int], bytes]
            Randomness source (the OS CSPRNG by default).

        Returns
        -------
        MasterKey
            The key.
        """
        return cls(generate_key(random_bytes))

    @property
    def kid(self) -> str:
        """Public id: ``mk_`` and 16 hex digits."""
        return self._kid

    def wrap(
        self, data_key: DataKey, *, subject: str, random_bytes: RandomBytes = os.urandom
    ) -> WrappedDataKey:
        """Wrap ``data_key``, bound to ``subject``, its version and this key's id.

        Parameters
        ----------
        data_key : DataKey
            The key to wrap.
        subject : str
            Owner of the key (its pseudonym).
        random_bytes : Callable[[int], bytes]
            Nonce source.

        Returns
        -------
        WrappedDataKey
            The wrapped key.
        """
        blob = wrap_key(
            kek=self._kek,
            key=data_key._secret,
            aad=_wrap_aad(subject=subject, version=data_key.version, kid=self._kid),
            random_bytes=random_bytes,
        )
        return WrappedDataKey(master_kid=self._kid, version=data_key.version, blob=blob)

    def unwrap(self, wrapped: WrappedDataKey, *, subject: str) -> DataKey:
        """Open a key this master key wrapped for ``subject``.

        Parameters
        ----------
        wrapped : WrappedDataKey
            The wrapped key.
        subject : str
            Its owner.

        Returns
        -------
        DataKey
            The data key.

        Raises
        ------
        DecryptionError
            For any failure (opaque): another master key, another subject or version, edited
            bytes.
        """
        if wrapped.version < 1 or not hmac.compare_digest(wrapped.master_kid, self._kid):
            raise DecryptionError()
        secret = unwrap_key(
            kek=self._kek,
            wrapped=wrapped.blob,
            aad=_wrap_aad(subject=subject, version=wrapped.version, kid=self._kid),
        )
        return DataKey(secret, version=wrapped.version)

    def __repr__(self) -> str:
        return f"MasterKey(kid={self._kid!r}, secret=<hidden>)"


class MasterKeyRing:
    """Master keys in rotation: the first wraps, all of them unwrap (like ``MultiFernet``).

    Parameters
    ----------
    keys : Sequence[MasterKey]
        The primary key first, then older keys still needed to unwrap data keys that have not
        been re-wrapped yet.

    Raises
    ------
    ValueError
        If ``keys`` is empty or holds the same key twice.
    """

    def __init__(self, keys: Sequence[MasterKey]) -> None:
        if not keys:
            raise ValueError("keys must hold at least one master key")
        self._keys = tuple(keys)
        self._by_kid = {key.kid: key for key in self._keys}
        if len(self._by_kid) != len(self._keys):
            raise ValueError("keys must not hold the same master key twice")

    @classmethod
    def generate(cls, *, random_bytes: RandomBytes = os.urandom) -> Self:
        """Return a ring of one new random key (ephemeral: nothing is written anywhere).

        Parameters
        ----------
        random_bytes : Callable[[int], bytes]
            Randomness source.

        Returns
        -------
        MasterKeyRing
            The ring.
        """
        return cls([MasterKey.generate(random_bytes=random_bytes)])

    @property
    def primary(self) -> MasterKey:
        """The key new data keys are wrapped under."""
        return self._keys[0]

    @property
    def kids(self) -> tuple[str, ...]:
        """Ids of the ring's keys, primary first."""
        return tuple(key.kid for key in self._keys)

    def new_data_key(
        self, *, subject: str, version: int = 1, random_bytes: RandomBytes = os.urandom
    ) -> tuple[DataKey, WrappedDataKey]:
        """Create a data key for ``subject`` and wrap it under the primary key.

        Parameters
        ----------
        subject : str
            Owner of the key.
        version : int
            Generation of the new key.
        random_bytes : Callable[[int], bytes]
            Randomness source.

        Returns
        -------
        tuple[DataKey, WrappedDataKey]
            The key (to use now) and its wrapped form (to store).
        """
        data_key = DataKey.generate(version=version, random_bytes=random_bytes)
        return data_key, self.primary.wrap(data_key, subject=subject, random_bytes=random_bytes)

    def unwrap(self, wrapped: WrappedDataKey, *, subject: str) -> DataKey:
        """Open a wrapped data key with whichever ring key wrapped it.

        Parameters
        ----------
        wrapped : WrappedDataKey
            The wrapped key.
        subject : str
            Its owner.

        Returns
        -------
        DataKey
            The data key.

        Raises
        ------
        DecryptionError
            If no key of the ring wrapped it (e.g. its master key was retired), or for any
            other failure (opaque).
        """
        key = self._by_kid.get(wrapped.master_kid)
        if key is None:
            raise DecryptionError()
        return key.unwrap(wrapped, subject=subject)

    def needs_rotation(self, wrapped: WrappedDataKey) -> bool:
        """Whether ``wrapped`` is under another key than the primary one.

        Parameters
        ----------
        wrapped : WrappedDataKey
            A wrapped key.

        Returns
        -------
        bool
            True if :meth:`rotate` would re-wrap it.
        """
        return wrapped.master_kid != self.primary.kid

    def rotate(
        self, wrapped: WrappedDataKey, *, subject: str, random_bytes: RandomBytes = os.urandom
    ) -> WrappedDataKey:
        """Re-wrap a data key under the primary key (unchanged if it already is).

        The data key itself, and so every ciphertext under it, stays the same.

        Parameters
        ----------
        wrapped : WrappedDataKey
            The wrapped key.
        subject : str
            Its owner.
        random_bytes : Callable[[int], bytes]
            Nonce source.

        Returns
        -------
        WrappedDataKey
            The key wrapped under :attr:`primary`.

        Raises
        ------
        DecryptionError
            If the ring cannot unwrap it.
        """
        if not self.needs_rotation(wrapped):
            return wrapped
        data_key = self.unwrap(wrapped, subject=subject)
        return self.primary.wrap(data_key, subject=subject, random_bytes=random_bytes)

    def __repr__(self) -> str:
        return f"MasterKeyRing(kids={list(self.kids)!r})"


def _wrap_aad(*, subject: str, version: int, kid: str) -> bytes:
    """Associated data of a subject's wrapped data key."""
    return frame(_SUBJECT_KEY_LABEL, subject.encode(), str(version).encode(), kid.encode())
