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

from consent import ConsentState, FieldCatalogue, evaluate, parse_purpose
from models import ProfileRead
from privacy import FieldCipher, MasterKeyRing

from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..crud.consent import consent_states
from ..crud.profile_store import fields_of, is_expired
from ..crud.restriction import restricted_among, suppressed_fields
from ..crud.subject_keys import subject_cipher
from ..errors import NotFoundError
from ..identity.graph import members_of, person_of
from ..principal import Principal
from ..tables.profile_field import ProfileField
from ..tables.subject import Subject
from .view import merged_fields

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
    # A linked person is read whole: every pseudonym's contributions, under the most
    # restrictive consent of them all (invariant 8); one restricted pseudonym stops the read.
    members = members_of(session, subject)
    person = person_of(session, subject) if len(members) > 1 else None
    linked: dict[str, object] = {"person": person, "pseudonyms": len(members)} if person else {}
    rows = [row for member in members for row in fields_of(session=session, subject=member)]
    if restricted_among(session=session, subjects=members):
        # Kept but not used (PIPL Art. 44, GDPR Art. 18): nothing is returned.
        withheld = len({row.name for row in rows})
        record(
            AuditOutcome.ACCEPTED,
            {"returned": [], "withheld": withheld, "restricted": True, **linked},
        )
        session.commit()
        return ProfileRead(
            subject=subject, purpose=stated.value, fields=[], withheld=withheld,
            person=person, pseudonyms=len(members),
        )  # fmt: skip
    states = consent_states(session=session, subjects=members)
    ciphers: dict[str, FieldCipher | None] = {}

    def cipher_for(row: ProfileField) -> FieldCipher | None:
        if master_keys is None:
            return None
        if row.subject not in ciphers:
            ciphers[row.subject] = subject_cipher(
                session=session, subject=row.subject, master_keys=master_keys
            )
        return ciphers[row.subject]

    def allowed(name: str) -> bool:
        return all(
            evaluate(
                catalogue=catalogue, consent=states.get(m) or ConsentState(), field=name,
                purpose=stated, at=at,
            ).allowed
            for m in members
        )  # fmt: skip

    suppressed = suppressed_fields(session=session, subjects=members)
    view = merged_fields(
        rows,
        catalogue=catalogue,
        allowed=allowed,
        fresh=lambda row: not is_expired(row=row, catalogue=catalogue, at=at),
        cipher_for=cipher_for,
        breakdown=breakdown,
        suppressed=set().union(*suppressed.values()) if suppressed else set(),
    )
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
