"""The data-subject-request workflow: receive, verify, approve, reject, execute, export.

Every function here is what one API route (``server.api.routes.dsr``) or one console action
calls: plain functions with keyword-only arguments taking the session, the acting
``Principal``, the audit sink and the time. Each one validates, applies a
``consent.advance`` transition (the pure state machine), writes one audit entry per
transition and commits. Rules:

- a subject may file and read only requests about their own pseudonym; officers
  (``compliance_officer``, ``admin``) act on any request;
- the officer id of an approval is ``Principal.actor`` (``compliance_officer:<name>``), so an
  erasure needs two *different* named officers; the static admin token (no name) counts as
  one officer, however often it approves;
- execution runs in one transaction: ``approved → in_progress``, the work, ``→ completed``;
  if the work fails, nothing is kept and the request stays ``approved`` (retry is safe);
- erasure (``server.crud.erasure.erase_with_evidence``) destroys the subject's data key,
  deletes every row naming the subject, unlinks its audit entries, tombstones the pseudonym,
  tells the edges and stores the signed erasure receipt on the request, which keeps only the
  receipt's salted commitment to the subject.

Console and API share these functions: :func:`create_request`, :func:`list_requests`,
:func:`get_request`, :func:`verify_request`, :func:`approve_request`,
:func:`reject_request`, :func:`execute_request`, :func:`export_request` and
:func:`erasure_receipt`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from consent import (
    DEFAULT_DUE_DAYS,
    DSRTransitionError,
    FieldCatalogue,
    Rectification,
    RequestAction,
    RequestState,
    RequestStatus,
    RequestType,
    advance,
    required_approvals,
)
from privacy import MasterKeyRing, SigningKey

from ..audit.append import lock_chain
from ..audit.entry_hash import subject_commitment
from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..errors import ForbiddenError, NotFoundError, RequestInvalidError, RequestStateError
from ..identity.graph import members_of
from ..principal import Principal
from ..tables.dsr import DataSubjectRequest, DataSubjectRequestCreate, DataSubjectRequestPublic
from ..tables.token import Role
from .dsr_export import export_document
from .dsr_store import (
    OFFICER_ROLES,
    apply_status,
    can_see,
    load_request,
    seal_rectification,
    status_of,
    to_public,
)
from .erasure import SignedErasure, erase_with_evidence
from .rectify import apply_rectification, check_rectification
from .restriction import set_restriction

logger = logging.getLogger(__name__)

#: Channel recorded for requests a subject files through self-service.
SELF_SERVICE = "self-service"
#: Channel recorded for officers' requests that name none.
DEFAULT_CHANNEL = "desk"

_TRANSITION_AUDIT = {
    RequestAction.VERIFY: AuditAction.DSR_VERIFY,
    RequestAction.APPROVE: AuditAction.DSR_APPROVE,
    RequestAction.REJECT: AuditAction.DSR_REJECT,
    RequestAction.START: AuditAction.DSR_START,
    RequestAction.COMPLETE: AuditAction.DSR_COMPLETE,
}


def _require_officer(principal: Principal) -> None:
    """Refuse callers that are not officers (routes check too; the console calls directly)."""
    if principal.role not in OFFICER_ROLES:
        raise ForbiddenError(role=principal.role.value, allowed=[r.value for r in OFFICER_ROLES])


def _visible(session: Session, request_id: str, principal: Principal) -> DataSubjectRequest:
    """Load a request the caller may see; others' requests look absent (no enumeration)."""
    row = load_request(session=session, request_id=request_id)
    if not can_see(principal, row):
        raise NotFoundError(kind="request", ref=request_id[:36])
    return row


def _audit(
    audit: AuditSink,
    *,
    principal: Principal,
    action: AuditAction,
    row: DataSubjectRequest,
    at: datetime,
    detail: dict[str, object] | None = None,
) -> None:
    """Record one workflow entry naming the request (and the subject, while it exists)."""
    audit.record(
        actor=principal.actor,
        role=principal.role.value,
        action=action,
        purpose=None,
        subject=row.subject,
        outcome=AuditOutcome.ACCEPTED,
        detail={
            "request_id": row.id,
            "request_type": row.request_type.value,
            "state": row.state.value,
            **(detail or {}),
        },
        at=at,
    )


