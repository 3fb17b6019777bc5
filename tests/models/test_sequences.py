from __future__ import annotations

from dataclasses import dataclass

import pytest

from client.store import StoredEvent
from models import CATEGORIES, EventType, SequenceSpec, encode_events, make_examples
from models.sequences import (
    PAD_TOKEN,
    UNKNOWN_TOKEN,
    VOCAB_SIZE,
    event_token,
    is_holdout,
    make_example,
    split_holdout,
)

DAY = 86_400.0
SUBJECT = "ps_" + "a" * 64


@dataclass(frozen=True)
class Ev:
    type: str
    ts: float
    category: str | None = None
    amount: float | None = None


def test_event_token_every_type_and_category_distinct_and_in_range() -> None:
    tokens = {event_token(t.value, c) for t in EventType for c in (None, *CATEGORIES)}

    assert len(tokens) == len(EventType) * (len(CATEGORIES) + 1)
    assert PAD_TOKEN not in tokens and UNKNOWN_TOKEN not in tokens
    assert all(0 < t < VOCAB_SIZE for t in tokens)


@pytest.mark.parametrize(
    ("event_type", "category", "expected"),
    [
        ("teleport", "books", UNKNOWN_TOKEN),
        ("page_view", "not-a-category", event_token("page_view", None)),
        ("page_view", None, 1),
    ],
)
def test_event_token_unknown_values_map_to_fallbacks(
    event_type: str, category: str | None, expected: int
) -> None:
    assert event_token(event_type, category) == expected


def test_encode_events_sorts_by_time_and_keeps_most_recent() -> None:
    spec = SequenceSpec(max_len=2)
    events = [Ev("search", 3.0), Ev("page_view", 1.0), Ev("purchase", 2.0, "food")]

    tokens = encode_events(events, spec=spec)

    assert tokens == [event_token("purchase", "food"), event_token("search", None)]


def test_encode_events_stored_event_satisfies_protocol() -> None:
    event = StoredEvent("e1", SUBJECT, "add_to_cart", "web", 10.0, category="books")

    assert encode_events([event], spec=SequenceSpec()) == [event_token("add_to_cart", "books")]


def test_make_example_labels_come_from_window_after_cutoff() -> None:
    # cutoff fraction fixed at 0.5 of the span [0, 40 days] -> day 20
    spec = SequenceSpec(cutoff_low=0.5, cutoff_high=0.5, label_window_days=10)
    events = [
        Ev("page_view", 0.0, "books"),
        Ev("purchase", 5 * DAY, "food"),  # history
        Ev("search", 21 * DAY, "home"),  # window: first categorised -> home
        Ev("purchase", 25 * DAY, "apparel"),  # window
        Ev("complaint", 35 * DAY),  # after the window
        Ev("page_view", 40 * DAY),
    ]

    example = make_example(SUBJECT, events, spec=spec)

    assert example is not None
    assert example.tokens == (event_token("page_view", "books"), event_token("purchase", "food"))
    assert example.purchase == 1.0
    assert example.escalation == 0.0
    assert example.next_category == CATEGORIES.index("home")


def test_make_example_complaint_in_window_sets_escalation() -> None:
    spec = SequenceSpec(cutoff_low=0.5, cutoff_high=0.5, label_window_days=10)
    events = [Ev("page_view", 0.0), Ev("complaint", 22 * DAY), Ev("login", 40 * DAY)]

    example = make_example(SUBJECT, events, spec=spec)

    assert example is not None
    assert (example.purchase, example.escalation, example.next_category) == (0.0, 1.0, None)


@pytest.mark.parametrize(
    ("events", "min_history"),
    [([], 1), ([Ev("page_view", 0.0), Ev("page_view", 10 * DAY)], 2)],
)
def test_make_example_short_history_gives_none(events: list[Ev], min_history: int) -> None:
    spec = SequenceSpec(cutoff_low=0.5, cutoff_high=0.5, min_history=min_history)

    assert make_example(SUBJECT, events, spec=spec) is None


def test_make_examples_one_per_subject_sorted_and_deterministic() -> None:
    subjects = {
        f"ps_{i:064x}": [Ev("page_view", d * DAY, "books") for d in range(0, 30, 3)]
        for i in (3, 1, 2)
    }

    first = make_examples(subjects, spec=SequenceSpec())
    second = make_examples(dict(reversed(list(subjects.items()))), spec=SequenceSpec())

    assert [e.subject for e in first] == sorted(subjects)
    assert first == second


def test_split_holdout_partitions_by_subject_with_expected_share() -> None:
    spec = SequenceSpec(holdout_fraction=0.25)
    examples = make_examples(
        {f"ps_{i:064x}": [Ev("page_view", 0.0), Ev("page_view", DAY)] for i in range(400)},
        spec=spec,
    )

    train, held = split_holdout(examples, spec=spec)

    assert len(train) + len(held) == len(examples)
    assert {e.subject for e in train}.isdisjoint({e.subject for e in held})
    assert all(is_holdout(e.subject, spec=spec) for e in held)
    assert 0.15 < len(held) / len(examples) < 0.35
    assert spec.split(examples) == (train, held)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_len": 0},
        {"label_window_days": 0},
        {"cutoff_low": 0.9, "cutoff_high": 0.5},
        {"min_history": 0},
        {"holdout_fraction": 1.0},
    ],
)
def test_sequence_spec_invalid_values_raise(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SequenceSpec(**kwargs)  # type: ignore[arg-type]
