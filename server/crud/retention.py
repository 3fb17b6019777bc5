"""Retention (PIPL Art. 19 and 47, GDPR Art. 5(1)(e)): delete fields kept past their time.

Each catalogued field has ``retention_days``: a stored field whose ``computed_at`` is older
than that is deleted by :func:`purge_expired_fields` (reads already withhold it, see
``server.crud.profile_store.is_expired``; this makes the deletion real). Fields that are no
longer in the catalogue are deleted too: nothing may be kept without a declared purpose and
retention. The job records what it deleted in the audit log without any value: one
``retention.purge`` entry per subject (the field names) and one summary entry (counts per
field). ``fedprofile retention run [--dry-run] [--json]`` runs it from the command line.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy import select as sa_select
from sqlmodel import Session

from consent import FieldCatalogue

from ..audit.append import lock_chain
from ..audit.events import AuditAction, AuditOutcome
from ..audit.record import AuditRecord
from ..audit.sink import AuditSink
from ..tables.profile_field import ProfileField

logger = logging.getLogger(__name__)

_FIELD = ProfileField.metadata.tables[ProfileField.__tablename__]
#: Name under which fields missing from the catalogue are counted.
UNCATALOGUED = "(uncatalogued)"
#: Audit actor and role of the job.
ACTOR = "retention-job"
ROLE = "system"


@dataclass(frozen=True)
class RetentionReport:
    """What one retention run deleted (or would delete, in a dry run).

    Parameters
    ----------
    at : datetime
        The moment retention was evaluated at.
    dry_run : bool
        Whether nothing was deleted.
    deleted : dict[str, int]
        Fields deleted per field name (``(uncatalogued)`` for names the catalogue lost).
    subjects : int
        Subjects that lost at least one field.
    """

    at: datetime
    dry_run: bool
    deleted: dict[str, int] = field(default_factory=dict)
    subjects: int = 0

    @property
    def total(self) -> int:
        """Fields deleted in all."""
        return sum(self.deleted.values())

    def to_dict(self) -> dict[str, object]:
        """Return the report as a JSON-ready dict."""
        return {
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "deleted": dict(sorted(self.deleted.items())),
            "total": self.total,
            "subjects": self.subjects,
        }


def expired_fields(
    *, session: Session, catalogue: FieldCatalogue, at: datetime
) -> list[tuple[int, str, str]]:
    """Return ``(row id, subject, field name)`` of every stored field past its retention.

    Parameters
    ----------
    session : Session
        A session.
    catalogue : FieldCatalogue
        The catalogue in force (``retention_days`` per field).
    at : datetime
        The moment of evaluation.

    Returns
    -------
    list[tuple[int, str, str]]
        The expired rows, by field then subject.
    """
    connection = session.connection()
    found: list[tuple[int, str, str]] = []
    known = set()
    for spec in catalogue.fields:
        known.add(spec.name)
        cutoff = at - timedelta(days=spec.retention_days)
        rows = connection.execute(
            sa_select(_FIELD.c.id, _FIELD.c.subject, _FIELD.c.name)
            .where(_FIELD.c.name == spec.name, _FIELD.c.computed_at < cutoff)
            .order_by(_FIELD.c.subject)
        )
        found.extend((int(r[0]), str(r[1]), str(r[2])) for r in rows)
    stray = connection.execute(
        sa_select(_FIELD.c.id, _FIELD.c.subject, _FIELD.c.name)
        .where(_FIELD.c.name.not_in(sorted(known)))
        .order_by(_FIELD.c.name, _FIELD.c.subject)
    )
    found.extend((int(r[0]), str(r[1]), str(r[2])) for r in stray)
    return found


def purge_expired_fields(
    *,
    session: Session,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    at: datetime,
    dry_run: bool = False,
) -> RetentionReport:
    """Delete every stored field past its catalogued retention; audit what went; commit.

    Parameters
    ----------
    session : Session
        A session.
    catalogue : FieldCatalogue
        The catalogue in force.
    audit : AuditSink
        Receives one ``retention.purge`` entry per affected subject and one summary entry.
    at : datetime
        The moment retention is evaluated at.
    dry_run : bool
        Only count what would be deleted (nothing is deleted or audited).

    Returns
    -------
    RetentionReport
        Counts per field name and the number of subjects affected.
    """
    lock_chain(session=session)
    expired = expired_fields(session=session, catalogue=catalogue, at=at)
    names = {spec.name for spec in catalogue.fields}
    counts: Counter[str] = Counter(n if n in names else UNCATALOGUED for _, _, n in expired)
    by_subject: dict[str, list[str]] = defaultdict(list)
    for _, subject, name in expired:
        by_subject[subject].append(name if name in names else UNCATALOGUED)
    report = RetentionReport(at=at, dry_run=dry_run, deleted=dict(counts),
                             subjects=len(by_subject))
    if dry_run or not expired:
        session.rollback()
        return report
    ids = [row_id for row_id, _, _ in expired]
    connection = session.connection()
    for start in range(0, len(ids), 500):
        connection.execute(delete(_FIELD).where(_FIELD.c.id.in_(ids[start : start + 500])))
    records = [
        AuditRecord(
            actor=ACTOR,
            role=ROLE,
            action=AuditAction.RETENTION_PURGE,
            purpose=None,
            subject=subject,
            outcome=AuditOutcome.ACCEPTED,
            detail={"fields": sorted(fields)},
            at=at,
        )
        for subject, fields in sorted(by_subject.items())
    ]
    records.append(
        AuditRecord(
            actor=ACTOR,
            role=ROLE,
            action=AuditAction.RETENTION_PURGE,
            purpose=None,
            subject=None,
            outcome=AuditOutcome.ACCEPTED,
            detail={"deleted": dict(sorted(counts.items())), "subjects": len(by_subject)},
            at=at,
        )
    )
    audit.record_many(records)
    session.commit()
    logger.info(
        "retention: deleted %d field(s) of %d subject(s)", report.total, report.subjects
    )
    return report