def _advance(
    row: DataSubjectRequest,
    *,
    action: RequestAction,
    principal: Principal,
    at: datetime,
    reason: str | None = None,
) -> RequestStatus:
    """Apply one transition to ``row``, translating the state machine's refusal."""
    try:
        status = advance(
            status_of(row), action=action, officer=principal.actor, at=at, reason=reason
        )
    except DSRTransitionError as exc:
        raise RequestStateError(str(exc), reason=exc.code) from None
    apply_status(row, status, at=at)
    return status


# ------------------------------------------------------------------ receive and read


def create_request(
    *,
    session: Session,
    principal: Principal,
    body: DataSubjectRequestCreate,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    at: datetime,
    due_days: int = DEFAULT_DUE_DAYS,
) -> DataSubjectRequestPublic:
    """Receive a data-subject request; audits ``dsr.create``; commits.

    Parameters
    ----------
    session : Session
        A session.
    principal : Principal
        A subject (for their own pseudonym only) or an officer (for anyone).
    body : DataSubjectRequestCreate
        Subject, type, channel and, for ``rectify``, the proposal.
    catalogue : FieldCatalogue
        Checks a rectification's field and value.
    audit : AuditSink
        Receives the entry.
    at : datetime
        Receipt time.
    due_days : int
        Days until the answer is due (``ServerSettings.dsr_due_days``).

    Returns
    -------
    DataSubjectRequestPublic
        The request in state ``received`` with its due date.

    Raises
    ------
    ForbiddenError
        If a subject files about another pseudonym, or the role may not file requests.
    RequestInvalidError
        If a rectification is missing, given for another type, or does not fit the catalogue.
    """
    if principal.role is Role.SUBJECT:
        if body.subject != principal.subject:
            raise ForbiddenError(role="subject", allowed=["the subject named in the request"])
        channel = SELF_SERVICE
    else:
        _require_officer(principal)
        channel = body.channel or DEFAULT_CHANNEL
    if (body.request_type is RequestType.RECTIFY) != (body.rectification is not None):
        raise RequestInvalidError("'rectification' is required for rectify requests only")
    if body.rectification is not None:
        check_rectification(rectification=body.rectification, catalogue=catalogue)
    status = RequestStatus.new(request_type=body.request_type, received_at=at, due_days=due_days)
    row = DataSubjectRequest(
        id=str(uuid.uuid4()),
        request_type=body.request_type,
        subject=body.subject,
        channel=channel,
        state=status.state,
        received_at=at,
        due_at=status.due_at,
        updated_at=at,
        created_by=principal.actor[:64],
        created_role=principal.role.value,
        rectification_json=None
        if body.rectification is None
        else body.rectification.model_dump_json(),
    )
    lock_chain(session=session)
    session.add(row)
    _audit(
        audit,
        principal=principal,
        action=AuditAction.DSR_CREATE,
        row=row,
        at=at,
        detail={"channel": channel, "due_at": status.due_at.isoformat()},
    )
    session.commit()
    logger.info("received %s request %s", row.request_type.value, row.id)
    return to_public(row, at=at)


def list_requests(
    *,
    session: Session,
    principal: Principal,
    at: datetime,
    state: RequestState | None = None,
    due_before: datetime | None = None,
    overdue: bool | None = None,
    limit: int = 500,
) -> list[DataSubjectRequestPublic]:
    """Return requests, oldest due date first (officers' queue).

    Parameters
    ----------
    session : Session
        A session.
    principal : Principal
        An officer.
    at : datetime
        Now (for the overdue flag).
    state : RequestState or None
        Only requests in this state.
    due_before : datetime or None
        Only requests due before this time.
    overdue : bool or None
        Only overdue (True) or only not overdue (False) requests.
    limit : int
        Most requests returned.

    Returns
    -------
    list[DataSubjectRequestPublic]
        The requests.

    Raises
    ------
    ForbiddenError
        If the caller is not an officer.
    """
    _require_officer(principal)
    stmt = select(DataSubjectRequest)
    if state is not None:
        stmt = stmt.where(col(DataSubjectRequest.state) == state)
    if due_before is not None:
        stmt = stmt.where(col(DataSubjectRequest.due_at) < due_before)
    stmt = stmt.order_by(col(DataSubjectRequest.due_at), col(DataSubjectRequest.id))
    found = [to_public(r, at=at) for r in session.exec(stmt).all()]
    if overdue is not None:
        found = [r for r in found if r.overdue == overdue]
    return found[:limit]


