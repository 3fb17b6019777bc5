"""The decision family: automated decisions, refusals of them, batch triggers.

``decision`` keeps one row per decision: what was decided for which pseudonym under which
purpose, the rules that held with the inputs they read (typed catalogue values; a sensitive
field's value is never copied here), the confidence and whether a human decides. The row is
what the person lists and has explained (PIPL Art. 24) and what the audit chain records
(``audited`` turns true once its entry is appended, in batches).

``automated_decision_refusal`` marks a pseudonym whose person refused solely automated
decisions; from then on every decision about them is ``human``.

``decision_trigger`` is one batch trigger (proactive reminder, risk alert) per person, rule
and period: the unique key makes ``decide run`` idempotent.
"""

from datetime import datetime

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .types import UTCDateTime


class DecisionRow(SQLModel, table=True):
    """One decision (table ``decision``); JSON columns are text."""

    __tablename__ = "decision"
    __table_args__ = (Index("ix_decision_audited_at", "audited", "decided_at"),)

    id: str = Field(primary_key=True, max_length=36)
    subject: str = Field(max_length=67, index=True)
    person: str | None = Field(default=None, max_length=67)
    purpose: str = Field(max_length=40)
    channel: str | None = Field(default=None, max_length=20)
    policy_version: str = Field(max_length=40)
    experiment: str | None = Field(default=None, max_length=40)
    arm: str | None = Field(default=None, max_length=40)
    action_kind: str = Field(max_length=20)
    action_json: str = Field(sa_type=Text)
    automated: bool
    decided_by: str | None = Field(default=None, max_length=40)
    fallback: str | None = Field(default=None, max_length=30)
    confidence: float
    rules_json: str = Field(default="[]", sa_type=Text)
    fields_read_json: str = Field(default="[]", sa_type=Text)
    decided_at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=120)
    role: str = Field(max_length=30)
    audited: bool = Field(default=False)


class AutomatedDecisionRefusal(SQLModel, table=True):
    """A pseudonym whose person refused solely automated decisions."""

    __tablename__ = "automated_decision_refusal"

    subject: str = Field(primary_key=True, max_length=67)
    refused_at: datetime = Field(sa_type=UTCDateTime)


class DecisionTrigger(SQLModel, table=True):
    """A batch trigger delivered (or waiting) for one person, rule and period."""

    __tablename__ = "decision_trigger"
    __table_args__ = (
        UniqueConstraint("purpose", "person_key", "rule", "period", name="uq_decision_trigger"),
    )

    id: str = Field(primary_key=True, max_length=36)
    purpose: str = Field(max_length=40)
    person_key: str = Field(max_length=67, index=True)
    subject: str = Field(max_length=67)
    rule: str = Field(max_length=40)
    period: str = Field(max_length=20)
    decision_id: str = Field(max_length=36)
    action_json: str = Field(sa_type=Text)
    created_at: datetime = Field(sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
