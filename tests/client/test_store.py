from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from client.outbox_store import EnqueueCounts, OutboxEntry, OutboxStatus
from client.store import (
    SCHEMA_VERSION,
    EdgeStore,
    InsertCounts,
    StoredConsent,
    StoredEvent,
    StoredMessage,
    StoredProfileField,
)
from consent import ConsentEvent, ConsentStatus, Purpose

from .edge_factories import NOW

T = NOW.timestamp()
A = "ps_" + "a" * 64
B = "ps_" + "b" * 64


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[EdgeStore]:
    with EdgeStore(tmp_path / "edge.sqlite") as s:
        yield s


def _event(event_id: str, subject: str = A, ts: float = T) -> StoredEvent:
    return StoredEvent(event_id, subject, "page_view", "web", ts)


def _entry(content: str, *, key: str | None = None, subject: str = A) -> OutboxEntry:
    return OutboxEntry(
        kind="profile",
        idempotency_key=key or f"key-{content}",
        content_hash=f"hash-{content}",
        payload={"content": content},
        subject=subject,
        purpose="marketing",
    )


def _statuses(store: EdgeStore) -> dict[str, str]:
    rows = store._db.execute("SELECT idempotency_key, status FROM outbox ORDER BY id")
    return dict(rows)


def _field(subject: str, name: str, value: float = 1.0) -> StoredProfileField:
    return StoredProfileField(subject, name, value, None, [], False, T)


# ------------------------------------------------------------------ batched inserts
@pytest.mark.parametrize(
    ("first", "second", "expected", "stored"),
    [
        (["e1", "e2"], ["e3"], InsertCounts(1, 0), 3),
        (["e1", "e2"], ["e1", "e2"], InsertCounts(0, 2), 2),
        (["e1"], ["e1", "e2", "e2", "e3"], InsertCounts(2, 2), 3),  # repeat inside a batch
        ([], ["e1", "e1", "e1"], InsertCounts(1, 2), 1),
        (["e1"], [], InsertCounts(0, 0), 1),
    ],
)
def test_add_events_when_batch_overlaps_then_duplicates_counted(
    store: EdgeStore,
    first: list[str],
    second: list[str],
    expected: InsertCounts,
    stored: int,
) -> None:
    store.add_events([_event(i) for i in first])

    counts = store.add_events([_event(i) for i in second])

    assert counts == expected
    assert store.count("events") == stored


def test_add_events_when_more_ids_than_one_lookup_chunk_then_counts_exact(
    store: EdgeStore,
) -> None:
    store.add_events([_event(f"e{i}", ts=T + i) for i in range(0, 1_300, 2)])

    counts = store.add_events([_event(f"e{i}", ts=T + i) for i in range(1_300)])

    assert counts == InsertCounts(inserted=650, duplicates=650)
    assert store.count("events") == 1_300


def test_add_events_when_duplicate_id_conflicts_then_first_kept_and_span_unchanged(
    store: EdgeStore,
) -> None:
    # Prepare: the same id again with another subject and time (a conflicting re-send)
    store.add_events([_event("e1", A, T)])

    # Execute
    counts = store.add_events([_event("e1", B, T + 99), _event("e2", A, T - 10)])

    # Assert: B was never seen; A's span covers only stored events
    assert counts == InsertCounts(1, 1)
    assert store.subjects() == [A]
    span = store._db.execute("SELECT first_seen, last_seen FROM subjects").fetchone()
    assert span == (T - 10, T)
    assert [e.subject for e in store.iter_events()] == [A, A]


def test_add_messages_and_consents_when_duplicated_then_counted_and_read_back(
    store: EdgeStore,
) -> None:
    message = StoredMessage("m1", A, "app", T, "zh", "<CN_MOBILE>", {"CN_MOBILE": 1})
    consent = StoredConsent(
        "c1",
        ConsentEvent(
            subject=B,
            purpose=Purpose.MARKETING,
            status=ConsentStatus.GRANTED,
            occurred_at=NOW - timedelta(days=1),
            notice_version="v1",
            channel="app",
        ),
    )

    assert store.add_messages([message, message]) == InsertCounts(1, 1)
    assert store.add_consents([consent]) == InsertCounts(1, 0)
    assert store.add_consents([consent]) == InsertCounts(0, 1)
    assert list(store.iter_messages()) == [message]
    assert store.consent_events() == [consent]
    assert store.consent_events(unsynced_only=True) == [consent]
    assert store.subjects() == sorted([A, B])
    assert store.entity_totals() == {"CN_MOBILE": 1}


