"""The identity tables of the edge store: keyed tokens and quasi-identifier encodings.

``identity_tokens``: the keyed token of every identifier a subject used.
``linkage_encodings``: the latest keyed Bloom-filter encoding of a subject's name, birth date,
address and postcode (``privacy.LinkageEncoder``), one JSON line per subject.

Ingestion records, per pseudonym, the ``it_`` token of each identifier its lines carried
(phone, e-mail, account, member card, WeChat ids, device id; ``privacy.IdentityTokenizer``).
Raw identifiers are never stored. Sync sends the tokens not yet delivered so the server can
link the pseudonyms of one person; an erasure from the feed deletes the subject's rows here
like everywhere else (the table has a ``subject`` column). ``EdgeStore`` inherits these
methods.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager

#: The identity-token table (created with the rest of the store's schema).
TOKEN_TABLE = """
CREATE TABLE IF NOT EXISTS identity_tokens (
    subject TEXT NOT NULL, kind TEXT NOT NULL, token TEXT NOT NULL,
    synced INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (subject, token));
CREATE INDEX IF NOT EXISTS identity_tokens_unsynced ON identity_tokens (synced, subject);
CREATE TABLE IF NOT EXISTS linkage_encodings (
    subject TEXT PRIMARY KEY, record TEXT NOT NULL, synced INTEGER NOT NULL DEFAULT 0);
"""


def ensure_token_schema(db: sqlite3.Connection) -> None:
    """Create the identity-token table and its index."""
    db.executescript(TOKEN_TABLE)


class TokenTable:
    """Identity-token methods of ``EdgeStore`` (a mixin over the store's connection)."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write-locked transaction (provided by ``EdgeStore``)."""
        raise NotImplementedError

    def add_identity_tokens(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """Record ``(subject, kind, token)`` rows; known pairs are kept as they are.

        Parameters
        ----------
        rows : Iterable[tuple[str, str, str]]
            Pseudonym, identifier kind and ``it_`` token.

        Returns
        -------
        int
            Rows that were new.
        """
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO identity_tokens (subject, kind, token) VALUES (?, ?, ?)",
                rows,
            )
            return db.total_changes - before

    def identity_tokens(
        self, *, unsynced_only: bool = False, subject: str | None = None
    ) -> list[tuple[str, str, str]]:
        """Return ``(subject, kind, token)`` rows, by subject then token.

        Parameters
        ----------
        unsynced_only : bool
            Only the rows not yet delivered to the server.
        subject : str or None
            Only this subject's rows.

        Returns
        -------
        list[tuple[str, str, str]]
            The rows.
        """
        sql = "SELECT subject, kind, token FROM identity_tokens WHERE 1 = 1"
        args: list[object] = []
        if unsynced_only:
            sql += " AND synced = 0"
        if subject is not None:
            sql += " AND subject = ?"
            args.append(subject)
        rows = self._db.execute(sql + " ORDER BY subject, token", args).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def mark_tokens_synced(self, rows: Iterable[tuple[str, str]]) -> None:
        """Mark ``(subject, token)`` pairs as delivered."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE identity_tokens SET synced = 1 WHERE subject = ? AND token = ?", rows
            )

    def mark_all_tokens_unsynced(self) -> None:
        """Mark every token and encoding for delivery again (a full re-sync)."""
        with self._transaction() as db:
            db.execute("UPDATE identity_tokens SET synced = 0")
            db.execute("UPDATE linkage_encodings SET synced = 0")

    def put_linkage_encodings(self, rows: Iterable[tuple[str, str]]) -> int:
        """Keep the latest ``(subject, encoded JSON line)``; a changed one is sent again.

        Returns
        -------
        int
            Rows inserted or changed.
        """
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT INTO linkage_encodings (subject, record) VALUES (?, ?) "
                "ON CONFLICT(subject) DO UPDATE SET record = excluded.record, synced = 0 "
                "WHERE linkage_encodings.record != excluded.record",
                rows,
            )
            return db.total_changes - before

    def linkage_encodings(self, *, unsynced_only: bool = False) -> list[tuple[str, str]]:
        """Return ``(subject, encoded JSON line)`` rows by subject."""
        sql = "SELECT subject, record FROM linkage_encodings"
        if unsynced_only:
            sql += " WHERE synced = 0"
        return [(str(r[0]), str(r[1])) for r in self._db.execute(sql + " ORDER BY subject")]

    def mark_encodings_synced(self, rows: Iterable[tuple[str, str]]) -> None:
        """Mark ``(subject, record)`` pairs delivered (a record changed since stays unsynced)."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE linkage_encodings SET synced = 1 WHERE subject = ? AND record = ?", rows
            )

    def synced_identity_subjects(self) -> set[str]:
        """Return the pseudonyms whose tokens or encoding the server has taken."""
        rows = self._db.execute(
            "SELECT subject FROM identity_tokens WHERE synced = 1 "
            "UNION SELECT subject FROM linkage_encodings WHERE synced = 1"
        )
        return {str(r[0]) for r in rows}
