"""Recording one named caller's action (an officer's read or change) and committing it.

Domain writes record their entries inside their own transaction (``server.crud``); this
helper is for the routes and console pages whose only write is the audit entry itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session

from ..principal import Principal
from .sink import AuditSink


def audit_action(
    db: Session,
    audit: AuditSink,
    principal: Principal,
    *,
    action: str,
    at: datetime,
    outcome: str = "accepted",
    subject: str | None = None,
    detail: Mapping[str, object] | None = None,
) -> None:
    """Append one audit entry for an officer's action (console or API) and commit it.

    Parameters
    ----------
    db : Session
        The request's session (the entry commits with whatever it holds).
    audit : AuditSink
        The request's sink (signs the checkpoints that fall due).
    principal : Principal
        Who acted; the entry's actor is ``<role>:<name>`` for named tokens.
    action : str
        An :class:`server.audit.events.AuditAction` value.
    at : datetime
        When.
    outcome : str
        An :class:`server.audit.events.AuditOutcome` value.
    subject : str or None
        The pseudonym acted on (stored only as a salted reference).
    detail : Mapping[str, object] or None
        PII-free facts (ids, counts).
    """
    audit.record(
        actor=principal.actor,
        role=principal.role.value,
        action=action,
        purpose=None,
        subject=subject,
        outcome=outcome,
        detail=dict(detail or {}),
        at=at,
    )
    db.commit()