# ------------------------------------------------------------------ profiles
def test_replace_profile_fields_when_field_no_longer_produced_then_removed(
    store: EdgeStore,
) -> None:
    store.put_profile_fields([_field(A, "score.x"), _field(A, "tag.y"), _field(B, "tag.y")])

    written = store.replace_profile_fields(A, [_field(A, "tag.y", 2.0)])

    assert written == 1
    assert [(f.field, f.value) for f in store.profile_fields(subject=A)] == [("tag.y", 2.0)]
    assert len(store.profile_fields(subject=B)) == 1  # other subjects untouched


def test_replace_profiles_when_drop_others_then_only_given_subjects_remain(
    store: EdgeStore,
) -> None:
    store.put_profile_fields([_field(A, "tag.y"), _field(B, "tag.y")])

    store.replace_profiles({A: [_field(A, "tag.z")]}, drop_others=True)

    assert [(f.subject, f.field) for f in store.profile_fields()] == [(A, "tag.z")]


def test_replace_profiles_when_field_listed_under_other_subject_then_nothing_changes(
    store: EdgeStore,
) -> None:
    store.put_profile_fields([_field(A, "tag.y")])

    with pytest.raises(ValueError, match="another subject"):
        store.replace_profiles({A: [_field(B, "tag.z")]})

    assert [(f.subject, f.field) for f in store.profile_fields()] == [(A, "tag.y")]


def test_replace_profiles_when_insert_fails_then_old_fields_kept(store: EdgeStore) -> None:
    store.put_profile_fields([_field(A, "tag.y")])

    with pytest.raises(sqlite3.IntegrityError):  # the same field twice: primary key clash
        store.replace_profile_fields(A, [_field(A, "tag.z"), _field(A, "tag.z")])

    assert [f.field for f in store.profile_fields(subject=A)] == ["tag.y"]


# ------------------------------------------------------------------ outbox
def test_enqueue_when_same_content_hash_then_nothing_queued(store: EdgeStore) -> None:
    first = store.enqueue_many([_entry("v1")])

    again = store.enqueue_many([_entry("v1", key="key-v1-recomputed")])

    assert first == EnqueueCounts(queued=1)
    assert again == EnqueueCounts(unchanged=1)
    assert store.count("outbox") == 1


@pytest.mark.parametrize(
    ("earlier", "expected"),
    [
        (OutboxStatus.DELIVERED, EnqueueCounts(unchanged=1)),
        (OutboxStatus.REFUSED, EnqueueCounts(unchanged=1)),  # the server said no to it
        (OutboxStatus.FAILED, EnqueueCounts(unchanged=1)),
        (OutboxStatus.SUPERSEDED, EnqueueCounts(queued=1)),  # never sent: queue again
    ],
)
def test_enqueue_when_same_content_after_final_state_then_as_expected(
    store: EdgeStore, earlier: OutboxStatus, expected: EnqueueCounts
) -> None:
    store.enqueue_many([_entry("v1")])
    [item] = store.due(now=T + 1e9)
    if earlier is OutboxStatus.DELIVERED:
        store.mark_delivered(item.id, now=T)
    else:
        store.mark_dead(item.id, status=earlier, error="test")  # type: ignore[arg-type]

    counts = store.enqueue_many([_entry("v1")])

    assert counts == expected


def test_enqueue_when_newer_content_then_older_pending_superseded(store: EdgeStore) -> None:
    # Prepare: v1 delivered, v2 pending (an outage), v3 arrives
    store.enqueue_many([_entry("v1")])
    store.mark_delivered(store.due(now=T + 1e9)[0].id, now=T)
    store.enqueue_many([_entry("v2"), _entry("w1", subject=B)])

    # Execute
    counts = store.enqueue_many([_entry("v3")])

    # Assert: only v3 (and B's own upload) are due; v1 stays delivered
    assert counts == EnqueueCounts(queued=1, superseded=1)
    assert _statuses(store) == {
        "key-v1": "delivered",
        "key-v2": "superseded",
        "key-w1": "pending",
        "key-v3": "pending",
    }
    assert [i.idempotency_key for i in store.due(now=T + 1e9)] == ["key-w1", "key-v3"]


def test_enqueue_when_content_returns_to_delivered_version_then_skipped(
    store: EdgeStore,
) -> None:
    # v1 delivered, then v2 pending, then back to v1 while v2 still waits
    store.enqueue_many([_entry("v1")])
    store.mark_delivered(store.due(now=T + 1e9)[0].id, now=T)
    store.enqueue_many([_entry("v2")])

    counts = store.enqueue_many([_entry("v1")])

    # the latest non-superseded item is v2 (pending), so v1 is queued again with its old key
    assert counts == EnqueueCounts(queued=1, superseded=1)
    assert _statuses(store) == {"key-v2": "superseded", "key-v1": "pending"}


