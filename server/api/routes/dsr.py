"""Data-subject-request routes: receive, queue, verify, approve, reject, execute, documents.

Thin routes over ``server.crud.dsr``: each parses, authorises with ``require_role`` and calls
one function. Subjects file and read their own requests (self-service); compliance officers
and admins run the workflow. Erasure needs two different officers' approvals.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from consent import RequestState
from models import BoundedTime

from ...crud.dsr import (
    approve_request,
    create_request,
    erasure_receipt,
    execute_request,
    export_request,
    get_request,
    list_requests,
    reject_request,
    verify_request,
)
from ...principal import Principal
from ...tables.dsr import DataSubjectRequestCreate, DataSubjectRequestPublic
from ...tables.token import Role
from ..deps import (
    AuditDep,
    CatalogueDep,
    ClockDep,
    MasterKeysDep,
    SessionDep,
    SettingsDep,
    SigningKeyDep,
    require_role,
)

router = APIRouter(tags=["data-subject requests"])

OfficerPrincipal = Annotated[
    Principal, Depends(require_role(Role.COMPLIANCE_OFFICER, Role.ADMIN))
]
OfficerOrSubject = Annotated[
    Principal, Depends(require_role(Role.COMPLIANCE_OFFICER, Role.ADMIN, Role.SUBJECT))
]
RequestId = Annotated[str, Path(min_length=1, max_length=36, description="the request's id")]


class Rejection(BaseModel):
    """Body of ``POST /dsr/{id}/reject``.

    Parameters
    ----------
    reason : str
        Why the request is refused (3-500 characters, shown to the subject; no personal data).
    """

    reason: str = Field(min_length=3, max_length=500)


@router.post("/dsr", status_code=status.HTTP_201_CREATED)
def post_dsr(
    body: DataSubjectRequestCreate,
    session: SessionDep,
    principal: OfficerOrSubject,
    catalogue: CatalogueDep,
    settings: SettingsDep,
    audit: AuditDep,
    clock: ClockDep,
) -> DataSubjectRequestPublic:
    """Receive a request (a subject only for their own pseudonym); audited as ``dsr.create``."""
    return create_request(session=session, principal=principal, body=body, catalogue=catalogue,
                          audit=audit, at=clock(), due_days=settings.dsr_due_days)


@router.get("/dsr")
def get_dsr_queue(
    session: SessionDep,
    principal: OfficerPrincipal,
    clock: ClockDep,
    state: Annotated[RequestState | None, Query(description="only this state")] = None,
    due_before: Annotated[BoundedTime | None, Query(description="only due before this")] = None,
    overdue: Annotated[bool | None, Query(description="only overdue (or not)")] = None,
) -> list[DataSubjectRequestPublic]:
    """List requests by due date (officers' queue), with the overdue flag."""
    return list_requests(session=session, principal=principal, at=clock(), state=state,
                         due_before=due_before, overdue=overdue)


@router.get("/dsr/{request_id}")
def get_dsr(
    request_id: RequestId, session: SessionDep, principal: OfficerOrSubject, clock: ClockDep
) -> DataSubjectRequestPublic:
    """Return one request (a subject sees only their own)."""
    return get_request(session=session, request_id=request_id, principal=principal, at=clock())


@router.post("/dsr/{request_id}/verify")
def post_dsr_verify(
    request_id: RequestId,
    session: SessionDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
    clock: ClockDep,
) -> DataSubjectRequestPublic:
    """Start verifying identity and scope (``received → verifying``)."""
    return verify_request(session=session, request_id=request_id, principal=principal,
                          audit=audit, at=clock())


@router.post("/dsr/{request_id}/approve")
def post_dsr_approve(
    request_id: RequestId,
    session: SessionDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
    clock: ClockDep,
) -> DataSubjectRequestPublic:
    """Approve; an erasure stays ``verifying`` until a second, different officer approves."""
    return approve_request(session=session, request_id=request_id, principal=principal,
                           audit=audit, at=clock())


@router.post("/dsr/{request_id}/reject")
def post_dsr_reject(
    request_id: RequestId,
    body: Rejection,
    session: SessionDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
    clock: ClockDep,
) -> DataSubjectRequestPublic:
    """Reject with a stated reason (PIPL Art. 50)."""
    return reject_request(session=session, request_id=request_id, principal=principal,
                          reason=body.reason, audit=audit, at=clock())


@router.post("/dsr/{request_id}/execute")
def post_dsr_execute(
    request_id: RequestId,
    session: SessionDep,
    principal: OfficerPrincipal,
    catalogue: CatalogueDep,
    audit: AuditDep,
    signing_key: SigningKeyDep,
    master_keys: MasterKeysDep,
    clock: ClockDep,
) -> DataSubjectRequestPublic:
    """Carry out an approved request (access, rectify, erase, restrict, lift) and complete it."""
    return execute_request(session=session, request_id=request_id, principal=principal,
                           catalogue=catalogue, audit=audit, signing_key=signing_key,
                           master_keys=master_keys, at=clock())


@router.get("/dsr/{request_id}/export")
def get_dsr_export(
    request_id: RequestId,
    session: SessionDep,
    principal: OfficerOrSubject,
    catalogue: CatalogueDep,
    audit: AuditDep,
    signing_key: SigningKeyDep,
    master_keys: MasterKeysDep,
    clock: ClockDep,
) -> JSONResponse:
    """Download the signed JSON export of a completed access request."""
    envelope: dict[str, Any] = export_request(
        session=session, request_id=request_id, principal=principal, catalogue=catalogue,
        audit=audit, signing_key=signing_key, master_keys=master_keys, at=clock(),
    )
    filename = f"fedprofile-export-{request_id[:36]}.json"
    return JSONResponse(
        envelope, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get("/dsr/{request_id}/receipt")
def get_dsr_receipt(
    request_id: RequestId, session: SessionDep, principal: OfficerOrSubject
) -> dict[str, Any]:
    """Return the signed erasure receipt (verify offline with ``GET /signing-key``)."""
    return erasure_receipt(session=session, request_id=request_id, principal=principal)
