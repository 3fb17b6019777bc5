"""The outbox table of the edge store: queued uploads and their states.

Every upload the edge means to send is one row with a status (``OutboxStatus``). Queueing
skips uploads whose content did not change and supersedes stale pending ones, so rebuilding
unchanged profiles queues nothing and a long outage does not build a backlog of old
versions. ``EdgeStore`` inherits these methods (``store.enqueue_many``, ``store.due``, ...);
``client.outbox`` drives delivery.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

#: The outbox table (created with the rest of the store's schema).
OUTBOX_TABLE = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, subject TEXT,
    purpose TEXT, idempotency_key TEXT NOT NULL UNIQUE, payload_json TEXT NOT NULL,
    created_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL, delivered_at REAL, last_error TEXT,
    status TEXT NOT NULL DEFAULT 'pending', content_hash TEXT);
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS outbox_target ON outbox (kind, subject, purpose, id);
"""
#: Schema 1 -> 2: statuses replace the never-due retries and the meta counters of schema 1.
_MIGRATE_V2 = """
ALTER TABLE outbox ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE outbox ADD COLUMN content_hash TEXT;
DROP INDEX IF EXISTS outbox_due;
UPDATE outbox SET status = 'delivered' WHERE delivered_at IS NOT NULL;
UPDATE outbox SET status = CASE
    WHEN last_error LIKE 'refused:%' THEN 'refused'
    WHEN last_error LIKE 'withheld:%' THEN 'superseded'
    ELSE 'failed' END
  WHERE delivered_at IS NULL AND next_attempt_at > 1e300;
DELETE FROM meta WHERE key IN ('outbox_refused', 'outbox_failed', 'outbox_withheld');
"""
_COLUMNS = (
    "id, kind, subject, purpose, idempotency_key, payload_json, attempts, status, content_hash"
)
_SAME_TARGET = "kind = ? AND subject IS ? AND purpose IS ?"


class OutboxStatus(StrEnum):
    """State of an outbox item; only ``pending`` items are ever delivered.

    ``pending`` -> ``delivered`` (the server stored it), ``refused`` (the server's consent
    check said no), ``failed`` (another permanent error) or ``superseded`` (a newer upload
    for the same target, or a consent withdrawal, made it stale). The last four are final.
    """

    PENDING = "pending"
    DELIVERED = "delivered"
    REFUSED = "refused"
    FAILED = "failed"
    SUPERSEDED = "superseded"


