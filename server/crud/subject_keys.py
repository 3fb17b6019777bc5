"""Per-subject data keys: create on first sensitive field, open for reads, destroy, move.

Each subject with sensitive fields has one random data key, stored only wrapped under the
master key ring (``server.tables.subject_key``). Writers of this table take the audit chain's
lock first (uploads already do), so a master-key rotation (``server.crud.key_rotation``)
never races an upload that creates a key.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session

from privacy import FieldCipher, MasterKeyRing, WrappedDataKey

from ..tables.subject_key import SubjectKey

logger = logging.getLogger(__name__)

_KEY = SubjectKey.metadata.tables[SubjectKey.__tablename__]


def wrapped_of(row: Any) -> WrappedDataKey:
    """Return the wrapped key held by a ``subject_key`` row.

    Parameters
    ----------
    row : Any
        A result row with the table's columns.

    Returns
    -------
    WrappedDataKey
        Its master key id, key version and wrapped bytes.
    """
    return WrappedDataKey(
        master_kid=str(row.master_kid), version=int(row.key_version), blob=bytes(row.wrapped_key)
    )


class SubjectKeys:
    """The data keys of one batch's subjects: loaded on first need, created when missing.

    Parameters
    ----------
    session : Session
        Session of the batch's transaction (the audit chain lock already taken).
    subjects : Iterable[str]
        Pseudonyms of the batch; their wrapped keys are loaded in one query on first use.
    master_keys : MasterKeyRing
        The ring in force; new keys are wrapped under its primary key.
    """

    def __init__(
        self, *, session: Session, subjects: Iterable[str], master_keys: MasterKeyRing
    ) -> None:
        self._session = session
        self._subjects = sorted(set(subjects))
        self._ring = master_keys
        self._wrapped: dict[str, WrappedDataKey] | None = None
        self._ciphers: dict[str, FieldCipher] = {}
        self._new: list[dict[str, Any]] = []

    def cipher(self, subject: str, *, at: datetime) -> FieldCipher:
        """Return the subject's field cipher, creating its data key if it has none.

        Parameters
        ----------
        subject : str
            A pseudonym of the batch.
        at : datetime
            Creation time recorded for a new key.

        Returns
        -------
        FieldCipher
            The cipher (a new key is inserted by :meth:`flush`).

        Raises
        ------
        DecryptionError
            If the stored key cannot be unwrapped with the ring (opaque).
        """
        cached = self._ciphers.get(subject)
        if cached is not None:
            return cached
        stored = self._load().get(subject)
        if stored is not None:
            data_key = self._ring.unwrap(stored, subject=subject)
        else:
            data_key, wrapped = self._ring.new_data_key(subject=subject)
            self._new.append(
                {
                    "subject": subject,
                    "key_version": wrapped.version,
                    "master_kid": wrapped.master_kid,
                    "wrapped_key": wrapped.blob,
                    "created_at": at,
                    "rewrapped_at": None,
                }
            )
        cipher = FieldCipher(subject=subject, data_key=data_key)
        self._ciphers[subject] = cipher
        return cipher

    def flush(self) -> None:
        """Insert the keys created by this batch (after their subject rows); no commit."""
        if self._new:
            self._session.connection().execute(insert(_KEY), self._new)
            logger.info("created %d subject data key(s)", len(self._new))
            self._new = []

    def _load(self) -> dict[str, WrappedDataKey]:
        """Load the batch's wrapped keys once."""
        if self._wrapped is None:
            rows = (
                self._session.connection()
                .execute(sa_select(_KEY).where(_KEY.c.subject.in_(self._subjects)))
                .all()
            )
            self._wrapped = {str(r.subject): wrapped_of(r) for r in rows}
        return self._wrapped


