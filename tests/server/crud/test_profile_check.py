"""Per-field rules of an upload: each rule refuses with its reason code."""

from __future__ import annotations

import pytest

from consent import ConsentState, Purpose, load_default_catalogue
from models import ProfileFieldIn
from server.crud.profile_check import UNCATALOGUED, audit_name, check_fields

from ..factories import T0, make_consent_event, make_field, make_pseudonym

CATALOGUE = load_default_catalogue()
SUBJECT = make_pseudonym("profile-subject")
GRANTED = ConsentState([
    make_consent_event(SUBJECT, Purpose.PERSONALIZED_SERVICE),
    make_consent_event(SUBJECT, Purpose.RISK_CONTROL),
])
SEPARATE = ConsentState([make_consent_event(SUBJECT, Purpose.RISK_CONTROL, separate=True)])


@pytest.mark.parametrize(
    ("consent", "purpose", "field", "reason"),
    [
        (GRANTED, Purpose.PERSONALIZED_SERVICE, make_field("tag.high_purchasing_power"), None),
        (GRANTED, Purpose.PERSONALIZED_SERVICE, make_field("tag.unknown_thing"),
         "field_not_catalogued"),
        (GRANTED, Purpose.PERSONALIZED_SERVICE, make_field("tag.escalation_need"),
         "purpose_not_allowed_for_field"),
        (GRANTED, Purpose.PERSONALIZED_SERVICE, make_field("tag.high_purchasing_power", 0.7),
         "invalid_value"),
        (GRANTED, Purpose.PERSONALIZED_SERVICE, make_field("feature.recency_days", "twelve"),
         "invalid_value"),
        (ConsentState(), Purpose.PERSONALIZED_SERVICE, make_field("feature.recency_days", 3),
         "no_consent_for_purpose"),
        (GRANTED, Purpose.RISK_CONTROL, make_field("finance.payment_risk_level", "low"),
         "separate_consent_required"),
        (SEPARATE, Purpose.RISK_CONTROL, make_field("finance.payment_risk_level", "low"), None),
    ],
    ids=["allowed", "uncatalogued", "purpose", "tag-not-bool", "number-not-number",
         "no-consent", "sensitive-general-consent", "sensitive-separate-consent"],
)
def test_check_fields_each_rule(
    consent: ConsentState, purpose: Purpose, field: ProfileFieldIn, reason: str | None
) -> None:
    refusals = check_fields(catalogue=CATALOGUE, consent=consent, fields=[field],
                            purpose=purpose, at=T0)
    assert [r.reason for r in refusals] == ([] if reason is None else [reason])


def test_check_fields_duplicate_name_is_refused() -> None:
    field = make_field("tag.high_purchasing_power")
    refusals = check_fields(catalogue=CATALOGUE, consent=GRANTED, fields=[field, field],
                            purpose=Purpose.PERSONALIZED_SERVICE, at=T0)
    assert [r.reason for r in refusals] == ["duplicate_field"]


def test_check_fields_reports_every_refusal_in_upload_order() -> None:
    fields = [make_field("tag.escalation_need"), make_field("tag.high_purchasing_power"),
              make_field("feature.recency_days", "twelve")]
    refusals = check_fields(catalogue=CATALOGUE, consent=GRANTED, fields=fields,
                            purpose=Purpose.PERSONALIZED_SERVICE, at=T0)
    assert [(r.field, r.reason) for r in refusals] == [
        ("tag.escalation_need", "purpose_not_allowed_for_field"),
        ("feature.recency_days", "invalid_value"),
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("tag.churn_risk", "tag.churn_risk"), ("contact.phone_13800138000", UNCATALOGUED)],
)
def test_audit_name_hides_uncatalogued_names(name: str, expected: str) -> None:
    assert audit_name(name, CATALOGUE) == expected
