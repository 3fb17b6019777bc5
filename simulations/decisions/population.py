"""Customers with the profile a routing decision reads, built from the synthetic generator.

Each customer is a user of :mod:`simulations.synthetic` (latent traits, 90 days of
multi-channel events and messages). Their profile is computed the way an edge computes it:
``client.features.compute_features`` over all of the person's events at the end of the
history (the merged, cross-channel view the server holds after identity linkage), the
explainable tags of ``models.tags`` from those features, and ``score.escalation_risk`` from
:mod:`.risk_score` (learnt from the customers who consented to ``model_training``). Only
fields the catalogue allows for ``service_routing`` are kept, and only for customers whose
``service_routing`` consent is in force after the history (the generator's consent plan:
first grant or late grant, not withdrawn or granted again).

Ground truth the router never sees: the customer's *value*, their expected spend over 90 days
under the generator's own purchase model (sessions per day × channel mix × purchase chance ×
mean order), and whether it is in the population's top ``high_value_share``. The profile's
``feature.monetary_90d`` is one noisy realisation of it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from client.features import SubjectFeatures, compute_features
from client.store import StoredEvent, StoredMessage
from models.tags import TAG_DEFINITIONS, evaluate_tag

from ..synthetic import (
    CHANNELS,
    PopulationConfig,
    User,
    make_users,
    purchase_chance,
    session_rate,
    user_lines,
)
from .risk_score import RiskModel, fit_risk_model

logger = logging.getLogger(__name__)

#: Days of history behind each profile (the 90-day features see all of it).
HISTORY_DAYS = 90
#: Label window of the escalation-risk stand-in (as the behaviour task's default).
RISK_WINDOW_DAYS = 14
#: Mean order of the generator before purchasing power (``lognormvariate(4.3, 0.5)``, CNY).
_MEAN_ORDER_CNY = math.exp(4.3 + 0.5**2 / 2)
_PURPOSE = "service_routing"


@dataclass(frozen=True)
class Customer:
    """One customer: the profile a router may read and the truth it may not.

    Parameters
    ----------
    user : User
        The synthetic user (latent traits; never shown to a router).
    fields : Mapping[str, Any]
        Catalogued ``service_routing`` fields (tags as booleans); empty without consent.
    consented : bool
        Whether ``service_routing`` consent is in force.
    value_cny : float
        Expected spend over 90 days (CNY) under the generator's purchase model.
    high_value : bool
        ``value_cny`` is in the population's top ``high_value_share``.
    """

    user: User
    fields: Mapping[str, Any]
    consented: bool
    value_cny: float
    high_value: bool

    @property
    def index(self) -> int:
        """The user's index in the population."""
        return self.user.index


def consent_in_force(user: User, purpose: str) -> bool:
    """Whether ``user``'s consent plan leaves ``purpose`` granted at the end of the history."""
    granted = user.consents.get(purpose, False) or purpose in user.late_grants
    return granted and (purpose not in user.withdrawn or purpose in user.regranted)


def expected_spend(user: User, config: PopulationConfig) -> float:
    """Return the expected spend (CNY) of ``user`` over the history (the generator's model)."""
    sessions = sum(session_rate(user, day, config) for day in range(config.days))
    per_session = sum(
        w * purchase_chance(user, channel)
        for channel, w in zip(CHANNELS, user.channel_weights, strict=True)
    )
    return sessions * per_session * _MEAN_ORDER_CNY * user.purchasing_power


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _history(user: User, config: PopulationConfig) -> tuple[list[StoredEvent], list[StoredMessage]]:
    """Return the user's events and messages as an edge stores them (text dropped)."""
    events: list[StoredEvent] = []
    messages: list[StoredMessage] = []
    subject = f"c{user.index:06d}"
    for line in user_lines(user, config):
        kind = line["kind"]
        if kind == "event":
            events.append(
                StoredEvent(
                    event_id=line["event_id"],
                    subject=subject,
                    type=line["type"],
                    channel=line["channel"],
                    ts=_epoch(line["ts"]),
                    category=line.get("category"),
                    amount=line.get("amount"),
                    currency=line.get("currency"),
                    session_id=line.get("session_id"),
                    rating=line.get("rating"),
                )
            )
        elif kind == "message":
            messages.append(
                StoredMessage(
                    line["message_id"],
                    subject,
                    line["channel"],
                    _epoch(line["ts"]),
                    line["lang"],
                    "",
                    {},
                )
            )
    return events, messages


