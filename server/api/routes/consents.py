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

from ...crud.consent import record_consents
from ...crud.receipt import ConsentOverview, consent_overview, signed_receipt
from ..deps import (
    AuditDep,
    CatalogueDep,
    ClockDep,
    EdgePrincipal,
    PurposesDep,
    SessionDep,
    SigningKeyDep,
    officers_only,
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


@router.get("/subjects/{subject}/consents", dependencies=[officers_only])
def get_subject_consents(
    subject: SubjectPath,
    session: SessionDep,
    purposes: PurposesDep,
    clock: ClockDep,
) -> ConsentOverview:
    """Return the subject's consent per purpose now and every event with its receipt id."""
    return consent_overview(session=session, subject=subject, purposes=purposes, at=clock())


@router.get("/subjects/{subject}/consents/{receipt_id}/receipt", dependencies=[officers_only])
def get_subject_receipt(
    subject: SubjectPath,
    receipt_id: Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="a receipt id")],
    session: SessionDep,
    catalogue: CatalogueDep,
    purposes: PurposesDep,
    signing_key: SigningKeyDep,
) -> dict[str, Any]:
    """Return the signed receipt of one of the subject's consent events (evidence, Art. 69)."""
    return signed_receipt(
        session=session,
        subject=subject,
        receipt=receipt_id,
        catalogue=catalogue,
        purposes=purposes,
        signing_key=signing_key,
    )
