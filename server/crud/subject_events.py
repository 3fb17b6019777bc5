"""The edge feed: subject events for every edge, merged with consent events from elsewhere.

Two sources make one ordered feed:

- ``consent_record`` rows not sent by the calling edge (other edges' and self-service
  events), so that for every subject an edge knows, its ``ConsentState`` equals the
  server's;
- ``subject_event`` rows (erasures, restrictions and lifts, suppressed fields), appended
  with :func:`append_subject_event`.

The cursor is opaque to edges: ``v1:<last consent id>:<last event id>``. Both sources are
read in id order and merged by time without reordering either one, so a page is a prefix of
each source and the cursor never skips a row. Ids grow in commit order because every writer
of either table holds the audit chain's lock (``server.audit.append.lock_chain``) when it
inserts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session

from consent import SubjectEventKind, SubjectEventPage, SubjectEventWire

from ..errors import InvalidCursorError
from ..tables.consent_record import ConsentRecord
from ..tables.subject_event import SubjectEvent
from .consent import to_event

logger = logging.getLogger(__name__)

_EVENT = SubjectEvent.metadata.tables[SubjectEvent.__tablename__]
_RECORD = ConsentRecord.metadata.tables[ConsentRecord.__tablename__]
#: Version prefix of the cursor.
CURSOR_VERSION = "v1"
#: Most events one page may hold.
MAX_PAGE = 1000


#: A feed cursor that this server did not issue (the route answers 422).
CursorError = InvalidCursorError


@dataclass(frozen=True)
class FeedCursor:
    """Position in the feed: the last consent record id and subject event id consumed.

    Parameters
    ----------
    consent_id : int
        Last ``consent_record.id`` already delivered (0 at the start).
    event_id : int
        Last ``subject_event.id`` already delivered (0 at the start).
    """

    consent_id: int = 0
    event_id: int = 0

    @classmethod
    def parse(cls, text: str | None) -> FeedCursor:
        """Parse a cursor; ``None`` or ``""`` is the start of the feed.

        Raises
        ------
        CursorError
            If the text is not ``v1:<int>:<int>`` with non-negative numbers.
        """
        if not text:
            return cls()
        parts = text.split(":")
        if len(parts) != 3 or parts[0] != CURSOR_VERSION:
            raise CursorError("cursor must be one returned by this feed (v1:<n>:<n>)")
        try:
            consent_id, event_id = int(parts[1]), int(parts[2])
        except ValueError:
            raise CursorError("cursor must be one returned by this feed (v1:<n>:<n>)") from None
        if consent_id < 0 or event_id < 0:
            raise CursorError("cursor positions must not be negative")
        return cls(consent_id, event_id)

    def __str__(self) -> str:
        return f"{CURSOR_VERSION}:{self.consent_id}:{self.event_id}"


def append_subject_event(
    *,
    session: Session,
    kind: SubjectEventKind,
    at: datetime,
    subject: str | None = None,
    field: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    subject_hash: str | None = None,
    hash_salt: str | None = None,
) -> None:
    """Append one event to the feed (no commit; hold the audit chain's lock first).

    Parameters
    ----------
    session : Session
        Session of the enclosing audited write.
    kind : SubjectEventKind
        What happened (not ``consent``: consent events are read from ``consent_record``).
    at : datetime
        When it happened.
    subject : str or None
        The pseudonym (``None`` for an erasure).
    field : str or None
        The field of a ``field_suppressed`` event.
    reason : str or None
        A reason code.
    request_id : str or None
        The data-subject request that caused it.
    subject_hash, hash_salt : str or None
        An erasure's salted hash of the pseudonym and its salt.

    Raises
    ------
    ValueError
        If ``kind`` is ``consent``, or an erasure names its subject or lacks its hash.
    """
    if kind is SubjectEventKind.CONSENT:
        raise ValueError("consent events are served from consent_record, not appended")
    if kind is SubjectEventKind.ERASURE and (subject is not None or subject_hash is None):
        raise ValueError("an erasure event carries a salted hash, never the pseudonym")
    session.connection().execute(
        insert(_EVENT).values(
            kind=kind.value,
            subject=subject,
            subject_hash=subject_hash,
            hash_salt=hash_salt,
            field=field,
            reason=reason,
            request_id=request_id,
            created_at=at,
        )
    )


def _consent_rows(session: Session, *, edge_id: str, after: int, limit: int) -> list[_Item]:
    """Consent records after ``after`` not sent by ``edge_id``, in id order."""
    stmt = (
        sa_select(_RECORD)
        .where(
            _RECORD.c.id > after,
            or_(_RECORD.c.edge_id.is_(None), _RECORD.c.edge_id != edge_id),
        )
        .order_by(_RECORD.c.id)
        .limit(limit)
    )
    items = []
    for row in session.connection().execute(stmt).mappings():
        record = ConsentRecord.model_validate(dict(row))
        wire = SubjectEventWire(
            kind=SubjectEventKind.CONSENT,
            occurred_at=record.received_at,
            subject=record.subject,
            consent=to_event(record),
        )
        items.append(_Item(0, int(row["id"]), wire))
    return items


def _event_rows(session: Session, *, after: int, limit: int) -> list[_Item]:
    """Subject events after ``after``, in id order."""
    stmt = sa_select(_EVENT).where(_EVENT.c.id > after).order_by(_EVENT.c.id).limit(limit)
    items = []
    for row in session.connection().execute(stmt).mappings():
        wire = SubjectEventWire(
            kind=SubjectEventKind(row["kind"]),
            occurred_at=row["created_at"],
            subject=row["subject"],
            subject_hash=row["subject_hash"],
            hash_salt=row["hash_salt"],
            field=row["field"],
            reason=row["reason"],
        )
        items.append(_Item(1, int(row["id"]), wire))
    return items


@dataclass(frozen=True)
class _Item:
    """One feed item with its source (0 consent, 1 subject event) and id."""

    source: int
    row_id: int
    wire: SubjectEventWire


def _merge(first: Sequence[_Item], second: Sequence[_Item], limit: int) -> list[_Item]:
    """Merge two id-ordered lists by time, keeping each list's order; at most ``limit``."""
    merged: list[_Item] = []
    i = j = 0
    while len(merged) < limit and (i < len(first) or j < len(second)):
        take_first = j >= len(second) or (
            i < len(first) and first[i].wire.occurred_at <= second[j].wire.occurred_at
        )
        if take_first:
            merged.append(first[i])
            i += 1
        else:
            merged.append(second[j])
            j += 1
    return merged


def read_feed(
    *, session: Session, edge_id: str, after: str | None, limit: int = 500
) -> SubjectEventPage:
    """Return the next page of the feed for one edge.

    Parameters
    ----------
    session : Session
        A session.
    edge_id : str
        The calling edge (its own consent events are left out).
    after : str or None
        The cursor of the previous page; ``None`` starts from the beginning.
    limit : int
        Most events returned (1 to :data:`MAX_PAGE`).

    Returns
    -------
    SubjectEventPage
        The events, the cursor to pass next time (unchanged when the page is empty) and
        whether more are waiting.

    Raises
    ------
    CursorError
        If ``after`` is not a cursor this feed issued.
    ValueError
        If ``limit`` is out of range.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    cursor = FeedCursor.parse(after)
    consents = _consent_rows(session, edge_id=edge_id, after=cursor.consent_id, limit=limit + 1)
    events = _event_rows(session, after=cursor.event_id, limit=limit + 1)
    page = _merge(consents, events, limit)
    consent_id = max([cursor.consent_id] + [i.row_id for i in page if i.source == 0])
    event_id = max([cursor.event_id] + [i.row_id for i in page if i.source == 1])
    more = len(page) < len(consents) + len(events)
    logger.debug("feed page for edge %s: %d event(s), more=%s", edge_id, len(page), more)
    return SubjectEventPage(
        events=[i.wire for i in page], cursor=str(FeedCursor(consent_id, event_id)), more=more
    )
