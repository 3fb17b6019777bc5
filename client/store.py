"""The edge's local store: one SQLite file holding everything an edge knows.

Raw identifiers never enter it: rows are keyed by pseudonym, message text is stored only
after PII masking. Every insert of events or messages also recomputes the daily rollups
(``client.rollups``) of the (subject, day) pairs it touched, in the same transaction, and
stamps them with a change sequence number, so profiles can be refreshed for touched subjects
only. The store also holds the upload outbox (durable, one row per queued upload with a
status: pending, delivered, refused, failed or superseded), the privacy-ledger state, the
latest global model weights and small metadata (edge id, channel).

Why this module is above 400 lines (STYLE H14): it is the single owner of the edge's SQLite
file: every table's reads and writes share one connection and its transactions. The outbox
table's methods live in ``client.outbox_store`` (inherited) and delivery in ``client.outbox``;
the daily-rollup table's in ``client.rollup_store`` (inherited).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from consent import ConsentEvent, ConsentState, ConsentStatus, Purpose

from .message_score_store import MessageScoreTable, ensure_message_score_schema
from .outbox_store import OutboxTable, ensure_outbox_schema
from .rollup_store import RollupTable, ensure_rollup_schema, refresh_rollups, subject_filters
from .rollups import EventLike, MessageLike, local_day
from .token_store import TokenTable, ensure_token_schema

SCHEMA_VERSION = "4"
#: File name of the store inside an edge directory (``<edge_dir>/edge.sqlite``).
STORE_FILENAME = "edge.sqlite"
#: Ids looked up per ``IN (...)`` query when a batch is checked for duplicates.
_ID_CHUNK = 500
#: Metadata key prefix of a global model's architecture (``+ model name``).
_ARCHITECTURE_META = "global_model_architecture."
#: Page cache (negative: KiB). The default 2 MB thrashes on the (subject, ts) indexes.
_CACHE_KIB = -65_536

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    pseudonym TEXT PRIMARY KEY, first_seen REAL NOT NULL, last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, subject TEXT NOT NULL, type TEXT NOT NULL,
    channel TEXT NOT NULL, ts REAL NOT NULL, category TEXT, amount REAL, currency TEXT,
    session_id TEXT, rating INTEGER, ingested_at REAL NOT NULL, original_amount REAL,
    original_currency TEXT);
CREATE INDEX IF NOT EXISTS events_subject_ts ON events (subject, ts);
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY, subject TEXT NOT NULL, channel TEXT NOT NULL,
    ts REAL NOT NULL, lang TEXT NOT NULL, masked_text TEXT NOT NULL,
    entity_counts TEXT NOT NULL, ingested_at REAL NOT NULL, labels TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS messages_subject ON messages (subject, ts);
CREATE TABLE IF NOT EXISTS consents (
    consent_id TEXT PRIMARY KEY, subject TEXT NOT NULL, purpose TEXT NOT NULL,
    status TEXT NOT NULL, occurred_at REAL NOT NULL, notice_version TEXT NOT NULL,
    channel TEXT NOT NULL, separate INTEGER NOT NULL, expires_at REAL,
    evidence_hash TEXT, synced INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS consents_subject ON consents (subject, occurred_at);
CREATE TABLE IF NOT EXISTS profiles (
    subject TEXT NOT NULL, field TEXT NOT NULL, value_json TEXT NOT NULL,
    confidence REAL, explanation_json TEXT NOT NULL, provisional INTEGER NOT NULL,
    computed_at REAL NOT NULL, PRIMARY KEY (subject, field));
CREATE TABLE IF NOT EXISTS ledger (
    model TEXT PRIMARY KEY, state_json TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS global_models (
    model TEXT PRIMARY KEY, server_round INTEGER NOT NULL, weights BLOB NOT NULL,
    updated_at REAL NOT NULL, version TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS suppressed_fields (
    subject TEXT NOT NULL, field TEXT NOT NULL, reason TEXT NOT NULL,
    PRIMARY KEY (subject, field));
CREATE TABLE IF NOT EXISTS restricted_subjects (
    subject TEXT PRIMARY KEY, purposes_json TEXT NOT NULL, restricted_at REAL NOT NULL);
"""
#: Columns of an events row as inserted (``ingested_at`` is the insert time).
_EVENT_COLUMNS = (
    "event_id, subject, type, channel, ts, category, amount, currency, session_id, rating, "
    "ingested_at, original_amount, original_currency"
)
_EVENT_SELECT = (
    "SELECT event_id, subject, type, channel, ts, category, amount, currency, session_id, "
    "rating, original_amount, original_currency FROM events"
)
_MESSAGE_SELECT = (
    "SELECT message_id, subject, channel, ts, lang, masked_text, entity_counts, labels "
    "FROM messages"
)
_COUNTABLE = frozenset(
    {"subjects", "events", "messages", "consents", "profiles", "outbox", "daily_rollups"}
)


