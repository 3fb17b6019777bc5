from __future__ import annotations

from datetime import UTC, datetime

import pytest

from client.rollups import (
    DayAggregate,
    aggregate_day,
    aggregate_window,
    day_start,
    local_day,
    local_hour,
    weekday,
)
from client.store import StoredEvent, StoredMessage

S = "ps_" + "a" * 64
# Sunday 2026-11-01 20:00 China Standard Time
T = datetime(2026, 11, 1, 12, 0, tzinfo=UTC).timestamp()
HOUR = 3600.0
DAY = 86_400.0


def ev(i: int, ts: float, type: str = "page_view", **kw: object) -> StoredEvent:
    channel = str(kw.pop("channel", "web"))
    return StoredEvent(f"e{i}", S, type, channel, ts, **kw)  # type: ignore[arg-type]


def msg(i: int, ts: float, channel: str = "app") -> StoredMessage:
    return StoredMessage(f"m{i}", S, channel, ts, "zh", "<masked>", {})


@pytest.mark.parametrize(
    ("moment", "weekday_", "hour"),
    [
        (datetime(2026, 11, 1, 12, 0, tzinfo=UTC), 6, 20),  # Sunday 20:00 CST
        (datetime(2026, 11, 1, 15, 59, 59, tzinfo=UTC), 6, 23),  # last second of Sunday
        (datetime(2026, 11, 1, 16, 0, tzinfo=UTC), 0, 0),  # Monday 00:00 CST
        (datetime(1970, 1, 1, 0, 0, tzinfo=UTC), 3, 8),  # Thursday 08:00 CST
    ],
)
def test_local_day_when_utc_moment_then_china_standard_time_calendar(
    moment: datetime, weekday_: int, hour: int
) -> None:
    ts = moment.timestamp()

    day = local_day(ts)

    assert weekday(day) == weekday_
    assert local_hour(ts) == hour
    assert day_start(day) <= ts < day_start(day + 1)


def test_aggregate_day_when_mixed_events_then_counts_sums_and_histograms() -> None:
    day = local_day(T)
    events = [
        ev(1, T - 3 * HOUR, category="books", session_id="s1"),
        ev(2, T - 2 * HOUR, "add_to_cart", category="books", session_id="s1"),
        ev(3, T - HOUR, "purchase", category="books", amount=10.05, session_id="s1"),
        ev(4, T, "purchase", category="home", amount=0.1),
        ev(5, T + 60, "refund", amount=10.05),
        ev(6, T + 120, "coupon_use"),
        ev(7, T + 180, "rating", rating=2, channel="app"),
        ev(8, T + 240, "complaint", channel="desk"),
        ev(9, T + 300, "cs_message", channel="desk"),
    ]

    agg = aggregate_day(day, events, [msg(1, T - 4 * HOUR)])

    assert (agg.events, agg.messages, agg.active_days) == (9, 1, 1)
    assert (agg.views, agg.cart_adds, agg.purchases, agg.refunds) == (1, 1, 2, 1)
    assert (agg.spend_cents, agg.refund_cents) == (1015, 1005)
    assert (agg.coupons, agg.complaints, agg.cs_events) == (1, 1, 1)
    assert (agg.ratings, agg.rating_sum) == (1, 2)
    assert agg.sessions == 1 + 1  # s1, plus the loose events of T..T+300 (no 30-minute gap)
    assert agg.first_ts == T - 4 * HOUR and agg.last_purchase_ts == T
    assert agg.channels == {"web": 6, "app": 2, "desk": 2}
    assert agg.hours == {16: 1, 17: 1, 18: 1, 19: 1, 20: 6}
    assert agg.weekdays == {6: 10}
    assert agg.categories == {"books": 1 + 2 + 3, "home": 3}


def test_day_aggregate_when_row_round_trip_then_equal() -> None:
    day = local_day(T)
    agg = aggregate_day(day, [ev(1, T, "purchase", amount=3.5, category="书籍")], [msg(1, T)])

    back = DayAggregate.from_row(day, agg.to_row())

    assert back == agg


