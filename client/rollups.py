"""Daily rollups: one additive aggregate of a subject's behaviour per local calendar day.

A ``DayAggregate`` holds counts and sums of one (subject, day): events by type, spend in
fen (integer cents, so sums are exact), ratings, sessions, first activity and last purchase
times, the decision cycles of the day's purchases, and small histograms (channel, hour of
day, weekday, weighted category engagement). Aggregates of different days *add up*
(``DayAggregate.merge``), so a feature window is the sum of the full days inside it plus
the two partial days at its edges, aggregated from raw events. The edge store keeps one row
per (subject, day) in ``daily_rollups`` and recomputes only the rows an ingested batch
touched (``client.rollup_store``); ``client.features`` sums them.

Days are calendar days of the edge's local time, China Standard Time (UTC+8, no daylight
saving): ``local_day(ts)`` counts days since 1970-01-01 local. Everything is counted within
a day, which keeps aggregates additive: a session counts once per day it has events in (a
session running past midnight counts on both days), and a purchase's decision cycle runs
from the first browse (page view, search, cart add) of its category earlier in the same
session *and day* (sessions are session ids, or 30-minute gaps between events without one).

This module reads events through small protocols and never imports the store (the store
imports it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _quote
from typing import Any, Protocol

from models import EventType

logger = logging.getLogger(__name__)

DAY = 86_400.0
#: Offset of the edge's local time from UTC: China Standard Time (UTC+8).
LOCAL_UTC_OFFSET_SECONDS = 8 * 3600.0
#: Events without a session id more than this far apart start a new session.
SESSION_GAP_SECONDS = 30 * 60.0
#: 1970-01-01 (local day 0) was a Thursday; weekdays count Monday = 0.
_EPOCH_WEEKDAY = 3
#: Integer weights of event types when scoring category engagement.
CATEGORY_WEIGHTS: Mapping[str, int] = {
    EventType.PURCHASE.value: 3,
    EventType.ADD_TO_CART.value: 2,
    EventType.PAGE_VIEW.value: 1,
    EventType.SEARCH.value: 1,
}
_PURCHASE = EventType.PURCHASE.value
_REFUND = EventType.REFUND.value
_VIEW = EventType.PAGE_VIEW.value
_SEARCH = EventType.SEARCH.value
_CART = EventType.ADD_TO_CART.value
_COUPON = EventType.COUPON_USE.value
_CS = EventType.CS_MESSAGE.value
_COMPLAINT = EventType.COMPLAINT.value
_COUNTS: tuple[str, ...] = (
    "events", "messages", "views", "searches", "cart_adds", "purchases", "spend_cents",
    "refunds", "refund_cents", "coupons", "cs_events", "complaints", "ratings", "rating_sum",
    "sessions",
)  # fmt: skip
#: Columns of a ``daily_rollups`` row after ``subject`` and ``day`` (``seq`` comes last).
ROLLUP_COLUMNS: tuple[str, ...] = (
    *_COUNTS, "first_ts", "last_purchase_ts", "channels_json", "hours_json", "categories_json",
    "cycles_json",
)  # fmt: skip
_BROWSE = frozenset({_VIEW, _SEARCH, _CART})
#: The C scanner behind ``json.loads``, without its Python wrappers (rows are compact JSON).
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _to_json(counts: Mapping[Any, int]) -> str:
    """Compact JSON object of a small histogram, keys sorted (``json.dumps`` output, faster)."""
    return "{" + ",".join(f"{_quote(str(k))}:{n}" for k, n in sorted(counts.items())) + "}"


class EventLike(Protocol):
    """What a rollup reads from an event (``client.store.StoredEvent`` fits)."""

    @property
    def type(self) -> str:
        """Event type (an ``EventType`` value)."""
        ...

    @property
    def channel(self) -> str:
        """Channel name."""
        ...

    @property
    def ts(self) -> float:
        """UTC epoch seconds."""
        ...

    @property
    def category(self) -> str | None:
        """Canonical category, if any."""
        ...

    @property
    def amount(self) -> float | None:
        """Amount in CNY (two decimals), if any."""
        ...

    @property
    def session_id(self) -> str | None:
        """Session id, if the channel sent one."""
        ...

    @property
    def rating(self) -> int | None:
        """Rating 1-5 of a rating event."""
        ...


class MessageLike(Protocol):
    """What a rollup reads from a customer message (its channel and time only)."""

    @property
    def channel(self) -> str:
        """Channel name."""
        ...

    @property
    def ts(self) -> float:
        """UTC epoch seconds."""
        ...


def local_day(ts: float) -> int:
    """Return the local calendar day of UTC epoch seconds ``ts`` (days since 1970-01-01)."""
    return int((ts + LOCAL_UTC_OFFSET_SECONDS) // DAY)


def day_start(day: int) -> float:
    """Return the UTC epoch seconds at which local ``day`` starts."""
    return day * DAY - LOCAL_UTC_OFFSET_SECONDS


def weekday(day: int) -> int:
    """Return the weekday of local ``day`` (Monday = 0 ... Sunday = 6)."""
    return (day + _EPOCH_WEEKDAY) % 7


def local_hour(ts: float) -> int:
    """Return the local hour of day (0-23) of UTC epoch seconds ``ts``."""
    return int(((ts + LOCAL_UTC_OFFSET_SECONDS) % DAY) // 3600.0)


def cents(amount: float | None) -> int:
    """Return an amount in CNY as whole fen (0 for ``None``)."""
    return 0 if amount is None else round(amount * 100)


def _add_counts(target: dict[Any, int], source: Mapping[Any, int]) -> None:
    for key, n in source.items():
        target[key] = target.get(key, 0) + n


@dataclass(slots=True)
class DayAggregate:
    """Additive aggregate of one subject's behaviour over one day (or a sum of days).

    Parameters
    ----------
    events, messages : int
        Behaviour events and customer messages.
    views, searches, cart_adds, purchases, refunds, coupons, cs_events, complaints : int
        Events of each type (``cs_events``: ``cs_message`` events).
    spend_cents, refund_cents : int
        Purchase and refund amounts in fen (CNY / 100).
    ratings, rating_sum : int
        Rating events and the sum of their ratings.
    sessions : int
        Sessions per day (see the module docstring), summed over days.
    active_days : int
        Days with any event or message.
    first_ts, last_purchase_ts : float or None
        First activity and last purchase (UTC epoch seconds).
    channels : dict[str, int]
        Events plus messages per channel.
    hours : dict[int, int]
        Events plus messages per local hour of day.
    weekdays : dict[int, int]
        Events plus messages per local weekday (Monday = 0).
    categories : dict[str, int]
        Weighted engagement per category (``CATEGORY_WEIGHTS``).
    cycles : list[float]
        Decision cycles (hours) of the purchases that had a browse before them, sorted.
    """

    events: int = 0
    messages: int = 0
    views: int = 0
    searches: int = 0
    cart_adds: int = 0
    purchases: int = 0
    spend_cents: int = 0
    refunds: int = 0
    refund_cents: int = 0
    coupons: int = 0
    cs_events: int = 0
    complaints: int = 0
    ratings: int = 0
    rating_sum: int = 0
    sessions: int = 0
    active_days: int = 0
    first_ts: float | None = None
    last_purchase_ts: float | None = None
    channels: dict[str, int] = field(default_factory=dict)
    hours: dict[int, int] = field(default_factory=dict)
    weekdays: dict[int, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    cycles: list[float] = field(default_factory=list)

    @property
    def activity(self) -> int:
        """Events plus messages."""
        return self.events + self.messages

    def merge(self, other: DayAggregate) -> None:
        """Add ``other`` (another day, or another part of a window) to this aggregate."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.active_days += other.active_days
        if other.first_ts is not None and (self.first_ts is None or other.first_ts < self.first_ts):
            self.first_ts = other.first_ts
        if other.last_purchase_ts is not None and (
            self.last_purchase_ts is None or other.last_purchase_ts > self.last_purchase_ts
        ):
            self.last_purchase_ts = other.last_purchase_ts
        _add_counts(self.channels, other.channels)
        _add_counts(self.hours, other.hours)
        _add_counts(self.weekdays, other.weekdays)
        _add_counts(self.categories, other.categories)
        if other.cycles:
            self.cycles = sorted(self.cycles + other.cycles)

    def to_row(self) -> tuple[Any, ...]:
        """Return the ``ROLLUP_COLUMNS`` values of this (single-day) aggregate."""
        return (
            self.events, self.messages, self.views, self.searches, self.cart_adds,
            self.purchases, self.spend_cents, self.refunds, self.refund_cents, self.coupons,
            self.cs_events, self.complaints, self.ratings, self.rating_sum, self.sessions,
            self.first_ts,
            self.last_purchase_ts,
            _to_json(self.channels),
            _to_json(self.hours),
            _to_json(self.categories),
            json.dumps(self.cycles),
        )  # fmt: skip

    @classmethod
    def from_row(cls, day: int, row: Sequence[Any]) -> DayAggregate:
        """Rebuild the aggregate of local ``day`` from its ``ROLLUP_COLUMNS`` values."""
        n = len(_COUNTS)
        agg = cls(*row[:n])
        activity = agg.events + agg.messages
        if activity:
            agg.active_days = 1
            agg.weekdays = {weekday(day): activity}
        agg.first_ts, agg.last_purchase_ts = row[n], row[n + 1]
        agg.channels = _scan_json(row[n + 2], 0)[0]
        agg.hours = {int(h): c for h, c in _scan_json(row[n + 3], 0)[0].items()}
        agg.categories = _scan_json(row[n + 4], 0)[0]
        agg.cycles = _scan_json(row[n + 5], 0)[0]
        return agg