def get_request(
    *, session: Session, request_id: str, principal: Principal, at: datetime
) -> DataSubjectRequestPublic:
    """Return one request (officers: any; a subject: their own).

    Parameters
    ----------
    session : Session
        A session.
    request_id : str
        The request's id.
    principal : Principal
        The caller.
    at : datetime
        Now (for the overdue flag).

    Returns
    -------
    DataSubjectRequestPublic
        The request.

    Raises
    ------
    NotFoundError
        If there is no such request visible to the caller.
    """
    return to_public(_visible(session, request_id, principal), at=at)


# ------------------------------------------------------------------ officers' transitions


def _transition(
    *,
    session: Session,
    request_id: str,
    principal: Principal,
    action: RequestAction,
    audit: AuditSink,
    at: datetime,
    reason: str | None = None,
) -> DataSubjectRequestPublic:
    """Apply one officer transition, audit it and commit."""
    _require_officer(principal)
    lock_chain(session=session)
    row = load_request(session=session, request_id=request_id)
    status = _advance(row, action=action, principal=principal, at=at, reason=reason)
    detail: dict[str, object] = {}
    if action is RequestAction.APPROVE:
        detail = {
            "approvals": len(status.approvals),
            "approvals_required": required_approvals(row.request_type),
        }
    if action is RequestAction.REJECT:
        seal_rectification(row)
        detail = {"reason_length": len(status.rejection_reason or "")}
    session.add(row)
    _audit(audit, principal=principal, action=_TRANSITION_AUDIT[action], row=row, at=at,
           detail=detail)
    session.commit()
    return to_public(row, at=at)


def verify_request(
    *, session: Session, request_id: str, principal: Principal, audit: AuditSink, at: datetime
) -> DataSubjectRequestPublic:
    """Start verifying identity and scope (``received → verifying``); audits; commits.

    Parameters
    ----------
    session : Session
        A session.
    request_id : str
        The request's id.
    principal : Principal
        An officer.
    audit : AuditSink
        Receives ``dsr.verify``.
    at : datetime
        When.

    Returns
    -------
    DataSubjectRequestPublic
        The request.

    Raises
    ------
    NotFoundError
        If there is no such request.
    RequestStateError
        If the request is not ``received``.
    ForbiddenError
        If the caller is not an officer.
    """
    return _transition(session=session, request_id=request_id, principal=principal,
                       action=RequestAction.VERIFY, audit=audit, at=at)


def approve_request(
    *, session: Session, request_id: str, principal: Principal, audit: AuditSink, at: datetime
) -> DataSubjectRequestPublic:
    """Approve a request being verified; erasure needs two different officers; commits.

    Parameters
    ----------
    session : Session
        A session.
    request_id : str
        The request's id.
    principal : Principal
        An officer (their ``actor`` is the approval's officer id).
    audit : AuditSink
        Receives ``dsr.approve`` with the number of approvals so far.
    at : datetime
        When.

    Returns
    -------
    DataSubjectRequestPublic
        The request: ``approved``, or still ``verifying`` after an erasure's first approval.

    Raises
    ------
    NotFoundError
        If there is no such request.
    RequestStateError
        ``invalid_transition`` if it is not ``verifying``; ``duplicate_approval`` if this
        officer already approved it.
    ForbiddenError
        If the caller is not an officer.
    """
    return _transition(session=session, request_id=request_id, principal=principal,
                       action=RequestAction.APPROVE, audit=audit, at=at)


