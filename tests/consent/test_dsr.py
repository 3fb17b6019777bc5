"""The DSR state machine: transitions, the two-officer rule, reasons, due dates, feed records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consent import (
    DEFAULT_DUE_DAYS,
    ConsentEvent,
    ConsentStatus,
    DSRTransitionError,
    Purpose,
    Rectification,
    RequestAction,
    RequestState,
    RequestStatus,
    RequestType,
    SubjectEventKind,
    SubjectEventPage,
    SubjectEventWire,
    advance,
    due_date,
    erasure_hash,
    required_approvals,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SUBJECT = "ps_" + "ab" * 32
OTHER = "ps_" + "cd" * 32
SALT = "00" * 16


def _at(state: RequestState, request_type: RequestType = RequestType.ACCESS) -> RequestStatus:
    """A request of ``request_type`` walked to ``state`` by the rules."""
    status = RequestStatus.new(request_type=request_type, received_at=T0)
    path = {
        RequestState.RECEIVED: [],
        RequestState.VERIFYING: [RequestAction.VERIFY],
        RequestState.APPROVED: [RequestAction.VERIFY, RequestAction.APPROVE],
        RequestState.IN_PROGRESS: [RequestAction.VERIFY, RequestAction.APPROVE,
                                   RequestAction.START],
        RequestState.COMPLETED: [RequestAction.VERIFY, RequestAction.APPROVE,
                                 RequestAction.START, RequestAction.COMPLETE],
    }[state]
    for i, action in enumerate(path):
        status = advance(status, action=action, officer=f"officer-{i}", at=T0)
        if action is RequestAction.APPROVE and request_type is RequestType.ERASE:
            status = advance(status, action=action, officer="officer-second", at=T0)
    return status


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [
        (RequestState.RECEIVED, RequestAction.VERIFY, RequestState.VERIFYING),
        (RequestState.VERIFYING, RequestAction.APPROVE, RequestState.APPROVED),
        (RequestState.APPROVED, RequestAction.START, RequestState.IN_PROGRESS),
        (RequestState.IN_PROGRESS, RequestAction.COMPLETE, RequestState.COMPLETED),
        (RequestState.RECEIVED, RequestAction.REJECT, RequestState.REJECTED),
        (RequestState.VERIFYING, RequestAction.REJECT, RequestState.REJECTED),
        (RequestState.APPROVED, RequestAction.REJECT, RequestState.REJECTED),
    ],
)
def test_advance_allowed_move_reaches_next_state(
    state: RequestState, action: RequestAction, expected: RequestState
) -> None:
    status = _at(state)

    moved = advance(status, action=action, officer="officer-x", at=T0, reason="out of scope")

    assert moved.state is expected


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (RequestState.RECEIVED, RequestAction.APPROVE),
        (RequestState.RECEIVED, RequestAction.START),
        (RequestState.VERIFYING, RequestAction.COMPLETE),
        (RequestState.APPROVED, RequestAction.VERIFY),
        (RequestState.IN_PROGRESS, RequestAction.REJECT),
        (RequestState.COMPLETED, RequestAction.REJECT),
        (RequestState.COMPLETED, RequestAction.START),
    ],
)
def test_advance_disallowed_move_refused_with_code(
    state: RequestState, action: RequestAction
) -> None:
    status = _at(state)

    with pytest.raises(DSRTransitionError) as caught:
        advance(status, action=action, officer="officer-x", at=T0, reason="out of scope")

    assert caught.value.code == "invalid_transition"
    assert state.value in str(caught.value)


def test_advance_rejected_request_is_final() -> None:
    rejected = advance(_at(RequestState.RECEIVED), action=RequestAction.REJECT,
                       officer="o1", at=T0, reason="identity could not be verified")

    assert rejected.is_final and rejected.allowed_actions() == frozenset()
    assert rejected.rejection_reason == "identity could not be verified"


@pytest.mark.parametrize("reason", [None, "", "  ", "no", "x" * 501])
def test_advance_reject_without_usable_reason_refused(reason: str | None) -> None:
    with pytest.raises(DSRTransitionError) as caught:
        advance(_at(RequestState.VERIFYING), action=RequestAction.REJECT, officer="o1", at=T0,
                reason=reason)

    assert caught.value.code == "reason_required"


def test_advance_erasure_first_approval_stays_verifying() -> None:
    status = _at(RequestState.VERIFYING, RequestType.ERASE)

    once = advance(status, action=RequestAction.APPROVE, officer="officer-a", at=T0)

    assert once.state is RequestState.VERIFYING and len(once.approvals) == 1


def test_advance_erasure_same_officer_twice_refused() -> None:
    once = advance(_at(RequestState.VERIFYING, RequestType.ERASE),
                   action=RequestAction.APPROVE, officer="officer-a", at=T0)

    with pytest.raises(DSRTransitionError) as caught:
        advance(once, action=RequestAction.APPROVE, officer="officer-a", at=T0)

    assert caught.value.code == "duplicate_approval"


def test_advance_erasure_two_different_officers_approve() -> None:
    once = advance(_at(RequestState.VERIFYING, RequestType.ERASE),
                   action=RequestAction.APPROVE, officer="officer-a", at=T0)

    twice = advance(once, action=RequestAction.APPROVE, officer="officer-b",
                    at=T0 + timedelta(hours=1))

    assert twice.state is RequestState.APPROVED
    assert [a.officer for a in twice.approvals] == ["officer-a", "officer-b"]


@given(officers=st.lists(st.sampled_from(["o1", "o2", "o3"]), min_size=1, max_size=6))
@settings(max_examples=100, deadline=None)
def test_advance_erasure_never_approved_without_two_distinct_officers(officers: list[str]) -> None:
    status = _at(RequestState.VERIFYING, RequestType.ERASE)
    approvers: list[str] = []

    for officer in officers:
        try:
            status = advance(status, action=RequestAction.APPROVE, officer=officer, at=T0)
            approvers.append(officer)
        except DSRTransitionError:
            pass

    assert (status.state is RequestState.APPROVED) == (len(set(approvers)) >= 2)
    assert len(approvers) == len(set(approvers))


@pytest.mark.parametrize(
    ("request_type", "needed"),
    [(RequestType.ERASE, 2), (RequestType.ACCESS, 1), (RequestType.RECTIFY, 1),
     (RequestType.RESTRICT, 1), (RequestType.LIFT_RESTRICTION, 1)],
)
def test_required_approvals_by_type(request_type: RequestType, needed: int) -> None:
    assert required_approvals(request_type) == needed


def test_due_date_default_is_fifteen_days_and_overdue_after() -> None:
    status = RequestStatus.new(request_type=RequestType.ACCESS, received_at=T0)

    assert status.due_at == T0 + timedelta(days=DEFAULT_DUE_DAYS) == due_date(T0)
    assert not status.is_overdue(T0 + timedelta(days=15))
    assert status.is_overdue(T0 + timedelta(days=15, seconds=1))
    assert not _at(RequestState.COMPLETED).is_overdue(T0 + timedelta(days=99))


@pytest.mark.parametrize(
    ("received", "days"),
    [(datetime(2026, 12, 1), 15), (T0, 0), (T0, -3)],  # noqa: DTZ001 - naive on purpose
)
def test_due_date_bad_arguments_raise_value_error(received: datetime, days: int) -> None:
    with pytest.raises(ValueError):
        due_date(received, due_days=days)


def test_advance_naive_time_or_empty_officer_raise_value_error() -> None:
    status = _at(RequestState.RECEIVED)
    with pytest.raises(ValueError):
        advance(status, action=RequestAction.VERIFY, officer="o1",
                at=datetime(2026, 12, 1))  # noqa: DTZ001
    with pytest.raises(ValueError):
        advance(status, action=RequestAction.VERIFY, officer="", at=T0)


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"field": "tag.churn_risk", "value": False}, True),
        ({"field": "tag.churn_risk", "delete": True}, True),
        ({"field": "tag.churn_risk"}, False),
        ({"field": "tag.churn_risk", "value": True, "delete": True}, False),
        ({"field": "", "delete": True}, False),
    ],
)
def test_rectification_needs_exactly_value_or_delete(body: dict[str, object], ok: bool) -> None:
    if ok:
        assert Rectification.model_validate(body).field == "tag.churn_risk"
    else:
        with pytest.raises(ValidationError):
            Rectification.model_validate(body)


def test_subject_event_matches_by_pseudonym_or_erasure_hash() -> None:
    restriction = SubjectEventWire(kind=SubjectEventKind.RESTRICTION, occurred_at=T0,
                                   subject=SUBJECT)
    erasure = SubjectEventWire(kind=SubjectEventKind.ERASURE, occurred_at=T0, hash_salt=SALT,
                               subject_hash=erasure_hash(SALT, SUBJECT))

    assert restriction.matches(SUBJECT) and not restriction.matches(OTHER)
    assert erasure.matches(SUBJECT) and not erasure.matches(OTHER)
    assert SUBJECT not in erasure.model_dump_json()


def test_subject_event_page_round_trips_consent_events() -> None:
    consent = ConsentEvent(subject=SUBJECT, purpose=Purpose.MODEL_TRAINING,
                           status=ConsentStatus.WITHDRAWN, occurred_at=T0,
                           notice_version="2026-11", channel="self-service")
    page = SubjectEventPage(
        events=[SubjectEventWire(kind=SubjectEventKind.CONSENT, occurred_at=T0, subject=SUBJECT,
                                 consent=consent)],
        cursor="v1:3:0",
    )

    back = SubjectEventPage.model_validate_json(page.model_dump_json())

    assert back == page and back.events[0].consent == consent
