"""Erasure tombstones: refuse what a stale edge sends about an erased subject.

A tombstone is ``sha256(salt || pseudonym)`` under the deployment's salt (one random row of
``erasure_salt``, created by the first erasure), with the erasure time. The server keeps no
erased pseudonym; whoever presents one (an upload) can be checked against the hashes. The
same salt and hash travel to the edges in the erasure feed event.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import delete, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session

from consent import erasure_hash

from ..tables.tombstone import SALT_ID, ErasureSalt, SubjectTombstone

_TOMBSTONE = SubjectTombstone.metadata.tables[SubjectTombstone.__tablename__]
_SALT = ErasureSalt.metadata.tables[ErasureSalt.__tablename__]


def _salt(session: Session, *, at: datetime | None) -> str | None:
    """Return the deployment's tombstone salt; create it when ``at`` is given and none exists."""
    connection = session.connection()
    row = connection.execute(sa_select(_SALT.c.salt).where(_SALT.c.id == SALT_ID)).first()
    if row is not None:
        return str(row[0])
    if at is None:
        return None
    salt = secrets.token_hex(16)
    connection.execute(insert(_SALT).values(id=SALT_ID, salt=salt, created_at=at))
    return salt


def _aware(value: datetime) -> datetime:
    """Core selects may return naive times on SQLite: make them UTC-aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def write_tombstone(
    *, session: Session, subject: str, receipt_id: str, at: datetime
) -> tuple[str, str]:
    """Tombstone an erased pseudonym (no commit; inside the erasure's transaction).

    Parameters
    ----------
    session : Session
        Session of the erasure.
    subject : str
        The erased pseudonym (hashed, never stored).
    receipt_id : str
        The erasure receipt's id.
    at : datetime
        Erasure time.

    Returns
    -------
    tuple[str, str]
        The salt (hex) and the hash, for the edges' erasure event.
    """
    salt = _salt(session, at=at)
    assert salt is not None  # created when missing
    digest = erasure_hash(salt, subject)
    connection = session.connection()
    connection.execute(delete(_TOMBSTONE).where(_TOMBSTONE.c.subject_hash == digest))
    connection.execute(
        insert(_TOMBSTONE).values(subject_hash=digest, erased_at=at, receipt_id=receipt_id)
    )
    return salt, digest


def tombstones_of(*, session: Session, subjects: Iterable[str]) -> dict[str, datetime]:
    """Return which of ``subjects`` were erased, with their erasure time (one query per 500).

    Parameters
    ----------
    session : Session
        A session.
    subjects : Iterable[str]
        Pseudonyms (e.g. of a batch of uploads).

    Returns
    -------
    dict[str, datetime]
        Erasure time per tombstoned pseudonym; empty when none (or nothing was ever erased).
    """
    salt = _salt(session, at=None)
    if salt is None:
        return {}
    by_hash = {erasure_hash(salt, s): s for s in set(subjects)}
    hashes = sorted(by_hash)
    found: dict[str, datetime] = {}
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        rows = session.connection().execute(
            sa_select(_TOMBSTONE.c.subject_hash, _TOMBSTONE.c.erased_at).where(
                _TOMBSTONE.c.subject_hash.in_(chunk)
            )
        )
        for digest, erased_at in rows:
            found[by_hash[str(digest)]] = _aware(erased_at)
    return found
