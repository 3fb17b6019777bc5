"""Behaviour examples with a fixed time split: features before a cutoff, labels after it.

For a cutoff ``c`` and a label window of ``W`` days, every subject seen at or before ``c``
(one event or message) gives exactly one example:

* **features** at ``c``: the profile features (``client.features.compute_features`` over the
  events and messages at or before ``c``, as a profile built "as of" ``c`` would show) and
  the long-horizon history features of ``models.behaviour.HISTORY_FEATURES`` (recent
  activity, purchase days, first and last purchase, mean gap between purchase days, ...);
  optionally the most recent event tokens;
* **labels** from ``(c, c + W]``: purchased (any ``purchase`` event), escalated (any
  ``complaint`` event), and the first categorised event's category.

Nothing after ``c`` reaches the features, so a model trained on these examples is scored
the same way it is used: features now, a prediction for the next ``W`` days. One example per
subject makes DP-SGD over them user-level on the edge. Event logs without messages or
complaints (a plain purchase log) work: those features and the escalation label are 0.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime

from models import CATEGORIES, EventType
from models.behaviour import BEHAVIOUR_FEATURES, HISTORY_FEATURES, BehaviourExample
from models.sequences import encode_events

from ..features import RECENCY_CAP_DAYS, compute_features
from ..rollups import DAY, local_day
from ..store import StoredEvent, StoredMessage

logger = logging.getLogger(__name__)

_PURCHASE = EventType.PURCHASE.value
_COMPLAINT = EventType.COMPLAINT.value
_CONTACTS = frozenset({EventType.CS_MESSAGE.value, EventType.COMPLAINT.value})


def _seconds(moment: datetime | float) -> float:
    return moment.timestamp() if isinstance(moment, datetime) else float(moment)


def history_features(
    events: Sequence[StoredEvent], messages: Sequence[StoredMessage], *, cutoff: float
) -> dict[str, float]:
    """Return ``HISTORY_FEATURES`` of one subject from its events at or before ``cutoff``.

    Days are local calendar days (``client.rollups.local_day``); ages are in days before the
    cutoff, capped at ``RECENCY_CAP_DAYS`` when there is no such event. Money is CNY.
    """
    past = [e for e in events if e.ts <= cutoff]
    days = {local_day(e.ts) for e in past}
    recent = [e for e in past if e.ts > cutoff - 7 * DAY]
    purchases = sorted((e for e in past if e.type == _PURCHASE), key=lambda e: e.ts)
    purchase_days = sorted({local_day(e.ts) for e in purchases})
    gaps = [b - a for a, b in zip(purchase_days, purchase_days[1:], strict=False)]
    categories = Counter(e.category for e in past if e.category)
    contacts = sum(1 for e in past if e.type in _CONTACTS)
    contacts += sum(1 for m in messages if m.ts <= cutoff)

    def age(ts: float | None) -> float:
        return RECENCY_CAP_DAYS if ts is None else round(max(cutoff - ts, 0.0) / DAY, 3)

    values = {
        "events_7d": float(len(recent)),
        "active_days_7d": float(len({local_day(e.ts) for e in recent})),
        "events_total": float(len(past)),
        "active_days_total": float(len(days)),
        "last_event_days": age(max((e.ts for e in past), default=None)),
        "purchases_total": float(len(purchases)),
        "purchase_days_total": float(len(purchase_days)),
        "monetary_total": round(sum(e.amount or 0.0 for e in purchases), 2),
        "first_purchase_days": age(purchases[0].ts if purchases else None),
        "last_purchase_days": age(purchases[-1].ts if purchases else None),
        "purchase_gap_mean_days": float(sum(gaps) / len(gaps)) if gaps else 0.0,
        "purchases_365d": float(sum(1 for e in purchases if e.ts > cutoff - 365 * DAY)),
        "contacts_total": float(contacts),
        "category_top_share": (
            round(max(categories.values()) / sum(categories.values()), 4) if categories else 0.0
        ),
    }
    return {name: values[name] for name in HISTORY_FEATURES}


def example_at(
    subject: str,
    events: Sequence[StoredEvent],
    *,
    cutoff: datetime | float,
    window_days: float,
    messages: Sequence[StoredMessage] = (),
    max_len: int = 0,
) -> BehaviourExample | None:
    """Build one subject's example at ``cutoff``, or ``None`` if it has no history by then.

    Parameters
    ----------
    subject : str
        The subject's pseudonym.
    events, messages : Sequence
        The subject's events and (masked) messages, in any order; later ones are fine
        (they give the labels, or are ignored).
    cutoff : datetime or float
        The split time (timezone-aware datetime or UTC epoch seconds).
    window_days : float
        Length of the label window after the cutoff, in days.
    max_len : int
        Event tokens kept for the sequence part (0: none).

    Returns
    -------
    BehaviourExample or None
        Features in ``BEHAVIOUR_FEATURES`` order and the three labels.
    """
    c = _seconds(cutoff)
    before = [e for e in events if e.ts <= c]
    said = [m for m in messages if m.ts <= c]
    if not before and not said:
        return None
    profile = compute_features(subject, before, now=c, messages=said).values
    values = {**profile, **history_features(before, said, cutoff=c)}
    features = tuple(float(values[name]) for name in BEHAVIOUR_FEATURES)
    if not all(math.isfinite(v) for v in features):
        logger.warning("a subject's features are not finite; it gives no example")
        return None
    end = c + window_days * DAY
    window = sorted((e for e in events if c < e.ts <= end), key=lambda e: e.ts)
    next_category = next(
        (CATEGORIES.index(e.category) for e in window if e.category in CATEGORIES), None
    )
    return BehaviourExample(
        subject=subject,
        features=features,
        tokens=tuple(encode_events(before, max_len=max_len)),
        purchase=float(any(e.type == _PURCHASE for e in window)),
        escalation=float(any(e.type == _COMPLAINT for e in window)),
        next_category=next_category,
    )


def examples_at(
    events_by_subject: Mapping[str, Sequence[StoredEvent]],
    *,
    cutoff: datetime | float,
    window_days: float,
    messages_by_subject: Mapping[str, Sequence[StoredMessage]] | None = None,
    max_len: int = 0,
) -> list[BehaviourExample]:
    """Build one example per subject seen at or before ``cutoff``, ordered by pseudonym.

    Parameters
    ----------
    events_by_subject : Mapping[str, Sequence[StoredEvent]]
        Each subject's events.
    cutoff : datetime or float
        The split time.
    window_days : float
        Label window in days.
    messages_by_subject : Mapping[str, Sequence[StoredMessage]] or None
        Each subject's messages (contact history), if any.
    max_len : int
        Event tokens kept per example (0: none).

    Returns
    -------
    list[BehaviourExample]
        Sorted by subject.
    """
    messages = messages_by_subject or {}
    out: list[BehaviourExample] = []
    for subject in sorted(set(events_by_subject) | set(messages)):
        example = example_at(
            subject,
            events_by_subject.get(subject, ()),
            cutoff=cutoff,
            window_days=window_days,
            messages=messages.get(subject, ()),
            max_len=max_len,
        )
        if example is not None:
            out.append(example)
    return out