def aggregate_day(
    day: int, events: Iterable[EventLike], messages: Iterable[MessageLike] = ()
) -> DayAggregate:
    """Aggregate the events and messages of one local ``day`` (all of them, or a part).

    Parameters
    ----------
    day : int
        The local day (``local_day``) every given event and message falls on.
    events : Iterable[EventLike]
        Behaviour events of that day.
    messages : Iterable[MessageLike]
        Customer messages of that day.

    Returns
    -------
    DayAggregate
        Counts and histograms; ``active_days`` is 1 when anything happened.
    """
    day_events = list(events)
    types: dict[str, int] = {}
    channels: dict[str, int] = {}
    categories: dict[str, int] = {}
    session_ids: set[str] = set()
    loose: list[EventLike] = []
    times: list[float] = []
    spend = refunded = ratings = rating_sum = 0
    last_purchase: float | None = None
    for e in day_events:
        kind, ts = e.type, e.ts
        types[kind] = types.get(kind, 0) + 1
        if kind == _PURCHASE:
            spend += cents(e.amount)
            if last_purchase is None or ts > last_purchase:
                last_purchase = ts
        elif kind == _REFUND:
            refunded += cents(e.amount)
        if e.rating is not None:
            ratings += 1
            rating_sum += e.rating
        weight = CATEGORY_WEIGHTS.get(kind)
        if weight and e.category:
            categories[e.category] = categories.get(e.category, 0) + weight
        if e.session_id:
            session_ids.add(e.session_id)
        else:
            loose.append(e)
        channels[e.channel] = channels.get(e.channel, 0) + 1
        times.append(ts)
    n_events = len(times)
    for m in messages:
        channels[m.channel] = channels.get(m.channel, 0) + 1
        times.append(m.ts)
    hours: dict[int, int] = {}
    for ts in times:
        hour = int(((ts + LOCAL_UTC_OFFSET_SECONDS) % DAY) // 3600.0)  # local_hour, inlined
        hours[hour] = hours.get(hour, 0) + 1
    gaps = _gap_session_of(loose)
    get = types.get
    return DayAggregate(
        events=n_events,
        messages=len(times) - n_events,
        views=get(_VIEW, 0),
        searches=get(_SEARCH, 0),
        cart_adds=get(_CART, 0),
        purchases=get(_PURCHASE, 0),
        spend_cents=spend,
        refunds=get(_REFUND, 0),
        refund_cents=refunded,
        coupons=get(_COUPON, 0),
        cs_events=get(_CS, 0),
        complaints=get(_COMPLAINT, 0),
        ratings=ratings,
        rating_sum=rating_sum,
        sessions=len(session_ids) + (max(gaps.values()) + 1 if gaps else 0),
        active_days=1 if times else 0,
        first_ts=min(times) if times else None,
        last_purchase_ts=last_purchase,
        channels=channels,
        hours=hours,
        weekdays={weekday(day): len(times)} if times else {},
        categories=categories,
        cycles=_decision_cycles(day_events, gaps) if get(_PURCHASE) else [],
    )


def _gap_session_of(loose: list[EventLike]) -> dict[int, int]:
    """Return the gap-separated session of each event without a session id, by ``id()``."""
    out: dict[int, int] = {}
    session, last = -1, None
    for e in sorted(loose, key=lambda e: e.ts):
        if last is None or e.ts - last > SESSION_GAP_SECONDS:
            session += 1
        last = e.ts
        out[id(e)] = session
    return out


def _decision_cycles(day_events: list[EventLike], gaps: Mapping[int, int]) -> list[float]:
    """Hours from the first same-session browse of a category to each purchase of it, sorted."""
    first: dict[tuple[object, str], float] = {}
    for e in day_events:
        if e.type in _BROWSE and e.category:
            key = (e.session_id or gaps[id(e)], e.category)
            if key not in first or e.ts < first[key]:
                first[key] = e.ts
    cycles = []
    for e in day_events:
        if e.type == _PURCHASE and e.category:
            seen = first.get((e.session_id or gaps[id(e)], e.category))
            if seen is not None and seen <= e.ts:
                cycles.append((e.ts - seen) / 3600.0)
    return sorted(cycles)


def aggregate_window(
    events: Iterable[EventLike],
    messages: Iterable[MessageLike],
    *,
    lo: float | None,
    hi: float,
) -> DayAggregate:
    """Sum the day aggregates of the events and messages inside ``(lo, hi]``.

    Parameters
    ----------
    events, messages : Iterable
        Any events and messages (those outside the window are ignored).
    lo : float or None
        Exclusive start (UTC epoch seconds); ``None`` for no start.
    hi : float
        Inclusive end (UTC epoch seconds).

    Returns
    -------
    DayAggregate
        The window's total, built day by day exactly as the stored rollups are.
    """
    by_day: dict[int, tuple[list[EventLike], list[MessageLike]]] = {}
    for e in events:
        if e.ts <= hi and (lo is None or e.ts > lo):
            by_day.setdefault(local_day(e.ts), ([], []))[0].append(e)
    for m in messages:
        if m.ts <= hi and (lo is None or m.ts > lo):
            by_day.setdefault(local_day(m.ts), ([], []))[1].append(m)
    total = DayAggregate()
    for day in sorted(by_day):
        day_events, day_messages = by_day[day]
        total.merge(aggregate_day(day, day_events, day_messages))
    return total
