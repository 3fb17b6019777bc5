"""Stored data-subject requests: load, convert to the state machine and to the public shape.

The workflow (``server.crud.dsr``) reads a row with :func:`load_request`, turns it into a
``consent.RequestStatus`` with :func:`status_of`, lets ``consent.advance`` decide, and writes
the result back with :func:`apply_status`. :func:`to_public` is the only way a row leaves
the server (no commitment salt). :func:`can_see` is the read rule: officers see every
request, a subject only their own.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from consent import Approval, RequestState, RequestStatus, RequestType, required_approvals

from ..errors import NotFoundError
from ..principal import Principal
from ..tables.dsr import ApprovalPublic, DataSubjectRequest, DataSubjectRequestPublic
from ..tables.token import Role

#: Roles that act on any subject's requests.
OFFICER_ROLES = (Role.COMPLIANCE_OFFICER, Role.ADMIN)


def _aware(value: datetime) -> datetime:
    """SQLite returns naive UTC times: make them aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def load_request(*, session: Session, request_id: str) -> DataSubjectRequest:
    """Return one stored request.

    Parameters
    ----------
    session : Session
        A session.
    request_id : str
        The request's id.

    Returns
    -------
    DataSubjectRequest
        The row.

    Raises
    ------
    NotFoundError
        If there is no such request.
    """
    row = session.get(DataSubjectRequest, request_id)
    if row is None:
        raise NotFoundError(kind="request", ref=request_id[:36])
    # Table classes do not validate: give the enum columns their enum types back.
    if not isinstance(row.request_type, RequestType):
        row.request_type = RequestType(row.request_type)
    if not isinstance(row.state, RequestState):
        row.state = RequestState(row.state)
    return row


def can_see(principal: Principal, row: DataSubjectRequest) -> bool:
    """Whether ``principal`` may read ``row`` (officers: all; a subject: their own).

    Parameters
    ----------
    principal : Principal
        The caller.
    row : DataSubjectRequest
        The request.

    Returns
    -------
    bool
        True when the caller may see it.
    """
    if principal.role in OFFICER_ROLES:
        return True
    return principal.role is Role.SUBJECT and row.subject is not None and (
        row.subject == principal.subject
    )


def approvals_of(row: DataSubjectRequest) -> tuple[Approval, ...]:
    """Return the approvals stored on ``row``, oldest first."""
    return tuple(
        Approval(officer=str(a["officer"]), at=datetime.fromisoformat(str(a["at"])))
        for a in json.loads(row.approvals_json)
    )


def status_of(row: DataSubjectRequest) -> RequestStatus:
    """Return the state machine's view of a stored request.

    Parameters
    ----------
    row : DataSubjectRequest
        The request.

    Returns
    -------
    RequestStatus
        Its type, state, dates, approvals and rejection reason.
    """
    return RequestStatus(
        request_type=RequestType(row.request_type),
        state=RequestState(row.state),
        received_at=_aware(row.received_at),
        due_at=_aware(row.due_at),
        approvals=approvals_of(row),
        rejection_reason=row.rejection_reason,
    )


def apply_status(row: DataSubjectRequest, status: RequestStatus, *, at: datetime) -> None:
    """Write a new status onto ``row`` (no flush).

    Parameters
    ----------
    row : DataSubjectRequest
        The request.
    status : RequestStatus
        Its next status (``consent.advance``'s answer).
    at : datetime
        When it changed.
    """
    row.state = status.state
    row.rejection_reason = status.rejection_reason
    row.approvals_json = json.dumps(
        [{"officer": a.officer, "at": a.at.astimezone(UTC).isoformat()} for a in status.approvals]
    )
    row.updated_at = at


def seal_rectification(row: DataSubjectRequest) -> None:
    """Replace a final request's proposed value by its SHA-256 (no value outlives the request).

    Parameters
    ----------
    row : DataSubjectRequest
        A completed or rejected request (others are left unchanged).
    """
    if row.rectification_json is None:
        return
    proposal: dict[str, Any] = json.loads(row.rectification_json)
    if "value" in proposal and proposal["value"] is not None:
        text = json.dumps(proposal.pop("value"), ensure_ascii=False, sort_keys=True)
        proposal["value_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        row.rectification_json = json.dumps(proposal, ensure_ascii=False)


def to_public(row: DataSubjectRequest, *, at: datetime) -> DataSubjectRequestPublic:
    """Return a request as the API shows it (with the overdue flag at ``at``).

    Parameters
    ----------
    row : DataSubjectRequest
        The request.
    at : datetime
        Now (the overdue flag is computed against it).

    Returns
    -------
    DataSubjectRequestPublic
        The public shape (no commitment salt).
    """
    status = status_of(row)
    return DataSubjectRequestPublic(
        id=row.id,
        request_type=row.request_type,
        subject=row.subject,
        channel=row.channel,
        state=row.state,
        received_at=status.received_at,
        due_at=status.due_at,
        updated_at=_aware(row.updated_at),
        overdue=status.is_overdue(at),
        approvals=[ApprovalPublic(officer=a.officer, at=a.at) for a in status.approvals],
        approvals_required=required_approvals(status.request_type),
        rejection_reason=row.rejection_reason,
        started_at=None if row.started_at is None else _aware(row.started_at),
        completed_at=None if row.completed_at is None else _aware(row.completed_at),
        rectification=None
        if row.rectification_json is None
        else json.loads(row.rectification_json),
        result=json.loads(row.result_json),
    )
