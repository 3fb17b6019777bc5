"""Identity routes: edges' keyed tokens in; persons, hubs and officers' decisions.

Thin: the workflows are in ``server.identity`` (tokens, graph, governance).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from models import (
    PSEUDONYM_REGEX,
    IdentityEncodingBatch,
    IdentityEncodingResult,
    IdentityTokenBatch,
    IdentityTokenResult,
)

from ...identity.encodings import pending_reviews, record_encodings, review_pair
from ...identity.governance import (
    Decision,
    decisions_about,
    detach_subject,
    merge_subjects,
    undo_decision,
)
from ...identity.graph import (
    TOKEN_EVIDENCE_CHARS,
    hub_tokens,
    members_of,
    person_of,
    persons_page,
)
from ...identity.tokens import record_tokens
from ..deps import (
    AuditDep,
    ClockDep,
    EdgePrincipal,
    OfficerPrincipal,
    SessionDep,
    SettingsDep,
)

router = APIRouter(tags=["identity"])

SubjectPath = Annotated[
    str, Path(pattern=PSEUDONYM_REGEX, description="a pseudonym (ps_ + 64 hex)")
]
Pseudonym = Annotated[str, Field(pattern=PSEUDONYM_REGEX)]
Reason = Annotated[str, Field(min_length=3, max_length=500, description="why (no personal data)")]


class MergeRequest(BaseModel):
    """Two pseudonyms an officer declares to be one person."""

    subject: Pseudonym
    other: Pseudonym
    reason: Reason


class DetachRequest(BaseModel):
    """A pseudonym an officer splits off every automatic link."""

    subject: Pseudonym
    reason: Reason


class DecisionOut(BaseModel):
    """An identity decision as stored (evidence for audit and undo)."""

    id: int
    action: str
    subject: str
    other: str | None
    officer: str
    reason: str
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None


class DecisionResult(BaseModel):
    """What an officer's decision changed."""

    decision: int
    linked: int
    unlinked: int


class PersonOut(BaseModel):
    """The person a pseudonym belongs to: its pseudonyms and the decisions about them."""

    person: str | None = Field(description="None: the pseudonym stands alone")
    members: list[str]
    decisions: list[DecisionOut]


class PersonMembers(BaseModel):
    """One person and its pseudonyms."""

    person: str
    members: list[str]


class ReviewOut(BaseModel):
    """A probabilistic pair waiting for an officer."""

    id: int
    subject: str
    other: str
    score: float
    created_at: datetime


class ReviewDecision(BaseModel):
    """An officer's review of a pair."""

    decision: Literal["accept", "reject"]


class HubOut(BaseModel):
    """A token shared by more pseudonyms than the hub limit: it links nobody."""

    token_prefix: str
    kind: str
    pseudonyms: int


def _result(decision: Decision) -> DecisionResult:
    return DecisionResult(
        decision=decision.override_id, linked=decision.linked, unlinked=decision.unlinked
    )


