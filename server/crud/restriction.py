"""Restriction (kept, not used) and the upload gates: restricted, erased, suppressed fields.

A restricted subject (PIPL Art. 44, GDPR Art. 18) stays stored but is not used: uploads are
refused with ``subject_restricted``, reads return no field, the edges are told through the
feed and leave it out of training. Lifting the restriction is another request.

:class:`UploadGates` answers, for one batch of uploads, which subjects are restricted or
erased (tombstoned) and which of their fields are suppressed (rectified or deleted); the
upload path turns each into a refusal with a stable reason code.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Self

from sqlalchemy import delete, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session

from consent import SubjectEventKind

from ..errors import Refusal
from ..tables.field_suppression import FieldSuppression
from ..tables.restriction import SubjectRestriction
from .subject import touch_subject
from .subject_events import append_subject_event
from .tombstone import tombstones_of

logger = logging.getLogger(__name__)

_RESTRICTION = SubjectRestriction.metadata.tables[SubjectRestriction.__tablename__]
_SUPPRESSION = FieldSuppression.metadata.tables[FieldSuppression.__tablename__]

#: Refusal reason codes of the gates (beyond ``consent.DecisionReason``).
SUBJECT_RESTRICTED = "subject_restricted"
SUBJECT_ERASED = "subject_erased"
FIELD_SUPPRESSED = "field_suppressed"


def restricted_among(*, session: Session, subjects: Iterable[str]) -> set[str]:
    """Return which of ``subjects`` are restricted (one query per 500).

    Parameters
    ----------
    session : Session
        A session.
    subjects : Iterable[str]
        Pseudonyms.

    Returns
    -------
    set[str]
        The restricted ones.
    """
    wanted = sorted(set(subjects))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.connection().execute(
            sa_select(_RESTRICTION.c.subject).where(_RESTRICTION.c.subject.in_(chunk))
        )
        found.update(str(r[0]) for r in rows)
    return found


def is_restricted(*, session: Session, subject: str) -> bool:
    """Whether ``subject`` is restricted.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym.

    Returns
    -------
    bool
        True while a restriction holds.
    """
    return bool(restricted_among(session=session, subjects=[subject]))


def set_restriction(
    *, session: Session, subject: str, restricted: bool, at: datetime, request_id: str | None
) -> bool:
    """Restrict a subject or lift its restriction, and tell the edges (no commit).

    The caller holds the audit chain's lock and writes the audit entry.

    Parameters
    ----------
    session : Session
        Session of the enclosing audited write.
    subject : str
        The pseudonym (a subject row is created if the server never saw it, so the
        restriction also holds for uploads that come later).
    restricted : bool
        True to restrict, False to lift.
    at : datetime
        When.
    request_id : str or None
        The request that asked for it.

    Returns
    -------
    bool
        Whether the state changed (restricting a restricted subject changes nothing, but
        the edges are told again).
    """
    connection = session.connection()
    held = is_restricted(session=session, subject=subject)
    if restricted and not held:
        touch_subject(session=session, subject=subject, at=at)
        session.flush()
        connection.execute(
            insert(_RESTRICTION).values(subject=subject, restricted_at=at, request_id=request_id)
        )
    elif not restricted and held:
        connection.execute(delete(_RESTRICTION).where(_RESTRICTION.c.subject == subject))
    kind = SubjectEventKind.RESTRICTION if restricted else SubjectEventKind.RESTRICTION_LIFTED
    if restricted or held:
        append_subject_event(
            session=session, kind=kind, at=at, subject=subject, request_id=request_id
        )
    logger.info("restriction %s (request %s)", "set" if restricted else "lifted", request_id)
    return restricted != held


def suppressed_fields(*, session: Session, subjects: Iterable[str]) -> dict[str, set[str]]:
    """Return the suppressed field names of each of ``subjects`` that has any.

    Parameters
    ----------
    session : Session
        A session.
    subjects : Iterable[str]
        Pseudonyms.

    Returns
    -------
    dict[str, set[str]]
        Field names per subject.
    """
    wanted = sorted(set(subjects))
    found: dict[str, set[str]] = defaultdict(set)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.connection().execute(
            sa_select(_SUPPRESSION.c.subject, _SUPPRESSION.c.field).where(
                _SUPPRESSION.c.subject.in_(chunk)
            )
        )
        for subject, name in rows:
            found[str(subject)].add(str(name))
    return dict(found)


def suppress_field(
    *,
    session: Session,
    subject: str,
    field: str,
    reason: str,
    at: datetime,
    request_id: str | None = None,
) -> None:
    """Record that edges must not upload ``field`` of ``subject`` again, and tell them.

    No commit; the caller holds the audit chain's lock and audits. Suppressing an already
    suppressed field updates its reason and time (the edges are told again).

    Parameters
    ----------
    session : Session
        Session of the enclosing audited write.
    subject : str
        The pseudonym (its subject row must exist).
    field : str
        The catalogued field name.
    reason : str
        ``rectified``, ``rectified_deleted`` or ``deleted_by_subject``.
    at : datetime
        When.
    request_id : str or None
        The request that caused it.
    """
    connection = session.connection()
    connection.execute(
        delete(_SUPPRESSION).where(
            _SUPPRESSION.c.subject == subject, _SUPPRESSION.c.field == field
        )
    )
    connection.execute(
        insert(_SUPPRESSION).values(
            subject=subject, field=field, reason=reason, suppressed_at=at, request_id=request_id
        )
    )
    append_subject_event(
        session=session,
        kind=SubjectEventKind.FIELD_SUPPRESSED,
        at=at,
        subject=subject,
        field=field,
        reason=reason,
        request_id=request_id,
    )


@dataclass(frozen=True)
class UploadGates:
    """What keeps a batch's subjects or fields from being stored, loaded in three queries.

    Parameters
    ----------
    restricted : frozenset[str]
        Restricted subjects of the batch.
    erased : dict[str, datetime]
        Tombstoned subjects of the batch, with their erasure time.
    suppressed : dict[str, set[str]]
        Suppressed field names per subject.
    """

    restricted: frozenset[str] = frozenset()
    erased: dict[str, datetime] = field(default_factory=dict)
    suppressed: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, *, session: Session, subjects: Collection[str]) -> Self:
        """Load the gates of a batch's subjects.

        Parameters
        ----------
        session : Session
            Session of the batch (the chain lock already taken).
        subjects : Collection[str]
            The batch's pseudonyms.

        Returns
        -------
        UploadGates
            The loaded gates.
        """
        return cls(
            restricted=frozenset(restricted_among(session=session, subjects=subjects)),
            erased=tombstones_of(session=session, subjects=subjects),
            suppressed=suppressed_fields(session=session, subjects=subjects),
        )

    def refusals(
        self, *, subject: str, fields: Sequence[str], renewed_after_erasure: bool
    ) -> list[Refusal]:
        """Return the gate refusals of one upload (empty when nothing stops it).

        Parameters
        ----------
        subject : str
            The upload's pseudonym.
        fields : Sequence[str]
            The uploaded field names.
        renewed_after_erasure : bool
            Whether the server holds a consent event of the subject that occurred after its
            erasure (a new relationship, not a stale edge re-sending old data).

        Returns
        -------
        list[Refusal]
            One per field: every field when the subject is restricted or erased, else one
            per suppressed field.
        """
        if subject in self.erased and not renewed_after_erasure:
            return [Refusal(f, SUBJECT_ERASED, f"{f}: the subject was erased") for f in fields]
        if subject in self.restricted:
            return [
                Refusal(f, SUBJECT_RESTRICTED, f"{f}: processing of the subject is restricted")
                for f in fields
            ]
        hidden = self.suppressed.get(subject, set())
        return [
            Refusal(f, FIELD_SUPPRESSED, f"{f}: corrected or deleted on the subject's request")
            for f in fields
            if f in hidden
        ]
