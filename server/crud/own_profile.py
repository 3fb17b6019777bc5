"""A subject's own profile (PIPL Art. 44-45, 24): view every field, delete one's own tags.

Acts only on the pseudonym bound to the caller's subject token. Viewing shows each stored
field, merged over the channels that contributed it (``server.profiles``), with its meaning
(zh/en) and the purposes it may be used for now; deleting removes the field and suppresses
it, so edges are told (feed) and an upload of it is refused.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import delete
from sqlmodel import Session

from consent import FieldCatalogue, PurposeRegistry, Sensitivity, evaluate
from privacy import MasterKeyRing

from ..audit.append import lock_chain
from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..errors import NotFoundError
from ..principal import Principal
from ..profiles.view import merged_fields
from ..tables.profile_field import ProfileField
from ..tables.subject import Subject
from .consent import consent_state
from .profile_store import fields_of
from .restriction import suppress_field, suppressed_fields
from .self_service import subject_of
from .subject_keys import subject_cipher


class OwnField(BaseModel):
    """One stored field as its subject sees it: value, meaning and what it may be used for."""

    name: str
    value: bool | int | float | str | list[str]
    confidence: float | None
    computed_at: datetime
    meaning_zh: str
    meaning_en: str
    category: str
    sensitive: bool
    usable_for: list[str]


class OwnProfile(BaseModel):
    """Everything the server holds about the subject's profile (PIPL Art. 45)."""

    subject: str
    personalization: bool
    fields: list[OwnField]


class TagDeletion(BaseModel):
    """Outcome of deleting one of the subject's own fields."""

    field: str
    deleted: bool
    suppressed: bool


def own_profile(
    *,
    session: Session,
    principal: Principal,
    catalogue: FieldCatalogue,
    purposes: PurposeRegistry,
    audit: AuditSink,
    at: datetime,
    master_keys: MasterKeyRing | None,
) -> OwnProfile:
    """Return every stored field of the subject, with meanings and current uses; audit.

    Parameters
    ----------
    session : Session
        A session.
    principal : Principal
        The subject.
    catalogue : FieldCatalogue
        The catalogue in force (meanings, categories, sensitivity).
    purposes : PurposeRegistry
        The purpose list.
    audit : AuditSink
        Receives one ``profile.read`` entry (no purpose: the subject's own access).
    at : datetime
        When.
    master_keys : MasterKeyRing or None
        Needed to open sealed (sensitive) fields.

    Returns
    -------
    OwnProfile
        The fields (possibly none) and whether personalization is on.
    """
    subject = subject_of(principal)
    state = consent_state(session=session, subject=subject)
    rows = fields_of(session=session, subject=subject)
    cipher = None
    if master_keys is not None and any(r.value_ciphertext is not None for r in rows):
        cipher = subject_cipher(session=session, subject=subject, master_keys=master_keys)
    view = merged_fields(
        rows,
        catalogue=catalogue,
        allowed=lambda name: True,
        fresh=lambda row: True,
        cipher_for=lambda row: cipher,
        suppressed=suppressed_fields(session=session, subjects=[subject]).get(subject, set()),
    )
    out = []
    for wire in view.fields:
        spec = catalogue.by_name[wire.name]
        usable = [
            p.value
            for p in spec.purposes
            if evaluate(
                catalogue=catalogue, consent=state, field=wire.name, purpose=p, at=at
            ).allowed
        ]
        out.append(
            OwnField(
                name=wire.name,
                value=wire.value,
                confidence=wire.confidence,
                computed_at=wire.computed_at,
                meaning_zh=spec.meaning_zh,
                meaning_en=spec.meaning_en,
                category=spec.category,
                sensitive=spec.sensitivity is Sensitivity.SENSITIVE,
                usable_for=usable,
            )
        )
    audit.record(
        actor=principal.actor,
        role=principal.role.value,
        action=AuditAction.PROFILE_READ,
        purpose=None,
        subject=subject,
        outcome=AuditOutcome.ACCEPTED,
        detail={"self_service": True, "returned": [f.name for f in out]},
        at=at,
    )
    session.commit()
    personalization = any(state.is_granted(p, at) for p in purposes.personalization_purposes)
    return OwnProfile(subject=subject, personalization=personalization, fields=out)


def delete_own_field(
    *,
    session: Session,
    field: str,
    principal: Principal,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    at: datetime,
) -> TagDeletion:
    """Delete one of the subject's fields and forbid edges to upload it again; audit; commit.

    Parameters
    ----------
    session : Session
        A session.
    field : str
        A catalogued field name.
    principal : Principal
        The subject.
    catalogue : FieldCatalogue
        The catalogue in force.
    audit : AuditSink
        Receives one ``field.rectify`` entry (reason ``deleted_by_subject``).
    at : datetime
        When.

    Returns
    -------
    TagDeletion
        Whether a stored value was deleted; the field is suppressed either way.

    Raises
    ------
    FieldNotCataloguedError
        If the field is not catalogued.
    NotFoundError
        If the server holds nothing about the subject.
    """
    spec = catalogue.get(field)
    subject = subject_of(principal)
    lock_chain(session=session)
    if session.get(Subject, subject) is None:
        raise NotFoundError(kind="subject", ref=subject)
    table = ProfileField.metadata.tables[ProfileField.__tablename__]
    deleted = (
        session.connection()
        .execute(delete(table).where(table.c.subject == subject, table.c.name == spec.name))
        .rowcount
    )
    suppress_field(
        session=session, subject=subject, field=spec.name, reason="deleted_by_subject", at=at
    )
    audit.record(
        actor=principal.actor,
        role=principal.role.value,
        action=AuditAction.FIELD_RECTIFY,
        purpose=None,
        subject=subject,
        outcome=AuditOutcome.ACCEPTED,
        detail={"field": spec.name, "reason": "deleted_by_subject", "deleted": deleted},
        at=at,
    )
    session.commit()
    return TagDeletion(field=spec.name, deleted=deleted > 0, suppressed=True)
