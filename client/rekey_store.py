"""The re-keying table of the edge store: ``old -> new`` pairs, in batches, until the switch.

``client.rekey`` opens its own connection to the store file (:class:`RekeyDB`, used by the
rotation only): the pairs table, the walk over every store column holding pseudonyms, and the
write-locked transactions of the plan and the switch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models import RekeyPair

#: Column names that hold a pseudonym in the edge store.
PSEUDONYM_COLUMNS = frozenset({"subject", "pseudonym"})
_PAIRS_TABLE = """
CREATE TABLE IF NOT EXISTS rekey_pairs (
    old TEXT PRIMARY KEY, new TEXT NOT NULL UNIQUE, batch INTEGER NOT NULL,
    confirmed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS rekey_pairs_batch ON rekey_pairs (batch, confirmed);
"""
_PSEUDONYM_GLOB = "ps_" + "[0-9a-f]" * 64


class RekeyDB:
    """The rotation's own connection to the store file (pairs table, transactions).

    Parameters
    ----------
    path : Path
        The edge store's SQLite file; the ``rekey_pairs`` table is created if missing.
    """

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(str(path), timeout=30.0)
        self.db.executescript(_PAIRS_TABLE)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write-locked transaction (``BEGIN IMMEDIATE``)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.rollback()
            raise
        self.db.commit()

    def columns(self) -> list[tuple[str, str]]:
        """Return every ``(table, column)`` of the store holding pseudonyms."""
        tables = [
            str(r[0])
            for r in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name != 'rekey_pairs' ORDER BY name"
            )
        ]
        found: list[tuple[str, str]] = []
        for table in tables:
            for column in self.db.execute(f'PRAGMA table_info("{table}")'):
                if str(column[1]) in PSEUDONYM_COLUMNS:
                    found.append((table, str(column[1])))
        return found

    def unmapped(self) -> list[str]:
        """Return the store's pseudonyms without a pair yet, sorted."""
        found: set[str] = set()
        for table, column in self.columns():
            rows = self.db.execute(
                f'SELECT DISTINCT "{column}" FROM "{table}" WHERE "{column}" GLOB ? '
                f'AND "{column}" NOT IN (SELECT old FROM rekey_pairs)',
                (_PSEUDONYM_GLOB,),
            )
            found.update(str(r[0]) for r in rows)
        return sorted(found)

    def add_pairs(self, pairs: list[tuple[str, str]], *, batch_size: int) -> int:
        """Append pairs as new batches (in the caller's transaction); return pairs added."""
        row = self.db.execute("SELECT COALESCE(MAX(batch), -1) FROM rekey_pairs").fetchone()
        first = int(row[0]) + 1
        self.db.executemany(
            "INSERT INTO rekey_pairs (old, new, batch) VALUES (?, ?, ?)",
            [(old, new, first + i // batch_size) for i, (old, new) in enumerate(pairs)],
        )
        return len(pairs)

    def pending_batches(self) -> list[int]:
        """Return the numbers of batches not confirmed by the server."""
        rows = self.db.execute(
            "SELECT DISTINCT batch FROM rekey_pairs WHERE confirmed = 0 ORDER BY batch"
        )
        return [int(r[0]) for r in rows]

    def batch(self, number: int) -> list[RekeyPair]:
        """Return one batch's pairs."""
        rows = self.db.execute(
            "SELECT old, new FROM rekey_pairs WHERE batch = ? ORDER BY old", (number,)
        )
        return [RekeyPair(old=str(o), new=str(n)) for o, n in rows]

    def confirm(self, number: int) -> None:
        """Record that the server applied a batch."""
        with self.transaction() as db:
            db.execute("UPDATE rekey_pairs SET confirmed = 1 WHERE batch = ?", (number,))

    def count(self) -> int:
        """Return the number of pairs."""
        return int(self.db.execute("SELECT COUNT(*) FROM rekey_pairs").fetchone()[0])
