"""Consent records: append received events, fold them into a ``ConsentState``, purge.

Events are append-only. Each is keyed by the SHA-256 of its canonical form, so a re-sent event
is counted as a duplicate. After a batch, every touched subject's stored profile fields that no
purpose currently granted (and catalogued for the field) still allows are purged: withdrawal
stops a purpose at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from consent import ConsentEvent, ConsentState, FieldCatalogue
from models import ConsentBatchResult

from ..audit.append import lock_chain
from ..audit.events import AuditAction, AuditOutcome
from ..audit.record import AuditRecord
from ..audit.sink import AuditSink
from ..principal import Principal
from ..tables.consent_record import ConsentRecord
from ..tables.field_suppression import FieldSuppression
from .edge import touch_edge
from .notice import notice_registry
from .profile_store import purge_disallowed_fields_many
from .subject import touch_subjects
from .tombstone import tombstones_of

logger = logging.getLogger(__name__)


def _utc(value: datetime | None) -> str | None:
    """ISO form in UTC with microseconds, or None."""
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(event: ConsentEvent) -> str:
    """Return the SHA-256 of the event's canonical JSON (times in UTC).

    Parameters
    ----------
    event : ConsentEvent
        The event.

    Returns
    -------
    str
        64 hex digits; equal for the same event re-sent, whatever its time-zone offsets.
    """
    body = {
        "subject": event.subject,
        "purpose": event.purpose.value,
        "status": event.status.value,
        "occurred_at": _utc(event.occurred_at),
        "notice_version": event.notice_version,
        "channel": event.channel,
        "separate": event.separate,
        "expires_at": _utc(event.expires_at),
        "evidence_hash": event.evidence_hash,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def to_event(row: ConsentRecord) -> ConsentEvent:
    """Return the ``ConsentEvent`` a stored record holds.

    Parameters
    ----------
    row : ConsentRecord
        A stored record.

    Returns
    -------
    ConsentEvent
        The event.
    """
    return ConsentEvent(
        subject=row.subject,
        purpose=row.purpose,
        status=row.status,
        occurred_at=row.occurred_at,
        notice_version=row.notice_version,
        channel=row.channel,
        separate=row.separate,
        expires_at=row.expires_at,
        evidence_hash=row.evidence_hash,
    )


_RECORD = ConsentRecord.metadata.tables[ConsentRecord.__tablename__]
#: Columns of ``consent_record`` that make up the ``ConsentEvent``.
_EVENT_COLUMNS = [_RECORD.c[name] for name in ConsentEvent.model_fields]
_SUPPRESSION = FieldSuppression.metadata.tables[FieldSuppression.__tablename__]


def consent_states(
    *,
    session: Session,
    subjects: Iterable[str],
    apply_notices: bool = True,
    suppressed: Mapping[str, Collection[str]] | None = None,
) -> dict[str, ConsentState]:
    """Fold the stored consent records of several subjects into their states (few queries).

    The states carry the published notices (a material notice pauses older grants until
    renewed) and each subject's suppressed fields (deleted by the subject or rectified), so
    ``consent.evaluate`` over them is the server's whole consent check.

    Parameters
    ----------
    session : Session
        A session.
    subjects : Iterable[str]
        The pseudonyms.
    apply_notices : bool
        Whether published notices pause older grants. ``False`` only where a *pause* must
        not act like a withdrawal (purging stored fields).
    suppressed : Mapping[str, Collection[str]] or None
        Each subject's suppressed fields other than rectified ones, when the caller already
        read them in this transaction (profile reads do, for their merge): the query for
        them is skipped. ``None`` reads them here.

    Returns
    -------
    dict[str, ConsentState]
        One state per requested subject (empty for a subject without records); records in
        storage order break ties between equal times.
    """
    wanted = sorted(set(subjects))
    events: dict[str, list[ConsentEvent]] = defaultdict(list)
    hidden_fields: dict[str, set[str]] = defaultdict(set)
    if suppressed is not None:
        hidden_fields.update({subject: set(names) for subject, names in suppressed.items()})
    connection = session.connection()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = connection.execute(
            sa_select(*_EVENT_COLUMNS).where(_RECORD.c.subject.in_(chunk)).order_by(_RECORD.c.id)
        )
        for row in rows:
            event = ConsentEvent.model_validate(row._asdict())
            events[event.subject].append(event)
        if suppressed is not None:
            continue
        hidden = connection.execute(
            sa_select(_SUPPRESSION.c.subject, _SUPPRESSION.c.field).where(
                _SUPPRESSION.c.subject.in_(chunk),
                # A rectified field holds the corrected value: uploads are refused (upload
                # gates), but reads and purges treat it as any other field.
                _SUPPRESSION.c.reason != "rectified",
            )
        )
        for subject, name in hidden:
            hidden_fields[str(subject)].add(str(name))
    notices = notice_registry(session=session) if apply_notices and wanted else None
    return {
        subject: ConsentState(
            events.get(subject, ()), notices=notices, suppressed=hidden_fields.get(subject, ())
        )
        for subject in wanted
    }


def consent_state(*, session: Session, subject: str, apply_notices: bool = True) -> ConsentState:
    """Fold the subject's stored consent records into its state.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym.
    apply_notices : bool
        Whether published notices pause older grants (see :func:`consent_states`).

    Returns
    -------
    ConsentState
        The state (records in storage order break ties between equal times).
    """
    return consent_states(session=session, subjects=[subject], apply_notices=apply_notices)[subject]


def _insert_new(
    session: Session, events: Sequence[ConsentEvent], edge_id: str | None, at: datetime
) -> dict[str, tuple[int, int]]:
    """Insert unseen events; return per subject (recorded, duplicates)."""
    hashes = [event_hash(e) for e in events]
    known = set(
        session.exec(
            select(ConsentRecord.event_hash).where(col(ConsentRecord.event_hash).in_(set(hashes)))
        ).all()
    )
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    fresh: list[tuple[ConsentEvent, str]] = []
    for event, digest in zip(events, hashes, strict=True):
        if digest in known:
            counts[event.subject][1] += 1
            continue
        known.add(digest)
        counts[event.subject][0] += 1
        fresh.append((event, digest))
    # Subjects first, for the foreign keys; then the records, in one multi-row insert.
    touch_subjects(session=session, subjects={event.subject for event, _ in fresh}, at=at)
    if fresh:
        session.connection().execute(
            insert(ConsentRecord.metadata.tables[ConsentRecord.__tablename__]),
            [
                {
                    **event.model_dump(),
                    "purpose": event.purpose.value,  # plain strings, whatever the DB driver
                    "status": event.status.value,
                    "event_hash": digest,
                    "received_at": at,
                    "edge_id": edge_id,
                }
                for event, digest in fresh
            ],
        )
    return {subject: (c[0], c[1]) for subject, c in counts.items()}


def record_consents(
    *,
    session: Session,
    events: Sequence[ConsentEvent],
    principal: Principal,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    at: datetime,
) -> ConsentBatchResult:
    """Append a batch of consent events, purge fields they disallow, audit; commits.

    Parameters
    ----------
    session : Session
        A session.
    events : Sequence[ConsentEvent]
        Events from one edge (or a subject's own, see :func:`record_consents_purging`), any
        subjects, any order.
    principal : Principal
        The sending edge or subject.
    catalogue : FieldCatalogue
        Catalogue used to decide which stored fields remain allowed.
    audit : AuditSink
        Receives one entry per subject in the batch.
    at : datetime
        Receipt time; consent is evaluated at this moment for the purge.

    Returns
    -------
    ConsentBatchResult
        Numbers of recorded and duplicate events.
    """
    result, _ = record_consents_purging(
        session=session,
        events=events,
        principal=principal,
        catalogue=catalogue,
        audit=audit,
        at=at,
    )
    return result


def record_consents_purging(
    *,
    session: Session,
    events: Sequence[ConsentEvent],
    principal: Principal,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    at: datetime,
    also_audit: Sequence[AuditRecord] = (),
) -> tuple[ConsentBatchResult, dict[str, list[str]]]:
    """Do what :func:`record_consents` does and also return the purged field names.

    Parameters
    ----------
    session : Session
        A session.
    events : Sequence[ConsentEvent]
        The events.
    principal : Principal
        The sending edge or subject.
    catalogue : FieldCatalogue
        The catalogue in force.
    audit : AuditSink
        Receives one entry per subject in the batch.
    at : datetime
        Receipt time.
    also_audit : Sequence[AuditRecord]
        Entries appended after the batch's own, in the same transaction (e.g. the
        ``personalization.set`` entry of the switch that caused the events).

    Returns
    -------
    tuple[ConsentBatchResult, dict[str, list[str]]]
        The counts and, per subject with recorded events, the field names purged (sorted).
    """
    for attempt in (1, 2):
        try:
            # Serialise with other audited writers before reading (see ``lock_chain``).
            lock_chain(session=session)
            events, refused = _drop_erased(session, events)
            counts = _insert_new(session, events, principal.edge_id, at)
            purged = _purge_and_audit(session, counts, principal, catalogue, audit, at)
            if also_audit:
                audit.record_many(also_audit)
            if principal.edge_id is not None:
                touch_edge(session=session, edge_id=principal.edge_id, at=at)
            session.commit()
            break
        except IntegrityError:
            # A concurrent batch stored some of the same events: retry once as duplicates.
            session.rollback()
            if attempt == 2:
                raise
    recorded = sum(c[0] for c in counts.values())
    duplicates = sum(c[1] for c in counts.values())
    logger.info(
        "consent batch: %d recorded, %d duplicate(s), %d field(s) purged, %d subject(s)",
        recorded,
        duplicates,
        sum(len(names) for names in purged.values()),
        len(counts),
    )
    result = ConsentBatchResult(recorded=recorded, duplicates=duplicates, refused_erased=refused)
    return result, purged


def _drop_erased(
    session: Session, events: Sequence[ConsentEvent]
) -> tuple[list[ConsentEvent], int]:
    """Drop events about erased subjects that predate the erasure; return the rest and a count.

    An edge that missed an erasure may still hold the subject's old consent events; storing
    them would recreate the subject row the erasure removed. Events dated after the erasure
    are kept (the person came back and consented anew).
    """
    erased = tombstones_of(session=session, subjects={e.subject for e in events})
    if not erased:
        return list(events), 0
    kept = [e for e in events if e.subject not in erased or e.occurred_at > erased[e.subject]]
    refused = len(events) - len(kept)
    if refused:
        logger.warning("consent batch: %d event(s) about erased subjects refused", refused)
    return kept, refused


def _purge_and_audit(
    session: Session,
    counts: dict[str, tuple[int, int]],
    principal: Principal,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    at: datetime,
) -> dict[str, list[str]]:
    """Purge disallowed fields of each subject and write its audit entry; return the names.

    States and stored fields of the batch's subjects are loaded in a few queries and the
    entries appended with one head reservation, so a batch of 500 events costs O(1) queries.
    """
    changed = [subject for subject, (recorded, _) in counts.items() if recorded]
    # A paused grant is not a withdrawal: purge by the events alone, not by notices.
    states = consent_states(session=session, subjects=changed, apply_notices=False)
    purged = purge_disallowed_fields_many(
        session=session, states=states, catalogue=catalogue, at=at
    )
    records = [
        AuditRecord(
            actor=principal.actor,
            role=principal.role.value,
            action=AuditAction.CONSENT_RECORD,
            purpose=None,
            subject=subject,
            outcome=AuditOutcome.ACCEPTED,
            detail={
                "edge_id": principal.edge_id,
                "recorded": recorded,
                "duplicates": duplicates,
                "purged_fields": purged.get(subject, []),
            },
            at=at,
        )
        for subject, (recorded, duplicates) in sorted(counts.items())
    ]
    audit.record_many(records)
    return purged
