"""Decide for one person now: the real-time routing workflow (and any purpose on demand).

1. The person's fields are read exactly as a profile read for the purpose would read them
   (:func:`server.profiles.visible.visible_profile`): merged over linked pseudonyms, under
   the most restrictive consent, nothing from a restricted person.
2. A purpose that is not necessary for the service the person asked for (PIPL Art. 16) is
   evaluated only with their consent for it; without, the purpose's default applies.
3. A person who refused solely automated decisions gets a human, and no rule runs.
4. The active experiment's arm comes from a keyed hash of the person.
5. The decision is stored (committed before the answer) and audited in batches
   (:mod:`.audit_flush`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from consent import FieldCatalogue, PurposeRegistry, Sensitivity, parse_purpose
from models.decisions import (
    DecisionOut,
    DecisionRequest,
    FiredRuleOut,
    Outcome,
    Signals,
    assign_arm,
)
from privacy import MasterKeyRing

from ..principal import Principal
from ..profiles.visible import standing_of, visible_profile
from ..tables.decision import AutomatedDecisionRefusal, DecisionRow
from .source import DecisionSetup

#: What a sensitive field's value becomes in a stored decision (PIPL Art. 28: sealed at rest).
SEALED = "(sensitive)"
#: The refusal flag of :func:`server.profiles.visible.standing_of` (read with the standing).
_REFUSED = "refused_automated"
_REFUSAL = AutomatedDecisionRefusal.metadata.tables[AutomatedDecisionRefusal.__tablename__]


def refused_automated(session: Session, members: list[str]) -> bool:
    """Whether any of the person's pseudonyms refused solely automated decisions."""
    found = session.exec(
        select(AutomatedDecisionRefusal.subject).where(
            col(AutomatedDecisionRefusal.subject).in_(members)
        )
    ).first()
    return found is not None


def evaluation_fields(fields: list[Any]) -> dict[str, Any]:
    """Catalogue name → scalar value of the visible merged fields (a tag's value is its bool)."""
    return {f.name: f.value for f in fields if not isinstance(f.value, list)}


def _stored_inputs(inputs: Mapping[str, Any], catalogue: FieldCatalogue) -> dict[str, Any]:
    specs = catalogue.by_name
    return {
        name: SEALED
        if name in specs and specs[name].sensitivity is Sensitivity.SENSITIVE
        else value
        for name, value in inputs.items()
    }


def store_decision(
    *,
    session: Session,
    outcome: Outcome,
    subject: str,
    person: str | None,
    channel: str | None,
    setup: DecisionSetup,
    experiment: str | None,
    principal: Principal,
    catalogue: FieldCatalogue,
    at: datetime,
) -> DecisionRow:
    """Add the decision's row to the session (the caller commits)."""
    action = outcome.action
    rules = [
        {"rule": r.rule, "reason_zh": r.reason_zh, "reason_en": r.reason_en,
         "inputs": _stored_inputs(r.inputs, catalogue), "confidence": r.confidence}
        for r in outcome.fired
    ]  # fmt: skip
    row = DecisionRow(
        id=str(uuid.uuid4()),
        subject=subject,
        person=person,
        purpose=outcome.purpose,
        channel=channel,
        policy_version=setup.policy.policy.version,
        experiment=experiment,
        arm=outcome.arm,
        action_kind=action.kind.value if action else "none",
        action_json=action.model_dump_json(exclude_defaults=True) if action else "null",
        automated=outcome.automated,
        decided_by=outcome.decided_by,
        fallback=outcome.fallback.value if outcome.fallback else None,
        confidence=outcome.confidence,
        rules_json=json.dumps(rules, ensure_ascii=False),
        fields_read_json=json.dumps(list(outcome.fields_read)),
        decided_at=at,
        actor=principal.actor,
        role=principal.role.value,
    )
    session.add(row)
    return row