def subject_cipher(
    *, session: Session, subject: str, master_keys: MasterKeyRing
) -> FieldCipher | None:
    """Return the cipher of a subject's sealed fields, for reading.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym.
    master_keys : MasterKeyRing
        The ring in force.

    Returns
    -------
    FieldCipher or None
        The cipher, or None when the subject has no data key (never stored a sensitive
        field, or was erased).

    Raises
    ------
    DecryptionError
        If the stored key cannot be unwrapped with the ring (opaque).
    """
    row = session.connection().execute(sa_select(_KEY).where(_KEY.c.subject == subject)).first()
    if row is None:
        return None
    data_key = master_keys.unwrap(wrapped_of(row), subject=subject)
    return FieldCipher(subject=subject, data_key=data_key)


@dataclass(frozen=True)
class KeyDestruction:
    """Evidence that a subject's data key was destroyed (for the erasure receipt).

    Parameters
    ----------
    master_kid : str
        Master key the destroyed key was wrapped under; database backups taken before the
        erasure hold the wrapped key until this master key is retired.
    key_version : int
        Version of the destroyed data key.
    wrapped_key_sha256 : str
        SHA-256 (hex) of the destroyed wrapped key, to match it against a backup.
    created_at : datetime
        When the key was created.
    """

    master_kid: str
    key_version: int
    wrapped_key_sha256: str
    created_at: datetime


def destroy_subject_key(*, session: Session, subject: str) -> KeyDestruction | None:
    """Delete the subject's wrapped data key (the crypto-shredding step; no commit).

    Parameters
    ----------
    session : Session
        Session of the enclosing erasure.
    subject : str
        The pseudonym.

    Returns
    -------
    KeyDestruction or None
        Evidence of the destroyed key, or None when the subject had none.
    """
    connection = session.connection()
    row = connection.execute(sa_select(_KEY).where(_KEY.c.subject == subject)).first()
    if row is None:
        return None
    connection.execute(delete(_KEY).where(_KEY.c.subject == subject))
    return KeyDestruction(
        master_kid=str(row.master_kid),
        key_version=int(row.key_version),
        wrapped_key_sha256=hashlib.sha256(bytes(row.wrapped_key)).hexdigest(),
        created_at=row.created_at,
    )


def rebind_subject_key(
    *, session: Session, old: str, new: str, master_keys: MasterKeyRing
) -> tuple[FieldCipher, FieldCipher] | None:
    """Move a subject's data key to its re-keyed pseudonym (tenant key rotation; no commit).

    The key is unwrapped for ``old`` and re-wrapped for ``new`` under the primary key; the
    same data key serves both ciphers, so the caller re-seals each field by decrypting with
    the first and encrypting with the second (the associated data names the subject). The
    ``new`` subject row must exist already.

    Parameters
    ----------
    session : Session
        Session of the enclosing re-keying.
    old : str
        The previous pseudonym.
    new : str
        The re-keyed pseudonym.
    master_keys : MasterKeyRing
        The ring in force.

    Returns
    -------
    tuple[FieldCipher, FieldCipher] or None
        ``(cipher for old, cipher for new)``, or None when ``old`` has no data key.

    Raises
    ------
    DecryptionError
        If the stored key cannot be unwrapped (opaque).
    """
    connection = session.connection()
    row = connection.execute(sa_select(_KEY).where(_KEY.c.subject == old)).first()
    if row is None:
        return None
    data_key = master_keys.unwrap(wrapped_of(row), subject=old)
    wrapped = master_keys.primary.wrap(data_key, subject=new)
    connection.execute(delete(_KEY).where(_KEY.c.subject == old))
    connection.execute(
        insert(_KEY),
        [
            {
                "subject": new,
                "key_version": wrapped.version,
                "master_kid": wrapped.master_kid,
                "wrapped_key": wrapped.blob,
                "created_at": row.created_at,
                "rewrapped_at": row.rewrapped_at,
            }
        ],
    )
    return (
        FieldCipher(subject=old, data_key=data_key),
        FieldCipher(subject=new, data_key=data_key),
    )