def to_epoch(moment: datetime) -> float:
    """Return POSIX seconds (UTC) of a timezone-aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    """Return the UTC datetime of POSIX seconds."""
    return datetime.fromtimestamp(seconds, tz=UTC)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A cleaned behaviour event as stored (pseudonymous, UTC epoch seconds).

    ``amount`` is in CNY with two decimals (a refund's is its size, never negative) and
    ``currency`` is then ``"CNY"``; ``original_amount`` and ``original_currency`` keep the
    amount as the channel sent it.
    """

    event_id: str
    subject: str
    type: str
    channel: str
    ts: float
    category: str | None = None
    amount: float | None = None
    currency: str | None = None
    session_id: str | None = None
    rating: int | None = None
    original_amount: float | None = None
    original_currency: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A customer message after masking; ``entity_counts`` maps entity type to count.

    ``labels`` holds an agent's labels for the message (head name to label, e.g.
    ``{"intent": "complaint", "urgency": "urgent"}``; empty when unlabelled).
    """

    message_id: str
    subject: str
    channel: str
    ts: float
    lang: str
    masked_text: str
    entity_counts: dict[str, int]
    labels: dict[str, str] = dataclass_field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredConsent:
    """A consent event as stored, with the edge's id for it."""

    consent_id: str
    event: ConsentEvent


@dataclass(frozen=True, slots=True)
class StoredProfileField:
    """A computed profile field for one subject."""

    subject: str
    field: str
    value: bool | int | float | str
    confidence: float | None
    explanation: list[dict[str, Any]]
    provisional: bool
    computed_at: float


@dataclass(frozen=True, slots=True)
class InsertCounts:
    """Rows inserted and rows skipped as duplicates of existing ids."""

    inserted: int
    duplicates: int


_PROFILE_INSERT = "INSERT INTO profiles VALUES (?,?,?,?,?,?,?)"


def _profile_row(f: StoredProfileField) -> tuple[Any, ...]:
    return (
        f.subject,
        f.field,
        json.dumps(f.value),
        f.confidence,
        json.dumps(f.explanation, ensure_ascii=False),
        int(f.provisional),
        f.computed_at,
    )


def _message(row: Sequence[Any]) -> StoredMessage:
    return StoredMessage(
        message_id=row[0],
        subject=row[1],
        channel=row[2],
        ts=row[3],
        lang=row[4],
        masked_text=row[5],
        entity_counts=json.loads(row[6]),
        labels=json.loads(row[7]) if row[7] else {},
    )