def to_decision_out(row: DecisionRow, outcome: Outcome | None = None) -> DecisionOut:
    """Return the wire form of a stored decision, with its explanation in both languages."""
    rules = [FiredRuleOut.model_validate(r) for r in json.loads(row.rules_json)]
    if outcome is None:
        outcome = _outcome_of(row, rules)
    action = json.loads(row.action_json)
    return DecisionOut(
        id=row.id, subject=row.subject, person=row.person, purpose=row.purpose,
        channel=row.channel, action=action, automated=row.automated, decided_by=row.decided_by,
        fallback=row.fallback, confidence=row.confidence, rules=rules,
        fields_read=json.loads(row.fields_read_json),
        explanation_zh=outcome.explanation("zh"), explanation_en=outcome.explanation("en"),
        policy_version=row.policy_version, experiment=row.experiment, arm=row.arm,
        decided_at=row.decided_at,
    )  # fmt: skip


def _outcome_of(row: DecisionRow, rules: list[FiredRuleOut]) -> Outcome:
    """Rebuild the explanation's inputs from a stored row (sealed values stay sealed)."""
    from models.decisions import Action, FallbackReason, FiredRule

    action = json.loads(row.action_json)
    return Outcome(
        purpose=row.purpose,
        action=Action.model_validate(action) if action else None,
        automated=row.automated,
        fired=tuple(
            FiredRule(r.rule, r.reason_zh, r.reason_en, r.inputs, r.confidence) for r in rules
        ),
        decided_by=row.decided_by,
        confidence=row.confidence,
        fallback=FallbackReason(row.fallback) if row.fallback else None,
        fields_read=tuple(json.loads(row.fields_read_json)),
        arm=row.arm,
    )


def decide(
    *,
    session: Session,
    request: DecisionRequest,
    principal: Principal,
    setup: DecisionSetup,
    catalogue: FieldCatalogue,
    purposes: PurposeRegistry,
    at: datetime,
    master_keys: MasterKeyRing | None = None,
) -> DecisionOut:
    """Decide for ``request.subject`` now, store the decision and return it; commits.

    An unknown pseudonym is a new customer: no profile, the rules see only the contact.

    Raises
    ------
    PurposeNotRegisteredError
        If the purpose is unknown.
    """
    purpose = parse_purpose(request.purpose)
    # Known, linked, restricted and refused: one statement for a pseudonym on its own.
    standing = standing_of(session, request.subject, flags={_REFUSED: _REFUSAL})
    person, fields = None, {}
    granted = False
    if standing.known:
        seen = visible_profile(
            session=session, subject=request.subject, purpose=purpose, catalogue=catalogue,
            at=at, master_keys=master_keys, standing=standing,
        )  # fmt: skip
        person = seen.person
        fields = evaluation_fields(seen.view.fields)
        granted = seen.purpose_granted(purpose, at) and not seen.restricted
    policy = setup.policy
    experiment = policy.experiment(purpose.value)
    arm = assign_arm(setup.arm_key, experiment, person or request.subject) if experiment else None
    signals = Signals(
        labels={h: s.label for h, s in request.signals.items()},
        probabilities={h: s.probability for h, s in request.signals.items()},
        channel=request.channel,
    )
    if not granted and not purposes.get(purpose).necessary:
        # No consent for a purpose the service does not need: nothing is evaluated.
        default = policy.policy.defaults.get(purpose.value)
        outcome = Outcome(purpose.value, default, False, (), None, 1.0, None, (),
                          arm.name if arm else None)  # fmt: skip
    else:
        outcome = policy.decide(
            purpose.value, fields, signals, arm=arm,
            refused_automated=standing.flags[_REFUSED],
        )  # fmt: skip
    row = store_decision(
        session=session, outcome=outcome, subject=request.subject, person=person,
        channel=request.channel, setup=setup, experiment=experiment.name if experiment else None,
        principal=principal, catalogue=catalogue, at=at,
    )  # fmt: skip
    session.commit()
    return to_decision_out(row, outcome)