def test_day_aggregate_when_merged_then_additive_with_min_and_max_times() -> None:
    a = aggregate_day(local_day(T), [ev(1, T, "purchase", amount=1.0)])
    b = aggregate_day(local_day(T - DAY), [ev(2, T - DAY, "purchase", amount=2.0)])

    total = DayAggregate()
    total.merge(a)
    total.merge(b)

    assert (total.purchases, total.spend_cents, total.active_days) == (2, 300, 2)
    assert total.first_ts == T - DAY and total.last_purchase_ts == T
    assert total.weekdays == {5: 1, 6: 1}


@pytest.mark.parametrize(
    ("offsets_min", "expected"),
    [([], 0), ([0], 1), ([0, 29], 1), ([0, 31], 2), ([0, 20, 40, 60], 1), ([60, 0, 30.5], 2)],
)
def test_aggregate_day_when_no_session_ids_then_sessions_split_on_30_minute_gaps(
    offsets_min: list[float], expected: int
) -> None:
    events = [ev(i, T + m * 60) for i, m in enumerate(offsets_min)]

    assert aggregate_day(local_day(T), events).sessions == expected


def test_aggregate_window_when_session_spans_midnight_then_counted_on_both_days() -> None:
    midnight = day_start(local_day(T) + 1)
    events = [ev(1, midnight - 60, session_id="s"), ev(2, midnight + 60, session_id="s")]

    agg = aggregate_window(events, [], lo=None, hi=midnight + DAY)

    assert agg.sessions == 2 and agg.active_days == 2


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([("page_view", -5, "books", "s1")], [5 / 60]),  # 5 minutes before, same session
        ([("page_view", -5, "books", "s1"), ("search", -20, "books", "s1")], [20 / 60]),
        ([("page_view", -5, "books", "s2")], []),  # another session
        ([("page_view", -5, "home", "s1")], []),  # another category
        ([("page_view", 5, "books", "s1")], []),  # browsed only after buying
        ([("add_to_cart", 0, "books", "s1")], [0.0]),
    ],
)
def test_aggregate_day_when_browse_before_purchase_in_session_then_cycle_hours(
    history: list[tuple[str, float, str, str]], expected: list[float]
) -> None:
    buy = T - 4 * HOUR
    events = [ev(0, buy, "purchase", amount=1.0, category="books", session_id="s1")] + [
        ev(i, buy + minutes * 60, kind, category=cat, session_id=sid)
        for i, (kind, minutes, cat, sid) in enumerate(history, start=1)
    ]

    assert aggregate_day(local_day(T), events).cycles == pytest.approx(expected)


def test_aggregate_day_when_no_session_ids_then_cycles_within_gap_sessions() -> None:
    events = [
        ev(1, T - 3 * HOUR, category="books"),  # session 1
        ev(2, T - 2 * HOUR, category="books"),  # session 2 starts (60-minute gap)
        ev(3, T - 2 * HOUR + 600, "purchase", amount=1.0, category="books"),
    ]

    agg = aggregate_day(local_day(T), events)

    assert agg.sessions == 2
    assert agg.cycles == pytest.approx([600 / 3600])


def test_day_aggregate_when_merged_then_cycles_sorted_union() -> None:
    total = DayAggregate()

    for cycles in ([3.0], [], [1.0, 5.0]):
        total.merge(DayAggregate(cycles=cycles))

    assert total.cycles == [1.0, 3.0, 5.0]


def test_to_row_when_listed_then_values_line_up_with_rollup_columns() -> None:
    from client.rollups import ROLLUP_COLUMNS

    agg = DayAggregate(**{name: i + 1 for i, name in enumerate(ROLLUP_COLUMNS[:15])})

    row = dict(zip(ROLLUP_COLUMNS, agg.to_row(), strict=True))

    assert all(row[name] == getattr(agg, name) for name in ROLLUP_COLUMNS[:15])
    assert (row["channels_json"], row["hours_json"], row["categories_json"]) == ("{}",) * 3
    assert row["cycles_json"] == "[]"
