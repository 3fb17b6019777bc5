from __future__ import annotations

from pathlib import Path

import pytest

from consent import (
    CatalogueError,
    FieldCatalogue,
    FieldNotCataloguedError,
    MergeRule,
    Purpose,
    Sensitivity,
    load_default_catalogue,
)


def test_default_catalogue_loads_with_bilingual_meanings() -> None:
    catalogue = load_default_catalogue()

    assert len(catalogue.fields) >= 10
    for spec in catalogue:
        assert spec.meaning_zh and spec.meaning_en
        assert spec.purposes


def test_default_catalogue_has_a_sensitive_field_needing_separate_consent() -> None:
    catalogue = load_default_catalogue()

    sensitive = [f for f in catalogue if f.sensitivity is Sensitivity.SENSITIVE]

    assert sensitive and all(f.needs_separate_consent for f in sensitive)


def test_get_unknown_field_raises_field_not_catalogued() -> None:
    with pytest.raises(FieldNotCataloguedError):
        load_default_catalogue().get("raw.phone_number")


def test_fields_for_purpose_only_lists_fields_allowing_it() -> None:
    catalogue = load_default_catalogue()

    fields = catalogue.fields_for(Purpose.RISK_CONTROL)

    assert fields and all(Purpose.RISK_CONTROL in f.purposes for f in fields)


def test_from_mapping_reports_every_problem_at_once() -> None:
    good = load_default_catalogue().fields[0].model_dump(mode="json")
    bad_purpose = dict(good, name="tag.other", purposes=["selling_data"])
    bad_retention = dict(good, name="tag.third", retention_days=0)
    duplicate = dict(good)

    with pytest.raises(CatalogueError) as info:
        FieldCatalogue.from_mapping({"fields": [good, bad_purpose, bad_retention, duplicate]})

    assert len(info.value.problems) >= 3
    assert any("fields[1]" in p for p in info.value.problems)
    assert any("fields[2]" in p for p in info.value.problems)
    assert any("duplicate" in p for p in info.value.problems)


def test_load_unreadable_file_raises_catalogue_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError):
        FieldCatalogue.load(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("field", "value", "fits"),
    [
        ("tag.high_purchasing_power", True, True),
        ("tag.high_purchasing_power", 0.7, False),
        ("feature.recency_days", 3, True),
        ("feature.recency_days", 2.5, True),
        ("feature.recency_days", True, False),
        ("feature.recency_days", float("nan"), False),
        ("feature.preferred_category", "books", True),
        ("feature.preferred_category", "", False),
        ("feature.preferred_category", "x" * 65, False),
    ],
)
def test_value_problems_by_type(field: str, value: object, fits: bool) -> None:
    spec = load_default_catalogue().get(field)

    problems = spec.value_problems(value)

    assert (problems == []) is fits
    assert all(repr(value) not in p for p in problems)


def _entry(name: str, value_type: str = "number", **extra: object) -> dict[str, object]:
    typed = {"number": {"min": 0, "max": 100}, "string": {"values": ["a", "b"]}}
    return {"name": name, "category": "user.behavior", "sensitivity": "normal",
            "value_type": value_type, "purposes": ["analytics"], "legal_basis": "consent",
            "retention_days": 30, "meaning_zh": "例", "meaning_en": "example",
            **typed.get(value_type, {}), **extra}  # fmt: skip


def test_every_field_is_typed_numbers_bounded_strings_enumerated() -> None:
    bad = {
        "fields": [
            {**_entry("feature.a"), "min": None, "max": None},  # a number without bounds
            {**_entry("feature.b", "string"), "values": []},  # free text
            _entry("feature.c", "string", values=["13812345678"]),  # a value that is a number
            _entry("feature.d", "string", values=["张伟"]),  # a value that is a name
            _entry("feature.e", min=5, max=1),
            _entry("tag.f", "tag", values=["x"]),  # an enum on a tag
        ]
    }
    with pytest.raises(CatalogueError) as info:
        FieldCatalogue.from_mapping(bad)
    text = str(info.value)
    assert text.count("min and max are required for number fields only") == 1
    assert text.count("values (the allowed strings) are required for string fields only") == 2
    assert text.count("values must be lowercase tokens") == 2
    assert "min must not exceed max" in text
    assert "13812345678" not in text and "张伟" not in text


def test_typed_values_refuse_out_of_range_numbers_and_unlisted_strings() -> None:
    catalogue = FieldCatalogue.from_mapping(
        {"fields": [_entry("feature.n", min=0, max=1000), _entry("feature.s", "string")]}
    )
    number, string = catalogue.by_name["feature.n"], catalogue.by_name["feature.s"]
    assert number.value_problems(12.5) == [] and number.value_problems(0) == []
    for value in (13812345678, -1, 1000.5, 11010519491231002, float("nan"), True, "12"):
        assert number.value_problems(value) == [
            "field 'feature.n' expects a finite number from 0 to 1000"
        ]
    assert string.value_problems("a") == []
    for text in ("c", "A", "张伟 身份证11010519491231002X", "", 1):
        (problem,) = string.value_problems(text)
        assert problem == "field 'feature.s' expects one of its 2 catalogued values"


def test_merge_rules_are_checked_against_value_type_and_references() -> None:
    bad = {
        "fields": [
            _entry("feature.a", merge="union"),  # union is for strings
            _entry("feature.b", merge="mean", merge_weight="feature.nope"),
            _entry("tag.c", "tag", merge="derived", derived_from=["feature.d"],
                   purposes=["analytics", "marketing"]),  # fmt: skip
            _entry("feature.d", merge="sum"),
            _entry("tag.e", "tag", merge="vote", derived_from=["feature.d"]),
        ]
    }
    with pytest.raises(CatalogueError) as info:
        FieldCatalogue.from_mapping(bad)
    text = str(info.value)
    assert "merge 'union' does not fit value_type 'number'" in text
    assert "merge_weight 'feature.nope' is not a catalogued number field" in text
    assert "derived_from 'feature.d' is not catalogued for purpose(s) marketing" in text
    assert "derived_from is required with merge 'derived' and only with it" in text


def test_fields_without_a_merge_rule_get_the_value_types_default() -> None:
    entries = [_entry("feature.a"), _entry("tag.b", "tag")]
    catalogue = FieldCatalogue.from_mapping({"fields": entries})
    assert catalogue.get("feature.a").merge_rule is MergeRule.LATEST
    assert catalogue.get("tag.b").merge_rule is MergeRule.VOTE


def test_consent_times_share_the_wire_window() -> None:
    import models
    from consent import times

    assert (times.EARLIEST_TIME, times.LATEST_TIME) == (
        models.bounds.EARLIEST_TIME,
        models.bounds.LATEST_TIME,
    )
    assert times.TIME_RANGE_MESSAGE == models.bounds.TIME_RANGE_MESSAGE
