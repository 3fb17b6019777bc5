"""The daily-rollup table of the edge store: one aggregate row per (subject, local day).

``EdgeStore`` calls ``refresh_rollups`` inside the transaction that inserts events or
messages, for the (subject, day) pairs of the new rows only, and inherits the read methods
of ``RollupTable`` (``store.daily_rollups``, ``store.touched_subjects``, ...). Each refresh
advances the store's change sequence number and stamps the rows it wrote with it, so
``touched_subjects(since=watermark)`` names the subjects whose profiles are stale.
The aggregates themselves are defined in ``client.rollups``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .rollups import (
    ROLLUP_COLUMNS,
    DayAggregate,
    EventLike,
    MessageLike,
    aggregate_day,
    day_start,
    local_day,
)

logger = logging.getLogger(__name__)

#: Version of the rollup definition; a store holding another one rebuilds its rollups.
ROLLUPS_VERSION = "2"
ROLLUPS_META = "rollups_version"
SEQ_META = "change_seq"
#: Rows of a change by (subject, local day): ``(events, messages)``.
Fresh = Mapping[tuple[str, int], tuple[Sequence[EventLike], Sequence[MessageLike]]]
#: Subjects per ``IN (...)`` clause.
SUBJECT_CHUNK = 500

ROLLUP_TABLE = """
CREATE TABLE IF NOT EXISTS daily_rollups (
    subject TEXT NOT NULL, day INTEGER NOT NULL, events INTEGER NOT NULL,
    messages INTEGER NOT NULL, views INTEGER NOT NULL, searches INTEGER NOT NULL,
    cart_adds INTEGER NOT NULL, purchases INTEGER NOT NULL, spend_cents INTEGER NOT NULL,
    refunds INTEGER NOT NULL, refund_cents INTEGER NOT NULL, coupons INTEGER NOT NULL,
    cs_events INTEGER NOT NULL, complaints INTEGER NOT NULL, ratings INTEGER NOT NULL,
    rating_sum INTEGER NOT NULL, sessions INTEGER NOT NULL, first_ts REAL, last_purchase_ts REAL,
    channels_json TEXT NOT NULL, hours_json TEXT NOT NULL, categories_json TEXT NOT NULL,
    cycles_json TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (subject, day)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS daily_rollups_seq ON daily_rollups (seq);
"""
_INSERT = (
    f"INSERT OR REPLACE INTO daily_rollups (subject, day, {', '.join(ROLLUP_COLUMNS)}, seq) "
    f"VALUES ({','.join('?' * (len(ROLLUP_COLUMNS) + 3))})"
)
_EVENTS = (
    "SELECT e.subject, e.type, e.channel, e.ts, e.category, e.amount, e.session_id, e.rating "
    "FROM rollup_ranges r CROSS JOIN events e "
    "WHERE e.subject = r.subject AND e.ts >= r.lo AND e.ts < r.hi"
)
_EXISTING = (
    "SELECT d.subject, d.day FROM rollup_ranges r CROSS JOIN daily_rollups d "
    "WHERE d.subject = r.subject AND d.day >= r.first_day AND d.day <= r.last_day"
)
_MESSAGES = (
    "SELECT m.subject, m.channel, m.ts FROM rollup_ranges r CROSS JOIN messages m "
    "WHERE m.subject = r.subject AND m.ts >= r.lo AND m.ts < r.hi"
)


@dataclass(frozen=True, slots=True)
class _Event:
    """The columns of an event a rollup reads."""

    type: str
    channel: str
    ts: float
    category: str | None
    amount: float | None
    session_id: str | None
    rating: int | None


@dataclass(frozen=True, slots=True)
class _Activity:
    """A message's channel and time: all a rollup reads from it."""

    channel: str
    ts: float


def subject_filters(
    subjects: Collection[str] | None, condition: str = ""
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Yield ``(WHERE clause, subject args)`` per chunk of subjects (one clause without any).

    Parameters
    ----------
    subjects : Collection[str] or None
        Pseudonyms to restrict to; ``None`` for no restriction.
    condition : str
        A further SQL condition joined with ``AND`` (its own parameters follow the subjects).
    """
    if subjects is None:
        yield (f" WHERE {condition}" if condition else ""), ()
        return
    ordered = sorted(set(subjects))
    extra = f" AND {condition}" if condition else ""
    for start in range(0, len(ordered), SUBJECT_CHUNK):
        chunk = ordered[start : start + SUBJECT_CHUNK]
        yield f" WHERE subject IN ({','.join('?' * len(chunk))}){extra}", tuple(chunk)


def _day_runs(days: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Yield ``(first, last)`` runs of consecutive days."""
    run: list[int] = []
    for day in sorted(days):
        if run and day != run[-1] + 1:
            yield run[0], run[-1]
            run = []
        run.append(day)
    if run:
        yield run[0], run[-1]


def _next_seq(db: sqlite3.Connection) -> int:
    """Advance and return the store's change sequence number (inside a transaction)."""
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (SEQ_META,),
    )
    return int(db.execute("SELECT value FROM meta WHERE key = ?", (SEQ_META,)).fetchone()[0])


def _fill_ranges(db: sqlite3.Connection, days: Mapping[str, Collection[int]]) -> None:
    """Put each subject's runs of consecutive days into the temporary range table."""
    db.execute(
        "CREATE TEMP TABLE IF NOT EXISTS rollup_ranges (subject TEXT NOT NULL, lo REAL NOT NULL, "
        "hi REAL NOT NULL, first_day INTEGER NOT NULL, last_day INTEGER NOT NULL)"
    )
    db.execute("DELETE FROM rollup_ranges")
    db.executemany(
        "INSERT INTO rollup_ranges VALUES (?, ?, ?, ?, ?)",
        [
            (subject, day_start(first) - 1.0, day_start(last + 1) + 1.0, first, last)
            for subject, touched in days.items()
            for first, last in _day_runs(touched)
        ],
    )


def _read_days(db: sqlite3.Connection, days: Mapping[str, Collection[int]]) -> Fresh:
    """Read every event and message of ``days`` (per subject) from the store."""
    _fill_ranges(db, days)
    out: dict[tuple[str, int], tuple[list[EventLike], list[MessageLike]]] = defaultdict(
        lambda: ([], [])
    )
    for subject, *columns in db.execute(_EVENTS):
        day = local_day(columns[2])
        if day in days[subject]:
            out[(subject, day)][0].append(_Event(*columns))
    for subject, channel, ts in db.execute(_MESSAGES):
        day = local_day(ts)
        if day in days[subject]:
            out[(subject, day)][1].append(_Activity(channel, ts))
    return out


def refresh_rollups(
    db: sqlite3.Connection, days: Mapping[str, Collection[int]], *, fresh: Fresh | None = None
) -> int:
    """Recompute the rollups of ``days`` per subject; returns rows written.

    Call inside the transaction that inserted the rows, before anything else changes the
    rollups. A (subject, day) that had no rollup row had no rows at all, so when the new rows
    are given in ``fresh`` its aggregate is built from them alone; every other touched day is
    re-read from the store: each subject's runs of consecutive days with a second of margin
    at both ends (rows are then bucketed by ``local_day`` in Python, so float edges cannot
    misplace an event), through a temporary range table joined on the ``(subject, ts)``
    indexes.

    Parameters
    ----------
    db : sqlite3.Connection
        The store's connection, inside a write transaction.
    days : Mapping[str, Collection[int]]
        Local days to recompute, per subject.
    fresh : Fresh or None
        The rows just inserted, by (subject, day); ``None`` re-reads every day.

    Returns
    -------
    int
        Rollup rows written (each stamped with a new change sequence number).
    """
    seq = _next_seq(db)
    reread: dict[str, set[int]] = {s: set(d) for s, d in days.items()}
    if fresh is not None:
        _fill_ranges(db, days)
        existing: dict[str, set[int]] = defaultdict(set)
        for subject, day in db.execute(_EXISTING):
            existing[subject].add(day)
        reread = dict(existing)
    stored = _read_days(db, reread) if reread else {}
    rows = []
    for subject, touched in days.items():
        again = reread.get(subject, set())
        for day in touched:
            source = (
                stored[(subject, day)] if day in again or fresh is None else fresh[(subject, day)]
            )
            rows.append((subject, day, *aggregate_day(day, *source).to_row(), seq))
    db.executemany(_INSERT, rows)
    return len(rows)


def ensure_rollup_schema(db: sqlite3.Connection) -> None:
    """Create the rollup table and its index."""
    db.executescript(ROLLUP_TABLE)


class RollupTable:
    """Daily-rollup methods of ``EdgeStore`` (a mixin over the store's connection)."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write-locked transaction (provided by ``EdgeStore``)."""
        raise NotImplementedError

    def rebuild_rollups(self) -> int:
        """Recompute every daily rollup from the raw events and messages; returns rows.

        Runs when a store without current rollups is opened; cheap on an empty store.
        """
        days: dict[str, set[int]] = defaultdict(set)
        with self._transaction() as db:
            for table in ("events", "messages"):
                for subject, ts in db.execute(f"SELECT subject, ts FROM {table}"):
                    days[subject].add(local_day(ts))
            db.execute("DELETE FROM daily_rollups")
            written = refresh_rollups(db, days) if days else 0
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (ROLLUPS_META, ROLLUPS_VERSION),
            )
        logger.info("rebuilt %d daily rollup row(s)", written)
        return written

    def ensure_rollups(self) -> None:
        """Build the rollups if the store has none of the current version (e.g. schema 2).

        A table of another version is dropped and recreated first (its layout may differ).
        """
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (ROLLUPS_META,)).fetchone()
        if row is None or row[0] != ROLLUPS_VERSION:
            if row is not None:
                self._db.execute("DROP TABLE IF EXISTS daily_rollups")
                ensure_rollup_schema(self._db)
            self.rebuild_rollups()

    def change_seq(self) -> int:
        """Return the change sequence number of the latest insert of events or messages."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (SEQ_META,)).fetchone()
        return 0 if row is None else int(row[0])

    def touched_subjects(self, *, since: int) -> list[str]:
        """Return the subjects whose rollups changed after change sequence ``since``, sorted."""
        sql = "SELECT DISTINCT subject FROM daily_rollups WHERE seq > ? ORDER BY subject"
        return [r[0] for r in self._db.execute(sql, (since,))]

    def rollup_subjects(self) -> list[str]:
        """Return every subject with behaviour (events or messages), sorted."""
        sql = "SELECT DISTINCT subject FROM daily_rollups ORDER BY subject"
        return [r[0] for r in self._db.execute(sql)]

    def daily_rollups(
        self, *, subjects: Collection[str] | None = None
    ) -> dict[str, dict[int, DayAggregate]]:
        """Return stored day aggregates by subject, then local day.

        Parameters
        ----------
        subjects : Collection[str] or None
            Only these pseudonyms; ``None`` for all.

        Returns
        -------
        dict[str, dict[int, DayAggregate]]
            Subjects without rollups are absent.
        """
        out: dict[str, dict[int, DayAggregate]] = defaultdict(dict)
        sql = f"SELECT subject, day, {', '.join(ROLLUP_COLUMNS)} FROM daily_rollups"
        for where, args in subject_filters(subjects):
            for row in self._db.execute(sql + where, args):
                out[row[0]][row[1]] = DayAggregate.from_row(row[1], row[2:])
        return dict(out)
