"""Read models of the decision pages: newest decisions, counts per action, triggers, alerts.

Like :mod:`server.console.queries`, every function runs a bounded number of statements: lists
are the newest ``limit`` rows along the ``decided_at`` / ``created_at`` order, counts are
group-bys in the database. Rows carry pseudonyms only; a rule's inputs (which may hold a
sealed sensitive value) are never read here, only the deciding rule's id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from ..tables.decision import DecisionRow, DecisionTrigger

#: The action kind of a risk alert (``models.decisions.ActionKind.RISK_ALERT``).
RISK_ALERT = "risk_alert"


@dataclass(frozen=True)
class DecisionLine:
    """One decision as the console lists it (no rule inputs, pseudonym only)."""

    id: str
    decided_at: datetime
    purpose: str
    subject: str
    action_kind: str
    target: str
    automated: bool
    fallback: str | None
    rule: str | None
    confidence: float
    experiment: str | None
    arm: str | None


@dataclass(frozen=True)
class DecisionCounts:
    """Decisions per action kind and how many a human decided."""

    by_kind: dict[str, int]
    total: int
    human: int

    @property
    def human_share(self) -> float | None:
        """Share of decisions that went to a human (``None`` when there are none)."""
        return self.human / self.total if self.total else None


def action_target(action_json: str) -> str:
    """Describe a stored action briefly (``senior/complaints !8``); empty when there is none."""
    action = json.loads(action_json) or {}
    name = next((action[k] for k in ("queue", "entry", "template", "level") if action.get(k)), "")
    skill = f"/{action['skill']}" if action.get("skill") else ""
    priority = f" !{action['priority']}" if action.get("priority") else ""
    return f"{name}{skill}{priority}"


def _line(row: DecisionRow) -> DecisionLine:
    rules = json.loads(row.rules_json)
    return DecisionLine(
        id=row.id, decided_at=row.decided_at, purpose=row.purpose, subject=row.subject,
        action_kind=row.action_kind, target=action_target(row.action_json),
        automated=row.automated, fallback=row.fallback,
        rule=str(rules[0]["rule"]) if rules else None, confidence=row.confidence,
        experiment=row.experiment, arm=row.arm,
    )  # fmt: skip


def decision_lines(
    *, session: Session, action_kind: str | None = None, limit: int = 100
) -> list[DecisionLine]:
    """Return the newest decisions (optionally of one action kind), newest first.

    Parameters
    ----------
    session : Session
        A database session.
    action_kind : str or None
        Only decisions taking this kind of action.
    limit : int
        Most rows returned.

    Returns
    -------
    list[DecisionLine]
        The decisions (an indexed walk down ``decided_at``).
    """
    statement = select(DecisionRow)
    if action_kind is not None:
        statement = statement.where(col(DecisionRow.action_kind) == action_kind)
    statement = statement.order_by(col(DecisionRow.decided_at).desc()).limit(limit)
    return [_line(row) for (row,) in session.execute(statement)]


def decision_counts(*, session: Session) -> DecisionCounts:
    """Count decisions per action kind and those a human decided (one grouped query).

    Parameters
    ----------
    session : Session
        A database session.

    Returns
    -------
    DecisionCounts
        Counts per kind (sorted by kind), the total and the number not automated.
    """
    statement = select(
        col(DecisionRow.action_kind), col(DecisionRow.automated), func.count()
    ).group_by(col(DecisionRow.action_kind), col(DecisionRow.automated))
    by_kind: dict[str, int] = {}
    human = 0
    for kind, automated, count in session.execute(statement):
        by_kind[kind] = by_kind.get(kind, 0) + int(count)
        if not automated:
            human += int(count)
    return DecisionCounts(
        by_kind=dict(sorted(by_kind.items())), total=sum(by_kind.values()), human=human
    )


def trigger_rows(*, session: Session, limit: int = 100) -> list[DecisionTrigger]:
    """Return the newest batch triggers (proactive reminders, risk alerts), newest first.

    Parameters
    ----------
    session : Session
        A database session.
    limit : int
        Most rows returned.

    Returns
    -------
    list[DecisionTrigger]
        The triggers; ``delivered_at`` is ``None`` while one waits.
    """
    statement = (
        select(DecisionTrigger)
        .order_by(col(DecisionTrigger.created_at).desc(), col(DecisionTrigger.id))
        .limit(limit)
    )
    return [row for (row,) in session.execute(statement)]


def pending_triggers(*, session: Session) -> int:
    """Return how many triggers wait for delivery (one ``COUNT``)."""
    statement = (
        select(func.count())
        .select_from(DecisionTrigger)
        .where(col(DecisionTrigger.delivered_at).is_(None))
    )
    return int(session.scalar(statement) or 0)
