"""Edges: registration (audited, token shown once), lookup and ``last_seen_at``."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models import EdgeCredential, EdgeRegistration

from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..errors import EdgeNameTakenError, NotFoundError
from ..tables.edge import Edge, EdgePublic
from ..tables.token import Role
from .token import issue_token

logger = logging.getLogger(__name__)


def register_edge(
    *,
    session: Session,
    registration: EdgeRegistration,
    actor: str,
    role: str,
    audit: AuditSink,
    at: datetime,
) -> EdgeCredential:
    """Register an edge, issue its bearer token and audit it; commits.

    Parameters
    ----------
    session : Session
        A session.
    registration : EdgeRegistration
        Name and channel.
    actor : str
        Who registers it (``enrollment`` or ``admin``), for the audit entry.
    role : str
        The registering party's role.
    audit : AuditSink
        Where the entry goes.
    at : datetime
        Registration time.

    Returns
    -------
    EdgeCredential
        The edge's id and its bearer token (the only time the token is shown).

    Raises
    ------
    EdgeNameTakenError
        If an edge with this name exists.
    """
    taken = session.exec(select(Edge.id).where(col(Edge.name) == registration.name)).first()
    if taken is not None:
        raise EdgeNameTakenError(registration.name)
    edge = Edge(
        id=str(uuid.uuid4()), name=registration.name, channel=registration.channel, created_at=at
    )
    session.add(edge)
    session.flush()
    raw, token = issue_token(
        session=session, role=Role.EDGE, edge_id=edge.id, channel=edge.channel, at=at
    )
    audit.record(
        actor=actor,
        role=role,
        action=AuditAction.EDGE_REGISTER,
        purpose=None,
        subject=None,
        outcome=AuditOutcome.ACCEPTED,
        detail={"edge_id": edge.id, "channel": str(edge.channel), "token_id": token.id},
        at=at,
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise EdgeNameTakenError(registration.name) from None
    logger.info("edge %s registered for channel %s", edge.id, edge.channel)
    return EdgeCredential(edge_id=edge.id, name=edge.name, channel=edge.channel, token=raw)


def get_edge(*, session: Session, edge_id: str) -> Edge:
    """Return the edge with id ``edge_id``.

    Parameters
    ----------
    session : Session
        A session.
    edge_id : str
        The edge's id.

    Returns
    -------
    Edge
        The row.

    Raises
    ------
    NotFoundError
        If no such edge is registered.
    """
    edge = session.get(Edge, edge_id)
    if edge is None:
        raise NotFoundError(kind="edge", ref=edge_id)
    return edge


def list_edges(*, session: Session) -> list[EdgePublic]:
    """Return every registered edge, by name.

    Parameters
    ----------
    session : Session
        A session.

    Returns
    -------
    list[EdgePublic]
        The edges.
    """
    rows = session.exec(select(Edge).order_by(col(Edge.name))).all()
    return [EdgePublic.model_validate(row) for row in rows]


def touch_edge(*, session: Session, edge_id: str, at: datetime) -> None:
    """Advance the edge's ``last_seen_at`` (no commit).

    Parameters
    ----------
    session : Session
        Session of the enclosing write.
    edge_id : str
        The edge's id.
    at : datetime
        When it was seen.
    """
    edge = session.get(Edge, edge_id)
    if edge is not None and (edge.last_seen_at is None or edge.last_seen_at < at):
        edge.last_seen_at = at
        session.add(edge)
