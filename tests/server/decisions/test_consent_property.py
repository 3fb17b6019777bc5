"""Property: no decision depends on a field the person's consent disallows for its purpose now.

A person holds routing-relevant fields stored under other purposes (personalized and
proactive service). Whenever they have not consented to service routing, changing those
fields must not change a routing decision in any way: action, deciding rule, the rules that
held or what they read. The same property run against a deliberately broken consent check
(every field allowed) must find a counterexample, so the property can fail.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import Decision, DecisionReason, Purpose

from ..factories import make_pseudonym
from .harness import DecisionApi, decision_api, signals

_counter = itertools.count()
intents = st.sampled_from(["inquiry", "complaint", "purchase", "return"])
emotions = st.sampled_from(["negative", "neutral", "positive"])
urgencies = st.sampled_from(["low", "normal", "urgent"])
money = st.floats(min_value=0, max_value=30000, allow_nan=False).map(lambda v: round(v, 2))
counts = st.integers(min_value=0, max_value=6)


def _view(answer: dict[str, Any]) -> tuple[Any, ...]:
    return (answer["action"], answer["decided_by"], answer["fallback"], answer["rules"],
            answer["fields_read"])  # fmt: skip


def check_property(dapi: DecisionApi) -> None:
    """Run the property against the app in ``dapi`` (raises on a counterexample)."""

    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        routing=st.booleans(), withdraw=st.booleans(), intent=intents, emotion=emotions,
        urgency=urgencies, monetary=money, complaints=counts, monetary2=money, complaints2=counts,
    )  # fmt: skip
    def prop(
        routing: bool, withdraw: bool, intent: str, emotion: str, urgency: str,
        monetary: float, complaints: int, monetary2: float, complaints2: int,
    ) -> None:  # fmt: skip
        subject = make_pseudonym(f"property-{next(_counter)}")
        dapi.consent(subject, Purpose.PERSONALIZED_SERVICE, Purpose.PROACTIVE_SERVICE)
        if routing:
            dapi.consent(subject, Purpose.SERVICE_ROUTING)
            if withdraw:  # granted yesterday, withdrawn an hour ago
                dapi.consent(subject, Purpose.SERVICE_ROUTING, withdraw=True)
        allowed_now = routing and not withdraw
        dapi.upload(subject, "personalized_service", feature__monetary_90d=monetary)
        dapi.upload(subject, "proactive_service", feature__complaints_90d=complaints)
        sig = signals(intent, emotion, urgency)
        before = dapi.decide(subject, sig)
        dapi.upload(subject, "personalized_service", feature__monetary_90d=monetary2)
        dapi.upload(subject, "proactive_service", feature__complaints_90d=complaints2)
        after = dapi.decide(subject, sig)
        if not allowed_now:
            assert _view(before) == _view(after)
            assert before["fields_read"] == []

    prop()


@pytest.mark.slow
def test_no_decision_depends_on_a_field_consent_disallows(tmp_path: Path) -> None:
    for dapi in decision_api(f"sqlite:///{tmp_path / 'server.db'}"):
        check_property(dapi)


@pytest.mark.slow
def test_a_broken_consent_check_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def everything_allowed(*, field: str, purpose: Purpose, **_: Any) -> Decision:
        return Decision(field, purpose, DecisionReason.ALLOWED)

    monkeypatch.setattr("server.profiles.visible.evaluate", everything_allowed)
    for dapi in decision_api(f"sqlite:///{tmp_path / 'server.db'}"):
        with pytest.raises((AssertionError, ExceptionGroup)):
            check_property(dapi)
