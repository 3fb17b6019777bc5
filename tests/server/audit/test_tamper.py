"""Tamper tests on a signed 1,000-entry log: every position, every kind of change is found.

The exhaustive tests tamper with an in-memory copy of the stored rows and run it through
the same verification core as ``verify_chain`` (``verify_rows``): editing, deleting,
reordering or inserting an entry at EVERY position. The sampled tests apply the same kinds
of change with SQL to the real SQLite file inside a transaction that is rolled back, and
run ``verify_chain`` itself. Checkpoint forgery, missing checkpoints, tail truncation and a
suffix rewritten with recomputed hashes are detected through the signed checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

from privacy import SigningKey
from server.audit.entry_hash import format_time, hash_fields, stored_time_text
from server.audit.log import verify_chain
from server.audit.verify import ROW_COLUMNS, ChainProblem, VerifyReport, verify_rows
from server.tables.audit_checkpoint import AuditCheckpoint
from server.tables.audit_entry import GENESIS_HASH

from ..factories import T0, make_pseudonym
from .conftest import EVERY, LOG_SIZE, SignedLog

Row = tuple[Any, ...]
COL = {name: i for i, name in enumerate(ROW_COLUMNS)}
SAMPLED = (1, 2, 99, 100, 101, 500, 999, 1000)
#: Every position (marked slow: about a million entry checks per kind of change), or a
#: sample of edges and checkpoint boundaries in the default run.
POSITIONS = pytest.mark.parametrize(
    "positions",
    [
        pytest.param(range(1, LOG_SIZE + 1), marks=pytest.mark.slow, id="every-position"),
        pytest.param(SAMPLED, id="sampled"),
    ],
)


def _verify(log: SignedLog, rows: list[Row], **changes: Any) -> VerifyReport:
    arguments: dict[str, Any] = {
        "rows": rows, "checkpoints": log.checkpoints, "head": log.head,
        "trusted_keys": [log.key.verify_key], "checkpoint_every": EVERY,
    }  # fmt: skip
    arguments.update(changes)
    return verify_rows(**arguments)


def _replace(row: Row, **values: Any) -> Row:
    out = list(row)
    for name, value in values.items():
        out[COL[name]] = value
    return tuple(out)


def _rehash(row: Row, *, seq: int, prev_hash: str) -> Row:
    """The row renumbered to ``seq``, linked to ``prev_hash`` and with a recomputed hash."""
    at, actor, role, action, purpose, outcome, commitment, detail = row[1:9]
    own = hash_fields(
        prev_hash, seq, stored_time_text(at), actor, role, action, purpose, outcome,
        commitment, detail,
    )  # fmt: skip
    return _replace(row, seq=seq, prev_hash=prev_hash, entry_hash=own)


def _forged(seq: int, prev_hash: str) -> Row:
    """A self-consistent entry an attacker could write: correct link and hash."""
    at = format_time(T0)
    own = hash_fields(prev_hash, seq, at, "admin", "admin", "profile.read", None, "accepted",
                      None, "{}")  # fmt: skip
    return (seq, at, "admin", "admin", "profile.read", None, "accepted", None, "{}",
            prev_hash, own, None, None)  # fmt: skip


def _assert_broken(report: VerifyReport, seq: int, *reasons: ChainProblem) -> None:
    assert (report.ok, report.first_bad_seq) == (False, seq), report
    assert report.reason in reasons, report


def test_signed_log_intact_verifies_with_every_checkpoint(signed_log: SignedLog) -> None:
    report = _verify(signed_log, signed_log.rows)
    assert report.ok and report.entries == LOG_SIZE and report.pinned
    assert report.checkpoints == LOG_SIZE // EVERY == len(signed_log.checkpoints)
    assert report.root_hash == signed_log.checkpoints[-1].root_hash


# Which covered column each position edits, and what verification must call it.
EDITS: list[tuple[str, Callable[[Any], Any], tuple[ChainProblem, ...]]] = [
    ("actor", lambda v: "admin", (ChainProblem.ENTRY_HASH_MISMATCH,)),
    ("outcome", lambda v: "accepted" if v == "refused" else "refused",
     (ChainProblem.ENTRY_HASH_MISMATCH,)),
    ("detail_json", lambda v: v.replace('"n":', '"m":'), (ChainProblem.ENTRY_HASH_MISMATCH,)),
    ("at", lambda v: v[:-1] + ("1" if v[-1] != "1" else "2"), (ChainProblem.ENTRY_HASH_MISMATCH,)),
    ("purpose", lambda v: "marketing" if v != "marketing" else None,
     (ChainProblem.ENTRY_HASH_MISMATCH,)),
    ("action", lambda v: "subject.erase", (ChainProblem.ENTRY_HASH_MISMATCH,)),
    ("role", lambda v: "admin", (ChainProblem.ENTRY_HASH_MISMATCH,)),
    ("entry_hash", lambda v: "f" * 64 if v != "f" * 64 else "e" * 64,
     (ChainProblem.ENTRY_HASH_MISMATCH,)),
    ("prev_hash", lambda v: "0" * 63 + "1", (ChainProblem.PREV_HASH_MISMATCH,)),
    ("subject_ref", lambda v: make_pseudonym("someone-else"), (ChainProblem.COMMITMENT_MISMATCH,)),
]  # fmt: skip


@POSITIONS
def test_editing_any_column_at_every_position_is_found(
    signed_log: SignedLog, positions: Sequence[int]
) -> None:
    rows = signed_log.rows
    for position in positions:
        column, change, reasons = EDITS[position % len(EDITS)]
        original = rows[position - 1]
        edited = _replace(original, **{column: change(original[COL[column]])})
        if column == "subject_ref" and original[COL["subject_ref"]] is None:
            edited = _replace(edited, subject_salt="00" * 16)  # give it a fake link
        tampered = [*rows[: position - 1], edited, *rows[position:]]
        _assert_broken(_verify(signed_log, tampered), position, *reasons)


@POSITIONS
def test_deleting_the_entry_at_every_position_is_found(
    signed_log: SignedLog, positions: Sequence[int]
) -> None:
    rows = signed_log.rows
    for position in positions:
        gap = [*rows[: position - 1], *rows[position:]]
        # The last entry is under the final checkpoint, which now reaches past the log.
        expected = (
            ChainProblem.CHECKPOINT_BEYOND_LOG if position == LOG_SIZE else ChainProblem.SEQ_GAP
        )
        _assert_broken(_verify(signed_log, gap), position, expected)
        # An attacker who also renumbers the later entries breaks the next link instead.
        renumbered = [*rows[: position - 1]]
        renumbered += [_replace(r, seq=r[0] - 1) for r in rows[position:]]
        if position < LOG_SIZE:
            _assert_broken(
                _verify(signed_log, renumbered), position, ChainProblem.PREV_HASH_MISMATCH
            )


@POSITIONS
def test_reordering_two_entries_at_every_position_is_found(
    signed_log: SignedLog, positions: Sequence[int]
) -> None:
    rows = signed_log.rows
    for position in (p for p in positions if p < LOG_SIZE):
        first, second = rows[position - 1], rows[position]
        # Exchange the two entries' sequence numbers (the SQL way of reordering).
        swapped = [
            *rows[: position - 1],
            _replace(second, seq=position),
            _replace(first, seq=position + 1),
            *rows[position + 1 :],
        ]
        _assert_broken(
            _verify(signed_log, swapped),
            position,
            ChainProblem.PREV_HASH_MISMATCH,
            ChainProblem.ENTRY_HASH_MISMATCH,
        )
        # Swapping the stored order without renumbering leaves a gap in seq.
        moved = [*rows[: position - 1], second, first, *rows[position + 1 :]]
        _assert_broken(_verify(signed_log, moved), position, ChainProblem.SEQ_GAP)


def _assert_insert_found(report: VerifyReport, position: int, link: ChainProblem) -> None:
    """A consistent forged entry at ``position``: its checkpoint or the next link catches it."""
    if position % EVERY == 0:
        _assert_broken(report, position, ChainProblem.CHECKPOINT_HEAD_MISMATCH)
    else:
        _assert_broken(report, position + 1, link)


@POSITIONS
def test_inserting_a_forged_entry_at_every_position_is_found(
    signed_log: SignedLog, positions: Sequence[int]
) -> None:
    rows = signed_log.rows
    for position in positions:
        prev_hash = GENESIS_HASH if position == 1 else rows[position - 2][COL["entry_hash"]]
        forged = _forged(position, prev_hash)
        # The forged entry is consistent; the displaced entry no longer links to it.
        shifted = [*rows[: position - 1], forged]
        shifted += [_replace(r, seq=r[0] + 1) for r in rows[position - 1 :]]
        head = (LOG_SIZE + 1, rows[-1][COL["entry_hash"]])
        report = _verify(signed_log, shifted, head=head)
        _assert_insert_found(report, position, ChainProblem.PREV_HASH_MISMATCH)
        # Without renumbering, the entry after it repeats a sequence number.
        squeezed = [*rows[: position - 1], forged, *rows[position - 1 :]]
        report = _verify(signed_log, squeezed)
        # Named by the repeated number (or by the checkpoint at it).
        _assert_broken(
            report, position, ChainProblem.SEQ_GAP, ChainProblem.CHECKPOINT_HEAD_MISMATCH
        )


def _rewrite_from(rows: list[Row], position: int) -> list[Row]:
    """Edit entry ``position`` and recompute every hash after it (full database access)."""
    out = list(rows[: position - 1])
    prev_hash = GENESIS_HASH if position == 1 else out[-1][COL["entry_hash"]]
    for row in rows[position - 1 :]:
        if row[0] == position:
            row = _replace(row, outcome="refused" if row[6] != "refused" else "accepted")
        out.append(_rehash(row, seq=row[0], prev_hash=prev_hash))
        prev_hash = out[-1][COL["entry_hash"]]
    return out


@pytest.mark.parametrize("position", SAMPLED)
def test_rewritten_suffix_with_recomputed_hashes_is_found_at_next_checkpoint(
    signed_log: SignedLog, position: int
) -> None:
    rewritten = _rewrite_from(signed_log.rows, position)
    head = (LOG_SIZE, rewritten[-1][COL["entry_hash"]])
    next_checkpoint = -(-position // EVERY) * EVERY
    report = _verify(signed_log, rewritten, head=head)
    _assert_broken(report, next_checkpoint, ChainProblem.CHECKPOINT_HEAD_MISMATCH)
    assert report.last_good_checkpoint == (next_checkpoint - EVERY or None)


def _with_checkpoint(log: SignedLog, index: int, **values: Any) -> list[AuditCheckpoint]:
    checkpoints = list(log.checkpoints)
    checkpoints[index] = checkpoints[index].model_copy(update=values)
    return checkpoints


def test_checkpoint_with_edited_signature_is_found(signed_log: SignedLog) -> None:
    signature = signed_log.checkpoints[4].signature
    forged = ("A" if signature[0] != "A" else "B") + signature[1:]
    report = _verify(signed_log, signed_log.rows, checkpoints=_with_checkpoint(
        signed_log, 4, signature=forged))  # fmt: skip
    _assert_broken(report, 500, ChainProblem.CHECKPOINT_SIGNATURE)
    assert report.last_good_checkpoint == 400


def test_checkpoint_with_edited_root_is_found(signed_log: SignedLog) -> None:
    report = _verify(signed_log, signed_log.rows, checkpoints=_with_checkpoint(
        signed_log, 2, root_hash="ab" * 32))  # fmt: skip
    _assert_broken(report, 300, ChainProblem.CHECKPOINT_SIGNATURE)


def test_checkpoint_resigned_with_another_key_fails_under_the_pinned_key(
    signed_log: SignedLog,
) -> None:
    rewritten = _rewrite_from(signed_log.rows, 150)
    other = SigningKey.generate()
    # The attacker re-signs every checkpoint with their own key over the rewritten log.
    checkpoints = []
    for checkpoint in signed_log.checkpoints:
        size = checkpoint.size
        resigned = checkpoint.model_copy(
            update={"head_hash": rewritten[size - 1][COL["entry_hash"]],
                    "public_key": other.verify_key.to_text(), "key_id": other.verify_key.key_id}
        )  # fmt: skip
        checkpoints.append(resigned)
    report = _verify(signed_log, rewritten, checkpoints=checkpoints,
                     head=(LOG_SIZE, rewritten[-1][COL["entry_hash"]]))  # fmt: skip
    _assert_broken(report, 100, ChainProblem.CHECKPOINT_SIGNATURE)


def test_deleted_checkpoint_is_reported_missing(signed_log: SignedLog) -> None:
    checkpoints = [c for c in signed_log.checkpoints if c.size != 700]
    report = _verify(signed_log, signed_log.rows, checkpoints=checkpoints)
    _assert_broken(report, 700, ChainProblem.CHECKPOINT_MISSING)
    # Without the interval, the gap itself is not evidence of anything.
    assert _verify(signed_log, signed_log.rows, checkpoints=checkpoints,
                   checkpoint_every=None).ok  # fmt: skip


@pytest.mark.parametrize("kept", [999, 950, 901, 500])
def test_truncated_tail_with_moved_head_is_found_through_the_checkpoint(
    signed_log: SignedLog, kept: int
) -> None:
    rows = signed_log.rows[:kept]
    report = _verify(signed_log, rows, head=(kept, rows[-1][COL["entry_hash"]]))
    first_lost_checkpoint = (kept // EVERY + 1) * EVERY
    _assert_broken(report, kept + 1, ChainProblem.CHECKPOINT_BEYOND_LOG)
    assert report.bad_checkpoint_id is not None
    assert first_lost_checkpoint <= LOG_SIZE


# --- The same kinds of change made with SQL on the real database, rolled back after. ---


@contextmanager
def _tampered(log: SignedLog, *statements: str) -> Iterator[Session]:
    with log.engine.connect() as connection:
        transaction = connection.begin()
        try:
            for statement in statements:
                connection.execute(text(statement))
            with Session(bind=connection) as session:
                yield session
        finally:
            transaction.rollback()


def _sql_cases(position: int) -> list[tuple[str, list[str], int, ChainProblem]]:
    cases: list[tuple[str, list[str], int, ChainProblem]] = [
        ("edit", [f"UPDATE audit_entry SET actor = 'admin' WHERE seq = {position}"],
         position, ChainProblem.ENTRY_HASH_MISMATCH),
        ("delete", [f"DELETE FROM audit_entry WHERE seq = {position}"], position,
         ChainProblem.CHECKPOINT_BEYOND_LOG if position == LOG_SIZE else ChainProblem.SEQ_GAP),
    ]  # fmt: skip
    if position < LOG_SIZE:
        cases.append(("reorder", [
            f"UPDATE audit_entry SET seq = -1 WHERE seq = {position}",
            f"UPDATE audit_entry SET seq = {position} WHERE seq = {position + 1}",
            f"UPDATE audit_entry SET seq = {position + 1} WHERE seq = -1",
        ], position, ChainProblem.ENTRY_HASH_MISMATCH))  # fmt: skip
    return cases


@pytest.mark.parametrize("position", SAMPLED)
def test_sql_tampering_at_sampled_positions_is_found_by_verify_chain(
    signed_log: SignedLog, position: int
) -> None:
    for kind, statements, seq, reason in _sql_cases(position):
        with _tampered(signed_log, *statements) as session:
            report = verify_chain(
                session=session, trusted_keys=[signed_log.key.verify_key], checkpoint_every=EVERY
            )
        assert (kind, report.ok, report.first_bad_seq) == (kind, False, seq), report
        assert report.reason in (reason, ChainProblem.PREV_HASH_MISMATCH), (kind, report)


@pytest.mark.parametrize("position", SAMPLED)
def test_sql_insert_at_sampled_positions_is_found_by_verify_chain(
    signed_log: SignedLog, position: int
) -> None:
    rows = signed_log.rows
    prev_hash = GENESIS_HASH if position == 1 else rows[position - 2][COL["entry_hash"]]
    forged = _forged(position, prev_hash)
    values = ", ".join("NULL" if v is None else f"'{v}'" if isinstance(v, str) else str(v)
                       for v in forged)  # fmt: skip
    statements = [
        f"UPDATE audit_entry SET seq = -seq WHERE seq >= {position}",
        f"UPDATE audit_entry SET seq = 1 - seq WHERE seq <= -{position}",
        "UPDATE audit_head SET seq = seq + 1",
        f"INSERT INTO audit_entry ({', '.join(ROW_COLUMNS)}) VALUES ({values})",
    ]
    with _tampered(signed_log, *statements) as session:
        report = verify_chain(session=session, trusted_keys=[signed_log.key.verify_key])
    _assert_insert_found(report, position, ChainProblem.PREV_HASH_MISMATCH)


def test_sql_rows_beyond_an_unmoved_head_are_found(signed_log: SignedLog) -> None:
    forged = _forged(LOG_SIZE + 1, signed_log.head[1])
    values = ", ".join("NULL" if v is None else f"'{v}'" if isinstance(v, str) else str(v)
                       for v in forged)  # fmt: skip
    statement = f"INSERT INTO audit_entry ({', '.join(ROW_COLUMNS)}) VALUES ({values})"
    with _tampered(signed_log, statement) as session:
        report = verify_chain(session=session)
    _assert_broken(report, LOG_SIZE + 1, ChainProblem.HEAD_MISMATCH)


def test_sql_untampered_log_verifies(signed_log: SignedLog) -> None:
    with _tampered(signed_log) as session:
        report = verify_chain(
            session=session, trusted_keys=[signed_log.key.verify_key], checkpoint_every=EVERY
        )
    assert report.ok and report.entries == LOG_SIZE and report.checkpoints == LOG_SIZE // EVERY
