"""Batched audit appends of decisions: one chain append for many decisions.

Every decision is audited (invariant 5, PIPL Art. 24), but appending to the hash chain
serialises writers on its head; doing it per decision would make routing wait on the audit
lock. The decision row is committed before the answer with ``audited = false``; this job
appends the entries of up to ``batch`` unaudited decisions at a time, in decision order, and
marks them in the same transaction. A crash between the two leaves rows unaudited, never an
entry without its decision: the next run picks them up. Two workers never append the same
decision: a row is claimed by the update that marks it, and a batch whose claim was partly
taken by another worker is rolled back and retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import anyio
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, col, select

from ..audit.checkpoint import CheckpointPolicy
from ..audit.events import AuditAction, AuditOutcome
from ..audit.record import AuditRecord
from ..audit.sink import DatabaseAuditSink
from ..tables.decision import DecisionRow

logger = logging.getLogger(__name__)

#: Decisions per append.
BATCH = 500


def _record(row: DecisionRow) -> AuditRecord:
    rules = [r["rule"] for r in json.loads(row.rules_json)]
    return AuditRecord(
        actor=row.actor,
        role=row.role,
        action=AuditAction.DECISION_MAKE,
        purpose=row.purpose,
        subject=row.subject,
        outcome=AuditOutcome.ACCEPTED,
        detail={
            "decision": row.id,
            "action": row.action_kind,
            "automated": row.automated,
            "decided_by": row.decided_by,
            "fallback": row.fallback,
            "rules": rules,
            "fields_read": json.loads(row.fields_read_json),
            "confidence": round(row.confidence, 4),
            "policy": row.policy_version,
            "arm": row.arm,
        },
        at=row.decided_at,
    )


def flush_once(
    session: Session, *, checkpoints: CheckpointPolicy | None, batch: int = BATCH
) -> int:
    """Append the entries of up to ``batch`` unaudited decisions; commits; returns how many."""
    rows = session.exec(
        select(DecisionRow)
        .where(col(DecisionRow.audited).is_(False))
        .order_by(col(DecisionRow.decided_at), col(DecisionRow.id))
        .limit(batch)
    ).all()
    if not rows:
        return 0
    ids = [row.id for row in rows]
    claimed = session.execute(
        update(DecisionRow)
        .where(col(DecisionRow.id).in_(ids), col(DecisionRow.audited).is_(False))
        .values(audited=True)
    )
    if claimed.rowcount != len(ids):  # type: ignore[attr-defined]
        session.rollback()  # another worker claimed part of the batch: try again later
        return 0
    DatabaseAuditSink(session, checkpoints=checkpoints).record_many([_record(r) for r in rows])
    session.commit()
    return len(rows)


def flush_decisions(engine: Engine, *, checkpoints: CheckpointPolicy | None) -> int:
    """Append every unaudited decision's entry, a batch at a time; returns how many."""
    total = 0
    while True:
        with Session(engine, expire_on_commit=False) as session:
            done = flush_once(session, checkpoints=checkpoints)
        total += done
        if done < BATCH:
            return total


class AuditFlusher:
    """Runs :func:`flush_decisions` in a worker thread while decisions are pending.

    The decision route calls :meth:`notify` after each decision; every ``interval`` seconds
    the loop flushes if anything was notified since the last flush (once at start too, for
    rows a crash left unaudited), so an idle server sends no query. The server's lifespan
    starts the loop and stops it; stopping flushes what is left, so a clean shutdown leaves
    no decision unaudited.

    An engine with a single shared connection (``StaticPool``: in-memory SQLite, tests) gets
    no loop: a flush in another thread would interleave with a request's transaction on that
    one connection. Such a server audits decisions when it stops or when :meth:`flush` is
    called.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        checkpoints: Callable[[], CheckpointPolicy | None],
        interval: float,
    ) -> None:
        self._engine = engine
        self._checkpoints = checkpoints
        self._interval = interval
        self._pending = True  # rows an earlier process left unaudited

    @property
    def periodic(self) -> bool:
        """Whether the background loop may run on this engine."""
        return not isinstance(self._engine.pool, StaticPool)

    def notify(self) -> None:
        """Note that a decision waits for its audit entry."""
        self._pending = True

    def flush(self) -> int:
        """Append every pending decision's entry now."""
        self._pending = False
        return flush_decisions(self._engine, checkpoints=self._checkpoints())

    async def run(self) -> None:
        """Flush while decisions are pending (until cancelled); failures are logged, retried."""
        if not self.periodic:
            return
        while True:
            await asyncio.sleep(self._interval)
            if not self._pending:
                continue
            try:
                await anyio.to_thread.run_sync(self.flush)
            except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
                self._pending = True
                logger.exception("auditing decisions failed; retrying in %.1f s", self._interval)
