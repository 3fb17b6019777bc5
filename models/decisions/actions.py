"""What a decision does: a queue, self-service, a proactive reminder, a risk alert, a human.

Actions are typed values, never free text: a business system switches on ``kind`` and reads
the named queue, skill, entry, template or level. Pricing and transaction-term actions exist
only so that a policy asking for them is refused with a reason (PIPL Art. 24: no price or
transaction-term differences from personal characteristics).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Token = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class ActionKind(StrEnum):
    """The kinds of action a rule may take."""

    QUEUE = "queue"
    SELF_SERVICE = "self_service"
    PROACTIVE = "proactive"
    RISK_ALERT = "risk_alert"
    HUMAN = "human"
    PRICE = "price"
    TRANSACTION_TERMS = "transaction_terms"


#: Kinds that set what a person pays or the terms they get: never from personal data.
PRICING_KINDS: frozenset[ActionKind] = frozenset({ActionKind.PRICE, ActionKind.TRANSACTION_TERMS})

#: The kinds each purpose may decide (a marketing rule cannot raise a risk alert).
KINDS_BY_PURPOSE: dict[str, frozenset[ActionKind]] = {
    "service_routing": frozenset({ActionKind.QUEUE, ActionKind.SELF_SERVICE, ActionKind.HUMAN}),
    "proactive_service": frozenset({ActionKind.PROACTIVE, ActionKind.HUMAN}),
    "marketing": frozenset({ActionKind.PROACTIVE} | PRICING_KINDS),
    "personalized_service": frozenset(
        {ActionKind.QUEUE, ActionKind.SELF_SERVICE, ActionKind.PROACTIVE, ActionKind.HUMAN}
        | PRICING_KINDS
    ),
    "risk_control": frozenset({ActionKind.RISK_ALERT, ActionKind.HUMAN} | PRICING_KINDS),
}


class Action(BaseModel):
    """One action with its typed target.

    Parameters
    ----------
    kind : ActionKind
        What to do.
    queue : str or None
        The queue for ``queue`` (e.g. ``senior``, ``general``).
    skill : str or None
        The skill the queue's agent needs (e.g. ``complaints``, ``returns``).
    priority : int
        0 (normal) to 9 (first in line).
    entry : str or None
        The self-service entry (e.g. ``faq_order_status``).
    template : str or None
        The proactive reminder's message template.
    level : str or None
        The risk alert's level (``low``, ``medium``, ``high``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ActionKind
    queue: Token | None = None
    skill: Token | None = None
    priority: int = Field(default=0, ge=0, le=9)
    entry: Token | None = None
    template: Token | None = None
    level: Token | None = None

    def target(self) -> str:
        """Describe the action briefly and stably (``queue:senior/complaints!7``) for logs."""
        name = self.queue or self.entry or self.template or self.level or ""
        skill = f"/{self.skill}" if self.skill else ""
        priority = f"!{self.priority}" if self.priority else ""
        return f"{self.kind.value}:{name}{skill}{priority}" if name else self.kind.value


#: The action taken whenever no automated decision may be made.
HUMAN = Action(kind=ActionKind.HUMAN, queue="general")
