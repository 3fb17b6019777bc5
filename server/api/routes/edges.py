"""``POST /edges``: register an edge (enrollment token or admin bearer); token shown once."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, status

from models import ENROLLMENT_HEADER, EdgeCredential, EdgeRegistration

from ...crud.edge import register_edge
from ...errors import EnrollmentDisabledError, ForbiddenError, UnauthenticatedError
from ...tables.token import Role
from ..deps import AuditDep, ClockDep, OptionalPrincipal, SessionDep, SettingsDep

router = APIRouter(tags=["edges"])


@router.post("/edges", status_code=status.HTTP_201_CREATED)
def create_edge(
    registration: EdgeRegistration,
    session: SessionDep,
    settings: SettingsDep,
    principal: OptionalPrincipal,
    audit: AuditDep,
    clock: ClockDep,
    enrollment_token: Annotated[str | None, Header(alias=ENROLLMENT_HEADER)] = None,
) -> EdgeCredential:
    """Register an edge and return its bearer token (shown only in this response).

    Authorised by the ``X-Enrollment-Token`` header matching the configured enrollment token,
    or by an admin bearer token. Audited as ``edge.register``.
    """
    if principal is not None:
        if principal.role is not Role.ADMIN:
            raise ForbiddenError(role=principal.role.value, allowed=[Role.ADMIN.value])
        actor, role = "admin", Role.ADMIN.value
    elif enrollment_token is not None:
        if settings.enrollment_token is None:
            raise EnrollmentDisabledError()
        expected = settings.enrollment_token.get_secret_value().encode()
        if not hmac.compare_digest(expected, enrollment_token.encode()):
            raise UnauthenticatedError("invalid enrollment token")
        actor, role = "enrollment", "enrollment"
    else:
        raise UnauthenticatedError(f"send {ENROLLMENT_HEADER} or an admin bearer token")
    return register_edge(
        session=session,
        registration=registration,
        actor=actor,
        role=role,
        audit=audit,
        at=clock(),
    )
