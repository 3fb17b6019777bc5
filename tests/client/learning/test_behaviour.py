"""Behaviour examples with a fixed time split: features before the cutoff, labels after."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from client.learning.behaviour import example_at, examples_at, history_features
from client.store import StoredEvent, StoredMessage
from models import CATEGORIES
from models.behaviour import BEHAVIOUR_FEATURES, HISTORY_FEATURES

CUT = datetime(2026, 10, 1, tzinfo=UTC)
DAY = 86_400.0


def _event(
    kind: str, days: float, *, amount: float | None = None, category: str | None = None
) -> StoredEvent:
    ts = CUT.timestamp() + days * DAY
    return StoredEvent(
        event_id=f"{kind}-{days}",
        subject="ps_x",
        type=kind,
        channel="web",
        ts=ts,
        category=category,
        amount=amount,
        currency="CNY" if amount else None,
    )


def _index(name: str) -> int:
    return BEHAVIOUR_FEATURES.index(name)


def test_labels_come_only_from_the_window_after_the_cutoff() -> None:
    events = [
        _event("purchase", -10, amount=100.0, category="books"),
        _event("complaint", 3),
        _event("purchase", 5, amount=50.0, category="food"),
        _event("purchase", 20, amount=50.0),  # after the 14-day window
    ]

    example = example_at("ps_x", events, cutoff=CUT, window_days=14)

    assert example is not None
    assert (example.purchase, example.escalation) == (1.0, 1.0)
    assert example.next_category == CATEGORIES.index("food")
    assert example.features[_index("purchases_total")] == 1.0  # only the one before


@pytest.mark.parametrize(
    ("events", "purchase", "escalation"),
    [
        ([_event("page_view", -2)], 0.0, 0.0),
        ([_event("page_view", -2), _event("purchase", 0.5, amount=1.0)], 1.0, 0.0),
        ([_event("page_view", -2), _event("complaint", 13.9)], 0.0, 1.0),
        ([_event("page_view", -2), _event("purchase", 14.5, amount=1.0)], 0.0, 0.0),
    ],
)
def test_label_table(events: list[StoredEvent], purchase: float, escalation: float) -> None:
    example = example_at("ps_x", events, cutoff=CUT, window_days=14)

    assert example is not None and (example.purchase, example.escalation) == (purchase, escalation)


def test_no_history_before_the_cutoff_gives_no_example() -> None:
    assert (
        example_at("ps_x", [_event("purchase", 1, amount=3.0)], cutoff=CUT, window_days=14) is None
    )


def test_a_message_before_the_cutoff_is_history_enough() -> None:
    message = StoredMessage("m1", "ps_x", "desk", CUT.timestamp() - DAY, "zh", "你好", {})

    example = example_at("ps_x", [], cutoff=CUT, window_days=14, messages=[message])

    assert example is not None and example.features[_index("contacts_total")] == 1.0


def test_history_features_of_a_purchase_log() -> None:
    events = [
        _event("purchase", -30, amount=10.0),
        _event("purchase", -20, amount=20.0),
        _event("purchase", -20.01, amount=5.0),  # same local day as the one above
        _event("purchase", -10, amount=30.0),
    ]

    values = history_features(events, [], cutoff=CUT.timestamp())

    assert list(values) == list(HISTORY_FEATURES)
    assert values["purchases_total"] == 4.0
    assert values["purchase_days_total"] == 3.0
    assert values["monetary_total"] == 65.0
    assert values["first_purchase_days"] == pytest.approx(30.0)
    assert values["last_purchase_days"] == pytest.approx(10.0)
    assert values["purchase_gap_mean_days"] == pytest.approx(10.0)
    assert values["contacts_total"] == 0.0


def test_features_do_not_depend_on_anything_after_the_cutoff() -> None:
    before = [_event("page_view", -3, category="books"), _event("purchase", -1, amount=9.0)]
    later = [_event("purchase", 2, amount=500.0), _event("complaint", 4)]

    a = example_at("ps_x", before, cutoff=CUT, window_days=14)
    b = example_at("ps_x", before + later, cutoff=CUT, window_days=14)

    assert a is not None and b is not None
    assert a.features == b.features and len(a.features) == len(BEHAVIOUR_FEATURES)


def test_examples_at_one_per_subject_sorted_with_tokens_when_asked() -> None:
    events = {
        "ps_b": [_event("page_view", -1)],
        "ps_a": [_event("search", -2), _event("page_view", -1)],
        "ps_c": [_event("page_view", 2)],  # only after the cutoff
    }

    examples = examples_at(events, cutoff=CUT, window_days=7, max_len=8)

    assert [e.subject for e in examples] == ["ps_a", "ps_b"]
    assert [len(e.tokens) for e in examples] == [2, 1]
    assert all(e.tokens == () for e in examples_at(events, cutoff=CUT, window_days=7))


def test_cutoff_accepts_epoch_seconds_like_datetimes() -> None:
    events = [_event("page_view", -1), _event("purchase", 1, amount=2.0)]

    assert example_at("ps_x", events, cutoff=CUT, window_days=3) == example_at(
        "ps_x", events, cutoff=CUT.timestamp(), window_days=3
    )
