"""Subject self-service (PIPL Art. 24): consent changes and the personalization switch.

Every function acts on the pseudonym bound to the caller's subject token, never on one the
caller names. Consent changes are ordinary consent events (channel ``self_service``, with an
evidence hash of the request) recorded through :func:`server.crud.consent.record_consents_purging`,
so a withdrawal purges at once the fields no other granted purpose needs. Turning
personalization off withdraws every purpose the purpose list marks ``personalization``
(personalized service, proactive service, marketing) in one step. Viewing one's profile and
deleting one's tags are in :mod:`server.crud.own_profile`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlmodel import Session

from consent import (
    NOTICE_VERSION_PATTERN,
    ConsentError,
    ConsentEvent,
    ConsentStatus,
    FieldCatalogue,
    NoticeError,
    Purpose,
    PurposeRegistry,
    receipt_id,
)
from privacy import canonical_json

from ..audit.events import AuditAction, AuditOutcome
from ..audit.record import AuditRecord
from ..audit.sink import AuditSink
from ..principal import Principal
from .consent import consent_state, event_hash, record_consents_purging
from .notice import notice_registry

#: Channel recorded on consent events a subject makes through self-service.
SELF_SERVICE_CHANNEL = "self_service"


class ConsentChange(BaseModel):
    """A subject's grant or withdrawal of one purpose.

    Parameters
    ----------
    purpose : Purpose
        The purpose.
    action : {"grant", "withdraw"}
        What the subject does.
    notice_version : str or None
        The notice version shown when granting; default: the newest published notice
        covering the purpose (or the purpose list's version when none is published).
    separate : bool
        Whether the grant is a separate consent (PIPL Art. 29), needed for sensitive fields.
    """

    purpose: Purpose
    action: Literal["grant", "withdraw"]
    notice_version: str | None = Field(default=None, pattern=NOTICE_VERSION_PATTERN)
    separate: bool = False


class ConsentChangeResult(BaseModel):
    """What a consent change recorded: the receipt id of its event and the purged fields."""

    receipt_id: str
    purpose: str
    status: str
    notice_version: str
    purged_fields: list[str]


class PersonalizationChange(BaseModel):
    """Turn personalization off, or grant personalization purposes again.

    Parameters
    ----------
    enabled : bool
        ``False`` withdraws every personalization purpose at once. ``True`` grants the
        purposes listed in ``purposes`` (each is its own consent; nothing is bundled).
    purposes : list[Purpose]
        With ``enabled=True``: the personalization purposes to grant (at least one).
    """

    enabled: bool
    purposes: list[Purpose] = Field(default_factory=list, max_length=10)


class PersonalizationResult(BaseModel):
    """Outcome of a personalization switch."""

    enabled: bool
    withdrawn: list[str]
    granted: list[str]
    purged_fields: list[str]


def subject_of(principal: Principal) -> str:
    """Return the pseudonym a subject principal is bound to.

    Parameters
    ----------
    principal : Principal
        A ``subject`` principal.

    Returns
    -------
    str
        Its pseudonym.

    Raises
    ------
    ValueError
        If the principal is not bound to a subject.
    """
    if principal.subject is None:
        raise ValueError("self-service needs a subject principal")
    return principal.subject


def _evidence(principal: Principal, body: dict[str, Any], at: datetime) -> str:
    """Hex SHA-256 of what the subject did: token id, request body and time."""
    document = {"token_id": principal.token_id, "request": body, "at": at.isoformat()}
    return hashlib.sha256(canonical_json(document)).hexdigest()


def _grant_version(
    session: Session, purposes: PurposeRegistry, purpose: Purpose, asked: str | None, at: datetime
) -> str:
    """Return the notice version to record on a grant; refuse one a material notice replaced."""
    registry = notice_registry(session=session)
    accepted = registry.accepted_versions(purpose, at)
    if asked is None:
        latest = registry.latest_for(purpose, at)
        return purposes.version if latest is None else latest.version
    if accepted is not None and asked not in accepted:
        raise NoticeError(
            f"notice version {asked!r} was replaced by a material notice for {purpose.value}; "
            f"grant under one of: {', '.join(sorted(accepted))}"
        )
    return asked


def _event(
    principal: Principal,
    purpose: Purpose,
    status: ConsentStatus,
    version: str,
    separate: bool,
    at: datetime,
    body: dict[str, Any],
) -> ConsentEvent:
    """Build a self-service consent event."""
    return ConsentEvent(
        subject=subject_of(principal),
        purpose=purpose,
        status=status,
        occurred_at=at,
        notice_version=version,
        channel=SELF_SERVICE_CHANNEL,
        separate=separate and status is ConsentStatus.GRANTED,
        evidence_hash=_evidence(principal, body, at),
    )


def change_consent(
    *,
    session: Session,
    change: ConsentChange,
    principal: Principal,
    catalogue: FieldCatalogue,
    purposes: PurposeRegistry,
    audit: AuditSink,
    at: datetime,
) -> ConsentChangeResult:
    """Record the subject's grant or withdrawal of one purpose; purge; audit; commit.

    Parameters
    ----------
    session : Session
        A session.
    change : ConsentChange
        What the subject does.
    principal : Principal
        The subject.
    catalogue : FieldCatalogue
        The catalogue in force.
    purposes : PurposeRegistry
        The purpose list (default notice version).
    audit : AuditSink
        Receives the ``consent.record`` entry.
    at : datetime
        When.

    Returns
    -------
    ConsentChangeResult
        The event's receipt id and the fields purged by it.

    Raises
    ------
    NoticeError
        If a grant names a notice version that a material notice replaced (422).
    """
    body = change.model_dump(mode="json")
    if change.action == "grant":
        version = _grant_version(session, purposes, change.purpose, change.notice_version, at)
        status = ConsentStatus.GRANTED
    else:
        latest = consent_state(session=session, subject=subject_of(principal)).latest(
            change.purpose, at
        )
        version = change.notice_version or (
            latest.notice_version if latest is not None else purposes.version
        )
        status = ConsentStatus.WITHDRAWN
    event = _event(principal, change.purpose, status, version, change.separate, at, body)
    _, purged = record_consents_purging(
        session=session,
        events=[event],
        principal=principal,
        catalogue=catalogue,
        audit=audit,
        at=at,
    )
    return ConsentChangeResult(
        receipt_id=receipt_id(event_hash(event)),
        purpose=change.purpose.value,
        status=status.value,
        notice_version=version,
        purged_fields=purged.get(event.subject, []),
    )


def set_personalization(
    *,
    session: Session,
    change: PersonalizationChange,
    principal: Principal,
    catalogue: FieldCatalogue,
    purposes: PurposeRegistry,
    audit: AuditSink,
    at: datetime,
) -> PersonalizationResult:
    """Turn personalization off (withdraw its purposes, purge) or grant listed ones; commit.

    Parameters
    ----------
    session : Session
        A session.
    change : PersonalizationChange
        The switch.
    principal : Principal
        The subject.
    catalogue : FieldCatalogue
        The catalogue in force.
    purposes : PurposeRegistry
        The purpose list (which purposes are personalization).
    audit : AuditSink
        Receives ``consent.record`` and ``personalization.set`` entries.
    at : datetime
        When.

    Returns
    -------
    PersonalizationResult
        Purposes withdrawn or granted and the fields purged.

    Raises
    ------
    ConsentError
        If ``enabled`` is true without purposes, or a listed purpose is not a
        personalization purpose.
    """
    subject = subject_of(principal)
    personal = purposes.personalization_purposes
    body = change.model_dump(mode="json")
    if change.enabled:
        if not change.purposes or not set(change.purposes) <= personal:
            raise ConsentError(
                "to turn personalization on, list the purposes to grant, each one of: "
                + ", ".join(sorted(p.value for p in personal))
            )
        chosen = sorted(set(change.purposes))
        events = [
            _event(
                principal,
                p,
                ConsentStatus.GRANTED,
                _grant_version(session, purposes, p, None, at),
                False,
                at,
                body,
            )
            for p in chosen
        ]
    else:
        state = consent_state(session=session, subject=subject, apply_notices=False)
        chosen = sorted(
            p
            for p in personal
            if (latest := state.latest(p, at)) is None or latest.status is ConsentStatus.GRANTED
        )
        events = [
            _event(
                principal,
                p,
                ConsentStatus.WITHDRAWN,
                _latest_version(state.latest(p, at), purposes),
                False,
                at,
                body,
            )
            for p in chosen
        ]
    switch = AuditRecord(
        actor=principal.actor,
        role=principal.role.value,
        action=AuditAction.PERSONALIZATION_SET,
        purpose=None,
        subject=subject,
        outcome=AuditOutcome.ACCEPTED,
        detail={"enabled": change.enabled, "purposes": [p.value for p in chosen]},
        at=at,
    )
    purged: dict[str, list[str]] = {}
    if events:
        # The events, the purge and the switch's own entry commit together.
        _, purged = record_consents_purging(
            session=session,
            events=events,
            principal=principal,
            catalogue=catalogue,
            audit=audit,
            at=at,
            also_audit=[switch],
        )
    else:
        audit.record_many([switch])
        session.commit()
    names = [p.value for p in chosen]
    return PersonalizationResult(
        enabled=change.enabled,
        withdrawn=[] if change.enabled else names,
        granted=names if change.enabled else [],
        purged_fields=purged.get(subject, []),
    )


def _latest_version(event: ConsentEvent | None, purposes: PurposeRegistry) -> str:
    """Notice version of the latest event, or the purpose list's version."""
    return purposes.version if event is None else event.notice_version
