"""Routers: the default decision policy's arms turned into one routing per contact.

A router sees what a deployed decision service sees: the customer's consented
``service_routing`` fields, the contact's channel and, when its arm uses models, the live
signals of the message. Which signals is a choice of the router:

- ``none``: no message signals (first-in-first-out and rules without models; the ``rules``
  arm of the default experiment has ``models: false``, so it could not use them anyway);
- ``model``: the trained text classifier's labels and probabilities (:mod:`.text_signals`);
- ``truth``: the message's true labels with probability 1, the same rules with perfect
  models (an upper bound of what better models could bring).

Every routing goes through ``models.decisions.DecisionPolicy.decide``; nothing here decides
on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from consent import load_default_catalogue, load_default_purposes
from models.decisions import (
    DEFAULT_POLICY_PATH,
    HUMAN,
    Action,
    Arm,
    DecisionPolicy,
    Fallback,
    FallbackReason,
    Signals,
)

from .contacts import Contact
from .population import Customer
from .text_signals import ScoredMessage

PURPOSE = "service_routing"
SignalSource = Literal["none", "model", "truth"]


@dataclass(frozen=True)
class Routing:
    """Where one contact goes and why.

    Parameters
    ----------
    action : Action
        Queue, self-service or human.
    automated : bool
        A rule decided (not the default, not the human fallback).
    fallback : bool
        The decision went to a human because the model was unsure.
    confidence : float
        The deciding rule's confidence (1.0 without model signals).
    rule : str or None
        The rule that decided (or would have, under the fallback).
    """

    action: Action
    automated: bool
    fallback: bool
    confidence: float
    rule: str | None


class Router(Protocol):
    """Anything that routes contacts (tests pass deliberately wrong ones)."""

    name: str

    def route(self, contact: Contact) -> Routing:
        """Route one contact."""
        ...


def load_routing_policy() -> tuple[DecisionPolicy, tuple[str, ...]]:
    """Load the default decision policy, checked against the default catalogue.

    Returns
    -------
    tuple[DecisionPolicy, tuple[str, ...]]
        The compiled policy and the field names the catalogue allows for routing.
    """
    catalogue = load_default_catalogue()
    purposes = load_default_purposes()
    field_purposes = {f.name: [p.value for p in f.purposes] for f in catalogue}
    policy = DecisionPolicy.load(
        DEFAULT_POLICY_PATH,
        field_purposes=field_purposes,
        purposes=[p.name.value for p in purposes],
    )
    allowed = tuple(sorted(n for n, ps in field_purposes.items() if PURPOSE in ps))
    return policy, allowed


def with_fallback(policy: DecisionPolicy, fallback: Fallback) -> DecisionPolicy:
    """Return the same rules with another human-fallback threshold."""
    return DecisionPolicy(policy.policy.model_copy(update={"fallback": fallback}), policy.rules)


def routing_arm(policy: DecisionPolicy, name: str) -> Arm:
    """Return an arm of the policy's routing experiment, by name.

    The experiment is looked up whether or not it is ``active``: an offline comparison of
    its arms is what one runs before switching it on.

    Raises
    ------
    ValueError
        If the policy has no routing experiment or no arm of that name.
    """
    experiments = [e for e in policy.policy.experiments if e.purpose == PURPOSE]
    if not experiments:
        raise ValueError(f"the policy has no experiment on {PURPOSE}")
    for arm in experiments[0].arms:
        if arm.name == name:
            return arm
    known = ", ".join(a.name for a in experiments[0].arms)
    raise ValueError(f"the routing experiment has no arm {name!r} (it has {known})")


class PolicyRouter:
    """Routes with one arm of a decision policy and one source of live signals.

    Parameters
    ----------
    name : str
        The policy's name in the report (``fifo``, ``rules``, ``rules+models``...).
    policy : DecisionPolicy
        The compiled policy (its fallback threshold applies).
    arm : Arm or None
        The experiment arm whose rules apply (``None``: every rule).
    customers : Sequence[Customer]
        The population; a contact's ``customer`` indexes it.
    signals : {"none", "model", "truth"}
        Where live signals come from.
    scored : Mapping[str, ScoredMessage] or None
        Contact id to the text model's signals (needed for ``signals="model"``).

    Raises
    ------
    ValueError
        If ``signals="model"`` comes without ``scored``.
    """

    def __init__(
        self,
        name: str,
        policy: DecisionPolicy,
        *,
        arm: Arm | None,
        customers: Sequence[Customer],
        signals: SignalSource,
        scored: Mapping[str, ScoredMessage] | None = None,
    ) -> None:
        if signals == "model" and scored is None:
            raise ValueError("signals='model' needs the scored messages")
        self.name = name
        self.policy = policy
        self.arm = arm
        self.customers = customers
        self.signals = signals
        self.scored = scored or {}

    def live_signals(self, contact: Contact) -> Signals:
        """Return the signals this router's decision may read for ``contact``."""
        if self.signals == "none":
            return Signals(channel=contact.channel)
        if self.signals == "truth":
            labels = {
                "intent": contact.intent,
                "emotion": contact.emotion,
                "urgency": contact.urgency,
            }
            return Signals(labels, dict.fromkeys(labels, 1.0), contact.channel)
        scored = self.scored[contact.contact_id]
        return Signals(scored.labels, scored.probabilities, contact.channel)

    def route(self, contact: Contact) -> Routing:
        """Decide where ``contact`` goes."""
        fields = self.customers[contact.customer].fields
        outcome = self.policy.decide(PURPOSE, fields, self.live_signals(contact), arm=self.arm)
        return Routing(
            action=outcome.action or HUMAN,
            automated=outcome.automated,
            fallback=outcome.fallback is FallbackReason.LOW_CONFIDENCE,
            confidence=outcome.confidence,
            rule=outcome.decided_by,
        )