def reject_request(
    *,
    session: Session,
    request_id: str,
    principal: Principal,
    reason: str,
    audit: AuditSink,
    at: datetime,
) -> DataSubjectRequestPublic:
    """Reject a request with a stated reason (PIPL Art. 50); audits; commits.

    Parameters
    ----------
    session : Session
        A session.
    request_id : str
        The request's id.
    principal : Principal
        An officer.
    reason : str
        Why (3-500 characters; no personal data). Shown to the subject; the audit entry
        records only its length.
    audit : AuditSink
        Receives ``dsr.reject``.
    at : datetime
        When.

    Returns
    -------
    DataSubjectRequestPublic
        The rejected request.

    Raises
    ------
    NotFoundError
        If there is no such request.
    RequestStateError
        ``invalid_transition`` if it is already executing or final; ``reason_required``
        without a usable reason.
    ForbiddenError
        If the caller is not an officer.
    """
    return _transition(session=session, request_id=request_id, principal=principal,
                       action=RequestAction.REJECT, audit=audit, at=at, reason=reason)


# ------------------------------------------------------------------ execution


def _run_erasure(
    session: Session,
    row: DataSubjectRequest,
    principal: Principal,
    audit: AuditSink,
    signing_key: SigningKey,
    at: datetime,
) -> dict[str, Any]:
    """Erase the subject's whole person; unlink their requests; return the receipts.

    The data subject is the person: every pseudonym linked with the requested one (shared
    identity tokens, officers' merges) is erased the same way, each with its own signed
    receipt, tombstone and feed event, so every edge deletes every pseudonym.
    """
    subject = row.subject
    assert subject is not None  # checked by execute_request
    linked = [m for m in members_of(session, subject) if m != subject]
    receipts = [
        _erase_one(session, row, member, principal, audit, signing_key, at)
        for member in [subject, *linked]
    ]
    first = receipts[0]
    row.subject = None
    row.subject_commitment = first.receipt.subject_commitment
    row.commitment_salt = first.receipt.commitment_salt
    return {
        "receipt_id": first.receipt.receipt_id,
        "rows_erased": dict(first.receipt.deleted),
        "key_destroyed": first.receipt.key_destruction is not None,
        "receipt": first.envelope,
        "linked_pseudonyms_erased": len(linked),
        "linked_receipts": [r.envelope for r in receipts[1:]],
    }


def _erase_one(
    session: Session,
    row: DataSubjectRequest,
    subject: str,
    principal: Principal,
    audit: AuditSink,
    signing_key: SigningKey,
    at: datetime,
) -> SignedErasure:
    """Erase one pseudonym of the request's person, unlinking its requests first."""
    for other in session.exec(
        select(DataSubjectRequest).where(col(DataSubjectRequest.subject) == subject)
    ).all():
        seal_rectification(other)
        other.subject = None
        session.add(other)
    session.flush()
    return erase_with_evidence(
        session=session,
        subject=subject,
        request_id=row.id,
        actor=principal.actor,
        role=principal.role.value,
        audit=audit,
        signing_key=signing_key,
        at=at,
    )


def _run_restriction(
    session: Session,
    row: DataSubjectRequest,
    principal: Principal,
    audit: AuditSink,
    at: datetime,
) -> dict[str, Any]:
    """Restrict the subject or lift its restriction, audited as such."""
    subject = row.subject
    assert subject is not None
    restrict = row.request_type is RequestType.RESTRICT
    changed = set_restriction(
        session=session, subject=subject, restricted=restrict, at=at, request_id=row.id
    )
    audit.record(
        actor=principal.actor,
        role=principal.role.value,
        action=AuditAction.SUBJECT_RESTRICT if restrict else AuditAction.SUBJECT_UNRESTRICT,
        purpose=None,
        subject=subject,
        outcome=AuditOutcome.ACCEPTED,
        detail={"request_id": row.id, "changed": changed},
        at=at,
    )
    return {"restricted": restrict, "changed": changed}


