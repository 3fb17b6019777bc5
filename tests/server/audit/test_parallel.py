"""Parallel verification: pieces cut at checkpoints give exactly the sequential report.

Every case commits a change to a fresh copy of the signed 1,000-entry log (workers read
committed data through their own connections) and compares ``verify_chain`` with two
worker processes against one sequential pass, field by field: the intact log, edits,
deletions, reorderings and insertions inside pieces and at their boundaries, forged or
edited checkpoints at the cuts (including the unsigned frontier a piece starts from), a
missing checkpoint, a truncated tail and rows beyond the head.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

import server.audit.log as audit_log
import server.audit.parallel as parallel
from privacy import SigningKey
from server.audit.append import append_entries
from server.audit.checkpoint import CheckpointPolicy
from server.audit.log import verify_chain
from server.audit.merkle import MerkleFrontier
from server.audit.parallel import plan_pieces, resolve_workers, shareable_url
from server.audit.verify import ROW_COLUMNS, ChainProblem, ChainState, VerifyReport
from server.db import create_db_engine, upgrade_database
from server.tables.audit_checkpoint import AuditCheckpoint
from server.tables.audit_entry import GENESIS_HASH

from ..factories import T0
from .conftest import EVERY, LOG_SIZE, SignedLog, make_records

#: The cuts two workers make in the 1,000-entry log: the first checkpoint at or after each
#: eighth (125, 250, ..., 875).
CUTS = (200, 300, 400, 500, 700, 800, 900)


@pytest.fixture()
def copy_of_log(signed_log: SignedLog, tmp_path: Path) -> Iterator[Engine]:
    """A private, writable copy of the signed log (SQLite backup of the shared file)."""
    source_path = signed_log.engine.url.database
    assert source_path is not None
    target = tmp_path / "copy.sqlite"
    with sqlite3.connect(source_path) as source, sqlite3.connect(target) as copy:
        source.backup(copy)
    engine = create_db_engine(f"sqlite:///{target}")
    try:
        yield engine
    finally:
        engine.dispose()


def _both(engine: Engine, log: SignedLog, **options: Any) -> tuple[VerifyReport, VerifyReport]:
    """(sequential, parallel) reports of the committed log."""
    arguments: dict[str, Any] = {"trusted_keys": [log.key.verify_key], "checkpoint_every": EVERY}
    arguments.update(options)
    with Session(engine) as session:
        sequential = verify_chain(session=session, workers=1, **arguments)
    with Session(engine) as session:
        pieces = verify_chain(session=session, workers=2, parallel_from=0, **arguments)
    return sequential, pieces


def _apply(engine: Engine, *statements: str) -> None:
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


@pytest.fixture()
def pieces_used(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the parallel passes that cut the log (a test fails if none did)."""
    calls: list[int] = []
    real = parallel.verify_in_pieces

    def spy(**kwargs: Any) -> VerifyReport | None:
        report = real(**kwargs)
        calls.append(0 if report is None else 1)
        return report

    monkeypatch.setattr(audit_log, "verify_in_pieces", spy)
    return calls


def test_the_log_is_cut_at_checkpoints_into_contiguous_pieces(signed_log: SignedLog) -> None:
    plan = plan_pieces(signed_log.checkpoints, LOG_SIZE, 8)
    assert plan is not None
    assert [p.lo for p in plan] == [0, *CUTS] and [p.hi for p in plan] == [*CUTS, LOG_SIZE]
    assert plan[0].start == ChainState.genesis()
    for piece in plan[1:]:
        stored = next(c for c in signed_log.checkpoints if c.size == piece.lo)
        assert (piece.start.size, piece.start.prev_hash) == (stored.size, stored.head_hash)
        assert piece.start.frontier.root().hex() == stored.root_hash
    # Each piece carries the checkpoints it must reach, and only those.
    assert [[c.size for c in p.checkpoints] for p in plan[:2]] == [[100, 200], [300]]


def test_logs_that_cannot_be_cut_are_left_to_one_pass(signed_log: SignedLog) -> None:
    checkpoints = signed_log.checkpoints
    assert plan_pieces([], LOG_SIZE, 8) is None
    assert plan_pieces(checkpoints[::-1], LOG_SIZE, 8) is None  # written out of order
    assert plan_pieces(checkpoints[-1:], LOG_SIZE, 8) is None  # only one at the head
    unreadable = [c.model_copy(update={"frontier_json": "not json"}) for c in checkpoints]
    assert plan_pieces(unreadable, LOG_SIZE, 8) is None
    one_readable = [*unreadable[:4], checkpoints[4], *unreadable[5:]]
    plan = plan_pieces(one_readable, LOG_SIZE, 8)
    assert plan is not None and [p.lo for p in plan] == [0, 500]


