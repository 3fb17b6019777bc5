"""Issuing a named token as an audited act (``POST /tokens`` and ``fedprofile token issue``).

Split from :mod:`server.crud.token` because registering a new edge (``server.crud.edge``)
itself issues a token through that module.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from models import Channel, EdgeRegistration

from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..tables.token import ApiToken, ApiTokenPublic, Role
from .edge import get_edge, register_edge
from .token import hash_token, issue_token


def issue_for_holder(
    *,
    session: Session,
    role: Role,
    actor: str,
    actor_role: str,
    audit: AuditSink,
    at: datetime,
    name: str | None = None,
    channel: Channel | None = None,
    edge_id: str | None = None,
    subject: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, ApiTokenPublic]:
    """Issue a token for a role and holder, audit it and commit.

    For ``edge`` without ``edge_id`` a new edge named ``name`` is registered for ``channel``
    (audited as ``edge.register``) and its registration token is the one returned.

    Parameters
    ----------
    session : Session
        A session.
    role : Role
        The token's role.
    actor, actor_role : str
        Who issues it (``admin:<name>``, ``cli``), for the audit entry.
    audit : AuditSink
        Receives ``token.issue``.
    at : datetime
        Issue time.
    name : str or None
        Holder name (required for staff roles; a new edge's name).
    channel : Channel or None
        Channel of a new edge.
    edge_id : str or None
        An existing edge to issue another token for.
    subject : str or None
        The pseudonym of a subject token.
    expires_at : datetime or None
        Expiry; ``None`` for none.

    Returns
    -------
    tuple[str, ApiTokenPublic]
        The raw token (show it once) and its metadata.

    Raises
    ------
    ValueError
        If the binding does not fit the role (every problem listed).
    NotFoundError
        If ``edge_id`` names no registered edge.
    EdgeNameTakenError
        If a new edge's name is taken.
    """
    if role is Role.EDGE and edge_id is None:
        if name is None or channel is None:
            raise ValueError("an edge token needs an existing edge id, or a name and a channel")
        credential = register_edge(
            session=session,
            registration=EdgeRegistration(name=name, channel=channel),
            actor=actor,
            role=actor_role,
            audit=audit,
            at=at,
        )
        raw = credential.token
        row = session.exec(
            select(ApiToken).where(col(ApiToken.token_hash) == hash_token(raw))
        ).one()
        row.holder_name, row.expires_at = name, expires_at
        session.add(row)
    else:
        edge_channel = None
        if edge_id is not None:
            edge_channel = str(get_edge(session=session, edge_id=edge_id).channel)
        raw, row = issue_token(
            session=session,
            role=role,
            edge_id=edge_id,
            channel=edge_channel,
            at=at,
            name=name,
            subject=subject,
            expires_at=expires_at,
        )
    audit.record(
        actor=actor,
        role=actor_role,
        action=AuditAction.TOKEN_ISSUE,
        purpose=None,
        subject=subject,
        outcome=AuditOutcome.ACCEPTED,
        detail={
            "token_id": row.id,
            "token_role": role.value,
            "holder": name,
            "edge_id": row.edge_id,
        },
        at=at,
    )
    session.commit()
    return raw, ApiTokenPublic.model_validate(row, from_attributes=True)
