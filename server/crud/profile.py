"""Profile reads: purpose-bound, consent-checked at the moment of the read, audited.

Reads state a purpose and return only the fields the catalogue allows for it and the
subject's consent allows now. Each read leaves exactly one audit entry. Uploads are in
``server.crud.upload``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from consent import FieldCatalogue, evaluate, parse_purpose
from models import ProfileRead
from privacy import MasterKeyRing

from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..errors import NotFoundError
from ..principal import Principal
from ..tables.subject import Subject
from .consent import consent_state
from .profile_store import fields_of, is_expired, to_field_out
from .restriction import is_restricted
from .subject_keys import subject_cipher

logger = logging.getLogger(__name__)


def read_profile(
    *,
    session: Session,
    subject: str,
    purpose: str,
    principal: Principal,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    at: datetime,
    master_keys: MasterKeyRing | None = None,
) -> ProfileRead:
    """Return the subject's fields that may be read for ``purpose`` now; audits; commits.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym.
    purpose : str
        The purpose the reader states.
    principal : Principal
        The reader (agent or admin).
    catalogue : FieldCatalogue
        The catalogue in force.
    audit : AuditSink
        Receives one entry.
    at : datetime
        The moment of the read.
    master_keys : MasterKeyRing or None
        The master key ring; needed only when an allowed field is sealed (sensitive).

    Returns
    -------
    ProfileRead
        Allowed fields and the number withheld (not allowed for the purpose, no consent now,
        or past retention). A restricted subject's read returns no field.

    Raises
    ------
    PurposeNotRegisteredError
        If the purpose is unknown; its message lists the known purposes.
    NotFoundError
        If the server holds nothing about the subject (audited as ``not_found``).
    """
    stated = parse_purpose(purpose)

    def record(outcome: AuditOutcome, detail: dict[str, object]) -> None:
        audit.record(
            actor=principal.actor,
            role=principal.role.value,
            action=AuditAction.PROFILE_READ,
            purpose=stated.value,
            subject=subject,
            outcome=outcome,
            detail=detail,
            at=at,
        )

    if session.get(Subject, subject) is None:
        record(AuditOutcome.NOT_FOUND, {})
        session.commit()
        raise NotFoundError(kind="subject", ref=subject)
    if is_restricted(session=session, subject=subject):
        # Kept but not used (PIPL Art. 44, GDPR Art. 18): nothing is returned.
        withheld = len(fields_of(session=session, subject=subject))
        record(AuditOutcome.ACCEPTED, {"returned": [], "withheld": withheld, "restricted": True})
        session.commit()
        return ProfileRead(subject=subject, purpose=stated.value, fields=[], withheld=withheld)
    state = consent_state(session=session, subject=subject)
    returned, withheld = [], 0
    cipher = None
    for row in fields_of(session=session, subject=subject):
        decision = evaluate(
            catalogue=catalogue, consent=state, field=row.name, purpose=stated, at=at
        )
        if decision.allowed and not is_expired(row=row, catalogue=catalogue, at=at):
            if row.value_ciphertext is not None and cipher is None and master_keys is not None:
                cipher = subject_cipher(session=session, subject=subject, master_keys=master_keys)
            returned.append(to_field_out(row, cipher=cipher))
        else:
            withheld += 1
    record(
        AuditOutcome.ACCEPTED,
        {"returned": [f.name for f in returned], "withheld": withheld},
    )
    session.commit()
    return ProfileRead(subject=subject, purpose=stated.value, fields=returned, withheld=withheld)
