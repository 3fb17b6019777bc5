"""Profile reads: purpose-bound, consent-checked at the moment of the read, merged, audited.

Reads state a purpose and return only the fields the catalogue allows for it and the
subject's consent allows now, each merged over the edges that contributed it
(:mod:`server.profiles.view`). Each read leaves exactly one audit entry. Uploads are in
``server.crud.upload``.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from consent import FieldCatalogue, parse_purpose
from models import ProfileRead
from privacy import MasterKeyRing

from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..errors import NotFoundError
from ..principal import Principal
from ..tables.subject import Subject
from .visible import visible_profile

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
    breakdown: bool = False,
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
    breakdown : bool
        Also list each field's per-edge contributions (channel, value, computed_at).

    Returns
    -------
    ProfileRead
        Allowed fields, merged across edges, and the number of field names withheld (not
        allowed for the purpose, no consent now, or past retention). A restricted subject's
        read returns no field.

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
    seen = visible_profile(
        session=session, subject=subject, purpose=stated, catalogue=catalogue, at=at,
        master_keys=master_keys, breakdown=breakdown,
    )  # fmt: skip
    members, person, view = seen.members, seen.person, seen.view
    linked: dict[str, object] = {"person": person, "pseudonyms": len(members)} if person else {}
    if seen.restricted:
        # Kept but not used (PIPL Art. 44, GDPR Art. 18): nothing is returned.
        withheld = len(view.withheld)
        record(
            AuditOutcome.ACCEPTED,
            {"returned": [], "withheld": withheld, "restricted": True, **linked},
        )
        session.commit()
        return ProfileRead(
            subject=subject, purpose=stated.value, fields=[], withheld=withheld,
            person=person, pseudonyms=len(members),
        )  # fmt: skip
    withheld = len(view.withheld)
    record(
        AuditOutcome.ACCEPTED,
        {"returned": [f.name for f in view.fields], "withheld": withheld, **linked},
    )
    session.commit()
    return ProfileRead(
        subject=subject, purpose=stated.value, fields=view.fields, withheld=withheld,
        person=person, pseudonyms=len(members),
    )  # fmt: skip