@router.post("/identity-tokens")
def post_identity_tokens(
    batch: IdentityTokenBatch,
    session: SessionDep,
    principal: EdgePrincipal,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> IdentityTokenResult:
    """Record keyed identity tokens and link the pseudonyms that share one into persons.

    Tokens of pseudonyms with no granted purpose, restricted or erased are refused (counted).
    Audited as ``identity.tokens`` plus ``identity.link`` / ``identity.unlink`` per change.
    """
    return record_tokens(
        session=session, batch=batch, principal=principal, audit=audit,
        hub_limit=settings.identity_hub_limit, at=clock(),
    )  # fmt: skip


@router.get("/subjects/{subject}/person")
def get_person(subject: SubjectPath, session: SessionDep, _officer: OfficerPrincipal) -> PersonOut:
    """Return the pseudonyms linked with ``subject`` and the officers' decisions about them."""
    members = members_of(session, subject)
    return PersonOut(
        person=person_of(session, subject),
        members=members,
        decisions=[
            DecisionOut.model_validate(d, from_attributes=True)
            for d in decisions_about(session, members)
        ],
    )


@router.get("/identity/persons")
def get_persons(
    session: SessionDep,
    _officer: OfficerPrincipal,
    after: Annotated[str | None, Query(max_length=36, pattern=r"^pn_[0-9a-f]{1,32}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[PersonMembers]:
    """List persons of two or more pseudonyms in id order (page with ``after``)."""
    return [
        PersonMembers(person=p, members=m)
        for p, m in persons_page(session, after=after, limit=limit)
    ]


@router.get("/identity/hubs")
def get_hubs(
    session: SessionDep, _officer: OfficerPrincipal, settings: SettingsDep
) -> list[HubOut]:
    """List hub tokens (shared by more pseudonyms than the limit; they link nobody)."""
    return [
        HubOut(token_prefix=token[:TOKEN_EVIDENCE_CHARS], kind=kind, pseudonyms=n)
        for token, kind, n in hub_tokens(session, hub_limit=settings.identity_hub_limit)
    ]


@router.post("/identity/merges")
def post_merge(
    body: MergeRequest,
    session: SessionDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> DecisionResult:
    """Merge two pseudonyms into one person (audited ``identity.merge``; undoable)."""
    return _result(
        merge_subjects(
            session=session, subject=body.subject, other=body.other, reason=body.reason,
            principal=principal, audit=audit, hub_limit=settings.identity_hub_limit, at=clock(),
        )
    )  # fmt: skip


@router.post("/identity/detachments")
def post_detach(
    body: DetachRequest,
    session: SessionDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> DecisionResult:
    """Split a pseudonym off every automatic link (audited ``identity.detach``; undoable)."""
    return _result(
        detach_subject(
            session=session, subject=body.subject, reason=body.reason, principal=principal,
            audit=audit, hub_limit=settings.identity_hub_limit, at=clock(),
        )
    )  # fmt: skip


@router.post("/identity/decisions/{decision_id}/undo")
def post_undo(
    decision_id: Annotated[int, Path(ge=1, le=2**62)],
    session: SessionDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> DecisionResult:
    """Undo a merge or detach decision (audited ``identity.undo``)."""
    return _result(
        undo_decision(
            session=session, override_id=decision_id, principal=principal, audit=audit,
            hub_limit=settings.identity_hub_limit, at=clock(),
        )
    )  # fmt: skip


@router.post("/identity-encodings")
def post_identity_encodings(
    batch: IdentityEncodingBatch,
    session: SessionDep,
    principal: EdgePrincipal,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> IdentityEncodingResult:
    """Store keyed quasi-identifier encodings; link them probabilistically; review band.

    Audited as ``identity.encodings`` plus ``identity.link`` / ``identity.unlink`` per change.
    """
    return record_encodings(
        session=session, batch=batch, principal=principal, audit=audit,
        hub_limit=settings.identity_hub_limit, at=clock(),
        threshold=settings.identity_match_threshold,
        review_floor=settings.identity_review_floor,
    )  # fmt: skip


@router.get("/identity/reviews")
def get_reviews(
    session: SessionDep,
    _officer: OfficerPrincipal,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ReviewOut]:
    """List probabilistic pairs waiting for an officer, most probable first."""
    return [
        ReviewOut.model_validate(row, from_attributes=True)
        for row in pending_reviews(session, limit=limit)
    ]


@router.post("/identity/reviews/{candidate_id}")
def post_review(
    candidate_id: Annotated[int, Path(ge=1, le=2**62)],
    body: ReviewDecision,
    session: SessionDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> DecisionResult:
    """Accept or reject a probabilistic pair (audited ``identity.review``)."""
    change = review_pair(
        session=session, candidate_id=candidate_id, accept=body.decision == "accept",
        principal=principal, audit=audit, hub_limit=settings.identity_hub_limit, at=clock(),
    )  # fmt: skip
    return DecisionResult(
        decision=candidate_id, linked=len(change.linked), unlinked=len(change.unlinked)
    )
