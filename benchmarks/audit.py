"""Throughput of the tamper-evident audit log: appends per second and verify time.

Run: ``python benchmarks/audit.py [--entries N] [--single N] [--batch N] [--postgres]``.

On a fresh migrated database (a SQLite file by default, or a throwaway PostgreSQL schema
with ``--postgres``) it measures, in one run:

1. ``--single`` appends through the real path (``DatabaseAuditSink.record``: salted
   commitment, hash chain, head row, checkpoint policy every 1,000), committing after each
   entry as an API request does, and then the same number committed once per 1,000;
2. batched appends (``append_entries``, ``--batch`` records per call and commit);
3. for each, a baseline in the same run: the same rows as plain ``INSERT`` statements into
   an identical ``audit_entry`` table of a second database (same indexes), with no hashing,
   no head row and no checkpoints, under the same commit pattern (one statement per row for
   the single modes, one ``executemany`` per batch for the batched one); the ratio
   append/baseline is printed;
4. fills the log to ``--entries`` entries (batched) and times ``verify_chain`` over all of
   them (hash chain, commitments, Merkle tree, checkpoint signatures against the pinned key),
   first in one pass (the baseline) and then cut at its checkpoints over ``--workers``
   processes (default one per core), printing the ratio;
5. times a few filtered listings (``server.audit.query.list_entries``) on the full log.

Wall-clock times depend on the machine's load; CPU seconds of this process are printed
next to them. Goals (issue 5): >= 20,000 appends/s on SQLite; verify of 1,000,000 <= 10 s.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

import server.tables  # noqa: E402,F401
from privacy import SigningKey  # noqa: E402
from server.audit.append import append_entries  # noqa: E402
from server.audit.checkpoint import CheckpointPolicy  # noqa: E402
from server.audit.log import count_entries, verify_chain  # noqa: E402
from server.audit.parallel import resolve_workers  # noqa: E402
from server.audit.query import EntryFilter, list_entries  # noqa: E402
from server.audit.record import AuditRecord  # noqa: E402
from server.audit.sink import DatabaseAuditSink  # noqa: E402
from server.db import create_db_engine, upgrade_database  # noqa: E402

POSTGRES_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 11, 1, tzinfo=UTC)
ACTIONS = ("profile.write", "profile.read", "consent.record", "ledger.report")
PURPOSES = ("marketing", "personalized_service", "service_routing", None)


def _record(i: int) -> AuditRecord:
    """A realistic entry: an edge writing or an agent reading one subject's fields."""
    subject = "ps_" + hashlib.sha256(f"subject-{i % 50_000}".encode()).hexdigest()
    return AuditRecord(
        actor=f"edge:{i % 7}", role="edge", action=ACTIONS[i % 4], purpose=PURPOSES[i % 4],
        subject=subject if i % 10 else None, outcome="accepted",
        detail={"stored": ["tag.high_purchasing_power", "tag.churn_risk"], "withheld": i % 3},
        at=T0 + timedelta(microseconds=i * 1000),
    )  # fmt: skip


@contextmanager
def _databases(postgres: bool) -> Iterator[tuple[Engine, Engine]]:
    """Yield (audited, baseline) engines on fresh migrated databases."""
    if not postgres:
        with tempfile.TemporaryDirectory() as folder:
            urls = [f"sqlite:///{folder}/audit.sqlite", f"sqlite:///{folder}/plain.sqlite"]
            engines = []
            for url in urls:
                upgrade_database(url)
                engines.append(create_db_engine(url))
            try:
                yield engines[0], engines[1]
            finally:
                for engine in engines:
                    engine.dispose()
        return
    admin = create_db_engine(POSTGRES_BASE)
    schemas = [f"bench_audit_{uuid.uuid4().hex[:8]}", f"bench_plain_{uuid.uuid4().hex[:8]}"]
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    engines = []
    try:
        for schema in schemas:
            url = f"{POSTGRES_BASE}?options=-csearch_path%3D{schema}"
            upgrade_database(url)
            engines.append(create_db_engine(url))
        yield engines[0], engines[1]
    finally:
        for engine in engines:
            engine.dispose()
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _plain_row(record: AuditRecord, seq: int, mark: str) -> tuple[Any, ...]:
    """The baseline row: same columns and sizes, constant hashes, no computation."""
    at = record.at.replace(tzinfo=None).isoformat(" ", "microseconds") if mark == "?" else record.at
    return (
        seq, at, record.actor, record.role, record.action, record.purpose, record.outcome,
        "c" * 64 if record.subject else None, "s" * 32 if record.subject else None,
        record.subject, '{"stored":["tag.high_purchasing_power","tag.churn_risk"],"withheld":1}',
        "p" * 64, f"{seq:064x}",
    )  # fmt: skip


def _plain_insert(
    engine: Engine, records: list[AuditRecord], first: int, per_commit: int, *, batched: bool
) -> None:
    """Insert ``records`` as plain rows, committing every ``per_commit``.

    ``batched`` inserts each commit's rows with one ``executemany``; otherwise one
    ``INSERT`` statement per row (the baseline of single appends).
    """
    raw = engine.raw_connection()
    mark = "?" if engine.dialect.name == "sqlite" else "%s"
    sql = (
        "INSERT INTO audit_entry (seq, at, actor, role, action, purpose, outcome, "
        "subject_commitment, subject_salt, subject_ref, detail_json, prev_hash, entry_hash) "
        f"VALUES ({', '.join([mark] * 13)})"
    )
    try:
        cursor = raw.cursor()
        for start in range(0, len(records), per_commit):
            chunk = records[start : start + per_commit]
            rows = [_plain_row(r, first + start + i, mark) for i, r in enumerate(chunk)]
            if batched:
                cursor.executemany(sql, rows)
            else:
                for row in rows:
                    cursor.execute(sql, row)
            raw.commit()
    finally:
        raw.close()