def test_supersede_pending_when_target_closed_then_only_its_pending_items(
    store: EdgeStore,
) -> None:
    store.enqueue_many([_entry("v1"), _entry("w1", subject=B)])

    n = store.supersede_pending([("profile", A, "marketing")], reason="withdrawn")

    assert n == 1
    assert _statuses(store) == {"key-v1": "superseded", "key-w1": "pending"}
    assert store.outbox_item(1).status is OutboxStatus.SUPERSEDED  # type: ignore[union-attr]


def test_outbox_state_machine_when_marked_then_counts_and_due_follow(store: EdgeStore) -> None:
    # Prepare
    store.enqueue_many([_entry(c, subject=s) for c, s in [("a", A), ("b", B)]])
    store.enqueue_many([_entry(c, subject=f"ps_{c * 64}") for c in "cde"])
    a, b, c, d, e = store.due(now=T + 1e9)

    # Execute
    store.mark_delivered(a.id, now=T)
    store.mark_retry(b.id, error="HTTP 503", retry_at=T + 1e9 + 60)
    store.mark_dead(c.id, status=OutboxStatus.REFUSED, error="HTTP 403: no_consent")
    store.mark_dead(d.id, status=OutboxStatus.FAILED, error="HTTP 422")
    store.mark_dead(e.id, status=OutboxStatus.SUPERSEDED, error="withdrawn")

    # Assert
    assert store.outbox_counts() == {
        "pending": 1,
        "delivered": 1,
        "refused": 1,
        "failed": 1,
        "superseded": 1,
    }
    assert store.due(now=T + 1e9) == []  # b waits for its retry time
    [retry] = store.due(now=T + 1e9 + 61)
    assert retry.id == b.id and retry.attempts == 1
    attempts = {i.id: i.attempts for i in map(store.outbox_item, (a.id, c.id, e.id)) if i}
    assert attempts == {a.id: 1, c.id: 1, e.id: 0}


@pytest.mark.parametrize(
    ("mark", "message"),
    [
        (lambda s, i: s.mark_delivered(i, now=T), "delivered, not pending"),
        (lambda s, i: s.mark_retry(i, error="x", retry_at=T), "delivered, not pending"),
        (lambda s, i: s.mark_dead(i, status=OutboxStatus.REFUSED, error="x"), "not pending"),
        (lambda s, i: s.mark_delivered(i + 100, now=T), "missing, not pending"),
        (lambda s, i: s.mark_dead(i, status=OutboxStatus.PENDING, error="x"), "status must"),
        (lambda s, i: s.mark_dead(i, status=OutboxStatus.DELIVERED, error="x"), "status must"),
    ],
)
def test_outbox_mark_when_item_not_pending_or_status_invalid_then_value_error(
    store: EdgeStore, mark: object, message: str
) -> None:
    store.enqueue_many([_entry("v1")])
    [item] = store.due(now=T + 1e9)
    store.mark_delivered(item.id, now=T)

    with pytest.raises(ValueError, match=message):
        mark(store, item.id)  # type: ignore[operator]

    assert store.outbox_counts()["delivered"] == 1


