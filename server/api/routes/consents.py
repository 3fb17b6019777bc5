"""Consent routes: edges upload events (``POST /consents``); officers view a subject's consent.

Events are append-only; re-sent events count as duplicates. Officers (compliance officer,
admin) see each purpose's status now, including grants paused by a material notice, and every
event with its receipt id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from consent import ConsentEvent
from models import PSEUDONYM_REGEX, ConsentBatchResult

from ...audit.events import AuditAction, AuditOutcome
from ...audit.principal_action import audit_action
from ...crud.consent import record_consents
from ...crud.receipt import ConsentOverview, consent_overview, signed_receipt
from ...errors import NotFoundError
from ..deps import (
    AuditDep,
    CatalogueDep,
    ClockDep,
    ControllerDep,
    EdgePrincipal,
    OfficerPrincipal,
    PurposesDep,
    SessionDep,
    SigningKeyDep,
)

router = APIRouter(tags=["consents"])

SubjectPath = Annotated[
    str, Path(pattern=PSEUDONYM_REGEX, description="the subject's pseudonym (ps_ + 64 hex)")
]

#: Most events accepted in one request.
MAX_BATCH = 1000


@router.post("/consents")
def post_consents(
    events: Annotated[list[ConsentEvent], Body(min_length=1, max_length=MAX_BATCH)],
    session: SessionDep,
    principal: EdgePrincipal,
    catalogue: CatalogueDep,
    audit: AuditDep,
    clock: ClockDep,
) -> ConsentBatchResult:
    """Record consent events; withdrawals purge fields no granted purpose allows any more.

    Audited as ``consent.record``: one entry per subject in the batch, with counts.
    """
    return record_consents(
        session=session,
        events=events,
        principal=principal,
        catalogue=catalogue,
        audit=audit,
        at=clock(),
    )


@router.get("/subjects/{subject}/consents")
def get_subject_consents(
    subject: SubjectPath,
    session: SessionDep,
    purposes: PurposesDep,
    clock: ClockDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
) -> ConsentOverview:
    """Return the subject's consent per purpose now and every event with its receipt id.

    Audited as ``consent.view`` (an officer looking at a subject's consent history).
    """
    at = clock()
    overview = consent_overview(session=session, subject=subject, purposes=purposes, at=at)
    audit_action(
        session, audit, principal, action=AuditAction.CONSENT_VIEW, at=at, subject=subject,
        detail={"events": len(overview.events)},
    )  # fmt: skip
    return overview


@router.get("/subjects/{subject}/consents/{receipt_id}/receipt")
def get_subject_receipt(
    subject: SubjectPath,
    receipt_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="a receipt id")],
    session: SessionDep,
    catalogue: CatalogueDep,
    purposes: PurposesDep,
    signing_key: SigningKeyDep,
    controller: ControllerDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
    clock: ClockDep,
) -> dict[str, Any]:
    """Return the signed receipt of one of the subject's consent events (evidence, Art. 69).

    Audited as ``consent.receipt``, also when the subject has no such receipt (``not_found``).
    """
    at = clock()
    try:
        envelope = signed_receipt(
            session=session,
            subject=subject,
            receipt=receipt_id,
            catalogue=catalogue,
            purposes=purposes,
            signing_key=signing_key,
            controller=controller,
        )
    except NotFoundError:
        audit_action(
            session, audit, principal, action=AuditAction.CONSENT_RECEIPT, at=at,
            outcome=AuditOutcome.NOT_FOUND, subject=subject, detail={"receipt_id": receipt_id},
        )  # fmt: skip
        raise
    audit_action(
        session, audit, principal, action=AuditAction.CONSENT_RECEIPT, at=at,
        subject=subject, detail={"receipt_id": receipt_id},
    )  # fmt: skip
    return envelope
