"""Signed consent receipts: one per stored consent event, downloadable by its subject.

The document is built by ``consent.build_consent_receipt`` (Kantara CR v1.1 / ISO/IEC TS
27560 fields) and wrapped in the server's Ed25519 envelope (``privacy.SigningKey.signed``), so
the subject can check it offline against the key published at ``GET /api/v1/signing-key``.
Receipt ids are derived from the stored event hash, so the same event always yields the same
id and the server needs no receipt table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlmodel import Session, col, select

from consent import (
    ConsentState,
    ConsentStatus,
    FieldCatalogue,
    PIIController,
    Purpose,
    PurposeRegistry,
    build_consent_receipt,
    receipt_id,
)
from privacy import SigningKey

from ..errors import NotFoundError
from ..tables.consent_record import ConsentRecord
from .consent import consent_state, to_event
from .notice import notice_registry

#: What a purpose's consent looks like to its subject at one moment.
PurposeStatus = Literal[
    "granted", "renewal_required", "withdrawn", "revoked", "expired", "not_given"
]


class ConsentEventOut(BaseModel):
    """One stored consent event as shown to its subject or an officer."""

    receipt_id: str
    purpose: str
    status: str
    occurred_at: datetime
    notice_version: str
    channel: str
    separate: bool
    expires_at: datetime | None


class PurposeConsent(BaseModel):
    """A purpose's consent status at one moment, with its labels (zh, en) and DPV term."""

    purpose: str
    label_zh: str
    label_en: str
    dpv: str
    necessary: bool
    personalization: bool
    status: PurposeStatus
    separate: bool
    notice_version: str | None
    since: datetime | None


class ConsentOverview(BaseModel):
    """A subject's consent: per-purpose status now and every event with its receipt id."""

    subject: str
    personalization: bool
    purposes: list[PurposeConsent]
    events: list[ConsentEventOut]


def purpose_status(state: ConsentState, purpose: Purpose, at: datetime) -> PurposeStatus:
    """Return the status of ``purpose`` in ``state`` at ``at``.

    Parameters
    ----------
    state : ConsentState
        The subject's state (with notices applied, so paused grants show as such).
    purpose : Purpose
        The purpose.
    at : datetime
        The moment.

    Returns
    -------
    PurposeStatus
        ``not_given`` without events, ``renewal_required`` for a paused grant, ``expired``
        for a lapsed grant, else the latest event's status.
    """
    latest = state.latest(purpose, at)
    if latest is None:
        return "not_given"
    if latest.status is ConsentStatus.GRANTED:
        if state.is_granted(purpose, at):
            return "granted"
        return "renewal_required" if state.needs_renewal(purpose, at) else "expired"
    return latest.status.value  # type: ignore[return-value]


def _rows(session: Session, subject: str) -> list[ConsentRecord]:
    """Return the subject's stored records in storage order."""
    stmt = select(ConsentRecord).where(col(ConsentRecord.subject) == subject)
    return list(session.exec(stmt.order_by(col(ConsentRecord.id))).all())


def consent_overview(
    *, session: Session, subject: str, purposes: PurposeRegistry, at: datetime
) -> ConsentOverview:
    """Return the subject's consent overview at ``at`` (no audit; callers audit).

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym.
    purposes : PurposeRegistry
        The purpose list (labels, DPV terms, flags).
    at : datetime
        The moment.

    Returns
    -------
    ConsentOverview
        Status of every registered purpose, and every event (oldest first).
    """
    state = consent_state(session=session, subject=subject)
    entries = []
    for spec in purposes:
        latest = state.latest(spec.name, at)
        entries.append(
            PurposeConsent(
                purpose=spec.name.value,
                label_zh=spec.label_zh,
                label_en=spec.label_en,
                dpv=spec.dpv_curie,
                necessary=spec.necessary,
                personalization=spec.personalization,
                status=purpose_status(state, spec.name, at),
                separate=bool(latest and latest.separate),
                notice_version=None if latest is None else latest.notice_version,
                since=None if latest is None else latest.occurred_at,
            )
        )
    events = [
        ConsentEventOut(
            receipt_id=receipt_id(row.event_hash),
            purpose=row.purpose.value if isinstance(row.purpose, Purpose) else str(row.purpose),
            status=str(row.status),
            occurred_at=row.occurred_at,
            notice_version=row.notice_version,
            channel=row.channel,
            separate=row.separate,
            expires_at=row.expires_at,
        )
        for row in _rows(session, subject)
    ]
    personalization = any(state.is_granted(p, at) for p in purposes.personalization_purposes)
    return ConsentOverview(
        subject=subject, personalization=personalization, purposes=entries, events=events
    )


def signed_receipt(
    *,
    session: Session,
    subject: str,
    receipt: str,
    catalogue: FieldCatalogue,
    purposes: PurposeRegistry,
    signing_key: SigningKey,
    controller: PIIController,
) -> dict[str, Any]:
    """Return the signed receipt ``receipt`` of one of the subject's consent events.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym whose event it must be (a subject never gets another's receipt).
    receipt : str
        The receipt id (from :func:`consent_overview`).
    catalogue : FieldCatalogue
        The field catalogue (data categories and retention of the purpose).
    purposes : PurposeRegistry
        The purpose list.
    signing_key : SigningKey
        The server's evidence-signing key.
    controller : PIIController
        The controller named on the receipt (``ServerSettings.receipt_controller``).

    Returns
    -------
    dict[str, Any]
        ``{"document", "signature", "algorithm", "key_id", "public_key"}``; verify it with
        ``privacy.verify_signed``.

    Raises
    ------
    NotFoundError
        If the subject has no event with that receipt id.
    """
    rows = _rows(session, subject)
    match = next((r for r in rows if receipt_id(r.event_hash) == receipt), None)
    if match is None:
        raise NotFoundError(kind="consent receipt", ref=receipt)
    registry = notice_registry(session=session)
    event = to_event(match)
    document = build_consent_receipt(
        event=event,
        event_hash=match.event_hash,
        history=[to_event(r) for r in rows],
        catalogue=catalogue,
        purposes=purposes,
        controller=controller,
        notice=registry.get(event.notice_version),
    )
    envelope: dict[str, Any] = signing_key.signed(document)
    return envelope
