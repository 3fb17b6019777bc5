"""Server-side tag rules over merged fields: in step with the catalogue, ratios from sums."""

from __future__ import annotations

import pytest

from consent import MergeRule, load_default_catalogue
from models import MERGED_TAG_DEFINITIONS, RATIO_FEATURES, derive_merged_tag, merged_inputs

CATALOGUE = load_default_catalogue()


def test_every_derived_catalogue_tag_has_a_rule_reading_exactly_its_derived_from() -> None:
    derived = {s.name: s for s in CATALOGUE if s.merge_rule is MergeRule.DERIVED}
    assert {f"tag.{name}" for name in MERGED_TAG_DEFINITIONS} == set(derived)
    for name, definition in MERGED_TAG_DEFINITIONS.items():
        declared = {f.removeprefix("feature.") for f in derived[f"tag.{name}"].derived_from}
        assert merged_inputs(definition) == declared, name


def test_ratio_features_come_from_merged_counts_not_averaged_rates() -> None:
    rule = MERGED_TAG_DEFINITIONS["escalation_need"]
    # 3 complaints in 4 contacts overall (desk 3/3, web 0/1): the pooled rate is 0.75.
    result = derive_merged_tag(rule, {"complaints_90d": 3, "cs_messages_90d": 4},
                               provisional=False)  # fmt: skip
    by_feature = {e.feature: e.weight for e in result.explanation}
    assert by_feature["complaint_rate"] == pytest.approx(0.75 * 0.75 / 0.5, abs=1e-4)
    assert set(RATIO_FEATURES) >= {"complaint_rate", "avg_order_value"}


def test_zero_denominator_gives_zero_and_missing_inputs_are_refused() -> None:
    rule = MERGED_TAG_DEFINITIONS["high_purchasing_power"]
    none = derive_merged_tag(rule, {"monetary_90d": 0, "frequency_90d": 0}, provisional=True)
    assert none.value is False and none.provisional
    with pytest.raises(ValueError, match="needs"):
        derive_merged_tag(rule, {"monetary_90d": 10}, provisional=False)