def routing_fields(
    features: SubjectFeatures, risk: float | None, allowed: Iterable[str]
) -> dict[str, Any]:
    """Return the catalogued ``service_routing`` fields of one profile (tags as booleans).

    Parameters
    ----------
    features : SubjectFeatures
        The customer's features at decision time.
    risk : float or None
        ``score.escalation_risk``, if scored.
    allowed : Iterable[str]
        Field names the catalogue allows for ``service_routing``.

    Returns
    -------
    dict[str, Any]
        Field name to value, for the allowed fields this simulation computes.
    """
    values: dict[str, Any] = {}
    for name in allowed:
        family, _, key = name.partition(".")
        if family == "feature" and key in features.values:
            values[name] = features.values[key]
        elif family == "tag" and key in TAG_DEFINITIONS:
            tag = evaluate_tag(
                TAG_DEFINITIONS[key], features.values, provisional=features.provisional
            )
            values[name] = tag.value
        elif name == "score.escalation_risk" and risk is not None:
            values[name] = round(risk, 4)
    return values


def build_customers(
    *,
    users: int,
    seed: int,
    allowed_fields: Iterable[str],
    high_value_share: float = 0.1,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Customer], RiskModel]:
    """Generate ``users`` customers with their routing profile and ground truth.

    Parameters
    ----------
    users : int
        Number of customers.
    seed : int
        Seed of the synthetic population.
    allowed_fields : Iterable[str]
        Field names the catalogue allows for ``service_routing``.
    high_value_share : float
        Share of customers counted high-value (by expected spend).
    progress : Callable[[int, int], None] or None
        Called with ``(customers done, users)``.

    Returns
    -------
    tuple[list[Customer], RiskModel]
        The customers, and the escalation-risk stand-in fitted on their history.

    Raises
    ------
    ValueError
        If ``users`` is below 20 or ``high_value_share`` is not within (0, 1).
    """
    if users < 20:
        raise ValueError("users must be at least 20")
    if not 0.0 < high_value_share < 1.0:
        raise ValueError("high_value_share must be within (0, 1)")
    config = PopulationConfig(users=users, days=HISTORY_DAYS, seed=seed)
    people = make_users(config)
    end = config.end.timestamp()
    cutoff = (config.end - timedelta(days=RISK_WINDOW_DAYS)).timestamp()
    now_features: list[SubjectFeatures] = []
    past_features: list[SubjectFeatures] = []
    escalated: list[bool] = []
    # 1. Each person's history, as an edge stores it, and features now and at the cutoff.
    for done, user in enumerate(people, start=1):
        events, messages = _history(user, config)
        subject = f"c{user.index:06d}"
        now_features.append(compute_features(subject, events, now=end, messages=messages))
        past_features.append(compute_features(subject, events, now=cutoff, messages=messages))
        escalated.append(any(e.type == "complaint" and e.ts > cutoff for e in events))
        if progress is not None:
            progress(done, users)
    # 2. The escalation-risk stand-in: features at the cutoff → a complaint in the window,
    # learnt only from customers who consented to model training (as edges do).
    trainable = [i for i, user in enumerate(people) if consent_in_force(user, "model_training")]
    risk_model = fit_risk_model(
        [past_features[i] for i in trainable], [escalated[i] for i in trainable], seed=seed
    )
    risks = risk_model.score(now_features)
    # 3. Truth: expected spend and the high-value share.
    spend = np.array([expected_spend(user, config) for user in people])
    bar = float(np.quantile(spend, 1.0 - high_value_share))
    allowed = tuple(sorted(allowed_fields))
    customers = []
    for user, features, risk, value in zip(people, now_features, risks, spend, strict=True):
        consented = consent_in_force(user, _PURPOSE)
        fields = routing_fields(features, float(risk), allowed) if consented else {}
        customers.append(
            Customer(user, fields, consented, round(float(value), 2), bool(value >= bar))
        )
    logger.info(
        "built %d customers (%d with routing consent)",
        len(customers),
        sum(c.consented for c in customers),
    )
    return customers, risk_model


def population_summary(customers: list[Customer]) -> dict[str, Any]:
    """Return counts and field shares of the population (for ``metrics.json``)."""
    with_fields = [c.fields for c in customers if c.consented]

    def share(test: Callable[[Mapping[str, Any]], bool]) -> float:
        return round(sum(1 for f in with_fields if test(f)) / max(len(with_fields), 1), 4)

    monetary = np.array([f.get("feature.monetary_90d", 0.0) for f in with_fields] or [0.0])
    return {
        "customers": len(customers),
        "history_days": HISTORY_DAYS,
        "routing_consent": round(sum(c.consented for c in customers) / len(customers), 4),
        "high_value": round(sum(c.high_value for c in customers) / len(customers), 4),
        "monetary_90d_median": round(float(np.median(monetary)), 2),
        "monetary_90d_p90": round(float(np.quantile(monetary, 0.9)), 2),
        "monetary_90d_at_least_3000": share(lambda f: f.get("feature.monetary_90d", 0) >= 3000),
        "complaints_90d_zero": share(lambda f: f.get("feature.complaints_90d", 0) == 0),
        "tag_escalation_need": share(lambda f: f.get("tag.escalation_need") is True),
        "escalation_risk_at_least_0_6": share(lambda f: f.get("score.escalation_risk", 0.0) >= 0.6),
    }
