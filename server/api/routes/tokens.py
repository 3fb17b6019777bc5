"""Named bearer tokens (admin): ``POST /tokens`` (shown once), ``GET /tokens``, ``DELETE``.

Admins issue tokens to compliance officers, analysts and agents (a holder name, so the audit
log names who acted), to edges (an existing edge, or a new one registered for a channel) and
to data subjects (bound to a pseudonym, for self-service under ``/me``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Self

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, Field, model_validator

from consent import PSEUDONYM_PATTERN
from models import Channel

from ...audit.events import AuditAction, AuditOutcome
from ...crud.token import HOLDER_NAME_PATTERN, list_tokens, revoke_token
from ...crud.token_issue import issue_for_holder
from ...errors import NotFoundError
from ...tables.token import NAMED_ROLES, ApiTokenPublic, Role
from ..deps import AdminPrincipal, AuditDep, ClockDep, SessionDep, admins_only

router = APIRouter(tags=["tokens"])


class TokenRequest(BaseModel):
    """What an admin asks for: a role and what binds the token.

    Parameters
    ----------
    role : Role
        The token's role.
    name : str or None
        Holder name; required for agents, analysts, compliance officers and admins, and for
        a new edge (its registered name).
    channel : Channel or None
        For ``edge`` without ``edge_id``: register a new edge of this channel named ``name``.
    edge_id : str or None
        For ``edge``: issue another token for this registered edge.
    subject : str or None
        For ``subject``: the pseudonym the token acts on.
    expires_in_days : int or None
        Days until the token stops working; ``None`` for no expiry.
    """

    role: Role
    name: str | None = Field(default=None, pattern=HOLDER_NAME_PATTERN)
    channel: Channel | None = None
    edge_id: str | None = Field(default=None, max_length=36)
    subject: str | None = Field(default=None, pattern=PSEUDONYM_PATTERN)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="after")
    def _binding_fits_role(self) -> Self:
        problems = []
        if self.role in NAMED_ROLES and self.name is None:
            problems.append(f"a {self.role.value} token needs a holder 'name'")
        if self.role is Role.SUBJECT and self.subject is None:
            problems.append("a subject token needs the subject's pseudonym in 'subject'")
        if self.role is not Role.SUBJECT and self.subject is not None:
            problems.append("only subject tokens take 'subject'")
        if (
            self.role is Role.EDGE
            and self.edge_id is None
            and (self.channel is None or self.name is None)
        ):
            problems.append("an edge token needs 'edge_id', or 'name' and 'channel' of a new edge")
        if self.role is not Role.EDGE and (self.edge_id is not None or self.channel is not None):
            problems.append("only edge tokens take 'edge_id' or 'channel'")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class IssuedToken(BaseModel):
    """An issued token: its metadata and the raw token (the only time it is shown)."""

    token: str
    info: ApiTokenPublic


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def post_token(
    request: TokenRequest,
    session: SessionDep,
    principal: AdminPrincipal,
    audit: AuditDep,
    clock: ClockDep,
) -> IssuedToken:
    """Issue a token for a role and holder; the raw token is in this response only.

    Audited as ``token.issue`` (role, holder name, token id; never the token).
    """
    at = clock()
    expires = None
    if request.expires_in_days is not None:
        expires = at + timedelta(days=request.expires_in_days)
    raw, info = issue_for_holder(
        session=session,
        role=request.role,
        actor=principal.actor,
        actor_role=principal.role.value,
        audit=audit,
        at=at,
        name=request.name,
        channel=request.channel,
        edge_id=request.edge_id,
        subject=request.subject,
        expires_at=expires,
    )
    return IssuedToken(token=raw, info=info)


@router.get("/tokens", dependencies=[admins_only])
def get_tokens(
    session: SessionDep,
    include_revoked: Annotated[bool, Query(description="list revoked tokens too")] = False,
) -> list[ApiTokenPublic]:
    """List issued tokens' metadata, newest first (never a token or its hash)."""
    return list_tokens(session=session, include_revoked=include_revoked)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(
    token_id: Annotated[str, Path(max_length=36, pattern=r"^[0-9a-f-]{1,36}$")],
    session: SessionDep,
    principal: AdminPrincipal,
    audit: AuditDep,
    clock: ClockDep,
) -> Response:
    """Revoke a token at once (404 if unknown or already revoked). Audited as ``token.revoke``."""
    at = clock()
    if not revoke_token(session=session, token_id=token_id, at=at):
        raise NotFoundError(kind="live token", ref=token_id)
    audit.record(
        actor=principal.actor,
        role=principal.role.value,
        action=AuditAction.TOKEN_REVOKE,
        purpose=None,
        subject=None,
        outcome=AuditOutcome.ACCEPTED,
        detail={"token_id": token_id},
        at=at,
    )
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