def execute_request(
    *,
    session: Session,
    request_id: str,
    principal: Principal,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    signing_key: SigningKey,
    at: datetime,
    master_keys: MasterKeyRing | None = None,
) -> DataSubjectRequestPublic:
    """Carry out an approved request in one transaction; audits each step; commits.

    1. ``approved → in_progress`` (``dsr.start``);
    2. the work: access counts what the export will hold; rectify corrects or deletes the
       field and suppresses it; erase runs :func:`server.crud.erasure.erase_with_evidence`;
       restrict and lift set or clear the restriction and tell the edges;
    3. ``→ completed`` (``dsr.complete``) with the evidence in ``result``.

    Parameters
    ----------
    session : Session
        A session.
    request_id : str
        The request's id.
    principal : Principal
        The executing officer.
    catalogue : FieldCatalogue
        The catalogue in force.
    audit : AuditSink
        Receives the entries.
    signing_key : SigningKey
        Signs the erasure receipt.
    at : datetime
        When.
    master_keys : MasterKeyRing or None
        Needed to correct a sensitive field and to count sealed fields of an export.

    Returns
    -------
    DataSubjectRequestPublic
        The completed request.

    Raises
    ------
    NotFoundError
        If there is no such request.
    RequestStateError
        If the request is not ``approved``.
    RequestInvalidError
        If the request names no subject any more (erased meanwhile) or its rectification no
        longer fits the catalogue.
    ForbiddenError
        If the caller is not an officer.
    """
    _require_officer(principal)
    lock_chain(session=session)
    row = load_request(session=session, request_id=request_id)
    _advance(row, action=RequestAction.START, principal=principal, at=at)
    if row.subject is None:
        session.rollback()
        raise RequestInvalidError("the request's subject was erased meanwhile; reject it instead")
    row.started_at = at
    _audit(audit, principal=principal, action=AuditAction.DSR_START, row=row, at=at)
    runners: dict[RequestType, Callable[[], dict[str, Any]]] = {
        RequestType.ACCESS: lambda: _access_counts(session, row, catalogue, master_keys, at),
        RequestType.RECTIFY: lambda: _run_rectification(session, row, principal, audit,
                                                        catalogue, master_keys, at),
        RequestType.ERASE: lambda: _run_erasure(session, row, principal, audit, signing_key, at),
        RequestType.RESTRICT: lambda: _run_restriction(session, row, principal, audit, at),
        RequestType.LIFT_RESTRICTION: lambda: _run_restriction(session, row, principal, audit,
                                                               at),
    }
    try:
        result = runners[row.request_type]()
    except Exception:
        session.rollback()
        raise
    _advance(row, action=RequestAction.COMPLETE, principal=principal, at=at)
    row.completed_at = at
    row.result_json = json.dumps(result, ensure_ascii=False, sort_keys=True)
    seal_rectification(row)
    session.add(row)
    evidence = {k: v for k, v in result.items() if k != "receipt"}
    _audit(audit, principal=principal, action=AuditAction.DSR_COMPLETE, row=row, at=at,
           detail={"result": evidence})
    session.commit()
    logger.info("completed %s request %s", row.request_type.value, row.id)
    return to_public(row, at=at)


def _access_counts(
    session: Session,
    row: DataSubjectRequest,
    catalogue: FieldCatalogue,
    master_keys: MasterKeyRing | None,
    at: datetime,
) -> dict[str, Any]:
    """Return counts of what the export holds (the export itself is built on download)."""
    assert row.subject is not None
    document = export_document(session=session, subject=row.subject, request_id=row.id,
                               catalogue=catalogue, master_keys=master_keys, at=at)
    return {
        "profile_fields": len(document["profile"]),
        "consent_events": len(document["consents"]),
        "history_entries": len(document["processing_history"]),
    }


