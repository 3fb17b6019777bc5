"""Access and export (PIPL Art. 45, GDPR Arts. 15 and 20): what the server holds on a subject.

:func:`export_document` gathers, for one pseudonym and every pseudonym linked with it into one
person, the stored profile fields (sealed ones
opened with the subject's data key), the consent events, whether processing is restricted,
the fields suppressed on the subject's request, and the processing history: the audit
entries that name the subject (when, which role, what action, for which purpose, with what
outcome). Staff names are not disclosed: the history gives the role, not the actor. The
document is JSON, portable, and signed by the route (``SigningKey.signed``) so a subject can
prove what they were given.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from consent import FieldCatalogue
from privacy import MasterKeyRing

from ..identity.graph import members_of
from ..tables.audit_entry import AuditEntry
from ..tables.consent_record import ConsentRecord
from ..tables.field_suppression import FieldSuppression
from .consent import to_event
from .profile_store import fields_of, to_field_out
from .restriction import is_restricted
from .subject_keys import subject_cipher

logger = logging.getLogger(__name__)

#: ``type`` member of a signed export document.
EXPORT_TYPE = "fedprofile.subject_export"


def _iso(value: datetime) -> str:
    """UTC ISO-8601 text of a (possibly naive UTC) time."""
    return (value.replace(tzinfo=UTC) if value.tzinfo is None else value).isoformat()


def processing_history(*, session: Session, subject: str) -> list[dict[str, Any]]:
    """Return the audit entries that name ``subject``, oldest first, without staff names.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym.

    Returns
    -------
    list[dict[str, Any]]
        ``seq``, ``at``, ``role``, ``action``, ``purpose``, ``outcome`` per entry.
    """
    rows = session.exec(
        select(AuditEntry).where(col(AuditEntry.subject_ref) == subject).order_by(
            col(AuditEntry.seq)
        )
    ).all()
    return [
        {
            "seq": r.seq,
            "at": _iso(r.at),
            "role": r.role,
            "action": r.action,
            "purpose": r.purpose,
            "outcome": r.outcome,
        }
        for r in rows
    ]


def export_document(
    *,
    session: Session,
    subject: str,
    request_id: str,
    catalogue: FieldCatalogue,
    master_keys: MasterKeyRing | None,
    at: datetime,
) -> dict[str, Any]:
    """Return everything the server holds on ``subject``'s person as one JSON document.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym.
    request_id : str
        The access request this answers.
    catalogue : FieldCatalogue
        The catalogue in force (gives each field's meaning in Chinese and English).
    master_keys : MasterKeyRing or None
        Opens sealed fields; without it they are listed as ``sealed`` without a value.
    at : datetime
        Generation time.

    Returns
    -------
    dict[str, Any]
        ``type``, ``version``, ``request_id``, ``subject``, ``generated_at``, ``restricted``,
        ``profile``, ``suppressed_fields``, ``consents``, ``processing_history`` and
        ``linked_pseudonyms``: the same holdings of every pseudonym linked with ``subject``
        into one person (the data subject is the person).
    """
    own = _holdings(session, subject, catalogue, master_keys)
    linked = [
        {"subject": member, **_holdings(session, member, catalogue, master_keys)}
        for member in members_of(session, subject)
        if member != subject
    ]
    logger.info(
        "export for request %s: %d field(s), %d consent event(s), %d history entr(ies), "
        "%d linked pseudonym(s)",
        request_id,
        len(own["profile"]),
        len(own["consents"]),
        len(own["processing_history"]),
        len(linked),
    )
    return {
        "type": EXPORT_TYPE,
        "version": 1,
        "request_id": request_id,
        "subject": subject,
        "generated_at": _iso(at),
        **own,
        "linked_pseudonyms": linked,
    }


def _holdings(
    session: Session, subject: str, catalogue: FieldCatalogue, master_keys: MasterKeyRing | None
) -> dict[str, Any]:
    """One pseudonym's restriction, profile rows, suppressions, consents and history."""
    rows = fields_of(session=session, subject=subject)
    cipher = None
    if master_keys is not None and any(r.value_ciphertext is not None for r in rows):
        cipher = subject_cipher(session=session, subject=subject, master_keys=master_keys)
    profile = []
    for row in rows:
        item: dict[str, Any]
        if row.value_ciphertext is not None and cipher is None:
            item = {"name": row.name, "sealed": True, "computed_at": _iso(row.computed_at)}
        else:
            item = to_field_out(row, cipher=cipher).model_dump(mode="json")
        spec = catalogue.by_name.get(row.name)
        if spec is not None:
            item["meaning"] = {"zh": spec.meaning_zh, "en": spec.meaning_en}
            item["retention_days"] = spec.retention_days
        profile.append(item)
    consents = session.exec(
        select(ConsentRecord).where(col(ConsentRecord.subject) == subject).order_by(
            col(ConsentRecord.id)
        )
    ).all()
    suppressed = session.exec(
        select(FieldSuppression).where(col(FieldSuppression.subject) == subject)
    ).all()
    return {
        "restricted": is_restricted(session=session, subject=subject),
        "profile": profile,
        "suppressed_fields": sorted(
            ({"field": s.field, "reason": s.reason} for s in suppressed),
            key=lambda s: s["field"],
        ),
        "consents": [json.loads(to_event(r).model_dump_json()) for r in consents],
        "processing_history": processing_history(session=session, subject=subject),
    }
