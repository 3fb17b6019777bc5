from __future__ import annotations

from dataclasses import dataclass

import pytest

from client.store import StoredEvent
from models import CATEGORIES, EventType, encode_events, is_holdout
from models.sequences import PAD_TOKEN, UNKNOWN_TOKEN, VOCAB_SIZE, event_token, split_key

SUBJECT = "ps_" + "a" * 64


@dataclass(frozen=True)
class Ev:
    type: str
    ts: float
    category: str | None = None
    amount: float | None = None


def _subjects(n: int) -> list[str]:
    return [f"ps_{i:064x}" for i in range(n)]


def test_event_token_every_type_and_category_distinct_and_in_range() -> None:
    tokens = {event_token(t.value, c) for t in EventType for c in (None, *CATEGORIES)}

    assert len(tokens) == len(EventType) * (len(CATEGORIES) + 1)
    assert PAD_TOKEN not in tokens and UNKNOWN_TOKEN not in tokens
    assert all(0 < t < VOCAB_SIZE for t in tokens)
    assert VOCAB_SIZE == UNKNOWN_TOKEN + 1 == max(tokens) + 2


@pytest.mark.parametrize(
    ("event_type", "category", "expected"),
    [
        ("teleport", "books", UNKNOWN_TOKEN),
        ("teleport", None, UNKNOWN_TOKEN),
        ("page_view", "not-a-category", event_token("page_view", None)),
        ("page_view", None, 1),
        ("page_view", CATEGORIES[0], 2),
    ],
)
def test_event_token_unknown_values_map_to_fallbacks(
    event_type: str, category: str | None, expected: int
) -> None:
    assert event_token(event_type, category) == expected


@pytest.mark.parametrize(
    ("max_len", "expected"),
    [
        (0, []),
        (-3, []),
        (1, [("search", None)]),
        (2, [("purchase", "food"), ("search", None)]),
        (10, [("page_view", None), ("purchase", "food"), ("search", None)]),
    ],
)
def test_encode_events_sorts_by_time_and_keeps_the_most_recent(
    max_len: int, expected: list[tuple[str, str | None]]
) -> None:
    events = [Ev("search", 3.0), Ev("page_view", 1.0), Ev("purchase", 2.0, "food")]

    tokens = encode_events(events, max_len=max_len)

    assert tokens == [event_token(t, c) for t, c in expected]


def test_encode_events_sort_is_stable_for_equal_times() -> None:
    events = [Ev("login", 5.0), Ev("search", 5.0, "books"), Ev("page_view", 1.0)]

    tokens = encode_events(events, max_len=2)

    assert tokens == [event_token("login", None), event_token("search", "books")]


def test_encode_events_no_events_gives_no_tokens() -> None:
    assert encode_events([], max_len=8) == []


def test_encode_events_stored_event_satisfies_protocol() -> None:
    event = StoredEvent("e1", SUBJECT, "add_to_cart", "web", 10.0, category="books")

    assert encode_events([event], max_len=4) == [event_token("add_to_cart", "books")]


def test_split_key_is_pinned_in_unit_interval_and_salted() -> None:
    # SHA-256 based, pinned: a change would move subjects between training and evaluation.
    subject = "ps_" + "0" * 64

    assert split_key(subject, salt="holdout") == pytest.approx(0.5602058919444275, abs=1e-15)
    assert split_key(subject, salt="other") != split_key(subject, salt="holdout")
    assert all(0.0 <= split_key(s, salt="x") < 1.0 for s in _subjects(200))


def test_is_holdout_is_deterministic_and_independent_of_order() -> None:
    subjects = _subjects(300)

    first = {s: is_holdout(s, fraction=0.3) for s in subjects}
    second = {s: is_holdout(s, fraction=0.3) for s in reversed(subjects)}

    assert first == second
    assert first == {s: split_key(s, salt="holdout") < 0.3 for s in subjects}


@pytest.mark.parametrize(
    ("fraction", "low", "high"),
    [(0.0, 0.0, 0.0), (0.1, 0.07, 0.13), (0.25, 0.21, 0.29), (0.5, 0.46, 0.54)],
)
def test_is_holdout_keeps_about_the_requested_share(
    fraction: float, low: float, high: float
) -> None:
    subjects = _subjects(2000)

    share = sum(is_holdout(s, fraction=fraction) for s in subjects) / len(subjects)

    assert low <= share <= high


def test_is_holdout_grows_monotonically_with_the_fraction() -> None:
    subjects = _subjects(500)

    small = {s for s in subjects if is_holdout(s, fraction=0.1)}
    large = {s for s in subjects if is_holdout(s, fraction=0.3)}

    assert small < large
