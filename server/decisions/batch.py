"""Batch triggers: proactive-service reminders and risk alerts over merged profiles.

``fedprofile decide run --purpose proactive_service`` evaluates the purpose's rules once per
person (linked pseudonyms count once), with the fields their consent allows for it now, and
creates at most one trigger per person, rule and period (the unique key makes a re-run, or
two runs at once, harmless). People without consent for the purpose are not evaluated; a
person who refused solely automated decisions gets a ``human`` trigger (a person decides).
New and earlier undelivered triggers go to the sink (a JSONL queue file or a webhook); a
trigger is marked delivered only after the sink accepted it, so nothing is lost on a failed
delivery and nothing is delivered twice after a successful one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from consent import FieldCatalogue, PurposeRegistry, parse_purpose
from privacy import MasterKeyRing

from ..audit.checkpoint import CheckpointPolicy
from ..audit.events import AuditAction, AuditOutcome
from ..audit.sink import DatabaseAuditSink
from ..principal import Principal
from ..profiles.visible import visible_profile
from ..tables.decision import DecisionTrigger
from ..tables.subject import Subject
from .route import evaluation_fields, refused_automated, store_decision
from .source import DecisionSetup

#: Receives delivered triggers (JSON-ready dicts); raises when it could not take them.
TriggerSink = Callable[[Sequence[dict[str, Any]]], None]
#: Persons evaluated per transaction.
CHUNK = 200


@dataclass
class BatchReport:
    """What a run did."""

    purpose: str
    period: str
    persons: int = 0
    evaluated: int = 0
    created: int = 0
    existing: int = 0
    delivered: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {
            "purpose": self.purpose, "period": self.period, "persons": self.persons,
            "evaluated": self.evaluated, "created": self.created, "existing": self.existing,
            "delivered": self.delivered, "by_rule": dict(sorted(self.by_rule.items())),
        }  # fmt: skip


def _subjects(session: Session) -> list[str]:
    return list(session.exec(select(Subject.pseudonym).order_by(col(Subject.pseudonym))).all())


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def payload(trigger: DecisionTrigger, reasons: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Build what a business system receives: pseudonyms, the action and its reason, no PII."""
    zh, en = reasons.get(trigger.rule, ("", ""))
    return {
        "id": trigger.id, "purpose": trigger.purpose, "person": trigger.person_key,
        "subject": trigger.subject, "rule": trigger.rule, "period": trigger.period,
        "action": json.loads(trigger.action_json), "reason_zh": zh, "reason_en": en,
        "decision_id": trigger.decision_id,
    }  # fmt: skip


def _evaluate_one(
    session: Session, subject: str, *, ctx: _RunContext, seen_persons: set[str]
) -> None:
    seen = visible_profile(
        session=session, subject=subject, purpose=ctx.purpose, catalogue=ctx.catalogue,
        at=ctx.at, master_keys=ctx.master_keys,
    )  # fmt: skip
    key = seen.person or subject
    if key in seen_persons:
        return
    seen_persons.add(key)
    ctx.report.persons += 1
    if seen.restricted or not seen.purpose_granted(ctx.purpose, ctx.at):
        return
    ctx.report.evaluated += 1
    policy = ctx.setup.policy
    outcome = policy.decide(
        ctx.purpose.value, evaluation_fields(seen.view.fields),
        refused_automated=refused_automated(session, seen.members),
    )  # fmt: skip
    if outcome.action is None:
        return
    rule = outcome.decided_by or "human_review"
    exists = session.exec(
        select(DecisionTrigger.id).where(
            DecisionTrigger.purpose == ctx.purpose.value, DecisionTrigger.person_key == key,
            DecisionTrigger.rule == rule, DecisionTrigger.period == ctx.period,
        )
    ).first()  # fmt: skip
    if exists is not None:
        ctx.report.existing += 1
        return
    row = store_decision(
        session=session, outcome=outcome, subject=subject, person=seen.person, channel=None,
        setup=ctx.setup, experiment=None, principal=ctx.principal, catalogue=ctx.catalogue,
        at=ctx.at,
    )  # fmt: skip
    session.add(
        DecisionTrigger(
            id=str(uuid.uuid4()), purpose=ctx.purpose.value, person_key=key, subject=subject,
            rule=rule, period=ctx.period, decision_id=row.id,
            action_json=row.action_json, created_at=ctx.at,
        )
    )  # fmt: skip
    ctx.report.created += 1
    ctx.report.by_rule[rule] = ctx.report.by_rule.get(rule, 0) + 1