def _timed(work: Callable[[], None]) -> tuple[float, float]:
    """Run ``work``; return (wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def _single(engine: Engine, policy: CheckpointPolicy, records: list[AuditRecord], per: int) -> None:
    """Append one entry per ``sink.record`` call, committing every ``per`` entries."""
    with Session(engine) as session:
        sink = DatabaseAuditSink(session, checkpoints=policy)
        for i, r in enumerate(records, 1):
            sink.record(
                actor=r.actor, role=r.role, action=r.action, purpose=r.purpose,
                subject=r.subject, outcome=r.outcome, detail=r.detail, at=r.at,
            )  # fmt: skip
            if i % per == 0:
                session.commit()
        session.commit()


def _batched(
    engine: Engine, policy: CheckpointPolicy, records: list[AuditRecord], batch: int
) -> None:
    """Append ``batch`` records per ``append_entries`` call and commit."""
    with Session(engine) as session:
        for start in range(0, len(records), batch):
            append_entries(
                session=session, records=records[start : start + batch], checkpoints=policy
            )
            session.commit()


def _report(
    label: str, count: int, audited: tuple[float, float], plain: tuple[float, float]
) -> None:
    """Print one phase's rates and the ratio against its baseline."""
    rate, base = count / audited[0], count / plain[0]
    print(
        f"{label:<34} {rate:>10,.0f}/s  (CPU {count / audited[1]:>9,.0f}/s)   "
        f"plain INSERT {base:>10,.0f}/s   ratio {rate / base:.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=1_000_000, help="log size to verify")
    parser.add_argument("--single", type=int, default=5_000, help="single appends per mode")
    parser.add_argument("--batch", type=int, default=1_000, help="records per batched append")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL on 127.0.0.1:5432")
    parser.add_argument(
        "--workers", type=int, default=resolve_workers(0),
        help="processes for the parallel verify (default: one per core)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    key = SigningKey.generate()
    policy = CheckpointPolicy(key=key, every=1000)
    records = [_record(i) for i in range(max(args.entries, 3 * args.single))]
    with _databases(args.postgres) as (engine, plain):
        print(f"backend {engine.dialect.name}; checkpoints every {policy.every} entries")
        n, seq = args.single, 0
        # 1. Single appends, one commit each, then one commit per 1,000.
        for label, per in (("single append, commit each", 1), ("single append, commit/1000", 1000)):
            chunk = records[seq : seq + n]
            first = seq + 1
            audited = _timed(functools.partial(_single, engine, policy, chunk, per))
            base = _timed(functools.partial(_plain_insert, plain, chunk, first, per, batched=False))
            _report(label, n, audited, base)
            seq += n
        # 2. Batched appends.
        chunk = records[seq : seq + n]
        first = seq + 1
        audited = _timed(lambda: _batched(engine, policy, chunk, args.batch))
        base = _timed(lambda: _plain_insert(plain, chunk, first, args.batch, batched=True))
        _report(f"batched append ({args.batch}/call)", n, audited, base)
        seq += n
        # 3. Fill to --entries (batched), then verify everything.
        if args.entries > seq:
            rest = records[seq : args.entries]
            fill = _timed(lambda: _batched(engine, policy, rest, 10_000))
            print(f"filled {len(rest):,} more entries in {fill[0]:.1f} s")
        with Session(engine) as session:
            total = count_entries(session=session)
        # One pass first (the baseline), then split at checkpoints over --workers processes.
        for label, workers in (("one pass", 1), (f"{args.workers} workers", args.workers)):
            with Session(engine) as session:
                wall = time.perf_counter()
                report = verify_chain(
                    session=session, trusted_keys=[key.verify_key],
                    checkpoint_every=policy.every, workers=workers,
                )  # fmt: skip
                wall = time.perf_counter() - wall
            if workers == 1:
                single_wall = wall
            print(
                f"verify {total:,} entries, {label:<10}: ok={report.ok} "
                f"checkpoints={report.checkpoints} in {wall:.2f} s wall "
                f"({total / wall:,.0f} entries/s; ratio to one pass {wall / single_wall:.2f})"
            )
        with Session(engine) as session:
            # 4. Filtered listings on the full log.
            queries = {
                "newest page, no filter": EntryFilter(),
                "action=consent.record": EntryFilter(action="consent.record"),
                "subject (one pseudonym)": EntryFilter(subject=records[123].subject),
                "actor + purpose": EntryFilter(actor="edge:3", purpose="marketing"),
            }
            for label, filters in queries.items():
                start = time.perf_counter()
                page = list_entries(session=session, filters=filters, limit=100)
                again = list_entries(
                    session=session, filters=filters, limit=100, cursor=page.next_cursor
                )
                took = (time.perf_counter() - start) * 1000 / 2
                print(f"list_entries {label:<26} {took:7.1f} ms/page ({len(again.items)} rows)")


if __name__ == "__main__":
    main()
