"""Subject self-service under ``/me`` (PIPL Art. 24, 44-45): subject tokens only.

A subject token is bound to one pseudonym; every route here acts on that pseudonym and no
other. The subject can see their stored profile with meanings (zh/en), see and change their
consents, download a signed receipt for each consent event, switch personalization off in one
step and delete any of their own tags (edges are told not to upload it again).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from models.decisions import DecisionOut

from ...crud.own_profile import OwnProfile, TagDeletion, delete_own_field, own_profile
from ...crud.receipt import ConsentOverview, consent_overview, signed_receipt
from ...crud.self_service import (
    ConsentChange,
    ConsentChangeResult,
    PersonalizationChange,
    PersonalizationResult,
    change_consent,
    set_personalization,
)
from ...decisions.self_service import (
    AutomatedDecisionChange,
    MyDecisions,
    my_decision,
    my_decisions,
    set_refusal,
)
from ..deps import (
    AuditDep,
    CatalogueDep,
    ClockDep,
    ControllerDep,
    MasterKeysDep,
    PurposesDep,
    SessionDep,
    SigningKeyDep,
    SubjectPrincipal,
)

router = APIRouter(prefix="/me", tags=["self-service"])

FieldPath = Annotated[
    str, Path(max_length=80, pattern=r"^[a-z][a-z0-9_.]*$", description="a catalogued field")
]
ReceiptPath = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="a receipt id")]
DecisionPath = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$", description="a decision id")]


@router.get("/profile")
def get_my_profile(
    session: SessionDep,
    principal: SubjectPrincipal,
    catalogue: CatalogueDep,
    purposes: PurposesDep,
    audit: AuditDep,
    clock: ClockDep,
    master_keys: MasterKeysDep,
) -> OwnProfile:
    """Return every field the server holds about me, its meaning and its current uses."""
    return own_profile(
        session=session,
        principal=principal,
        catalogue=catalogue,
        purposes=purposes,
        audit=audit,
        at=clock(),
        master_keys=master_keys,
    )


@router.get("/consents")
def get_my_consents(
    session: SessionDep, principal: SubjectPrincipal, purposes: PurposesDep, clock: ClockDep
) -> ConsentOverview:
    """Return my consent per purpose now (granted, renewal_required, withdrawn...) and events."""
    assert principal.subject is not None  # a subject principal always has one
    return consent_overview(
        session=session, subject=principal.subject, purposes=purposes, at=clock()
    )


@router.post("/consents")
def post_my_consent(
    change: ConsentChange,
    session: SessionDep,
    principal: SubjectPrincipal,
    catalogue: CatalogueDep,
    purposes: PurposesDep,
    audit: AuditDep,
    clock: ClockDep,
) -> ConsentChangeResult:
    """Grant or withdraw one purpose; a withdrawal purges fields no granted purpose needs."""
    return change_consent(
        session=session,
        change=change,
        principal=principal,
        catalogue=catalogue,
        purposes=purposes,
        audit=audit,
        at=clock(),
    )


@router.get("/consents/{receipt_id}/receipt")
def get_my_receipt(
    receipt_id: ReceiptPath,
    session: SessionDep,
    principal: SubjectPrincipal,
    catalogue: CatalogueDep,
    purposes: PurposesDep,
    signing_key: SigningKeyDep,
    controller: ControllerDep,
) -> dict[str, Any]:
    """Return the signed receipt of one of my consent events (verify with the signing key)."""
    assert principal.subject is not None
    return signed_receipt(
        session=session,
        subject=principal.subject,
        receipt=receipt_id,
        catalogue=catalogue,
        purposes=purposes,
        signing_key=signing_key,
        controller=controller,
    )


@router.put("/personalization")
def put_my_personalization(
    change: PersonalizationChange,
    session: SessionDep,
    principal: SubjectPrincipal,
    catalogue: CatalogueDep,
    purposes: PurposesDep,
    audit: AuditDep,
    clock: ClockDep,
) -> PersonalizationResult:
    """Turn personalization off (personalized/proactive service and marketing stop at once)."""
    return set_personalization(
        session=session,
        change=change,
        principal=principal,
        catalogue=catalogue,
        purposes=purposes,
        audit=audit,
        at=clock(),
    )


@router.delete("/tags/{field}")
def delete_my_tag(
    field: FieldPath,
    session: SessionDep,
    principal: SubjectPrincipal,
    catalogue: CatalogueDep,
    audit: AuditDep,
    clock: ClockDep,
) -> TagDeletion:
    """Delete one of my fields and forbid edges to upload it again."""
    return delete_own_field(
        session=session,
        field=field,
        principal=principal,
        catalogue=catalogue,
        audit=audit,
        at=clock(),
    )


@router.get("/decisions")
def get_my_decisions(session: SessionDep, principal: SubjectPrincipal) -> MyDecisions:
    """List the automated decisions about me (PIPL Art. 24), newest first, explained."""
    return my_decisions(session=session, principal=principal)


@router.get("/decisions/{decision_id}")
def get_my_decision(
    decision_id: DecisionPath, session: SessionDep, principal: SubjectPrincipal
) -> DecisionOut:
    """Explain one decision about me: the rules that held and what they read."""
    return my_decision(session=session, principal=principal, decision_id=decision_id)


@router.put("/automated-decisions")
def put_my_automated_decisions(
    change: AutomatedDecisionChange,
    session: SessionDep,
    principal: SubjectPrincipal,
    audit: AuditDep,
    clock: ClockDep,
) -> MyDecisions:
    """Refuse solely automated decisions (a human decides from now on), or accept them again."""
    return set_refusal(
        session=session, change=change, principal=principal, audit=audit, at=clock()
    )