def test_worker_count_and_shareable_databases() -> None:
    assert resolve_workers(3) == 3 and 1 <= resolve_workers(0) <= parallel.MAX_AUTO_WORKERS
    assert shareable_url("sqlite://") is None
    assert shareable_url("sqlite:///:memory:") is None
    assert shareable_url("sqlite:///file:x?mode=memory&cache=shared&uri=true") is None
    assert shareable_url("sqlite:////srv/fedprofile.sqlite") == "sqlite:////srv/fedprofile.sqlite"
    url = "postgresql+psycopg://u:pw@127.0.0.1/db?options=-csearch_path%3Ds"
    assert shareable_url(url) == url


def test_intact_log_gives_the_sequential_report(
    signed_log: SignedLog, copy_of_log: Engine, pieces_used: list[int]
) -> None:
    sequential, pieces = _both(copy_of_log, signed_log)
    seen: list[int] = []
    with Session(copy_of_log) as session:
        verify_chain(session=session, workers=2, parallel_from=0, progress=seen.append)
    assert pieces_used == [1, 1] and seen[-1] == LOG_SIZE and seen == sorted(set(seen))
    assert pieces == sequential and pieces.ok and pieces.entries == LOG_SIZE
    assert pieces.checkpoints == LOG_SIZE // EVERY and pieces.last_good_checkpoint == LOG_SIZE
    assert pieces.root_hash == signed_log.checkpoints[-1].root_hash
    assert seen[-1] == LOG_SIZE and seen == sorted(seen)


def _entry_cases(position: int) -> list[tuple[str, list[str]]]:
    cases = [
        ("edit", [f"UPDATE audit_entry SET actor = 'admin' WHERE seq = {position}"]),
        ("delete", [f"DELETE FROM audit_entry WHERE seq = {position}"]),
        ("relink", [f"UPDATE audit_entry SET subject_ref = 'ps_0' WHERE seq = {position}"]),
    ]
    if position < LOG_SIZE:
        cases.append(("reorder", [
            f"UPDATE audit_entry SET seq = -1 WHERE seq = {position}",
            f"UPDATE audit_entry SET seq = {position} WHERE seq = {position + 1}",
            f"UPDATE audit_entry SET seq = {position + 1} WHERE seq = -1",
        ]))  # fmt: skip
        cases.append(("renumbered-delete", [
            f"DELETE FROM audit_entry WHERE seq = {position}",
            f"UPDATE audit_entry SET seq = -(seq - 1) WHERE seq > {position}",
            "UPDATE audit_entry SET seq = -seq WHERE seq < 0",
            "UPDATE audit_head SET seq = seq - 1",
        ]))  # fmt: skip
    return cases


@pytest.mark.parametrize("position", [1, 2, 199, 200, 201, 450, 500, 501, 901, 999, 1000])
def test_entry_tampering_gives_the_sequential_report(
    signed_log: SignedLog, tmp_path: Path, position: int, pieces_used: list[int]
) -> None:
    for kind, statements in _entry_cases(position):
        copy = tmp_path / f"{kind}.sqlite"
        with sqlite3.connect(signed_log.engine.url.database or "") as source:
            with sqlite3.connect(copy) as target:
                source.backup(target)
        engine = create_db_engine(f"sqlite:///{copy}")
        try:
            _apply(engine, *statements)
            sequential, pieces = _both(engine, signed_log)
        finally:
            engine.dispose()
        assert not sequential.ok, (kind, position)
        assert pieces == sequential, (kind, position, sequential, pieces)
    assert pieces_used and all(pieces_used)


@pytest.mark.parametrize("position", [1, 200, 201, 650, 1000])
def test_inserted_forged_entry_gives_the_sequential_report(
    signed_log: SignedLog, copy_of_log: Engine, position: int
) -> None:
    from server.audit.entry_hash import format_time, hash_fields

    prev_hash = GENESIS_HASH if position == 1 else signed_log.rows[position - 2][10]
    at = format_time(T0)
    own = hash_fields(prev_hash, position, at, "admin", "admin", "profile.read", None,
                      "accepted", None, "{}")  # fmt: skip
    values = f"{position}, '{at}', 'admin', 'admin', 'profile.read', NULL, 'accepted', NULL, "
    values += f"'{{}}', '{prev_hash}', '{own}', NULL, NULL"
    _apply(
        copy_of_log,
        f"UPDATE audit_entry SET seq = -seq WHERE seq >= {position}",
        f"UPDATE audit_entry SET seq = 1 - seq WHERE seq <= -{position}",
        "UPDATE audit_head SET seq = seq + 1",
        f"INSERT INTO audit_entry ({', '.join(ROW_COLUMNS)}) VALUES ({values})",
    )
    sequential, pieces = _both(copy_of_log, signed_log)
    assert not sequential.ok and pieces == sequential


