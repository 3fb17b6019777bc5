"""Per-subject behaviour features, computed on the edge at an explicit moment ``now``.

Two equal ways to compute them:

* ``compute_features`` is a pure function of one subject's raw events (and message times):
  the reference definition.
* ``features_from_store`` reads the store's daily rollups (``client.rollups``) plus the raw
  events of only three days (today, and the days the 30- and 90-day windows start in, which
  those windows cover in part), so refreshing a profile costs the subject's active days,
  not every event it ever had. Both give identical values (a property test checks this
  over random event streams).

Windows are half-open ``(now - window, now]``; events after ``now`` are ignored, so a rebuild
"as of" a past date is reproducible. Days, weekdays and hours are in the edge's local time
(China Standard Time, ``client.rollups``); sessions and decision cycles are counted per day.

Conventions for subjects without the relevant behaviour: ``recency_days`` is capped at
``RECENCY_CAP_DAYS`` (also when there is no purchase), rates, shares and the decision cycle
are 0, ``ratings_avg`` is the neutral 3.0, ``active_weekday`` and ``active_hour_bucket`` are
-1. ``cs_messages_90d`` counts ``cs_message`` events *and* stored customer messages (a
channel sends one or the other for the same contact). Every feature's meaning is labelled in
Chinese and English in ``models.tags.FEATURE_INFO``.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from models import Channel

from .rollups import DAY, DayAggregate, aggregate_window, day_start, local_day
from .store import EdgeStore, StoredEvent, StoredMessage

logger = logging.getLogger(__name__)

RECENCY_CAP_DAYS = 365.0
NEUTRAL_RATING = 3.0
#: A profile is provisional below this much history or this many events.
PROVISIONAL_MIN_HISTORY_DAYS = 7.0
PROVISIONAL_MIN_EVENTS = 5
#: Hours per bucket of ``active_hour_bucket`` (0 = 00:00-03:59 ... 5 = 20:00-23:59).
HOUR_BUCKET_HOURS = 4
_CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)
_SUBJECT_CHUNK = 500

#: Numeric feature names, in a stable order (``preferred_category`` is categorical).
FEATURE_NAMES: tuple[str, ...] = (
    "recency_days",
    "frequency_90d",
    "monetary_90d",
    "avg_order_value",
    "views_30d",
    "searches_30d",
    "cart_adds_30d",
    "sessions_30d",
    "cs_messages_90d",
    "complaints_90d",
    "complaint_rate",
    "ratings_avg",
    "refund_rate",
    "coupon_uses_90d",
    "active_days_30d",
    "activity_trend",
    "channel_count",
    "history_days",
    "browse_depth_30d",
    "decision_cycle_hours",
    "coupon_rate_90d",
    "weekend_share_90d",
    "active_weekday",
    "active_hour_bucket",
    *(f"channel_share_{c}" for c in _CHANNELS),
    "channel_entropy_90d",
)


@dataclass(frozen=True, slots=True)
class SubjectFeatures:
    """Features of one subject at one moment.

    Parameters
    ----------
    subject : str
        The subject's pseudonym.
    values : dict[str, float]
        One value per name in ``FEATURE_NAMES``.
    preferred_category : str or None
        The canonical category the subject engages with most (``None`` without any).
    n_events : int
        Behaviour events considered (at or before ``now``).
    provisional : bool
        True for new subjects (less than 7 days of history or fewer than 5 events): their
        tags are shown as provisional and carry lower confidence.
    """

    subject: str
    values: dict[str, float]
    preferred_category: str | None
    n_events: int
    provisional: bool


def _seconds(now: datetime | float) -> float:
    return now.timestamp() if isinstance(now, datetime) else float(now)


def _window_starts(now: float) -> tuple[float, float]:
    """Exclusive starts of the 30- and 90-day windows ending at ``now``."""
    return now - 30 * DAY, now - 90 * DAY


def _argmax(counts: Mapping[int, int]) -> float:
    """Key with the highest count (smallest on ties), -1 when empty."""
    if not counts:
        return -1.0
    best = max(counts.values())
    return float(min(k for k, n in counts.items() if n == best))


def _preferred_category(scores: Mapping[str, int]) -> str | None:
    """Category with the highest weighted engagement; ties broken alphabetically."""
    if not scores:
        return None
    best = max(scores.values())
    return min(c for c, s in scores.items() if s == best)


def _rhythm_and_mix(w90: DayAggregate) -> dict[str, float]:
    """Weekday/hour pattern, channel shares and channel entropy over 90 days."""
    n = w90.activity
    buckets: dict[int, int] = {}
    for hour, count in w90.hours.items():
        buckets[hour // HOUR_BUCKET_HOURS] = buckets.get(hour // HOUR_BUCKET_HOURS, 0) + count
    weekend = w90.weekdays.get(5, 0) + w90.weekdays.get(6, 0)
    values = {
        "weekend_share_90d": round(weekend / n, 4) if n else 0.0,
        "active_weekday": _argmax(w90.weekdays),
        "active_hour_bucket": _argmax(buckets),
    }
    for channel in _CHANNELS:
        values[f"channel_share_{channel}"] = (
            round(w90.channels.get(channel, 0) / n, 4) if n else 0.0
        )
    shares = [count / n for _, count in sorted(w90.channels.items()) if count] if n else []
    entropy = -sum(p * math.log(p) for p in shares) / math.log(len(_CHANNELS))
    values["channel_entropy_90d"] = round(max(entropy, 0.0), 4)
    return values


def _finalize(
    subject: str,
    *,
    w30: DayAggregate,
    w90: DayAggregate,
    total: DayAggregate,
    now: float,
) -> SubjectFeatures:
    """Turn window aggregates into the feature vector of one subject."""
    frequency = w90.purchases
    monetary = round(w90.spend_cents / 100.0, 2)
    last = total.last_purchase_ts
    recency = RECENCY_CAP_DAYS if last is None else (now - last) / DAY
    contacts = w90.cs_events + w90.messages + w90.complaints
    rate_recent, rate_prev = w30.activity / 30.0, (w90.activity - w30.activity) / 60.0
    rates = rate_recent + rate_prev
    first = total.first_ts if total.first_ts is not None else now
    values: dict[str, float] = {
        "recency_days": round(min(max(recency, 0.0), RECENCY_CAP_DAYS), 3),
        "frequency_90d": float(frequency),
        "monetary_90d": monetary,
        "avg_order_value": round(monetary / frequency, 2) if frequency else 0.0,
        "views_30d": float(w30.views),
        "searches_30d": float(w30.searches),
        "cart_adds_30d": float(w30.cart_adds),
        "sessions_30d": float(w30.sessions),
        "cs_messages_90d": float(w90.cs_events + w90.messages),
        "complaints_90d": float(w90.complaints),
        "complaint_rate": round(w90.complaints / contacts, 4) if contacts else 0.0,
        "ratings_avg": round(w90.rating_sum / w90.ratings, 3) if w90.ratings else NEUTRAL_RATING,
        "refund_rate": round(min(w90.refunds / frequency, 1.0), 4) if frequency else 0.0,
        "coupon_uses_90d": float(w90.coupons),
        "active_days_30d": float(w30.active_days),
        "activity_trend": round((rate_recent - rate_prev) / rates, 4) if rates else 0.0,
        "channel_count": float(len(total.channels)),
        "history_days": round(max(now - first, 0.0) / DAY, 3),
        "browse_depth_30d": round(w30.views / w30.sessions, 3) if w30.sessions else 0.0,
        "decision_cycle_hours": round(statistics.median(w30.cycles), 3) if w30.cycles else 0.0,
        "coupon_rate_90d": round(min(w90.coupons / frequency, 1.0), 4) if frequency else 0.0,
        **_rhythm_and_mix(w90),
    }
    ordered = {name: float(values[name]) for name in FEATURE_NAMES}
    provisional = (
        ordered["history_days"] < PROVISIONAL_MIN_HISTORY_DAYS
        or total.events < PROVISIONAL_MIN_EVENTS
    )
    return SubjectFeatures(
        subject=subject,
        values=ordered,
        preferred_category=_preferred_category(w90.categories),
        n_events=total.events,
        provisional=provisional,
    )


def compute_features(
    subject: str,
    events: Sequence[StoredEvent],
    *,
    now: datetime | float,
    messages: Sequence[StoredMessage] = (),
) -> SubjectFeatures:
    """Compute one subject's features as of ``now`` from its raw events (the reference).

    Parameters
    ----------
    subject : str
        The subject's pseudonym (carried through, not used in the computation).
    events : Sequence[StoredEvent]
        The subject's behaviour events, in any order.
    now : datetime or float
        The moment the features describe (timezone-aware datetime or UTC epoch seconds).
    messages : Sequence[StoredMessage]
        The subject's stored (masked) messages; only their times and channels are used.

    Returns
    -------
    SubjectFeatures
        Every feature in ``FEATURE_NAMES``, the preferred category and the provisional flag.
    """
    now_s = _seconds(now)
    lo30, lo90 = _window_starts(now_s)
    return _finalize(
        subject,
        w30=aggregate_window(events, messages, lo=lo30, hi=now_s),
        w90=aggregate_window(events, messages, lo=lo90, hi=now_s),
        total=aggregate_window(events, messages, lo=None, hi=now_s),
        now=now_s,
    )


def features_from_rollups(
    subject: str,
    rollups: Mapping[int, DayAggregate],
    events: Sequence[StoredEvent],
    messages: Sequence[StoredMessage],
    *,
    now: datetime | float,
) -> SubjectFeatures:
    """Compute one subject's features from its day rollups and the raw rows of three days.

    Days strictly inside a window come from ``rollups``, each merged once (the windows are
    nested); the days holding ``now`` and the starts of the 30- and 90-day windows are only
    partly inside, so they are aggregated from ``events`` and ``messages``.

    Parameters
    ----------
    subject : str
        The subject's pseudonym.
    rollups : Mapping[int, DayAggregate]
        The subject's stored aggregates by local day (``EdgeStore.daily_rollups``).
    events, messages : Sequence
        The subject's raw events and messages of at least the ``edge_spans(now)`` (more
        are ignored).
    now : datetime or float
        The moment the features describe.

    Returns
    -------
    SubjectFeatures
        Equal to ``compute_features`` over all of the subject's raw events.
    """
    now_s = _seconds(now)
    lo30, lo90 = _window_starts(now_s)
    last, d30, d90 = local_day(now_s), local_day(lo30), local_day(lo90)
    inner30, inner90, before = DayAggregate(), DayAggregate(), DayAggregate()
    for day, aggregate in rollups.items():
        if day >= last:
            continue
        (inner30 if day > d30 else inner90 if day > d90 else before).merge(aggregate)

    def edge(day: int, lo: float | None) -> DayAggregate:
        return aggregate_window(
            [e for e in events if local_day(e.ts) == day],
            [m for m in messages if local_day(m.ts) == day],
            lo=lo,
            hi=now_s,
        )

    today = edge(last, None)
    return _finalize(
        subject,
        w30=_sum(inner30, edge(d30, lo30), today),
        w90=_sum(inner30, inner90, edge(d90, lo90), today),
        total=_sum(inner30, inner90, before, today),
        now=now_s,
    )


def _sum(*parts: DayAggregate) -> DayAggregate:
    total = DayAggregate()
    for part in parts:
        total.merge(part)
    return total


def edge_spans(now: datetime | float) -> list[tuple[float, float]]:
    """Return the ``[start, end)`` spans of raw rows ``features_from_rollups`` needs.

    The local days holding ``now`` and the starts of the 30- and 90-day windows, each with
    a second of margin (rows are assigned to days with ``local_day`` afterwards).
    """
    now_s = _seconds(now)
    days = {local_day(now_s), *(local_day(lo) for lo in _window_starts(now_s))}
    return [(day_start(d) - 1.0, day_start(d + 1) + 1.0) for d in sorted(days)]


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def features_from_store(
    store: EdgeStore,
    *,
    now: datetime | float,
    subjects: Collection[str] | None = None,
) -> dict[str, SubjectFeatures]:
    """Compute the features of subjects with events or messages in ``store``.

    Reads each subject's day rollups and only the raw rows of ``edge_spans(now)``, in
    chunks of subjects, so the cost grows with the subjects asked for and their active
    days, not with their events.

    Parameters
    ----------
    store : EdgeStore
        The edge store.
    now : datetime or float
        The moment the features describe.
    subjects : Collection[str] or None
        Only these pseudonyms; ``None`` for every subject with behaviour.

    Returns
    -------
    dict[str, SubjectFeatures]
        Keyed by pseudonym; subjects known only from consent events (or not at all) are
        left out.
    """
    now_s = _seconds(now)
    scope = store.rollup_subjects() if subjects is None else sorted(set(subjects))
    spans = edge_spans(now_s)
    out: dict[str, SubjectFeatures] = {}
    for chunk in _chunks(scope, _SUBJECT_CHUNK):
        rollups = store.daily_rollups(subjects=chunk)
        events: dict[str, list[StoredEvent]] = {}
        messages: dict[str, list[StoredMessage]] = {}
        for start, end in spans:
            for e in store.events_between(start=start, end=end, subjects=chunk):
                events.setdefault(e.subject, []).append(e)
            for m in store.messages_between(start=start, end=end, subjects=chunk):
                messages.setdefault(m.subject, []).append(m)
        for subject in chunk:
            if subject in rollups:
                out[subject] = features_from_rollups(
                    subject,
                    rollups[subject],
                    events.get(subject, []),
                    messages.get(subject, []),
                    now=now_s,
                )
    return out
