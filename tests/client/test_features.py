from __future__ import annotations

import math
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.features import (
    FEATURE_NAMES,
    NEUTRAL_RATING,
    RECENCY_CAP_DAYS,
    compute_features,
    features_from_store,
)
from client.store import EdgeStore, StoredEvent, StoredMessage
from models import EventType

from .edge_factories import NOW

DAY = 86_400.0
T = NOW.timestamp()
S = "ps_" + "a" * 64


def ev(i: int, days_ago: float, type: str = "page_view", **kw: object) -> StoredEvent:
    return StoredEvent(
        event_id=f"e{i}",
        subject=S,
        type=type,
        channel=str(kw.pop("channel", "web")),
        ts=T - days_ago * DAY,
        **kw,
    )  # type: ignore[arg-type]


def msg(i: int, days_ago: float, channel: str = "app") -> StoredMessage:
    return StoredMessage(f"m{i}", S, channel, T - days_ago * DAY, "zh", "<masked>", {})


def test_compute_features_when_no_events_then_defaults_and_provisional() -> None:
    f = compute_features(S, [], now=NOW)

    assert set(f.values) == set(FEATURE_NAMES)
    assert f.values["recency_days"] == RECENCY_CAP_DAYS
    assert f.values["ratings_avg"] == NEUTRAL_RATING
    assert f.values["history_days"] == 0.0
    assert f.preferred_category is None and f.provisional and f.n_events == 0
    assert all(math.isfinite(v) for v in f.values.values())