def _checkpoint_at(size: int) -> str:
    return f"WHERE size = {size}"


def test_edited_frontier_a_piece_starts_from_is_caught_by_the_piece_before(
    signed_log: SignedLog, copy_of_log: Engine
) -> None:
    # A valid-looking but wrong frontier at the cut 500: the piece from 500 starts wrong,
    # the piece ending at 500 compares it with the frontier it computed.
    wrong = MerkleFrontier(500, [b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32,
                                 b"\x05" * 32, b"\x06" * 32]).to_hex()  # fmt: skip
    frontier = "[" + ", ".join(f'"{h}"' for h in wrong) + "]"
    _apply(copy_of_log, f"UPDATE audit_checkpoint SET frontier_json = '{frontier}' "
                        f"{_checkpoint_at(500)}")  # fmt: skip
    sequential, pieces = _both(copy_of_log, signed_log)
    assert (pieces.first_bad_seq, pieces.reason) == (
        500, ChainProblem.CHECKPOINT_FRONTIER_MISMATCH,
    )  # fmt: skip
    assert pieces == sequential


@pytest.mark.parametrize(
    ("statement", "seq", "reason"),
    [
        ("UPDATE audit_checkpoint SET head_hash = '" + "ab" * 32 + "' WHERE size = 300",
         300, ChainProblem.CHECKPOINT_SIGNATURE),
        ("UPDATE audit_checkpoint SET signature = 'A' || substr(signature, 2) WHERE size = 700"
         " AND substr(signature, 1, 1) <> 'A'", 700, ChainProblem.CHECKPOINT_SIGNATURE),
        ("UPDATE audit_checkpoint SET frontier_json = 'garbage' WHERE size = 800",
         800, ChainProblem.CHECKPOINT_FRONTIER_MISMATCH),
        ("DELETE FROM audit_checkpoint WHERE size = 500", 500, ChainProblem.CHECKPOINT_MISSING),
    ],
)  # fmt: skip
def test_checkpoint_tampering_at_the_cuts_gives_the_sequential_report(
    signed_log: SignedLog, copy_of_log: Engine, statement: str, seq: int, reason: ChainProblem
) -> None:
    _apply(copy_of_log, statement)
    sequential, pieces = _both(copy_of_log, signed_log)
    assert (pieces.ok, pieces.first_bad_seq, pieces.reason) == (False, seq, reason)
    assert pieces == sequential


def test_rewritten_piece_with_recomputed_hashes_is_found_at_its_checkpoint(
    signed_log: SignedLog, copy_of_log: Engine
) -> None:
    """Someone with write access rewrites entries 420..1000 and every unsigned helper."""
    from server.audit.entry_hash import hash_fields, stored_time_text

    rows = [list(r) for r in signed_log.rows]
    prev_hash = rows[418][10]
    statements = []
    for row in rows[419:]:
        if row[0] == 420:
            row[6] = "refused" if row[6] != "refused" else "accepted"
        row[9] = prev_hash
        row[10] = hash_fields(prev_hash, row[0], stored_time_text(row[1]), *row[2:9])
        prev_hash = row[10]
        statements.append(
            f"UPDATE audit_entry SET outcome = '{row[6]}', prev_hash = '{row[9]}', "
            f"entry_hash = '{row[10]}' WHERE seq = {row[0]}"
        )
    statements.append(f"UPDATE audit_head SET hash = '{prev_hash}'")
    _apply(copy_of_log, *statements)
    sequential, pieces = _both(copy_of_log, signed_log)
    assert (pieces.first_bad_seq, pieces.reason) == (500, ChainProblem.CHECKPOINT_HEAD_MISMATCH)
    assert pieces.last_good_checkpoint == 400 and pieces == sequential


@pytest.mark.parametrize("kept", [950, 500, 450])
def test_truncated_tail_gives_the_sequential_report(
    signed_log: SignedLog, copy_of_log: Engine, kept: int
) -> None:
    head = signed_log.rows[kept - 1][10]
    _apply(
        copy_of_log,
        f"DELETE FROM audit_entry WHERE seq > {kept}",
        f"UPDATE audit_head SET seq = {kept}, hash = '{head}'",
    )
    sequential, pieces = _both(copy_of_log, signed_log)
    assert (pieces.first_bad_seq, pieces.reason) == (kept + 1, ChainProblem.CHECKPOINT_BEYOND_LOG)
    assert pieces == sequential


