from __future__ import annotations

from pathlib import Path

import pytest

from consent import (
    CatalogueError,
    FieldCatalogue,
    FieldNotCataloguedError,
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
