"""The message-score table of the edge store: one row per message the text model scored.

``client.text_profile`` scores each recent message once per model version and keeps the
answer here (label and probability per head, and which model version gave them), so a
profile run scores only what arrived since the last one or what an older model scored, and
every text-derived profile field can be traced to the model version behind it.
``EdgeStore`` inherits the methods of ``MessageScoreTable``; the rows name their subject, so
a subject's erasure (``client.feed``) deletes them with the rest.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .rollup_store import subject_filters

MESSAGE_SCORE_TABLE = """
CREATE TABLE IF NOT EXISTS message_scores (
    message_id TEXT PRIMARY KEY, subject TEXT NOT NULL, ts REAL NOT NULL,
    model_version TEXT NOT NULL, intent TEXT, intent_p REAL, emotion TEXT, emotion_p REAL,
    urgency TEXT, urgency_p REAL, scored_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS message_scores_subject ON message_scores (subject, ts);
"""
#: Heads whose answers the table keeps (the text model's default heads).
SCORED_HEADS: tuple[str, ...] = ("intent", "emotion", "urgency")


def ensure_message_score_schema(db: sqlite3.Connection) -> None:
    """Create the message-score table and its index."""
    db.executescript(MESSAGE_SCORE_TABLE)


@dataclass(frozen=True, slots=True)
class MessageScore:
    """The text model's answer for one message.

    Parameters
    ----------
    message_id, subject : str
        The message and its subject.
    ts : float
        The message's time (UTC epoch seconds).
    model_version : str
        The model version that scored it (``text:v3``, or the round it came with).
    labels : dict[str, str]
        Head name to the most likely label.
    probabilities : dict[str, float]
        Head name to that label's probability.
    """

    message_id: str
    subject: str
    ts: float
    model_version: str
    labels: dict[str, str]
    probabilities: dict[str, float]


class MessageScoreTable:
    """Message-score methods of ``EdgeStore`` (a mixin over the store's connection)."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write-locked transaction (provided by ``EdgeStore``)."""
        raise NotImplementedError

    def save_message_scores(self, scores: Iterable[MessageScore]) -> int:
        """Insert or replace message scores in one transaction; returns how many."""
        now = time.time()
        rows = [
            (s.message_id, s.subject, s.ts, s.model_version,
             *(value for head in SCORED_HEADS
               for value in (s.labels.get(head), s.probabilities.get(head))),
             now)
            for s in scores
        ]  # fmt: skip
        if not rows:
            return 0
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO message_scores VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
            )
        return len(rows)

    def scored_versions(self, *, since: float) -> dict[str, str]:
        """Return message id to the model version that scored it, for messages from ``since``."""
        sql = "SELECT message_id, model_version FROM message_scores WHERE ts >= ?"
        return {str(r[0]): str(r[1]) for r in self._db.execute(sql, (since,))}

    def message_scores(
        self, *, since: float, until: float, subjects: Collection[str] | None = None
    ) -> Iterator[MessageScore]:
        """Yield scores of messages with ``since <= ts <= until`` (of ``subjects``, if given)."""
        base = (
            "SELECT message_id, subject, ts, model_version, intent, intent_p, emotion, "
            "emotion_p, urgency, urgency_p FROM message_scores"
        )
        for where, args in subject_filters(subjects, "ts >= ? AND ts <= ?"):
            sql = base + where + " ORDER BY subject, ts, message_id"
            for r in self._db.execute(sql, (*args, since, until)):
                labels = {h: r[4 + 2 * i] for i, h in enumerate(SCORED_HEADS) if r[4 + 2 * i]}
                probabilities = {
                    h: float(r[5 + 2 * i])
                    for i, h in enumerate(SCORED_HEADS)
                    if r[5 + 2 * i] is not None
                }
                yield MessageScore(str(r[0]), str(r[1]), float(r[2]), str(r[3]), labels,
                                   probabilities)  # fmt: skip
