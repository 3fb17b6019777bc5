from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent import (
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    DecisionReason,
    Purpose,
    PurposeNotRegisteredError,
    evaluate,
    load_default_catalogue,
    most_restrictive,
    parse_purpose,
)

SUBJECT = "ps_" + "ab" * 32
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def event(
    purpose: Purpose,
    status: ConsentStatus,
    minutes: int,
    *,
    separate: bool = False,
    expires: datetime | None = None,
) -> ConsentEvent:
    return ConsentEvent(
        subject=SUBJECT,
        purpose=purpose,
        status=status,
        occurred_at=T0 + timedelta(minutes=minutes),
        notice_version="v1",
        channel="app",
        separate=separate,
        expires_at=expires,
    )


CATALOGUE = load_default_catalogue()


@pytest.mark.parametrize(
    ("field", "purpose", "events", "reason"),
    [
        (
            "tag.high_purchasing_power",
            Purpose.MARKETING,
            [event(Purpose.MARKETING, ConsentStatus.GRANTED, 0)],
            DecisionReason.ALLOWED,
        ),
        (
            "raw.phone",
            Purpose.MARKETING,
            [event(Purpose.MARKETING, ConsentStatus.GRANTED, 0)],
            DecisionReason.FIELD_NOT_CATALOGUED,
        ),
        (
            "tag.escalation_need",
            Purpose.MARKETING,
            [event(Purpose.MARKETING, ConsentStatus.GRANTED, 0)],
            DecisionReason.PURPOSE_NOT_ALLOWED,
        ),
        ("tag.high_purchasing_power", Purpose.MARKETING, [], DecisionReason.NO_CONSENT),
        (
            "tag.high_purchasing_power",
            Purpose.MARKETING,
            [
                event(Purpose.MARKETING, ConsentStatus.GRANTED, 0),
                event(Purpose.MARKETING, ConsentStatus.WITHDRAWN, 5),
            ],
            DecisionReason.NO_CONSENT,
        ),
        (
            "tag.high_purchasing_power",
            Purpose.MARKETING,
            [event(Purpose.ANALYTICS, ConsentStatus.GRANTED, 0)],
            DecisionReason.NO_CONSENT,
        ),
        (
            "tag.high_purchasing_power",
            Purpose.MARKETING,
            [
                event(
                    Purpose.MARKETING, ConsentStatus.GRANTED, 0, expires=T0 + timedelta(minutes=30)
                )
            ],
            DecisionReason.NO_CONSENT,
        ),
        (
            "finance.payment_risk_level",
            Purpose.RISK_CONTROL,
            [event(Purpose.RISK_CONTROL, ConsentStatus.GRANTED, 0)],
            DecisionReason.SEPARATE_CONSENT_REQUIRED,
        ),
        (
            "finance.payment_risk_level",
            Purpose.RISK_CONTROL,
            [event(Purpose.RISK_CONTROL, ConsentStatus.GRANTED, 0, separate=True)],
            DecisionReason.ALLOWED,
        ),
    ],
)
def test_evaluate_table(
    field: str, purpose: Purpose, events: list[ConsentEvent], reason: DecisionReason
) -> None:
    decision = evaluate(
        catalogue=CATALOGUE,
        consent=ConsentState(events),
        field=field,
        purpose=purpose,
        at=T0 + timedelta(hours=1),
    )

    assert decision.reason is reason
    assert decision.allowed is (reason is DecisionReason.ALLOWED)
    assert field in decision.message


def test_evaluate_before_grant_is_refused_after_is_allowed() -> None:
    state = ConsentState([event(Purpose.MARKETING, ConsentStatus.GRANTED, 10)])

    before = evaluate(
        catalogue=CATALOGUE,
        consent=state,
        field="tag.high_purchasing_power",
        purpose=Purpose.MARKETING,
        at=T0,
    )
    after = evaluate(
        catalogue=CATALOGUE,
        consent=state,
        field="tag.high_purchasing_power",
        purpose=Purpose.MARKETING,
        at=T0 + timedelta(minutes=11),
    )

    assert not before.allowed and after.allowed


def test_parse_purpose_unknown_lists_known() -> None:
    with pytest.raises(PurposeNotRegisteredError) as info:
        parse_purpose("resell")

    assert "marketing" in str(info.value)


statuses = st.sampled_from(list(ConsentStatus))
purposes = st.sampled_from(list(Purpose))


@given(
    st.lists(st.tuples(purposes, statuses, st.integers(0, 1000)), max_size=30),
    st.lists(st.tuples(purposes, statuses, st.integers(0, 1000)), max_size=30),
    purposes,
    st.integers(0, 1100),
)
def test_most_restrictive_never_widens_consent(
    a: list[tuple[Purpose, ConsentStatus, int]],
    b: list[tuple[Purpose, ConsentStatus, int]],
    purpose: Purpose,
    minute: int,
) -> None:
    sa = ConsentState([event(p, s, m) for p, s, m in a])
    sb = ConsentState([event(p, s, m) for p, s, m in b])
    at = T0 + timedelta(minutes=minute)

    merged = most_restrictive([sa, sb], purpose, at)

    assert merged <= sa.is_granted(purpose, at)
    assert merged <= sb.is_granted(purpose, at)


@given(st.lists(st.tuples(purposes, statuses, st.integers(0, 1000)), max_size=30), purposes)
def test_latest_event_decides(
    events: list[tuple[Purpose, ConsentStatus, int]], purpose: Purpose
) -> None:
    state = ConsentState([event(p, s, m) for p, s, m in events])
    at = T0 + timedelta(minutes=2000)

    relevant = [(m, i, s) for i, (p, s, m) in enumerate(events) if p is purpose]
    expected = bool(relevant) and max(relevant)[2] is ConsentStatus.GRANTED

    assert state.is_granted(purpose, at) is expected