@dataclass
class _RunContext:
    purpose: Any
    period: str
    setup: DecisionSetup
    catalogue: FieldCatalogue
    principal: Principal
    at: datetime
    master_keys: MasterKeyRing | None
    report: BatchReport


def run_batch(
    *,
    session_factory: Callable[[], Session],
    setup: DecisionSetup,
    catalogue: FieldCatalogue,
    purposes: PurposeRegistry,
    purpose: str,
    period: str,
    sink: TriggerSink,
    principal: Principal,
    at: datetime,
    checkpoints: CheckpointPolicy | None = None,
    master_keys: MasterKeyRing | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BatchReport:
    """Evaluate every person for ``purpose`` in ``period``, create triggers, deliver them.

    Raises
    ------
    PurposeNotRegisteredError
        If the purpose is unknown.
    ValueError
        If the policy has no rule for the purpose.
    """
    stated = parse_purpose(purpose)
    purposes.get(stated)
    if not any(r.rule.purpose == stated.value for r in setup.policy.rules):
        raise ValueError(
            f"the decision policy has no rule for {stated.value}; purposes with rules: "
            + ", ".join(sorted({r.rule.purpose for r in setup.policy.rules}))
        )
    report = BatchReport(purpose=stated.value, period=period)
    ctx = _RunContext(stated, period, setup, catalogue, principal, at, master_keys, report)
    with session_factory() as session:
        subjects = _subjects(session)
    seen_persons: set[str] = set()
    done = 0
    for chunk in _chunks(subjects, CHUNK):
        with session_factory() as session:
            for subject in chunk:
                _evaluate_one(session, subject, ctx=ctx, seen_persons=seen_persons)
            try:
                session.commit()
            except IntegrityError:  # a concurrent run created the same triggers first
                session.rollback()
        done += len(chunk)
        if progress is not None:
            progress(done, len(subjects))
    report.delivered = deliver_pending(
        session_factory=session_factory, setup=setup, purpose=stated.value, sink=sink, at=at
    )
    with session_factory() as session:
        DatabaseAuditSink(session, checkpoints=checkpoints).record(
            actor=principal.actor, role=principal.role.value,
            action=AuditAction.DECISION_TRIGGER, purpose=stated.value, subject=None,
            outcome=AuditOutcome.ACCEPTED, detail=report.to_dict(), at=at,
        )  # fmt: skip
        session.commit()
    return report


def deliver_pending(
    *,
    session_factory: Callable[[], Session],
    setup: DecisionSetup,
    purpose: str,
    sink: TriggerSink,
    at: datetime,
    batch: int = 500,
) -> int:
    """Hand undelivered triggers of ``purpose`` to the sink, oldest first; mark them."""
    reasons = {r.rule.id: (r.rule.reason_zh, r.rule.reason_en) for r in setup.policy.rules}
    delivered = 0
    while True:
        with session_factory() as session:
            rows = session.exec(
                select(DecisionTrigger)
                .where(DecisionTrigger.purpose == purpose,
                       col(DecisionTrigger.delivered_at).is_(None))
                .order_by(col(DecisionTrigger.created_at), col(DecisionTrigger.id))
                .limit(batch)
            ).all()  # fmt: skip
            if not rows:
                return delivered
            sink([payload(row, reasons) for row in rows])
            for row in rows:
                row.delivered_at = at
                session.add(row)
            session.commit()
            delivered += len(rows)
