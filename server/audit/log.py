"""The hash-chained audit log: the head, and verification of entries and checkpoints.

Each entry's ``entry_hash`` is ``sha256(prev_hash || canonical_json(entry))`` over the
columns in :data:`~server.audit.entry_hash.HASHED_COLUMNS` (see ``entry_hash``). The subject
is stored as a salted commitment ``sha256(salt || pseudonym)`` next to the pseudonym and salt;
erasure may null the last two without breaking the chain. Appends serialise on the single
``audit_head`` row (``server.audit.append``).

:func:`verify_chain` streams the entries in ``seq`` order and recomputes every hash, link
and commitment, and the RFC 9162 Merkle tree of the entry hashes; at each signed checkpoint
it checks the signature (against pinned keys), the head hash and the Merkle root at that
size. So edits, deletions, reorderings and insertions are found at the entry, and a suffix
rewritten with recomputed hashes (someone with write access to the database) is found at the
first checkpoint after it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.engine import RowMapping
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from privacy import VerifyKey

from ..tables.audit_checkpoint import AuditCheckpoint
from ..tables.audit_entry import GENESIS_HASH, HEAD_ID, AuditEntry, AuditHead
from .checkpoint import all_checkpoints, signature_ok
from .entry_hash import (
    HASHED_COLUMNS,
    canonical_detail,
    compute_entry_hash,
    compute_row_hash,
    subject_commitment,
)
from .merkle import EMPTY_ROOT, MerkleFrontier, leaf_hash

__all__ = [
    "HASHED_COLUMNS",
    "PROBLEM_HELP",
    "VERIFY_BATCH",
    "ChainProblem",
    "VerifyReport",
    "canonical_detail",
    "compute_entry_hash",
    "compute_row_hash",
    "count_entries",
    "read_head",
    "subject_commitment",
    "verify_chain",
]

logger = logging.getLogger(__name__)

#: Entries read per query while verifying.
VERIFY_BATCH = 5000

_ENTRY = AuditEntry.metadata.tables[AuditEntry.__tablename__]


class ChainProblem(StrEnum):
    """Why verification failed (stable codes; help text in :data:`PROBLEM_HELP`)."""

    SEQ_GAP = "seq_gap"
    PREV_HASH_MISMATCH = "prev_hash_mismatch"
    ENTRY_HASH_MISMATCH = "entry_hash_mismatch"
    COMMITMENT_MISMATCH = "commitment_mismatch"
    HEAD_MISMATCH = "head_mismatch"
    CHECKPOINT_SIGNATURE = "checkpoint_signature_invalid"
    CHECKPOINT_HEAD_MISMATCH = "checkpoint_head_mismatch"
    CHECKPOINT_ROOT_MISMATCH = "checkpoint_root_mismatch"
    CHECKPOINT_FRONTIER_MISMATCH = "checkpoint_frontier_mismatch"
    CHECKPOINT_ORDER = "checkpoint_order"
    CHECKPOINT_BEYOND_LOG = "checkpoint_beyond_log"
    CHECKPOINT_MISSING = "checkpoint_missing"


PROBLEM_HELP: dict[ChainProblem, str] = {
    ChainProblem.SEQ_GAP: "an entry is missing or renumbered (deletion, reordering)",
    ChainProblem.PREV_HASH_MISMATCH: "an entry does not link to its predecessor (reordering, "
    "insertion, or a neighbour replaced)",
    ChainProblem.ENTRY_HASH_MISMATCH: "a covered field of the entry was edited",
    ChainProblem.COMMITMENT_MISMATCH: "the stored pseudonym or salt no longer matches the "
    "entry's salted commitment",
    ChainProblem.HEAD_MISMATCH: "the head row disagrees with the last entry (truncated tail, "
    "or entries written without the head)",
    ChainProblem.CHECKPOINT_SIGNATURE: "a checkpoint's signature does not verify under the "
    "pinned public key(s) (forged or edited checkpoint, or another key)",
    ChainProblem.CHECKPOINT_HEAD_MISMATCH: "the entry at a checkpoint's size does not hash to "
    "the signed head hash: entries after the previous good checkpoint were rewritten",
    ChainProblem.CHECKPOINT_ROOT_MISMATCH: "the Merkle root of the entries up to a checkpoint "
    "differs from the signed root: entries up to it were rewritten",
    ChainProblem.CHECKPOINT_FRONTIER_MISMATCH: "a checkpoint's stored Merkle frontier "
    "(unsigned helper data) was altered; later checkpoints would be signed wrongly",
    ChainProblem.CHECKPOINT_ORDER: "checkpoint sizes do not grow in the order they were written",
    ChainProblem.CHECKPOINT_BEYOND_LOG: "a checkpoint covers entries that no longer exist "
    "(the log was truncated)",
    ChainProblem.CHECKPOINT_MISSING: "no checkpoint at a size where one was due: checkpoints "
    "were deleted, or entries were appended without signing (see docs/audit.md)",
}


class VerifyReport(BaseModel):
    """Result of verifying the log.

    Parameters
    ----------
    ok : bool
        True when every check passed.
    entries : int
        Entries checked before stopping (all of them when ``ok``).
    first_bad_seq : int or None
        Sequence number of the first entry that fails a check or is missing; for a
        checkpoint problem, the size of that checkpoint (entries after
        ``last_good_checkpoint`` up to it cannot be trusted).
    reason : ChainProblem or None
        What failed there.
    head_seq, head_hash : int, str
        The head row's sequence number and hash.
    checkpoints : int
        Checkpoints verified (signature, head hash, Merkle root) before stopping.
    last_good_checkpoint : int or None
        Size of the newest checkpoint that verified before the failure (the newest overall
        when ``ok``); entries up to it match signed evidence.
    bad_checkpoint_id : int or None
        Id of the failing checkpoint, for checkpoint problems.
    root_hash : str or None
        Hex Merkle root over all entries (set when ``ok``).
    pinned : bool
        Whether signatures were checked against pinned keys (otherwise only against each
        checkpoint's own public key: integrity, not authenticity).
    """

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: ChainProblem | None = None
    head_seq: int
    head_hash: str
    checkpoints: int = 0
    last_good_checkpoint: int | None = None
    bad_checkpoint_id: int | None = None
    root_hash: str | None = None
    pinned: bool = False


def read_head(*, session: Session) -> tuple[int, str]:
    """Return the head's ``(seq, hash)``; ``(0, GENESIS_HASH)`` for an empty log.

    Parameters
    ----------
    session : Session
        A session on the audited database.

    Returns
    -------
    tuple[int, str]
        Sequence number and hash of the newest entry.
    """
    row = session.exec(
        sm_select(AuditHead.seq, AuditHead.hash).where(col(AuditHead.id) == HEAD_ID)
    ).first()
    if row is None:
        return 0, GENESIS_HASH
    return int(row[0]), str(row[1])


def count_entries(*, session: Session) -> int:
    """Return the number of stored entries.

    Parameters
    ----------
    session : Session
        A session on the audited database.

    Returns
    -------
    int
        ``count(*)`` of ``audit_entry``.
    """
    return int(session.exec(sm_select(func.count()).select_from(AuditEntry)).one())


def _iter_entries(session: Session, batch_size: int) -> Iterator[RowMapping]:
    """Yield every entry as a column mapping in ``seq`` order, ``batch_size`` per query."""
    connection = session.connection()
    last: int | None = None
    while True:
        stmt = select(_ENTRY).order_by(_ENTRY.c.seq).limit(batch_size)
        if last is not None:
            stmt = stmt.where(_ENTRY.c.seq > last)
        rows = connection.execute(stmt).mappings().all()
        if not rows:
            return
        yield from rows
        last = int(rows[-1]["seq"])


def _check(entry: RowMapping, expected_seq: int, prev_hash: str) -> ChainProblem | None:
    """Return the first failed check of one entry, or None."""
    if entry["seq"] != expected_seq:
        return ChainProblem.SEQ_GAP
    if entry["prev_hash"] != prev_hash:
        return ChainProblem.PREV_HASH_MISMATCH
    if compute_row_hash(cast(Mapping[str, Any], entry)) != entry["entry_hash"]:
        return ChainProblem.ENTRY_HASH_MISMATCH
    ref, salt = entry["subject_ref"], entry["subject_salt"]
    if (ref is None) != (salt is None):
        return ChainProblem.COMMITMENT_MISMATCH
    if ref is not None and salt is not None:
        try:
            if subject_commitment(salt, ref) != entry["subject_commitment"]:
                return ChainProblem.COMMITMENT_MISMATCH
        except (ValueError, UnicodeEncodeError):
            return ChainProblem.COMMITMENT_MISMATCH
    return None


def _check_checkpoint(
    checkpoint: AuditCheckpoint,
    *,
    head_hash: str,
    frontier: MerkleFrontier,
    trusted: dict[str, VerifyKey] | None,
) -> ChainProblem | None:
    """Return the first failed check of a checkpoint reached by the stream, or None."""
    if not signature_ok(checkpoint, trusted):
        return ChainProblem.CHECKPOINT_SIGNATURE
    if checkpoint.head_hash != head_hash:
        return ChainProblem.CHECKPOINT_HEAD_MISMATCH
    if checkpoint.root_hash != frontier.root().hex():
        return ChainProblem.CHECKPOINT_ROOT_MISMATCH
    try:
        stored = json.loads(checkpoint.frontier_json)
    except ValueError:
        return ChainProblem.CHECKPOINT_FRONTIER_MISMATCH
    if stored != frontier.to_hex():
        return ChainProblem.CHECKPOINT_FRONTIER_MISMATCH
    return None


class _Verifier:
    """The state of one verification pass (entries, Merkle frontier, pending checkpoints)."""

    def __init__(
        self,
        checkpoints: Sequence[AuditCheckpoint],
        trusted: dict[str, VerifyKey] | None,
    ) -> None:
        self.pending = sorted(checkpoints, key=lambda c: c.size)
        self.trusted = trusted
        self.frontier = MerkleFrontier()
        self.index = 0
        self.checked = 0
        self.checkpoints = 0
        self.last_good: int | None = None
        self.prev_hash = GENESIS_HASH

    def reach(self, size: int) -> tuple[ChainProblem, AuditCheckpoint] | None:
        """Check every checkpoint of ``size`` (the stream just verified entry ``size``)."""
        while self.index < len(self.pending) and self.pending[self.index].size == size:
            checkpoint = self.pending[self.index]
            problem = _check_checkpoint(
                checkpoint, head_hash=self.prev_hash, frontier=self.frontier, trusted=self.trusted
            )
            if problem is not None:
                return problem, checkpoint
            self.index, self.checkpoints, self.last_good = (
                self.index + 1,
                self.checkpoints + 1,
                size,
            )
        return None

    def entry(self, entry: RowMapping) -> ChainProblem | None:
        """Check one entry and fold it into the chain and the tree."""
        problem = _check(entry, self.checked + 1, self.prev_hash)
        if problem is not None:
            return problem
        self.checked += 1
        self.prev_hash = entry["entry_hash"]
        self.frontier.append(leaf_hash(bytes.fromhex(self.prev_hash)))
        return None


def _out_of_order(checkpoints: Sequence[AuditCheckpoint]) -> AuditCheckpoint | None:
    """Return the first checkpoint whose size does not exceed its predecessor's, or None."""
    for before, after in zip(checkpoints, checkpoints[1:], strict=False):
        if after.size <= before.size:
            return after
    return None


def verify_chain(
    *,
    session: Session,
    batch_size: int = VERIFY_BATCH,
    progress: Callable[[int], None] | None = None,
    trusted_keys: Sequence[VerifyKey] | None = None,
    checkpoint_every: int | None = None,
) -> VerifyReport:
    """Recompute the whole log and compare it with the stored hashes, head and checkpoints.

    Parameters
    ----------
    session : Session
        A session on the audited database.
    batch_size : int
        Entries read per query.
    progress : Callable[[int], None] or None
        Called after each batch with the number of entries checked so far.
    trusted_keys : Sequence[VerifyKey] or None
        Public keys checkpoints must be signed with (the server's key, or one pinned on the
        command line). ``None`` checks each checkpoint against its own public key only.
    checkpoint_every : int or None
        The checkpoint interval in force; when given, a missing checkpoint at a multiple of
        it after the newest one is reported (``checkpoint_missing``).

    Returns
    -------
    VerifyReport
        ``ok=True``, or the first bad sequence number, the failed check and the last
        checkpoint that verified.
    """
    head_seq, head_hash = read_head(session=session)
    checkpoints = list(all_checkpoints(session=session))
    trusted = None if trusted_keys is None else {k.key_id: k for k in trusted_keys}
    state = _Verifier(checkpoints, trusted)

    def report(problem: ChainProblem, seq: int, bad: AuditCheckpoint | None = None) -> VerifyReport:
        logger.warning("audit log broken at seq %d: %s", seq, problem.value)
        return VerifyReport(
            ok=False, entries=state.checked, first_bad_seq=seq, reason=problem,
            head_seq=head_seq, head_hash=head_hash, checkpoints=state.checkpoints,
            last_good_checkpoint=state.last_good,
            bad_checkpoint_id=None if bad is None else bad.id, pinned=trusted is not None,
        )  # fmt: skip

    # 1. Checkpoints must grow in the order they were written.
    disordered = _out_of_order(checkpoints)
    if disordered is not None:
        return report(ChainProblem.CHECKPOINT_ORDER, disordered.size, disordered)
    # 2. Stream the entries; check each checkpoint when the stream reaches its size.
    found = state.reach(0)
    if found is not None:
        return report(found[0], 0, found[1])
    for entry in _iter_entries(session, batch_size):
        expected = state.checked + 1
        problem = state.entry(entry)
        if problem is not None:
            return report(problem, min(expected, int(entry["seq"])))
        found = state.reach(state.checked)
        if found is not None:
            return report(found[0], state.checked, found[1])
        if progress is not None and state.checked % batch_size == 0:
            progress(state.checked)
    if progress is not None:
        progress(state.checked)
    # 3. Nothing may be signed beyond the log; the head must match the last entry.
    if state.index < len(state.pending):
        return report(
            ChainProblem.CHECKPOINT_BEYOND_LOG, state.checked + 1, state.pending[state.index]
        )
    if head_seq != state.checked or head_hash != state.prev_hash:
        return report(ChainProblem.HEAD_MISMATCH, min(head_seq, state.checked) + 1)
    # 4. Every due checkpoint after the newest one must exist.
    if checkpoint_every is not None:
        newest = state.last_good or 0
        due = (newest // checkpoint_every + 1) * checkpoint_every
        if due <= state.checked:
            return report(ChainProblem.CHECKPOINT_MISSING, due)
    root = state.frontier.root() if state.checked else EMPTY_ROOT
    return VerifyReport(
        ok=True, entries=state.checked, head_seq=head_seq, head_hash=head_hash,
        checkpoints=state.checkpoints, last_good_checkpoint=state.last_good,
        root_hash=root.hex(), pinned=trusted is not None,
    )  # fmt: skip
