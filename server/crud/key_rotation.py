"""Master-key rotation: re-wrap every subject's data key under a new master key.

Rotation is also what carries erasures into database backups: a backup taken before an
erasure still holds the erased subject's wrapped data key, which no key opens once the master
key it was wrapped under is retired. The data keys do not change, so no ciphertext is
rewritten.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import bindparam, func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from privacy import DecryptionError, MasterKeyRing, add_master_key, retire_master_keys

from ..audit.append import lock_chain
from ..tables.subject_key import SubjectKey
from .subject_keys import wrapped_of

logger = logging.getLogger(__name__)

_KEY = SubjectKey.metadata.tables[SubjectKey.__tablename__]
#: Rows re-wrapped per statement during a master-key rotation.
REWRAP_BATCH = 500
#: Rounds of re-wrapping a rotation tries before giving up on concurrent key creation.
MAX_REWRAP_ROUNDS = 5


@dataclass(frozen=True)
class RewrapReport:
    """What :func:`rewrap_subject_keys` did.

    Parameters
    ----------
    rewrapped : int
        Keys re-wrapped under the primary master key.
    unreadable : int
        Keys under a master key the ring does not hold (already unreadable; left as is).
    """

    rewrapped: int
    unreadable: int


def rewrap_subject_keys(
    *, session: Session, master_keys: MasterKeyRing, at: datetime
) -> RewrapReport:
    """Re-wrap every data key not under the ring's primary key (no commit).

    The data keys, and so every ciphertext, stay the same: only their wrapping changes.

    Parameters
    ----------
    session : Session
        A session (take the audit chain lock first when uploads may run).
    master_keys : MasterKeyRing
        The ring: its primary key wraps, the others unwrap.
    at : datetime
        Recorded as ``rewrapped_at``.

    Returns
    -------
    RewrapReport
        Counts of re-wrapped and unreadable keys.
    """
    connection = session.connection()
    primary = master_keys.primary.kid
    rewrapped = unreadable = 0
    after = ""
    while True:
        rows = connection.execute(
            sa_select(_KEY)
            .where(_KEY.c.master_kid != primary, _KEY.c.subject > after)
            .order_by(_KEY.c.subject)
            .limit(REWRAP_BATCH)
        ).all()
        if not rows:
            break
        after = str(rows[-1].subject)
        changes = []
        for row in rows:
            try:
                new = master_keys.rotate(wrapped_of(row), subject=str(row.subject))
            except DecryptionError:
                unreadable += 1
                continue
            changes.append({"key": row.subject, "kid": new.master_kid, "blob": new.blob})
        if changes:
            connection.execute(
                update(_KEY)
                .where(_KEY.c.subject == bindparam("key"))
                .values(
                    master_kid=bindparam("kid"), wrapped_key=bindparam("blob"), rewrapped_at=at
                ),
                changes,
            )
            rewrapped += len(changes)
    return RewrapReport(rewrapped=rewrapped, unreadable=unreadable)


def count_keys_not_under(*, session: Session, kid: str) -> int:
    """Return how many stored data keys are wrapped under another master key than ``kid``.

    Parameters
    ----------
    session : Session
        A session.
    kid : str
        A master key id.

    Returns
    -------
    int
        The count.
    """
    return int(
        session.connection()
        .execute(sa_select(func.count()).select_from(_KEY).where(_KEY.c.master_kid != kid))
        .scalar_one()
    )


@dataclass(frozen=True)
class MasterKeyRotation:
    """Result of :func:`rotate_master_key`.

    Parameters
    ----------
    primary_kid : str
        The new primary master key.
    retired_kids : tuple[str, ...]
        Master keys removed from the key file.
    rewrapped : int
        Data keys re-wrapped.
    unreadable : int
        Data keys that were already unreadable (their master key was missing).
    """

    primary_kid: str
    retired_kids: tuple[str, ...]
    rewrapped: int
    unreadable: int


def rotate_master_key(*, session: Session, key_file: Path, at: datetime) -> MasterKeyRotation:
    """Rotate the master key: new primary, re-wrap every data key, retire the old keys.

    This is also what makes erasures reach database backups: a backup taken before an
    erasure holds the erased subject's wrapped key, which no key opens once the master key
    it was wrapped under is retired (and its copies destroyed). Steps:

    1. add a new primary key to ``key_file`` (persisted before any row changes);
    2. under the audit chain lock, re-wrap every data key under it; commit; repeat until a
       pass finds nothing left (an upload that loaded the old ring may have created one);
    3. still holding the lock, retire the older keys from the file; commit.

    A crash leaves the file with both keys and a partly re-wrapped table, which still reads;
    run the rotation again.

    Parameters
    ----------
    session : Session
        A session (commits).
    key_file : Path
        The master key file (``ServerSettings.master_key_path``).
    at : datetime
        The rotation time (``rewrapped_at`` of the re-wrapped keys).

    Returns
    -------
    MasterKeyRotation
        The new primary key id, the retired ids and counts.

    Raises
    ------
    KeyFileError
        If the key file cannot be read or rewritten.
    RuntimeError
        If data keys wrapped under an old key kept appearing after 5 passes (nothing is
        retired; run it again).
    """
    # 1. New primary key, on disk first.
    ring = add_master_key(key_file)
    rewrapped = unreadable = 0
    # 2. Re-wrap until a locked pass finds nothing left to re-wrap.
    for _ in range(MAX_REWRAP_ROUNDS):
        lock_chain(session=session)
        report = rewrap_subject_keys(session=session, master_keys=ring, at=at)
        rewrapped += report.rewrapped
        unreadable = report.unreadable
        if report.rewrapped == 0:
            break
        session.commit()
    else:
        session.rollback()
        raise RuntimeError("data keys under old master keys kept appearing; run it again")
    # 3. Retire while the lock keeps new keys out, then release it.
    retired = retire_master_keys(key_file, keep=ring.primary.kid)
    session.commit()
    logger.info(
        "master key rotated to %s: %d data key(s) re-wrapped, %d unreadable, %d key(s) retired",
        ring.primary.kid,
        rewrapped,
        unreadable,
        len(retired),
    )
    return MasterKeyRotation(
        primary_kid=ring.primary.kid,
        retired_kids=tuple(retired),
        rewrapped=rewrapped,
        unreadable=unreadable,
    )
