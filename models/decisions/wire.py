"""Wire records of the decision API, shared by edges (callers) and the server.

A routing request carries the person's pseudonym and the live signals the edge computed from
the message in hand (labels and probabilities, never the text). The answer carries the
action, every rule that held with the inputs it read, the confidence and an explanation in
Chinese and English that a human agent can read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .actions import Action
from .names import CHANNELS, SIGNAL_LABELS

Pseudonym = Annotated[str, Field(pattern=r"^ps_[0-9a-f]{64}$")]
Head = Literal["intent", "emotion", "urgency"]
Channel = Literal["web", "app", "desk", "sms", "social"]
InputValue = bool | float | str | None

assert set(CHANNELS) == {"web", "app", "desk", "sms", "social"}


class SignalIn(BaseModel):
    """One head's label for the message in hand and the model's probability of it."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(max_length=20)
    probability: float = Field(ge=0.0, le=1.0)


class DecisionRequest(BaseModel):
    """Ask for a decision about one person now."""

    model_config = ConfigDict(extra="forbid")

    subject: Pseudonym
    purpose: str = Field(default="service_routing", max_length=40)
    channel: Channel | None = None
    signals: dict[Head, SignalIn] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_labels(self) -> Self:
        for head, signal in self.signals.items():
            if signal.label not in SIGNAL_LABELS[head]:
                raise ValueError(
                    f"signals.{head}.label must be one of {', '.join(SIGNAL_LABELS[head])}"
                )
        return self


class FiredRuleOut(BaseModel):
    """A rule that held, what it read and how sure the decision is."""

    rule: str
    reason_zh: str
    reason_en: str
    inputs: dict[str, InputValue]
    confidence: float


class DecisionOut(BaseModel):
    """One decision as the API returns it."""

    id: str
    subject: str
    person: str | None = None
    purpose: str
    channel: str | None = None
    action: Action | None
    automated: bool
    decided_by: str | None
    fallback: str | None
    confidence: float
    rules: list[FiredRuleOut]
    fields_read: list[str]
    explanation_zh: str
    explanation_en: str
    policy_version: str
    experiment: str | None = None
    arm: str | None = None
    decided_at: datetime


class OutcomeTotals(BaseModel):
    """One edge's contact-outcome totals for an experiment arm on one day (no person in it)."""

    model_config = ConfigDict(extra="forbid")

    experiment: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    arm: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    contacts: int = Field(ge=1, le=10_000_000)
    resolved: int = Field(ge=0)
    transferred: int = Field(ge=0)
    first_response_sum: float = Field(ge=0.0, le=1e12)
    first_response_sumsq: float = Field(ge=0.0, le=1e18)
    order_value_sum: float = Field(default=0.0, ge=0.0, le=1e12)
    order_value_sumsq: float = Field(default=0.0, ge=0.0, le=1e18)
    retained: int = Field(default=0, ge=0)
    retention_known: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if max(self.resolved, self.transferred, self.retention_known) > self.contacts:
            raise ValueError("resolved, transferred and retention_known cannot exceed contacts")
        if self.retained > self.retention_known:
            raise ValueError("retained cannot exceed retention_known")
        return self


class OutcomeUpload(BaseModel):
    """An edge's batch of outcome totals; a re-sent (experiment, arm, day) replaces the last."""

    model_config = ConfigDict(extra="forbid")

    totals: list[OutcomeTotals] = Field(min_length=1, max_length=1000)


class ArmKpis(BaseModel):
    """One arm's KPIs with 95% intervals, or ``suppressed`` below the minimum cell size."""

    arm: str
    contacts: int
    suppressed: bool
    resolution_rate: float | None = None
    resolution_rate_ci: tuple[float, float] | None = None
    transfer_rate: float | None = None
    transfer_rate_ci: tuple[float, float] | None = None
    first_response_s: float | None = None
    first_response_s_ci: tuple[float, float] | None = None
    order_value: float | None = None
    order_value_ci: tuple[float, float] | None = None
    retention_rate: float | None = None
    retention_rate_ci: tuple[float, float] | None = None


class ExperimentReport(BaseModel):
    """Per-arm KPIs of one experiment from the edges' totals."""

    experiment: str
    purpose: str | None
    min_cell: int
    days: int
    edges: int
    arms: list[ArmKpis]
