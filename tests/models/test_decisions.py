"""The pure decision evaluator: load-time checks, evaluation, calibration, arms."""

from __future__ import annotations

from typing import Any

import pytest

from consent import load_default_catalogue, load_default_purposes
from models.decisions import (
    DEFAULT_POLICY_PATH,
    Arm,
    DecisionPolicy,
    Experiment,
    FallbackReason,
    PolicyError,
    Signals,
    assign_arm,
    error_upper_bound,
    fit_threshold,
)

CATALOGUE = {f.name: [p.value for p in f.purposes] for f in load_default_catalogue()}
PURPOSES = [p.name.value for p in load_default_purposes()]


def _load(rules: list[dict[str, Any]], **extra: Any) -> DecisionPolicy:
    return DecisionPolicy.load(
        {"version": "t", "rules": rules, **extra}, field_purposes=CATALOGUE, purposes=PURPOSES
    )


def _rule(rule_id: str, purpose: str, when: str, **action: Any) -> dict[str, Any]:
    return {"id": rule_id, "purpose": purpose, "when": when,
            "action": action or {"kind": "queue", "queue": "general"},
            "reason_zh": "原因", "reason_en": "reason"}  # fmt: skip


def test_the_shipped_policy_loads() -> None:
    policy = DecisionPolicy.load(DEFAULT_POLICY_PATH, field_purposes=CATALOGUE, purposes=PURPOSES)
    assert {"service_routing", "proactive_service", "risk_control"} <= set(policy.purposes())


def test_a_rule_reading_a_field_its_purpose_may_not_use_is_refused_with_names() -> None:
    with pytest.raises(PolicyError) as refused:
        _load([_rule("upsell", "marketing", "feature_complaint_rate > 0.1",
                     kind="proactive", template="offer")])  # fmt: skip
    (problem,) = refused.value.problems
    assert "'upsell'" in problem and "'feature.complaint_rate'" in problem
    assert "marketing" in problem


@pytest.mark.parametrize(
    "when",
    [
        "feature_monetary_90d > 1000.0",
        "signal_emotion == 'negative'",
        "tag_high_purchasing_power == true",
    ],
)
def test_pricing_from_personal_characteristics_is_refused(when: str) -> None:
    with pytest.raises(PolicyError, match="PIPL Art. 24"):
        _load([_rule("surcharge", "personalized_service", when, kind="price")])


def test_unknown_names_invalid_cel_and_wrong_actions_are_refused() -> None:
    with pytest.raises(PolicyError) as refused:
        _load([
            _rule("typo", "service_routing", "feature_monetry_90d > 1.0"),
            _rule("stranger", "service_routing", "mystery > 1"),
            _rule("broken", "service_routing", "feature_monetary_90d >"),
            _rule("alert", "service_routing", "true", kind="risk_alert", level="high"),
        ])  # fmt: skip
    text = " ".join(refused.value.problems)
    for rule_id in ("typo", "stranger", "broken", "alert"):
        assert f"'{rule_id}'" in text


def test_missing_inputs_make_a_rule_not_hold_without_breaking_others() -> None:
    policy = _load(
        [_rule("rich", "service_routing", "feature_monetary_90d > 1000.0", queue="vip",
               kind="queue"),
         _rule("any", "service_routing", "contact_channel == 'desk'", kind="queue",
               queue="desk")],  # fmt: skip
    )
    out = policy.decide("service_routing", {}, Signals(channel="desk"))
    assert out.decided_by == "any" and [r.rule for r in out.fired] == ["any"]


def test_low_confidence_and_refusal_go_to_a_human() -> None:
    policy = DecisionPolicy.load(DEFAULT_POLICY_PATH, field_purposes=CATALOGUE, purposes=PURPOSES)
    calm = {"intent": "inquiry", "emotion": "neutral", "urgency": "normal"}
    sure = policy.decide("service_routing", {}, Signals(calm, dict.fromkeys(calm, 0.9)))
    assert sure.action is not None and sure.action.kind.value == "self_service"
    unsure = policy.decide("service_routing", {}, Signals(calm, {**dict.fromkeys(calm, 0.9),
                                                                 "intent": 0.4}))  # fmt: skip
    assert unsure.fallback is FallbackReason.LOW_CONFIDENCE and unsure.confidence == 0.4
    refused = policy.decide("service_routing", {}, Signals(calm, dict.fromkeys(calm, 0.9)),
                            refused_automated=True)  # fmt: skip
    assert refused.fallback is FallbackReason.REFUSED_AUTOMATED and refused.fired == ()


def test_fit_threshold_states_the_error_it_was_measured_to_have() -> None:
    confidences = [i / 1000 for i in range(1000)]
    correct = [c > 0.3 or i % 2 == 0 for i, c in enumerate(confidences)]
    fitted = fit_threshold(confidences, correct, target_error=0.05)
    assert fitted.error_rate is not None and fitted.error_rate <= 0.05
    assert 0.2 <= fitted.min_confidence <= 0.3  # errors start below 0.3; the bound allows some
    wrong = sum(not ok for c, ok in zip(confidences, correct, strict=True)
                if c >= fitted.min_confidence)  # fmt: skip
    assert error_upper_bound(wrong, round(fitted.coverage * 1000)) <= 0.05
    assert error_upper_bound(wrong + 1, round(fitted.coverage * 1000) + 1) > 0.05 or (
        fitted.coverage == 1.0
    )
    kept = [ok for c, ok in zip(confidences, correct, strict=True) if c >= fitted.min_confidence]
    assert fitted.error_rate == pytest.approx(1 - sum(kept) / len(kept))
    hopeless = fit_threshold([0.9] * 100, [False] * 100, target_error=0.05)
    assert hopeless.error_rate is None


def test_arms_are_stable_keyed_and_weighted() -> None:
    experiment = Experiment(name="e", purpose="service_routing",
                            arms=[Arm(name="a", weight=3), Arm(name="b", weight=1)])  # fmt: skip
    key, other = b"k" * 32, b"o" * 32
    people = [f"ps_{i:064x}" for i in range(4000)]
    arms = [assign_arm(key, experiment, p).name for p in people]
    assert arms == [assign_arm(key, experiment, p).name for p in people]
    assert 0.72 < arms.count("a") / len(arms) < 0.78
    assert arms != [assign_arm(other, experiment, p).name for p in people]
    with pytest.raises(ValueError):
        assign_arm(b"short", experiment, people[0])
