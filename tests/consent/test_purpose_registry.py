"""The purpose list as data: DPV terms, bilingual labels, flags; validated all at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from consent import (
    DPV_TERMS,
    LABELS,
    Purpose,
    PurposeListError,
    PurposeNotRegisteredError,
    PurposeRegistry,
    load_default_purposes,
)

SHIPPED = Path(__file__).resolve().parents[2] / "consent" / "data" / "purposes.yaml"


def _document() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def test_default_purposes_cover_the_enum_with_dpv_terms_and_labels() -> None:
    registry = load_default_purposes()
    assert {spec.name for spec in registry} == set(Purpose)
    assert DPV_TERMS[Purpose.MARKETING] == "dpv:Marketing"
    assert DPV_TERMS[Purpose.RISK_CONTROL] == "dpv:FraudPreventionAndDetection"
    assert LABELS[Purpose.PERSONALIZED_SERVICE] == ("个性化服务", "Personalized service")
    assert registry.personalization_purposes == {
        Purpose.PERSONALIZED_SERVICE,
        Purpose.PROACTIVE_SERVICE,
        Purpose.MARKETING,
    }
    assert registry.necessary_purposes == {Purpose.SERVICE_ROUTING}


def test_missing_unknown_duplicate_and_invalid_entries_are_all_reported() -> None:
    document = _document()
    entries = document["purposes"]
    entries[1]["dpv"] = "dpv:NotAnIRI"
    entries.append(dict(entries[0]))  # duplicate service_routing
    entries.append({**entries[0], "name": "surveillance"})
    del entries[6]  # analytics no longer described
    with pytest.raises(PurposeListError) as caught:
        PurposeRegistry.from_mapping(document)
    problems = " | ".join(caught.value.problems)
    assert "purposes[1].dpv" in problems
    assert "duplicate purpose 'service_routing'" in problems
    assert "'surveillance' is not a member" in problems
    assert "Purpose.ANALYTICS" in problems


def test_get_unknown_purpose_lists_the_registered_ones() -> None:
    with pytest.raises(PurposeNotRegisteredError) as caught:
        load_default_purposes().get("surveillance")
    assert "marketing" in str(caught.value)


def test_load_unreadable_file_is_one_purpose_list_error(tmp_path: Path) -> None:
    with pytest.raises(PurposeListError):
        PurposeRegistry.load(tmp_path / "missing.yaml")