def test_rows_beyond_an_unmoved_head_are_found(signed_log: SignedLog, copy_of_log: Engine) -> None:
    _apply(copy_of_log, "UPDATE audit_head SET seq = 990, hash = "
                        f"'{signed_log.rows[989][10]}'")  # fmt: skip
    sequential, pieces = _both(copy_of_log, signed_log, checkpoint_every=None)
    assert not pieces.ok and pieces == sequential


def test_spawned_workers_give_the_same_report(
    signed_log: SignedLog, copy_of_log: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The start method used when the process runs threads (a server): spawn."""
    monkeypatch.setattr(parallel, "_start_method", lambda: multiprocessing.get_context("spawn"))
    monkeypatch.setattr(parallel, "PIECES_PER_WORKER", 1)
    _apply(copy_of_log, "UPDATE audit_entry SET role = 'admin' WHERE seq = 777")
    sequential, pieces = _both(copy_of_log, signed_log)
    assert (pieces.first_bad_seq, pieces.reason) == (777, ChainProblem.ENTRY_HASH_MISMATCH)
    assert pieces == sequential


def test_in_memory_database_is_verified_in_one_pass(pieces_used: list[int]) -> None:
    engine = create_db_engine("sqlite://")
    upgrade_database_on(engine)
    key = SigningKey.generate()
    with Session(engine) as session:
        append_entries(
            session=session, records=make_records(50),
            checkpoints=CheckpointPolicy(key=key, every=10, clock=lambda: T0),
        )  # fmt: skip
        session.commit()
        report = verify_chain(session=session, workers=2, parallel_from=0)
    assert report.ok and report.entries == 50 and pieces_used == []


def upgrade_database_on(engine: Engine) -> None:
    """Create the tables on an in-memory engine (migrations need a URL of their own)."""
    from sqlmodel import SQLModel

    import server.tables  # noqa: F401

    SQLModel.metadata.create_all(engine)


@pytest.mark.postgres
def test_postgres_log_verifies_in_pieces(postgres_url: str, pieces_used: list[int]) -> None:
    upgrade_database(postgres_url)
    engine = create_db_engine(postgres_url)
    key = SigningKey.generate()
    try:
        with Session(engine) as session:
            append_entries(
                session=session, records=make_records(400),
                checkpoints=CheckpointPolicy(key=key, every=40, clock=lambda: T0),
            )  # fmt: skip
            session.commit()
        options: dict[str, Any] = {"trusted_keys": [key.verify_key], "checkpoint_every": 40}
        with Session(engine) as session:
            intact = verify_chain(session=session, workers=2, parallel_from=0, **options)
        _apply(engine, "UPDATE audit_entry SET purpose = 'analytics' WHERE seq = 333")
        with Session(engine) as session:
            sequential = verify_chain(session=session, **options)
        with Session(engine) as session:
            pieces = verify_chain(session=session, workers=2, parallel_from=0, **options)
    finally:
        engine.dispose()
    assert intact.ok and intact.entries == 400 and intact.checkpoints == 10
    assert (pieces.first_bad_seq, pieces.reason) == (333, ChainProblem.ENTRY_HASH_MISMATCH)
    assert pieces == sequential and pieces_used == [1, 1]


def test_checkpoints_are_plain_rows_for_the_workers(signed_log: SignedLog) -> None:
    """What a worker rebuilds from the dump is the checkpoint it was given."""
    original = signed_log.checkpoints[3]
    rebuilt = AuditCheckpoint(**original.model_dump())
    assert rebuilt.model_dump() == original.model_dump()


def test_workers_that_cannot_start_fall_back_to_one_pass(
    signed_log: SignedLog, copy_of_log: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures.process import BrokenProcessPool

    def broken(*_args: Any) -> list[ChainState | None]:
        raise BrokenProcessPool("a worker died")

    monkeypatch.setattr(parallel, "_run_pieces", broken)
    _apply(copy_of_log, "UPDATE audit_entry SET action = 'x' WHERE seq = 640")
    sequential, pieces = _both(copy_of_log, signed_log)
    assert (pieces.first_bad_seq, pieces.reason) == (640, ChainProblem.ENTRY_HASH_MISMATCH)
    assert pieces == sequential