def test_store_when_schema_1_file_then_outbox_migrated(tmp_path: Path) -> None:
    # Prepare: a schema-1 outbox (no status; never-due retries and meta counters)
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, subject TEXT,
            purpose TEXT, idempotency_key TEXT NOT NULL UNIQUE, payload_json TEXT NOT NULL,
            created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL, delivered_at REAL, last_error TEXT);
        CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at);
        INSERT INTO meta VALUES ('schema_version', '1'), ('outbox_refused', '1');
        """
    )
    rows = [
        ("k1", 1.0, 5.0, None),
        ("k2", None, 5.0, None),
        ("k3", None, math.inf, "refused: HTTP 403"),
        ("k4", None, math.inf, "failed: HTTP 422"),
        ("k5", None, math.inf, "withheld: no_consent_for_purpose at delivery"),
    ]
    for key, delivered, next_at, error in rows:
        db.execute(
            "INSERT INTO outbox (kind, subject, purpose, idempotency_key, payload_json, "
            "created_at, next_attempt_at, delivered_at, last_error) VALUES (?,?,?,?,?,?,?,?,?)",
            ("profile", A, "marketing", key, json.dumps({}), 1.0, next_at, delivered, error),
        )
    db.commit()
    db.close()

    # Execute
    with EdgeStore(path) as store:
        counts = store.outbox_counts()
        due = store.due(now=10.0)
        meta = (store.get_meta("schema_version"), store.get_meta("outbox_refused"))

    # Assert
    assert counts == {"pending": 1, "delivered": 1, "refused": 1, "failed": 1, "superseded": 1}
    assert [i.idempotency_key for i in due] == ["k2"]
    assert meta == (SCHEMA_VERSION, None)


# ------------------------------------------------------------------ rollups
def _rollup_rows(store: EdgeStore) -> dict[tuple[str, int], tuple[int, int]]:
    rows = store._db.execute("SELECT subject, day, events, seq FROM daily_rollups")
    return {(s, d): (n, seq) for s, d, n, seq in rows}


def test_add_events_when_batches_then_only_touched_rollup_rows_recomputed(
    store: EdgeStore,
) -> None:
    from client.rollups import local_day

    # Prepare: A on two days, B on one
    store.add_events([_event("a1", A, T), _event("a2", A, T - 86_400), _event("b1", B, T)])
    before = _rollup_rows(store)

    # Execute: one more event of A today, one duplicate of B
    store.add_events([_event("a3", A, T + 60), _event("b1", B, T)])

    # Assert
    after = _rollup_rows(store)
    today, yesterday = local_day(T), local_day(T - 86_400)
    assert after[(A, today)][0] == 2 and after[(A, today)][1] > before[(A, today)][1]
    assert after[(A, yesterday)] == before[(A, yesterday)]
    assert after[(B, today)] == before[(B, today)]
    assert store.touched_subjects(since=before[(A, today)][1]) == [A]
    assert store.change_seq() == after[(A, today)][1]


def test_add_messages_when_new_day_then_rollup_counts_messages(store: EdgeStore) -> None:
    store.add_messages([StoredMessage("m1", A, "sms", T, "zh", "<m>", {})])

    [[day]] = [list(days) for days in store.daily_rollups().values()]
    aggregate = store.daily_rollups(subjects=[A])[A][day]

    assert (aggregate.events, aggregate.messages, aggregate.channels) == (0, 1, {"sms": 1})
    assert store.rollup_subjects() == [A] and store.count("daily_rollups") == 1


def test_add_consents_when_inserted_then_no_rollups_and_no_change(store: EdgeStore) -> None:
    consent = StoredConsent(
        "c1",
        ConsentEvent(
            subject=B,
            purpose=Purpose.MARKETING,
            status=ConsentStatus.GRANTED,
            occurred_at=NOW,
            notice_version="v1",
            channel="app",
        ),
    )

    store.add_consents([consent])

    assert store.count("daily_rollups") == 0 and store.change_seq() == 0


def test_rebuild_rollups_when_recomputed_then_same_aggregates(store: EdgeStore) -> None:
    store.add_events([_event(f"e{i}", A if i % 2 else B, T - i * 5_000) for i in range(50)])
    store.add_messages([StoredMessage("m1", A, "sms", T - 7_000, "zh", "<m>", {})])
    incremental = store.daily_rollups()

    written = store.rebuild_rollups()

    assert store.daily_rollups() == incremental
    assert written == sum(len(days) for days in incremental.values())


def test_store_when_schema_2_file_with_events_then_columns_added_and_rollups_built(
    tmp_path: Path,
) -> None:
    # Prepare: a schema-2 events table (no original amount columns) holding rows
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE events (
            event_id TEXT PRIMARY KEY, subject TEXT NOT NULL, type TEXT NOT NULL,
            channel TEXT NOT NULL, ts REAL NOT NULL, category TEXT, amount REAL, currency TEXT,
            session_id TEXT, rating INTEGER, ingested_at REAL NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '2');
        """
    )
    db.execute(
        "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        ("e1", A, "purchase", "web", T, "books", 12.5, "CNY", None, None, T),
    )
    db.commit()
    db.close()

    # Execute
    with EdgeStore(path) as store:
        [event] = store.iter_events()
        rollups = store.daily_rollups()
        store.add_events(
            [StoredEvent("e2", A, "refund", "web", T, amount=1.0, original_amount=-1.0)]
        )
        events = list(store.iter_events())

    # Assert
    assert event.amount == 12.5 and event.original_amount is None
    assert [agg.spend_cents for agg in rollups[A].values()] == [1250]
    assert events[1].original_amount == -1.0


def test_events_between_when_range_and_subjects_then_half_open_and_filtered(
    store: EdgeStore,
) -> None:
    store.add_events([_event(f"e{i}", A if i < 5 else B, T + i) for i in range(10)])

    picked = store.events_between(start=T + 2, end=T + 7, subjects=[B])

    assert [e.event_id for e in picked] == ["e5", "e6"]
    assert len(list(store.events_between(start=T, end=T + 10))) == 10


def test_rollup_table_when_created_then_columns_match_rollup_columns(store: EdgeStore) -> None:
    from client.rollups import ROLLUP_COLUMNS

    columns = [r[1] for r in store._db.execute("PRAGMA table_info(daily_rollups)")]

    assert columns == ["subject", "day", *ROLLUP_COLUMNS, "seq"]
