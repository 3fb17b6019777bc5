"""PIPL Art. 24 (GDPR Art. 22) for the person: list, explain and refuse automated decisions.

A subject token sees the decisions made about its pseudonym (and the other pseudonyms of its
linked person), each with the rules that held, the field names read and the explanation; it
can refuse solely automated decisions (every later decision about the person is ``human``)
and withdraw that refusal. Both changes are audited.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlmodel import Session, col, delete, select

from models.decisions import DecisionOut

from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import AuditSink
from ..errors import NotFoundError
from ..identity.graph import members_of
from ..principal import Principal
from ..tables.decision import AutomatedDecisionRefusal, DecisionRow
from .route import refused_automated, to_decision_out


class MyDecisions(BaseModel):
    """The decisions about me, newest first, and whether I refused automated ones."""

    refused_automated: bool
    decisions: list[DecisionOut]


class AutomatedDecisionChange(BaseModel):
    """Refuse (``true``) or accept again (``false``) solely automated decisions."""

    refuse: bool = Field(description="true: every decision about me is made by a human")


def _members(session: Session, principal: Principal) -> list[str]:
    assert principal.subject is not None  # a subject principal always has one
    return members_of(session, principal.subject)


def my_decisions(
    *, session: Session, principal: Principal, limit: int = 100
) -> MyDecisions:
    """List the newest ``limit`` decisions about the principal's person."""
    members = _members(session, principal)
    rows = session.exec(
        select(DecisionRow)
        .where(col(DecisionRow.subject).in_(members))
        .order_by(col(DecisionRow.decided_at).desc())
        .limit(limit)
    ).all()
    return MyDecisions(
        refused_automated=refused_automated(session, members),
        decisions=[to_decision_out(row) for row in rows],
    )


def my_decision(*, session: Session, principal: Principal, decision_id: str) -> DecisionOut:
    """One decision about me with its explanation.

    Raises
    ------
    NotFoundError
        If no decision with that id concerns the principal's person.
    """
    row = session.get(DecisionRow, decision_id)
    if row is None or row.subject not in _members(session, principal):
        raise NotFoundError(kind="decision", ref=decision_id)
    return to_decision_out(row)


def set_refusal(
    *,
    session: Session,
    change: AutomatedDecisionChange,
    principal: Principal,
    audit: AuditSink,
    at: datetime,
) -> MyDecisions:
    """Record or lift the refusal of solely automated decisions; audits; commits."""
    assert principal.subject is not None
    subject = principal.subject
    if change.refuse:
        if session.get(AutomatedDecisionRefusal, subject) is None:
            session.add(AutomatedDecisionRefusal(subject=subject, refused_at=at))
    else:
        members = _members(session, principal)
        session.exec(
            delete(AutomatedDecisionRefusal).where(
                col(AutomatedDecisionRefusal.subject).in_(members)
            )
        )
    audit.record(
        actor=principal.actor, role=principal.role.value, action=AuditAction.DECISION_REFUSAL,
        purpose=None, subject=subject, outcome=AuditOutcome.ACCEPTED,
        detail={"refuse": change.refuse}, at=at,
    )  # fmt: skip
    session.commit()
    return my_decisions(session=session, principal=principal)
