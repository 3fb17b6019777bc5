from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

import models
from consent import load_default_catalogue
from models.tags import (
    FEATURE_INFO,
    MAX_EXPLANATION_ITEMS,
    TAG_DEFINITIONS,
    TagDefinition,
    compute_tags,
    evaluate_tag,
)

BASE = dict.fromkeys(FEATURE_INFO, 0.0) | {"ratings_avg": 3.0, "recency_days": 10.0}


def _tag(features: dict[str, float], name: str, *, provisional: bool = False):
    return next(t for t in compute_tags(features, provisional=provisional) if t.name == name)


def test_tag_definitions_when_loaded_then_required_tags_with_chinese_labels() -> None:
    labels = {name: d.label_zh for name, d in TAG_DEFINITIONS.items()}

    assert labels == {
        "high_purchasing_power": "高购买力",
        "high_interaction_willingness": "高互动意愿",
        "common_question_tendency": "常见问题倾向",
        "churn_risk": "流失风险",
        "escalation_need": "人工升级需求",
    }


def test_tag_definitions_when_checked_against_catalogue_then_all_catalogued() -> None:
    catalogue = load_default_catalogue()

    for definition in TAG_DEFINITIONS.values():
        assert definition.field_name in catalogue


def test_models_root_when_accessed_then_tag_names_exported_lazily() -> None:
    assert models.compute_tags is compute_tags
    assert models.TAG_DEFINITIONS is TAG_DEFINITIONS
    assert models.TagDefinition is TagDefinition


@pytest.mark.parametrize(
    ("name", "overrides", "expected"),
    [
        (
            "high_purchasing_power",
            {"monetary_90d": 5000, "avg_order_value": 800, "frequency_90d": 6},
            True,
        ),
        (
            "high_purchasing_power",
            {"monetary_90d": 300, "avg_order_value": 100, "frequency_90d": 3},
            False,
        ),
        (
            "high_interaction_willingness",
            {"views_30d": 40, "searches_30d": 15, "sessions_30d": 12, "active_days_30d": 15},
            True,
        ),
        (
            "high_interaction_willingness",
            {"views_30d": 3, "sessions_30d": 1, "active_days_30d": 1},
            False,
        ),
        ("common_question_tendency", {"cs_messages_90d": 8, "history_days": 30}, True),
        (
            "common_question_tendency",
            {"cs_messages_90d": 8, "complaints_90d": 8, "complaint_rate": 1.0, "history_days": 400},
            False,
        ),
        ("churn_risk", {"recency_days": 120, "activity_trend": -0.9, "active_days_30d": 1}, True),
        (
            "churn_risk",
            {"recency_days": 3, "activity_trend": 0.2, "frequency_90d": 5, "active_days_30d": 12},
            False,
        ),
        ("escalation_need", {"complaints_90d": 3, "complaint_rate": 0.6, "ratings_avg": 1.5}, True),
        ("escalation_need", {"complaints_90d": 0, "ratings_avg": 4.8}, False),
    ],
)
def test_compute_tags_when_profile_then_expected_value(
    name: str, overrides: dict[str, float], expected: bool
) -> None:
    assert _tag(BASE | overrides, name).value is expected


@pytest.mark.parametrize("name", list(TAG_DEFINITIONS))
def test_explanation_when_all_terms_listed_then_recomputes_probability(name: str) -> None:
    # Prepare: every feature non-zero so each weight contributes
    features = {k: v + 1.0 for k, v in BASE.items()}
    definition = TAG_DEFINITIONS[name]

    # Execute
    result = evaluate_tag(definition, features, provisional=False)

    # Assert: every contribution w * scaled(x) is listed, so the bias plus them gives p
    expected = {f: w * FEATURE_INFO[f].scaled(features[f]) for f, w in definition.weights.items()}
    assert len(definition.weights) <= MAX_EXPLANATION_ITEMS
    assert {i.feature: i.weight for i in result.explanation} == {
        f: pytest.approx(c, abs=1e-4) for f, c in expected.items()
    }
    z = definition.bias + sum(i.weight for i in result.explanation)
    assert 1 / (1 + math.exp(-z)) == pytest.approx(result.probability, abs=1e-3)
    weights = [abs(i.weight) for i in result.explanation]
    assert weights == sorted(weights, reverse=True)
    assert all(i.label_zh and i.label_en for i in result.explanation)


def test_tag_definition_when_more_weights_than_explained_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="at most"):
        TagDefinition(
            name="x",
            label_zh="x",
            label_en="x",
            description_zh="x",
            description_en="x",
            weights=dict.fromkeys(list(FEATURE_INFO)[: MAX_EXPLANATION_ITEMS + 1], 1.0),
        )


def test_high_purchasing_power_when_coupon_reliant_then_lower_probability() -> None:
    spender = BASE | {"monetary_90d": 2500.0, "avg_order_value": 350.0, "frequency_90d": 4.0}

    full_price = _tag(spender, "high_purchasing_power")
    bargain = _tag(spender | {"coupon_rate_90d": 1.0}, "high_purchasing_power")

    assert bargain.probability < full_price.probability
    weights = {item.feature: item.weight for item in bargain.explanation}
    assert weights["coupon_rate_90d"] < 0
    assert "coupon_rate_90d" not in {item.feature for item in full_price.explanation}


def test_high_interaction_willingness_when_channels_mixed_then_higher_probability() -> None:
    active = BASE | {"views_30d": 20.0, "sessions_30d": 8.0, "active_days_30d": 8.0}

    one_channel = _tag(active, "high_interaction_willingness")
    many = _tag(active | {"channel_entropy_90d": 0.9}, "high_interaction_willingness")

    assert many.probability > one_channel.probability


def test_compute_tags_when_provisional_then_confidence_lower_same_value() -> None:
    features = BASE | {"monetary_90d": 5000.0, "avg_order_value": 800.0}

    full = compute_tags(features, provisional=False)
    prov = compute_tags(features, provisional=True)

    for a, b in zip(full, prov, strict=True):
        assert a.value == b.value and b.provisional
        assert 0.5 <= b.confidence < a.confidence or a.confidence == 0.5


def test_compute_tags_when_feature_missing_then_value_error() -> None:
    features = dict(BASE)
    del features["monetary_90d"]

    with pytest.raises(ValueError, match="monetary_90d"):
        compute_tags(features, provisional=False)


def test_compute_tags_when_feature_not_finite_then_value_error() -> None:
    with pytest.raises(ValueError, match="not finite"):
        compute_tags(BASE | {"views_30d": math.nan}, provisional=False)


def test_tag_definition_when_unknown_feature_then_validation_error() -> None:
    with pytest.raises(ValidationError, match="unknown features: shoe_size"):
        TagDefinition(
            name="x",
            label_zh="x",
            label_en="x",
            description_zh="x",
            description_en="x",
            weights={"shoe_size": 1.0},
        )


@pytest.mark.parametrize(("value", "expected"), [(-1e9, -3.0), (0.0, 0.0), (1e9, 3.0)])
def test_feature_scaling_when_extreme_then_clipped(value: float, expected: float) -> None:
    assert FEATURE_INFO["monetary_90d"].scaled(value) == expected