class EdgeStore(OutboxTable, RollupTable, TokenTable, MessageScoreTable):
    """One edge's SQLite store.

    Parameters
    ----------
    path : Path
        The SQLite file; created with its schema on first open (a schema-1 file is migrated).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA cache_size={_CACHE_KIB}")
        self._db.executescript(_TABLES)
        ensure_outbox_schema(self._db)
        ensure_rollup_schema(self._db)
        ensure_token_schema(self._db)
        ensure_message_score_schema(self._db)
        self._migrate_v3()
        self._migrate_v4()
        with self._db:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (SCHEMA_VERSION,),
            )

    def _migrate_v3(self) -> None:
        """Migrate schema 2 to 3: original-amount columns; rollups for existing rows."""
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(events)")}
        for name, sql_type in (("original_amount", "REAL"), ("original_currency", "TEXT")):
            if name not in columns:
                self._db.execute(f"ALTER TABLE events ADD COLUMN {name} {sql_type}")
        self.ensure_rollups()

    def _migrate_v4(self) -> None:
        """Migrate schema 3 to 4: agent labels on messages, the global model's version."""
        for table, column in (("messages", "labels TEXT NOT NULL DEFAULT '{}'"),
                              ("global_models", "version TEXT NOT NULL DEFAULT ''")):
            columns = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
            if column.split()[0] not in columns:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")

    @classmethod
    def for_edge_dir(cls, edge_dir: Path) -> EdgeStore:
        """Open the store of the edge whose directory is ``edge_dir``."""
        return cls(Path(edge_dir) / STORE_FILENAME)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run reads and writes in one write-locked transaction (``BEGIN IMMEDIATE``)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.rollback()
            raise
        self._db.commit()

    # ------------------------------------------------------------------ metadata
    def get_meta(self, key: str) -> str | None:
        """Return a metadata value, or ``None``."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Set a metadata value."""
        with self._db:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # ------------------------------------------------------------------ ingestion
    def _insert_new(
        self,
        table: Literal["events", "messages", "consents"],
        rows: Sequence[tuple[Any, ...]],
        seen_at: Sequence[tuple[str, float]],
        activity: Sequence[StoredEvent] | Sequence[StoredMessage] = (),
    ) -> InsertCounts:
        """Insert the rows whose id (first column) is new; widen their subjects' spans.

        One transaction: existing ids of the batch are looked up (``IN`` chunks), repeats
        inside the batch keep their first occurrence, the new rows go in with one
        ``executemany`` and the subjects they touch are upserted with another. For events
        and messages, the daily rollups of the (subject, day) pairs of new rows are
        recomputed in the same transaction (``activity``: the rows' records, in order).
        """
        if not rows:
            return InsertCounts(0, 0)
        id_column = {"events": "event_id", "messages": "message_id", "consents": "consent_id"}
        column = id_column[table]
        with self._transaction() as db:
            ids = [row[0] for row in rows]
            known: set[str] = set()
            for start in range(0, len(ids), _ID_CHUNK):
                chunk = ids[start : start + _ID_CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT {column} FROM {table} WHERE {column} IN ({marks})"
                known.update(r[0] for r in db.execute(sql, chunk))
            fresh: list[tuple[Any, ...]] = []
            times: dict[str, list[float]] = defaultdict(list)
            new: dict[tuple[str, int], tuple[list[EventLike], list[MessageLike]]] = {}
            side = int(table == "messages")
            for i, (row, (subject, ts)) in enumerate(zip(rows, seen_at, strict=True)):
                if row[0] in known:
                    continue
                known.add(row[0])
                fresh.append(row)
                times[subject].append(ts)
                if activity:
                    record: Any = activity[i]
                    new.setdefault((subject, local_day(ts)), ([], []))[side].append(record)
            marks = ",".join("?" * len(rows[0]))
            names = f" ({_EVENT_COLUMNS})" if table == "events" else ""
            fresh.sort(key=lambda row: (row[1], row[0]))  # subject order: index locality
            db.executemany(f"INSERT INTO {table}{names} VALUES ({marks})", fresh)
            db.executemany(
                "INSERT INTO subjects (pseudonym, first_seen, last_seen) VALUES (?, ?, ?) "
                "ON CONFLICT(pseudonym) DO UPDATE SET "
                "first_seen = MIN(first_seen, excluded.first_seen), "
                "last_seen = MAX(last_seen, excluded.last_seen)",
                [(s, min(seen), max(seen)) for s, seen in times.items()],
            )
            if new:
                days: dict[str, set[int]] = defaultdict(set)
                for subject, day in new:
                    days[subject].add(day)
                refresh_rollups(db, days, fresh=new)
        return InsertCounts(len(fresh), len(rows) - len(fresh))

    def add_events(self, events: Iterable[StoredEvent]) -> InsertCounts:
        """Insert events in one transaction; ids already present count as duplicates."""
        now = time.time()
        records = list(events)
        rows = [
            (e.event_id, e.subject, e.type, e.channel, e.ts, e.category, e.amount,
             e.currency, e.session_id, e.rating, now, e.original_amount, e.original_currency)
            for e in records
        ]  # fmt: skip
        return self._insert_new("events", rows, [(r[1], r[4]) for r in rows], records)

    def add_messages(self, messages: Iterable[StoredMessage]) -> InsertCounts:
        """Insert masked messages in one transaction; ids already present are duplicates."""
        now = time.time()
        records = list(messages)
        rows = [
            (m.message_id, m.subject, m.channel, m.ts, m.lang, m.masked_text,
             json.dumps(m.entity_counts, sort_keys=True) if m.entity_counts else "{}", now,
             json.dumps(m.labels, sort_keys=True) if m.labels else "{}")
            for m in records
        ]  # fmt: skip
        return self._insert_new("messages", rows, [(r[1], r[3]) for r in rows], records)

    def add_consents(self, consents: Iterable[StoredConsent]) -> InsertCounts:
        """Insert consent events in one transaction (append-only; never updated)."""
        rows: list[tuple[Any, ...]] = []
        for c in consents:
            e = c.event
            rows.append(
                (c.consent_id, e.subject, e.purpose.value, e.status.value,
                 to_epoch(e.occurred_at), e.notice_version, e.channel, int(e.separate),
                 None if e.expires_at is None else to_epoch(e.expires_at),
                 e.evidence_hash, 0)
            )  # fmt: skip
        return self._insert_new("consents", rows, [(r[1], r[4]) for r in rows])

    # ------------------------------------------------------------------ reading
    def subjects(self) -> list[str]:
        """Return every known pseudonym, sorted."""
        return [r[0] for r in self._db.execute("SELECT pseudonym FROM subjects ORDER BY 1")]

    def count(self, table: str) -> int:
        """Return the number of rows of one of the store's tables."""
        if table not in _COUNTABLE:
            raise ValueError(f"unknown table {table!r}")
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def iter_events(self, *, subject: str | None = None) -> Iterator[StoredEvent]:
        """Yield events ordered by subject then time (one subject's when ``subject`` is set)."""
        sql = _EVENT_SELECT
        args: tuple[Any, ...] = ()
        if subject is not None:
            sql += " WHERE subject = ?"
            args = (subject,)
        for row in self._db.execute(sql + " ORDER BY subject, ts, event_id", args):
            yield StoredEvent(*row)

    def event_time_range(self) -> tuple[float, float] | None:
        """Return the earliest and latest event times (UTC epoch seconds), or ``None``."""
        row = self._db.execute("SELECT MIN(ts), MAX(ts) FROM events").fetchone()
        return None if row is None or row[0] is None else (float(row[0]), float(row[1]))

    def events_by_subject(self) -> dict[str, list[StoredEvent]]:
        """Return every subject's events in time order."""
        grouped: dict[str, list[StoredEvent]] = defaultdict(list)
        for event in self.iter_events():
            grouped[event.subject].append(event)
        return dict(grouped)

    def iter_messages(self, *, subject: str | None = None) -> Iterator[StoredMessage]:
        """Yield masked messages ordered by subject then time."""
        sql = _MESSAGE_SELECT
        args: tuple[Any, ...] = ()
        if subject is not None:
            sql += " WHERE subject = ?"
            args = (subject,)
        for row in self._db.execute(sql + " ORDER BY subject, ts, message_id", args):
            yield _message(row)

    def entity_totals(self) -> dict[str, int]:
        """Return how many PII entities of each type were masked across all messages."""
        totals: dict[str, int] = defaultdict(int)
        for (counts,) in self._db.execute("SELECT entity_counts FROM messages"):
            for kind, n in json.loads(counts).items():
                totals[kind] += int(n)
        return dict(sorted(totals.items()))

    def consent_events(self, *, unsynced_only: bool = False) -> list[StoredConsent]:
        """Return consent events, oldest first (only those not yet sent, if asked)."""
        sql = (
            "SELECT consent_id, subject, purpose, status, occurred_at, notice_version, "
            "channel, separate, expires_at, evidence_hash FROM consents"
        )
        if unsynced_only:
            sql += " WHERE synced = 0"
        out: list[StoredConsent] = []
        for row in self._db.execute(sql + " ORDER BY occurred_at, consent_id"):
            event = ConsentEvent(
                subject=row[1],
                purpose=Purpose(row[2]),
                status=ConsentStatus(row[3]),
                occurred_at=from_epoch(row[4]),
                notice_version=row[5],
                channel=row[6],
                separate=bool(row[7]),
                expires_at=None if row[8] is None else from_epoch(row[8]),
                evidence_hash=row[9],
            )
            out.append(StoredConsent(row[0], event))
        return out

    def consent_states(self) -> dict[str, ConsentState]:
        """Return each subject's consent state folded from its stored events.

        Fields the server suppressed (rectified or deleted on the subject's request, learnt
        from the subject-event feed: ``client.feed``) are carried in the states, so
        ``consent.evaluate`` withholds them from uploads.
        """
        grouped: dict[str, list[ConsentEvent]] = defaultdict(list)
        for stored in self.consent_events():
            grouped[stored.event.subject].append(stored.event)
        hidden: dict[str, set[str]] = defaultdict(set)
        for subject, name in self._db.execute("SELECT subject, field FROM suppressed_fields"):
            hidden[subject].add(name)
        return {
            s: ConsentState(events, suppressed=hidden.get(s, ())) for s, events in grouped.items()
        }

    def mark_consents_synced(self, consent_ids: Iterable[str]) -> None:
        """Record that these consent events reached the server."""
        with self._db:
            self._db.executemany(
                "UPDATE consents SET synced = 1 WHERE consent_id = ?", [(c,) for c in consent_ids]
            )

    # ------------------------------------------------------------------ time ranges
    def events_between(
        self, *, start: float, end: float, subjects: Collection[str] | None = None
    ) -> Iterator[StoredEvent]:
        """Yield events with ``start <= ts < end`` (of ``subjects`` only, if given)."""
        for where, args in subject_filters(subjects, "ts >= ? AND ts < ?"):
            sql = _EVENT_SELECT + where + " ORDER BY subject, ts, event_id"
            for row in self._db.execute(sql, (*args, start, end)):
                yield StoredEvent(*row)

    def messages_between(
        self, *, start: float, end: float, subjects: Collection[str] | None = None
    ) -> Iterator[StoredMessage]:
        """Yield masked messages with ``start <= ts < end`` (of ``subjects`` only, if given)."""
        for where, args in subject_filters(subjects, "ts >= ? AND ts < ?"):
            sql = _MESSAGE_SELECT + where + " ORDER BY subject, ts, message_id"
            for row in self._db.execute(sql, (*args, start, end)):
                yield _message(row)

    # ------------------------------------------------------------------ profiles
    def put_profile_fields(self, fields: Iterable[StoredProfileField]) -> int:
        """Insert or replace single profile fields (others of the subject stay); returns count."""
        rows = [_profile_row(f) for f in fields]
        with self._db:
            self._db.executemany(
                _PROFILE_INSERT + " ON CONFLICT(subject, field) "
                "DO UPDATE SET value_json = excluded.value_json, "
                "confidence = excluded.confidence, "
                "explanation_json = excluded.explanation_json, "
                "provisional = excluded.provisional, computed_at = excluded.computed_at",
                rows,
            )
        return len(rows)

    def replace_profiles(
        self,
        profiles: Mapping[str, Iterable[StoredProfileField]],
        *,
        drop_others: bool = False,
    ) -> int:
        """Replace each given subject's whole field set in one transaction.

        Fields a subject held before but that are not given now are deleted, so a field that
        is no longer produced (e.g. a score when the edge lost its model) does not linger.

        Parameters
        ----------
        profiles : Mapping[str, Iterable[StoredProfileField]]
            Pseudonym -> that subject's complete new field set (may be empty).
        drop_others : bool
            Also delete the profiles of subjects not in ``profiles`` (a full rebuild).

        Returns
        -------
        int
            Fields written.

        Raises
        ------
        ValueError
            If a field's subject is not the subject it is listed under.
        """
        rows: list[tuple[Any, ...]] = []
        for subject, fields in profiles.items():
            for f in fields:
                if f.subject != subject:
                    raise ValueError("profiles: a field is listed under another subject")
                rows.append(_profile_row(f))
        with self._transaction() as db:
            if drop_others:
                db.execute("DELETE FROM profiles")
            else:
                db.executemany("DELETE FROM profiles WHERE subject = ?", [(s,) for s in profiles])
            db.executemany(_PROFILE_INSERT, rows)
        return len(rows)

    def replace_profile_fields(self, subject: str, fields: Iterable[StoredProfileField]) -> int:
        """Replace one subject's whole field set atomically; returns fields written."""
        return self.replace_profiles({subject: fields})

    def profile_fields(self, *, subject: str | None = None) -> list[StoredProfileField]:
        """Return stored profile fields, by subject then field name."""
        sql = "SELECT * FROM profiles"
        args: tuple[Any, ...] = ()
        if subject is not None:
            sql += " WHERE subject = ?"
            args = (subject,)
        return [
            StoredProfileField(
                subject=r[0], field=r[1], value=json.loads(r[2]), confidence=r[3],
                explanation=json.loads(r[4]), provisional=bool(r[5]), computed_at=r[6],
            )
            for r in self._db.execute(sql + " ORDER BY subject, field", args)
        ]  # fmt: skip

    # ------------------------------------------------------------------ privacy ledger
    def load_ledger_state(self, model: str) -> dict[str, Any] | None:
        """Return the saved ledger state dict of ``model``, or ``None``."""
        row = self._db.execute("SELECT state_json FROM ledger WHERE model = ?", (model,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def save_ledger_state(self, model: str, state: dict[str, Any]) -> None:
        """Persist the ledger state dict of ``model`` atomically."""
        with self._db:
            self._db.execute(
                "INSERT INTO ledger VALUES (?, ?, ?) ON CONFLICT(model) DO UPDATE SET "
                "state_json = excluded.state_json, updated_at = excluded.updated_at",
                (model, json.dumps(state, sort_keys=True), time.time()),
            )

    def save_global_model(
        self,
        model: str,
        *,
        server_round: int,
        weights: bytes,
        version: str = "",
        architecture: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep the latest global weights received from the server (serialised bytes).

        ``version`` names the server registry's version of these weights (``text:v3``), or
        ``""`` when the server named none; ``architecture`` is the model config that rebuilds
        a model from them (``global_model_architecture``).
        """
        if architecture is not None:
            self.set_meta(f"{_ARCHITECTURE_META}{model}", json.dumps(dict(architecture)))
        with self._db:
            self._db.execute(
                "INSERT INTO global_models (model, server_round, weights, updated_at, version) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(model) DO UPDATE SET "
                "server_round = excluded.server_round, weights = excluded.weights, "
                "updated_at = excluded.updated_at, version = excluded.version",
                (model, server_round, sqlite3.Binary(weights), time.time(), version),
            )

    def global_model_architecture(self, model: str) -> dict[str, Any] | None:
        """Return the architecture kept with the global model, or ``None``."""
        raw = self.get_meta(f"{_ARCHITECTURE_META}{model}")
        return None if raw is None else dict(json.loads(raw))

    def global_model_version(self, model: str) -> str | None:
        """Return the registry version of the kept global model (``""`` if unnamed), or None."""
        row = self._db.execute(
            "SELECT version FROM global_models WHERE model = ?", (model,)
        ).fetchone()
        return None if row is None else str(row[0])

    def load_global_model(self, model: str) -> tuple[int, bytes] | None:
        """Return ``(server_round, weights)`` of the latest global model, or ``None``."""
        row = self._db.execute(
            "SELECT server_round, weights FROM global_models WHERE model = ?", (model,)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def ledger_models(self) -> list[str]:
        """Return the models that have a ledger on this edge."""
        return [r[0] for r in self._db.execute("SELECT model FROM ledger ORDER BY model")]