#: Final states other than ``delivered`` (what ``mark_dead`` accepts).
DeadStatus = Literal[OutboxStatus.REFUSED, OutboxStatus.FAILED, OutboxStatus.SUPERSEDED]
_DEAD = frozenset({OutboxStatus.REFUSED, OutboxStatus.FAILED, OutboxStatus.SUPERSEDED})


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """An upload to queue.

    Parameters
    ----------
    kind : str
        What the upload is (``"profile"``).
    idempotency_key : str
        Derived from the full payload; the server dedupes on it.
    content_hash : str
        Hash of what the upload means (computation times excluded): the same hash for the
        same target means there is nothing new to send.
    payload : dict
        The JSON body.
    subject, purpose : str or None
        The upload's target, with ``kind``.
    """

    kind: str
    idempotency_key: str
    content_hash: str
    payload: dict[str, Any]
    subject: str | None = None
    purpose: str | None = None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A queued upload as read back from the outbox."""

    id: int
    kind: str
    subject: str | None
    purpose: str | None
    idempotency_key: str
    payload: dict[str, Any]
    attempts: int
    status: OutboxStatus = OutboxStatus.PENDING
    content_hash: str | None = None


@dataclass(frozen=True, slots=True)
class EnqueueCounts:
    """What queueing did: items queued, unchanged uploads skipped, stale items superseded."""

    queued: int = 0
    unchanged: int = 0
    superseded: int = 0


def ensure_outbox_schema(db: sqlite3.Connection) -> None:
    """Create the outbox table and indexes, migrating a schema-1 table in place."""
    db.executescript(OUTBOX_TABLE)
    if "status" not in {r[1] for r in db.execute("PRAGMA table_info(outbox)")}:
        db.executescript(_MIGRATE_V2)
    db.executescript(_INDEXES)


def _item(row: Sequence[Any]) -> OutboxItem:
    return OutboxItem(
        id=row[0],
        kind=row[1],
        subject=row[2],
        purpose=row[3],
        idempotency_key=row[4],
        payload=json.loads(row[5]),
        attempts=row[6],
        status=OutboxStatus(row[7]),
        content_hash=row[8],
    )


class OutboxTable:
    """Outbox methods of ``EdgeStore`` (a mixin over the store's connection)."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write-locked transaction (provided by ``EdgeStore``)."""
        raise NotImplementedError

    def enqueue(
        self,
        *,
        kind: str,
        idempotency_key: str,
        content_hash: str,
        payload: dict[str, Any],
        subject: str | None = None,
        purpose: str | None = None,
        now: float | None = None,
    ) -> EnqueueCounts:
        """Queue one upload (see ``enqueue_many``)."""
        entry = OutboxEntry(kind, idempotency_key, content_hash, payload, subject, purpose)
        return self.enqueue_many([entry], now=now)

    def enqueue_many(
        self, entries: Iterable[OutboxEntry], *, now: float | None = None, force: bool = False
    ) -> EnqueueCounts:
        """Queue uploads in one transaction, skipping unchanged and superseding stale ones.

        For each entry's target (kind, subject, purpose): when the latest item that is not
        superseded has the same content hash (pending, delivered, or already refused or
        failed for exactly that content), nothing is queued. Otherwise the target's pending
        items become ``superseded`` and the entry is queued as ``pending``; an older row with
        the same idempotency key (an identical payload seen before) is replaced.

        Parameters
        ----------
        entries : Iterable[OutboxEntry]
            The uploads to queue.
        now : float or None
            UTC epoch seconds: queue time and first due time; default the wall clock.
        force : bool
            Queue even unchanged content (a full re-sync sends everything again).

        Returns
        -------
        EnqueueCounts
            Items queued, skipped as unchanged, and superseded.
        """
        now = time.time() if now is None else now
        queued = unchanged = superseded = 0
        with self._transaction() as db:
            for e in entries:
                target = (e.kind, e.subject, e.purpose)
                latest = db.execute(
                    f"SELECT content_hash FROM outbox WHERE {_SAME_TARGET} "
                    "AND status != 'superseded' ORDER BY id DESC LIMIT 1",
                    target,
                ).fetchone()
                if not force and latest is not None and latest[0] == e.content_hash:
                    unchanged += 1
                    continue
                superseded += db.execute(
                    "UPDATE outbox SET status = 'superseded', last_error = 'a newer upload "
                    f"was queued' WHERE {_SAME_TARGET} AND status = 'pending'",
                    target,
                ).rowcount
                db.execute("DELETE FROM outbox WHERE idempotency_key = ?", (e.idempotency_key,))
                db.execute(
                    "INSERT INTO outbox (kind, subject, purpose, idempotency_key, payload_json, "
                    "created_at, next_attempt_at, content_hash) VALUES (?,?,?,?,?,?,?,?)",
                    (*target, e.idempotency_key,
                     json.dumps(e.payload, ensure_ascii=False, sort_keys=True), now, now,
                     e.content_hash),
                )  # fmt: skip
                queued += 1
        return EnqueueCounts(queued=queued, unchanged=unchanged, superseded=superseded)

    def supersede_pending(
        self, targets: Iterable[tuple[str, str | None, str | None]], *, reason: str
    ) -> int:
        """Mark the pending items of these (kind, subject, purpose) targets ``superseded``.

        For targets that may no longer upload anything (e.g. consent withdrawn): what they
        queued earlier must not leave the edge later. ``reason`` must hold no PII.

        Returns
        -------
        int
            Items superseded.
        """
        before = self._db.total_changes
        with self._db:
            self._db.executemany(
                "UPDATE outbox SET status = 'superseded', last_error = ? "
                f"WHERE {_SAME_TARGET} AND status = 'pending'",
                [(reason[:500], *t) for t in targets],
            )
        return self._db.total_changes - before

    def due(self, *, now: float, limit: int = 500) -> list[OutboxItem]:
        """Return pending items whose next attempt is due at ``now``, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE status = 'pending' "
            "AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (now, limit),
        )
        return [_item(r) for r in rows]

    def outbox_item(self, item_id: int) -> OutboxItem | None:
        """Return one outbox item whatever its state, or ``None``."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM outbox WHERE id = ?", (item_id,))
        found = row.fetchone()
        return None if found is None else _item(found)

    def _update_pending(self, item_id: int, assignments: str, args: tuple[Any, ...]) -> None:
        """Apply ``SET assignments`` to a pending item; refuse items in other states."""
        with self._db:
            cur = self._db.execute(
                f"UPDATE outbox SET {assignments} WHERE id = ? AND status = 'pending'",
                (*args, item_id),
            )
        if cur.rowcount == 0:
            item = self.outbox_item(item_id)
            state = "missing" if item is None else item.status.value
            raise ValueError(f"outbox item {item_id} is {state}, not pending")

    def mark_delivered(self, item_id: int, *, now: float) -> None:
        """Record a successful delivery (pending -> delivered) at UTC epoch ``now``.

        Raises
        ------
        ValueError
            If the item is not pending.
        """
        self._update_pending(
            item_id,
            "status = 'delivered', delivered_at = ?, attempts = attempts + 1, last_error = NULL",
            (now,),
        )

    def mark_retry(self, item_id: int, *, error: str, retry_at: float) -> None:
        """Record a failed attempt and when to retry; the item stays pending.

        ``error`` holds status and reason codes only (no PII).

        Raises
        ------
        ValueError
            If the item is not pending.
        """
        self._update_pending(
            item_id,
            "attempts = attempts + 1, last_error = ?, next_attempt_at = ?",
            (error[:500], retry_at),
        )

    def mark_dead(self, item_id: int, *, status: DeadStatus, error: str) -> None:
        """Stop a pending item for good as ``refused``, ``failed`` or ``superseded``.

        ``refused`` and ``failed`` follow a server answer and count an attempt;
        ``superseded`` does not. ``error`` holds status and reason codes only (no PII).

        Raises
        ------
        ValueError
            If ``status`` is not one of those three or the item is not pending.
        """
        final = OutboxStatus(status)
        if final not in _DEAD:
            raise ValueError(f"status must be one of {sorted(_DEAD)}, not {final.value!r}")
        attempt = 0 if final is OutboxStatus.SUPERSEDED else 1
        self._update_pending(
            item_id,
            "status = ?, attempts = attempts + ?, last_error = ?",
            (final.value, attempt, error[:500]),
        )

    def outbox_counts(self) -> dict[str, int]:
        """Return the number of outbox items per status (every status listed)."""
        counts = dict.fromkeys((s.value for s in OutboxStatus), 0)
        for status, n in self._db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY 1"):
            counts[str(status)] = int(n)
        return counts
