"""Merge rules over edges' contributions (pure): each catalogue rule, officers, breakdown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent import FieldSpec, MergeRule, load_default_catalogue
from models import ProfileFieldOut
from server.profiles.merge import Part, merge_parts

T = datetime(2026, 12, 1, tzinfo=UTC)
CATALOGUE = load_default_catalogue()


def _spec(value_type: str, merge: str, **extra: object) -> FieldSpec:
    typed = {"number": {"min": -1000, "max": 1000},
             "string": {"values": ["books", "food", "home", "a", "b", "c"]}}
    return FieldSpec.model_validate({
        "name": "feature.example", "category": "user.behavior", "sensitivity": "normal",
        "value_type": value_type, "purposes": ["analytics"], "legal_basis": "consent",
        "retention_days": 30, "meaning_zh": "例", "meaning_en": "example", "merge": merge,
        **typed.get(value_type, {}), **extra,
    })  # fmt: skip


def _part(value: object, *, edge: str | None = "e1", channel: str | None = "web",
          confidence: float | None = None, hours: int = 0) -> Part:  # fmt: skip
    out = ProfileFieldOut.model_validate({
        "name": "feature.example", "value": value, "confidence": confidence,
        "computed_at": T + timedelta(hours=hours), "source_channel": channel,
    })  # fmt: skip
    return Part(edge_id=edge, field=out)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [("sum", 6.5), ("max", 4), ("min", 0.5), ("latest", 2), ("mean", 6.5 / 3)],
)
def test_number_rules(rule: str, expected: float) -> None:
    parts = [
        _part(4, edge="a", hours=0),
        _part(0.5, edge="b", hours=1),
        _part(2, edge="c", hours=2),
    ]
    merged = merge_parts(_spec("number", rule), parts)
    assert merged.value == pytest.approx(expected)
    assert merged.merge == rule


def test_mean_is_weighted_by_the_declared_weight_field_from_the_same_edge() -> None:
    # Complaint rates 0.5 (of 10 contacts) and 0.0 (of 30 contacts): pooled rate 5/40.
    parts = [_part(0.5, edge="desk"), _part(0.0, edge="web")]
    weights = {("", "desk"): 10.0, ("", "web"): 30.0}
    merged = merge_parts(_spec("number", "mean"), parts, weights=weights)
    assert merged.value == pytest.approx(5 / 40)


def test_boolean_string_and_tag_rules() -> None:
    flags = [_part(True, edge="a"), _part(False, edge="b")]
    assert merge_parts(_spec("boolean", "any"), flags).value is True
    assert merge_parts(_spec("boolean", "all"), flags).value is False
    words = [_part("数码", edge="a"), _part("图书", edge="b"), _part("数码", edge="c")]
    assert merge_parts(_spec("string", "union"), words).value == ["图书", "数码"]
    # vote: a confident "yes" (0.9) outweighs an unsure "no" (0.6 -> p = 0.4).
    tags = [_part(True, edge="a", confidence=0.9), _part(False, edge="b", confidence=0.6)]
    voted = merge_parts(_spec("tag", "vote"), tags)
    assert voted.value is True
    assert voted.confidence == pytest.approx((0.9 * 0.9 + 0.6 * 0.4) / 1.5, abs=1e-4)


def test_officer_rectification_replaces_every_channel() -> None:
    parts = [_part(100, edge="a"), _part(200, edge="b"), _part(7, edge=None, channel=None)]
    merged = merge_parts(_spec("number", "sum"), parts, breakdown=True)
    assert merged.value == 7 and merged.channels == ["officer"]
    assert merged.contributions is not None and len(merged.contributions) == 1


def test_breakdown_lists_provenance_only_on_request() -> None:
    parts = [_part(1, edge="a", channel="web"), _part(2, edge="b", channel="desk", hours=1)]
    plain = merge_parts(_spec("number", "sum"), parts)
    detailed = merge_parts(_spec("number", "sum"), parts, breakdown=True)
    assert plain.contributions is None and plain.source_channel is None
    assert plain.channels == ["desk", "web"] and plain.computed_at == T + timedelta(hours=1)
    assert detailed.contributions is not None
    assert [(c.edge_id, c.channel, c.value) for c in detailed.contributions] == [
        ("a", "web", 1), ("b", "desk", 2)]  # fmt: skip


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=6))
def test_sum_is_order_free_and_min_max_bound_it(values: list[float]) -> None:
    parts = [_part(v, edge=f"e{i}") for i, v in enumerate(values)]
    total = merge_parts(_spec("number", "sum"), parts).value
    assert total == merge_parts(_spec("number", "sum"), parts[::-1]).value
    assert merge_parts(_spec("number", "min"), parts).value == min(values)
    assert merge_parts(_spec("number", "max"), parts).value == max(values)
    assert total == pytest.approx(sum(values), rel=1e-9, abs=1e-5)


def test_shipped_catalogue_declares_a_fitting_rule_for_every_field() -> None:
    rules = {spec.name: spec.merge_rule for spec in CATALOGUE}
    assert rules["feature.monetary_90d"] is MergeRule.SUM
    assert rules["feature.recency_days"] is MergeRule.MIN
    assert rules["tag.high_purchasing_power"] is MergeRule.DERIVED


def test_one_edge_contributing_for_two_pseudonyms_of_a_person_is_weighed_per_pseudonym() -> None:
    # Two devices at the same web edge: rates 1.0 of 2 contacts and 0.0 of 6 -> 2 / 8.
    one = Part(edge_id="web", field=_part(1.0).field, subject="ps_a")
    two = Part(edge_id="web", field=_part(0.0).field, subject="ps_b")
    weights = {("ps_a", "web"): 2.0, ("ps_b", "web"): 6.0}
    merged = merge_parts(_spec("number", "mean"), [one, two], weights=weights)
    assert merged.value == pytest.approx(0.25)