def _run_rectification(
    session: Session,
    row: DataSubjectRequest,
    principal: Principal,
    audit: AuditSink,
    catalogue: FieldCatalogue,
    master_keys: MasterKeyRing | None,
    at: datetime,
) -> dict[str, Any]:
    """Correct or delete the field, audited as ``field.rectify``."""
    assert row.subject is not None and row.rectification_json is not None
    proposal = Rectification.model_validate_json(row.rectification_json)
    evidence = apply_rectification(session=session, subject=row.subject, rectification=proposal,
                                   catalogue=catalogue, master_keys=master_keys,
                                   request_id=row.id, at=at)
    audit.record(
        actor=principal.actor,
        role=principal.role.value,
        action=AuditAction.FIELD_RECTIFY,
        purpose=None,
        subject=row.subject,
        outcome=AuditOutcome.ACCEPTED,
        detail={"request_id": row.id, **evidence},
        at=at,
    )
    return evidence


# ------------------------------------------------------------------ documents


def export_request(
    *,
    session: Session,
    request_id: str,
    principal: Principal,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    signing_key: SigningKey,
    at: datetime,
    master_keys: MasterKeyRing | None = None,
) -> dict[str, Any]:
    """Return the signed export of a completed access request; audits ``dsr.export``; commits.

    Parameters
    ----------
    session : Session
        A session.
    request_id : str
        A completed ``access`` request.
    principal : Principal
        An officer or the subject.
    catalogue : FieldCatalogue
        Gives field meanings.
    audit : AuditSink
        Receives the entry.
    signing_key : SigningKey
        Signs the document.
    at : datetime
        Generation time.
    master_keys : MasterKeyRing or None
        Opens sealed fields.

    Returns
    -------
    dict[str, Any]
        ``SigningKey.signed`` envelope of :func:`server.crud.dsr_export.export_document`.

    Raises
    ------
    NotFoundError
        If there is no such request visible to the caller.
    RequestStateError
        If it is not a completed access request, or its subject was erased since.
    """
    row = _visible(session, request_id, principal)
    if row.request_type is not RequestType.ACCESS or row.state is not RequestState.COMPLETED:
        raise RequestStateError(
            "only a completed access request has an export", reason="invalid_transition"
        )
    if row.subject is None:
        raise RequestStateError("the subject was erased; nothing is left to export",
                                reason="invalid_transition")
    document = export_document(session=session, subject=row.subject, request_id=row.id,
                               catalogue=catalogue, master_keys=master_keys, at=at)
    lock_chain(session=session)
    _audit(audit, principal=principal, action=AuditAction.DSR_EXPORT, row=row, at=at,
           detail={"profile_fields": len(document["profile"])})
    session.commit()
    envelope: dict[str, Any] = signing_key.signed(document)
    return envelope


def erasure_receipt(
    *, session: Session, request_id: str, principal: Principal
) -> dict[str, Any]:
    """Return the signed erasure receipt of a completed erasure request.

    Officers may fetch any receipt. The subject's own requests no longer name them after
    erasure, so a subject principal gets the receipt only if it is about their pseudonym
    (checked against the receipt's salted commitment).

    Parameters
    ----------
    session : Session
        A session.
    request_id : str
        A completed ``erase`` request.
    principal : Principal
        An officer or the erased subject.

    Returns
    -------
    dict[str, Any]
        The signed envelope (verify with ``server.crud.erasure.verify_erasure_receipt``).

    Raises
    ------
    NotFoundError
        If there is no such request, or it is not the calling subject's.
    RequestStateError
        If it is not a completed erasure.
    """
    row = load_request(session=session, request_id=request_id)
    if principal.role not in OFFICER_ROLES:
        ok = (
            principal.role is Role.SUBJECT
            and principal.subject is not None
            and row.commitment_salt is not None
            and subject_commitment(row.commitment_salt, principal.subject)
            == row.subject_commitment
        )
        if not ok:
            raise NotFoundError(kind="request", ref=request_id[:36])
    if row.request_type is not RequestType.ERASE or row.state is not RequestState.COMPLETED:
        raise RequestStateError(
            "only a completed erasure request has a receipt", reason="invalid_transition"
        )
    receipt: dict[str, Any] = json.loads(row.result_json)["receipt"]
    return receipt
