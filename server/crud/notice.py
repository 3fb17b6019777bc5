"""Privacy notices: publish a version (append-only, audited), list them, build the registry.

The registry (``consent.NoticeRegistry``) is what every consent check on the server applies
(``server.crud.consent.consent_states``): once a *material* version covering a purpose is
published, grants of that purpose given under older versions are paused until the subject
renews them, so reads filter those fields out and uploads for the purpose are refused. The
fields themselves are kept (pausing is not a withdrawal).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from consent import ConsentEvent, ConsentState, Notice, NoticeDraft, NoticeRegistry, Purpose

from ..audit.append import lock_chain
from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..errors import ConflictError
from ..principal import Principal
from ..tables.consent_record import ConsentRecord
from ..tables.notice import PrivacyNotice

logger = logging.getLogger(__name__)


def to_notice(row: PrivacyNotice) -> Notice:
    """Return the ``consent.Notice`` a stored row holds.

    Parameters
    ----------
    row : PrivacyNotice
        A stored notice.

    Returns
    -------
    Notice
        The notice.
    """
    return Notice(
        version=row.version,
        purposes=tuple(Purpose(p) for p in row.purposes.split(",") if p),
        material=row.material,
        content_hash=row.content_hash,
        url=row.url,
        language=row.language,
        published_at=row.published_at,
    )


def list_notices(*, session: Session) -> list[Notice]:
    """Return every published notice, oldest first.

    Parameters
    ----------
    session : Session
        A session.

    Returns
    -------
    list[Notice]
        The notices.
    """
    stmt = select(PrivacyNotice).order_by(
        col(PrivacyNotice.published_at), col(PrivacyNotice.version)
    )
    return [to_notice(row) for row in session.exec(stmt)]


def notice_registry(*, session: Session) -> NoticeRegistry:
    """Return the registry of every published notice (one query).

    Parameters
    ----------
    session : Session
        A session.

    Returns
    -------
    NoticeRegistry
        The registry the server applies to consent checks.
    """
    return NoticeRegistry(list_notices(session=session))


def renewals_needed(
    *, session: Session, registry: NoticeRegistry, purposes: tuple[Purpose, ...], at: datetime
) -> dict[str, int]:
    """Count, per purpose, the subjects whose grant is paused until renewed at ``at``.

    Parameters
    ----------
    session : Session
        A session.
    registry : NoticeRegistry
        The published notices.
    purposes : tuple[Purpose, ...]
        Purposes to count.
    at : datetime
        The moment of evaluation.

    Returns
    -------
    dict[str, int]
        Purpose name to number of subjects needing renewal (every requested purpose listed).
    """
    table = ConsentRecord.metadata.tables[ConsentRecord.__tablename__]
    columns = [table.c[name] for name in ConsentEvent.model_fields]
    rows = session.connection().execute(
        sa_select(*columns)
        .where(table.c.purpose.in_([p.value for p in purposes]))
        .order_by(table.c.id)
    )
    events: dict[str, list[ConsentEvent]] = defaultdict(list)
    for row in rows:
        event = ConsentEvent.model_validate(row._asdict())
        events[event.subject].append(event)
    counts: Counter[str] = Counter({p.value: 0 for p in purposes})
    for subject_events in events.values():
        state = ConsentState(subject_events, notices=registry)
        for purpose in purposes:
            if state.needs_renewal(purpose, at):
                counts[purpose.value] += 1
    return dict(sorted(counts.items()))


def publish_notice(
    *,
    session: Session,
    draft: NoticeDraft,
    principal: Principal,
    audit: AuditSink,
    at: datetime,
) -> tuple[Notice, dict[str, int]]:
    """Publish a notice version effective ``at``, audit it and commit.

    Parameters
    ----------
    session : Session
        A session.
    draft : NoticeDraft
        Version label, purposes, material flag, content hash, URL and language.
    principal : Principal
        The publishing officer.
    audit : AuditSink
        Receives one ``notice.publish`` entry.
    at : datetime
        Publication time: pausing of older grants starts at this moment.

    Returns
    -------
    tuple[Notice, dict[str, int]]
        The published notice and, per covered purpose, how many subjects' consents now need
        renewal (all zero for a non-material notice).

    Raises
    ------
    ConflictError
        If the version label was published before (published versions are immutable).
    """
    lock_chain(session=session)
    if session.get(PrivacyNotice, draft.version) is not None:
        raise ConflictError(
            f"notice version {draft.version!r} is already published; publish a new version label"
        )
    row = PrivacyNotice(
        version=draft.version,
        purposes=",".join(p.value for p in draft.purposes),
        material=draft.material,
        content_hash=draft.content_hash,
        url=draft.url,
        language=draft.language,
        published_at=at,
        published_by=principal.actor,
    )
    session.add(row)
    session.flush()
    notice = to_notice(row)
    renewals = renewals_needed(
        session=session,
        registry=notice_registry(session=session),
        purposes=draft.purposes,
        at=at,
    )
    audit.record(
        actor=principal.actor,
        role=principal.role.value,
        action=AuditAction.NOTICE_PUBLISH,
        purpose=None,
        subject=None,
        outcome=AuditOutcome.ACCEPTED,
        detail={
            "version": draft.version,
            "purposes": [p.value for p in draft.purposes],
            "material": draft.material,
            "renewal_required": renewals,
        },
        at=at,
    )
    session.commit()
    logger.info(
        "notice %s published (material=%s): %d consent(s) need renewal",
        draft.version,
        draft.material,
        sum(renewals.values()),
    )
    return notice, renewals