def test_compute_features_when_purchases_then_rfm_from_90_day_window() -> None:
    events = [
        ev(1, 2, "purchase", amount=300.0),
        ev(2, 10, "purchase", amount=100.0),
        ev(3, 89.9, "purchase", amount=50.0),
        ev(4, 90.1, "purchase", amount=1000.0),  # outside the 90-day window
        ev(5, 5, "refund", amount=100.0),
        ev(6, 3, "coupon_use"),
    ]

    f = compute_features(S, events, now=NOW).values

    assert f["recency_days"] == pytest.approx(2.0)
    assert f["frequency_90d"] == 3
    assert f["monetary_90d"] == pytest.approx(450.0)
    assert f["avg_order_value"] == pytest.approx(150.0)
    assert f["refund_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert f["coupon_uses_90d"] == 1


def test_compute_features_when_events_after_now_then_ignored() -> None:
    events = [ev(1, 10, "purchase", amount=10.0), ev(2, -1, "purchase", amount=999.0)]

    f = compute_features(S, events, now=NOW)

    assert f.values["frequency_90d"] == 1 and f.values["recency_days"] == pytest.approx(10.0)
    assert f.n_events == 1


def test_compute_features_when_service_contacts_then_complaint_rate_and_ratings() -> None:
    events = [
        ev(1, 1, "cs_message"),
        ev(2, 2, "complaint"),
        ev(3, 3, "complaint"),
        ev(4, 4, "rating", rating=1),
        ev(5, 5, "rating", rating=4),
        ev(6, 100, "complaint"),
    ]
    messages = [msg(1, 1), msg(2, 200)]

    f = compute_features(S, events, now=NOW, messages=messages).values

    assert f["cs_messages_90d"] == 2  # one cs_message event + one message in window
    assert f["complaints_90d"] == 2
    assert f["complaint_rate"] == pytest.approx(0.5)
    assert f["ratings_avg"] == pytest.approx(2.5)


def test_compute_features_when_sessions_mixed_then_ids_plus_gap_inferred() -> None:
    base = [ev(1, 1, session_id="s1"), ev(2, 1, session_id="s1"), ev(3, 2, session_id="s2")]
    loose = [ev(10, 3), ev(11, 3 - 10 / 1440), ev(12, 5)]  # 10-minute gap joins, 2 days splits

    f = compute_features(S, base + loose, now=NOW).values

    assert f["sessions_30d"] == 2 + 2


@pytest.mark.parametrize(
    ("recent", "older", "sign"),
    [(10, 0, 1), (0, 10, -1), (5, 10, 0), (0, 0, 0)],
)
def test_compute_features_when_activity_shifts_then_trend_sign(
    recent: int, older: int, sign: int
) -> None:
    events = [ev(i, 5) for i in range(recent)] + [ev(100 + i, 60) for i in range(older)]

    trend = compute_features(S, events, now=NOW).values["activity_trend"]

    assert (trend > 0) - (trend < 0) == sign
    assert -1.0 <= trend <= 1.0


def test_compute_features_when_categories_tie_then_weighted_then_alphabetical() -> None:
    events = [
        ev(1, 1, category="home"),
        ev(2, 1, category="home"),
        ev(3, 2, "purchase", amount=1.0, category="books"),  # weight 3
        ev(4, 3, "add_to_cart", category="apparel"),
    ]  # weight 2

    assert compute_features(S, events, now=NOW).preferred_category == "books"
    tie = [ev(1, 1, category="home"), ev(2, 1, category="beauty")]
    assert compute_features(S, tie, now=NOW).preferred_category == "beauty"


@pytest.mark.parametrize(
    ("n_events", "first_days_ago", "provisional"),
    [(4, 30, True), (5, 6.9, True), (5, 7, False), (20, 60, False)],
)
def test_compute_features_when_little_history_then_provisional(
    n_events: int, first_days_ago: float, provisional: bool
) -> None:
    events = [ev(0, first_days_ago)] + [ev(i, 1) for i in range(1, n_events)]

    assert compute_features(S, events, now=NOW).provisional is provisional


def test_compute_features_when_multi_channel_then_counts_channels_and_active_days() -> None:
    events = [ev(1, 1, channel="web"), ev(2, 1.2, channel="app"), ev(3, 40, channel="desk")]
    messages = [msg(1, 2, channel="sms")]

    f = compute_features(S, events, now=NOW, messages=messages).values

    assert f["channel_count"] == 4
    assert f["active_days_30d"] in (2, 3)  # days 1 and 1.2 may straddle midnight UTC
    assert f["history_days"] == pytest.approx(40.0)


def test_compute_features_when_now_is_epoch_then_same_as_datetime() -> None:
    events = [ev(1, 3, "purchase", amount=5.0), ev(2, 20)]

    assert compute_features(S, events, now=T) == compute_features(S, events, now=NOW)


def test_features_from_store_when_subjects_then_one_entry_each(tmp_path: Path) -> None:
    with EdgeStore(tmp_path / "s.sqlite") as store:
        other = "ps_" + "b" * 64
        store.add_events([ev(1, 1), StoredEvent("x1", other, "search", "web", T - DAY)])
        store.add_messages([StoredMessage("m1", other, "app", T - 2 * DAY, "zh", "<m>", {})])

        result = features_from_store(store, now=NOW + timedelta(0))

    assert sorted(result) == [S, other]
    assert result[other].values["cs_messages_90d"] == 1
    assert result[S].values["views_30d"] == 1


# ------------------------------------------------------------------ richer features
def test_feature_names_when_listed_then_each_labelled_in_chinese_and_english() -> None:
    from models.tags import FEATURE_INFO

    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    for name in FEATURE_NAMES:
        assert FEATURE_INFO[name].label_zh and FEATURE_INFO[name].label_en


def test_compute_features_when_sessions_browse_then_depth_is_views_per_session() -> None:
    events = [ev(i, 1, session_id="s1") for i in range(6)] + [
        ev(10, 2, session_id="s2"),
        ev(11, 2, "search", session_id="s3"),
    ]

    f = compute_features(S, events, now=NOW).values

    assert f["sessions_30d"] == 3
    assert f["browse_depth_30d"] == pytest.approx(7 / 3, abs=1e-3)


def test_compute_features_when_purchases_after_browsing_then_median_cycle_of_30_days() -> None:
    events = [
        ev(1, 1, "purchase", amount=1.0, category="books", session_id="a"),
        ev(2, 1 + 2 / 24, category="books", session_id="a"),  # 2 h
        ev(3, 10, "purchase", amount=1.0, category="home", session_id="b"),
        ev(4, 10 + 10 / 24, "search", category="home", session_id="b"),  # 10 h
        ev(5, 20, "purchase", amount=1.0, category="toys", session_id="c"),
        ev(6, 20 + 4 / 24, "add_to_cart", category="toys", session_id="c"),  # 4 h
        ev(7, 40, "purchase", amount=1.0, category="toys", session_id="d"),  # outside 30 days
        ev(8, 40 + 20 / 24, category="toys", session_id="d"),
        ev(9, 2, "purchase", amount=1.0, category="toys", session_id="e"),  # no browse
    ]

    f = compute_features(S, events, now=NOW).values

    assert f["decision_cycle_hours"] == pytest.approx(4.0, abs=1e-3)
    assert compute_features(S, events[6:], now=NOW).values["decision_cycle_hours"] == 0.0


def test_compute_features_when_weekend_evenings_then_rhythm_features() -> None:
    # NOW is Sunday 20:00 China time; 7 days ago is also a Sunday, 8 days ago a Saturday
    # Sun 19:45, Sun 20:00, Sat 20:00, Fri 14:00
    events = [ev(1, 0.01), ev(2, 7.0), ev(3, 8.0), ev(4, 9.25)]

    f = compute_features(S, events, now=NOW).values

    assert f["weekend_share_90d"] == pytest.approx(0.75)
    assert f["active_weekday"] == 6
    assert f["active_hour_bucket"] == 5  # 20:00-23:59 twice, 16:00-19:59 and 12:00-15:59 once
    assert compute_features(S, [], now=NOW).values["active_weekday"] == -1


def test_compute_features_when_coupons_then_price_sensitivity_capped() -> None:
    events = [
        ev(1, 1, "purchase", amount=10.0),
        ev(2, 2, "purchase", amount=10.0),
        ev(3, 2, "coupon_use"),
    ]

    assert compute_features(S, events, now=NOW).values["coupon_rate_90d"] == 0.5
    coupons_only = [ev(i, 1, "coupon_use") for i in range(3)] + [ev(9, 1, "purchase", amount=1)]
    assert compute_features(S, coupons_only, now=NOW).values["coupon_rate_90d"] == 1.0


@pytest.mark.parametrize(
    ("channels", "shares", "entropy"),
    [
        (["web"] * 4, {"web": 1.0}, 0.0),
        (["web", "app"] * 2, {"web": 0.5, "app": 0.5}, math.log(2) / math.log(5)),
        (["web", "app", "desk", "sms", "social"], dict.fromkeys(["web", "app"], 0.2), 1.0),
        ([], {"web": 0.0}, 0.0),
    ],
)
def test_compute_features_when_channels_then_shares_and_normalised_entropy(
    channels: list[str], shares: dict[str, float], entropy: float
) -> None:
    events = [ev(i, 1 + i, channel=c) for i, c in enumerate(channels)]

    f = compute_features(S, events, now=NOW).values

    for channel, share in shares.items():
        assert f[f"channel_share_{channel}"] == pytest.approx(share)
    assert f["channel_entropy_90d"] == pytest.approx(entropy, abs=1e-4)


def test_features_from_store_when_subjects_given_then_only_those(tmp_path: Path) -> None:
    other = "ps_" + "b" * 64
    with EdgeStore(tmp_path / "s.sqlite") as store:
        store.add_events([ev(1, 1), StoredEvent("x1", other, "search", "web", T - DAY)])

        result = features_from_store(store, now=NOW, subjects=[other, "ps_" + "9" * 64])

    assert list(result) == [other]


# ------------------------------------------------------------------ rollups == raw events
_SUBJECTS = (S, "ps_" + "b" * 64)
_TIMES = st.one_of(
    st.floats(-2 * DAY, 130 * DAY),
    st.sampled_from([0.0, 7 * DAY, 30 * DAY, 37 * DAY, 38 * DAY, 90 * DAY]),  # window edges
)
_EVENTS = st.lists(
    st.builds(
        lambda i, s, kind, channel, ago, cat, cents, sid, rating: StoredEvent(
            f"e{i}",
            s,
            kind,
            channel,
            T - ago,
            cat,
            cents / 100 if kind in ("purchase", "refund") else None,
            "CNY" if kind in ("purchase", "refund") else None,
            sid,
            rating if kind == "rating" else None,
        ),
        st.integers(0, 5_000),
        st.sampled_from(_SUBJECTS),
        st.sampled_from([t.value for t in EventType]),
        st.sampled_from(["web", "app", "desk"]),
        _TIMES,
        st.sampled_from([None, "books", "home"]),
        st.integers(0, 100_000),
        st.sampled_from([None, None, "s1", "s2"]),
        st.integers(1, 5),
    ),
    max_size=50,
)
_MESSAGES = st.lists(
    st.builds(
        lambda i, s, channel, ago: StoredMessage(f"m{i}", s, channel, T - ago, "zh", "<m>", {}),
        st.integers(0, 5_000),
        st.sampled_from(_SUBJECTS),
        st.sampled_from(["sms", "app"]),
        _TIMES,
    ),
    max_size=15,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=_EVENTS,
    messages=_MESSAGES,
    batches=st.integers(1, 4),
    shift=st.sampled_from([0.0, 5 * 3600.0, -0.5 * DAY, 12.34]),
)
def test_features_from_store_when_random_streams_in_batches_then_equal_raw_features(
    events: list[StoredEvent], messages: list[StoredMessage], batches: int, shift: float
) -> None:
    # Prepare: the streams arrive in interleaved batches (duplicate ids are dropped)
    now = T + shift
    with tempfile.TemporaryDirectory() as tmp, EdgeStore(Path(tmp) / "e.sqlite") as store:
        for k in range(batches):
            store.add_messages(messages[k::batches])
            store.add_events(events[k::batches])
        raw_events = store.events_by_subject()
        raw_messages: dict[str, list[StoredMessage]] = {}
        for m in store.iter_messages():
            raw_messages.setdefault(m.subject, []).append(m)

        # Execute
        from_rollups = features_from_store(store, now=now)
        one = features_from_store(store, now=now, subjects=[S])

    # Assert
    expected = {
        s: compute_features(s, raw_events.get(s, []), now=now, messages=raw_messages.get(s, []))
        for s in sorted(set(raw_events) | set(raw_messages))
    }
    assert from_rollups == expected
    assert one == {k: v for k, v in expected.items() if k == S}
