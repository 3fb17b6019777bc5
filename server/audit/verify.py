"""The verification core: check a stream of entry rows against the chain, tree and checkpoints.

:func:`verify_rows` takes the entries as plain tuples in :data:`ROW_COLUMNS` order (what
:func:`server.audit.log.iter_entry_rows` reads from the database, or an in-memory list in
the tamper tests), the stored checkpoints and the head row, and recomputes every hash, link
and salted commitment and the RFC 9162 Merkle tree of the entry hashes. At each checkpoint
it checks the signature (against pinned keys), the head hash, the Merkle root and the
stored frontier. The first failure ends the pass and is named by sequence number and
:class:`ChainProblem`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel

from privacy import VerifyKey

from ..tables.audit_checkpoint import AuditCheckpoint
from ..tables.audit_entry import GENESIS_HASH
from .checkpoint import signature_ok
from .entry_hash import entry_digest, hash_fields, stored_time_text, subject_commitment
from .merkle import EMPTY_ROOT, MerkleFrontier

logger = logging.getLogger(__name__)

_sha256 = hashlib.sha256
#: RFC 9162 leaf prefix (``merkle.leaf_hash`` inlined on the hot path).
_LEAF = b"\x00"

#: Column order of the entry rows :func:`verify_rows` takes.
ROW_COLUMNS = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "purpose",
    "outcome",
    "subject_commitment",
    "detail_json",
    "prev_hash",
    "entry_hash",
    "subject_ref",
    "subject_salt",
)

#: One stored entry in :data:`ROW_COLUMNS` order.
EntryRow = Sequence[object]


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


def check_row(row: EntryRow, expected_seq: int, prev_hash: str) -> ChainProblem | None:
    """Return the first failed check of one entry row, or None.

    Parameters
    ----------
    row : EntryRow
        The entry in :data:`ROW_COLUMNS` order.
    expected_seq : int
        The sequence number it must have.
    prev_hash : str
        The ``entry_hash`` of the entry before it.

    Returns
    -------
    ChainProblem or None
        ``seq_gap``, ``prev_hash_mismatch``, ``entry_hash_mismatch`` or
        ``commitment_mismatch``; None when the row is sound.
    """
    seq, at, actor, role, action, purpose, outcome, commitment, detail, prev, own, ref, salt = row
    if seq != expected_seq:
        return ChainProblem.SEQ_GAP
    if prev != prev_hash:
        return ChainProblem.PREV_HASH_MISMATCH
    try:
        computed = hash_fields(
            prev_hash, expected_seq, stored_time_text(at), actor, role, action,  # type: ignore[arg-type]
            purpose, outcome, commitment, detail,  # type: ignore[arg-type]
        )  # fmt: skip
    except (TypeError, ValueError):
        return ChainProblem.ENTRY_HASH_MISMATCH
    if computed != own:
        return ChainProblem.ENTRY_HASH_MISMATCH
    if (ref is None) != (salt is None):
        return ChainProblem.COMMITMENT_MISMATCH
    if ref is not None:
        try:
            if subject_commitment(str(salt), str(ref)) != commitment:
                return ChainProblem.COMMITMENT_MISMATCH
        except (ValueError, UnicodeEncodeError):
            return ChainProblem.COMMITMENT_MISMATCH
    return None


def _sound_digest(row: EntryRow, expected_seq: int, prev_hash: str) -> bytes | None:
    """Return the entry's raw hash if every :func:`check_row` check passes, else None.

    The fast path of a pass: one call per entry, no classification (``check_row`` names
    the problem of the one row that fails).
    """
    seq, at, actor, role, action, purpose, outcome, commitment, detail, prev, own, ref, salt = row
    if seq != expected_seq or prev != prev_hash:
        return None
    try:
        if type(at) is str and len(at) == 26 and at[10] == " " and at[19] == ".":
            at_text = f"{at[:10]}T{at[11:]}+00:00"  # SQLite's stored form (stored_time_text)
        else:
            at_text = stored_time_text(at)
        digest = entry_digest(
            prev_hash, expected_seq, at_text, actor, role, action,  # type: ignore[arg-type]
            purpose, outcome, commitment, detail,  # type: ignore[arg-type]
        )  # fmt: skip
        if digest.hex() != own:
            return None
        if ref is None:
            return digest if salt is None else None
        linked = _sha256(bytes.fromhex(str(salt)) + str(ref).encode("ascii")).hexdigest()
    except (TypeError, ValueError, AttributeError, UnicodeEncodeError):
        return None
    return digest if linked == commitment else None


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


def _out_of_order(checkpoints: Sequence[AuditCheckpoint]) -> AuditCheckpoint | None:
    """Return the first checkpoint whose size does not exceed its predecessor's, or None."""
    for before, after in zip(checkpoints, checkpoints[1:], strict=False):
        if after.size <= before.size:
            return after
    return None


@dataclass(frozen=True)
class ChainState:
    """The verified state of the log after its first ``size`` entries.

    A pass may start from it instead of the genesis (the parallel verifier starts each
    segment at a stored checkpoint) and a segment ends with one.

    Parameters
    ----------
    size : int
        Entries covered.
    prev_hash : str
        ``entry_hash`` of entry ``size`` (:data:`GENESIS_HASH` when ``size`` is 0).
    frontier : MerkleFrontier
        The Merkle frontier over those entries.
    checkpoints : int
        Checkpoints verified so far.
    last_good : int or None
        Size of the newest verified checkpoint.
    verified_sizes : frozenset[int]
        Sizes of every verified checkpoint.
    """

    size: int
    prev_hash: str
    frontier: MerkleFrontier
    checkpoints: int = 0
    last_good: int | None = None
    verified_sizes: frozenset[int] = frozenset()

    @classmethod
    def genesis(cls) -> ChainState:
        """Return the state before the first entry."""
        return cls(0, GENESIS_HASH, MerkleFrontier())

    def then(self, segment: ChainState) -> ChainState:
        """Return the state after ``segment``, a pass that started where this one ends.

        ``segment`` carries its own counts of verified checkpoints; they are added to ours.
        """
        return ChainState(
            segment.size, segment.prev_hash, segment.frontier,
            self.checkpoints + segment.checkpoints,
            segment.last_good if segment.last_good is not None else self.last_good,
            self.verified_sizes | segment.verified_sizes,
        )  # fmt: skip


class _Pass:
    """The state of one verification pass and the report it ends with."""

    def __init__(
        self,
        checkpoints: Sequence[AuditCheckpoint],
        trusted: dict[str, VerifyKey] | None,
        head: tuple[int, str],
        start: ChainState,
    ) -> None:
        self.pending = sorted((c for c in checkpoints if c.size > start.size), key=lambda c: c.size)
        self.trusted = trusted
        self.head = head
        self.frontier = start.frontier.copy()
        self.index = 0
        self.checked = start.size
        self.checkpoints = start.checkpoints
        self.last_good = start.last_good
        self.verified_sizes: set[int] = set(start.verified_sizes)
        self.prev_hash = start.prev_hash

    def state(self) -> ChainState:
        """Return where the pass stands (for a segment: its result)."""
        return ChainState(
            self.checked, self.prev_hash, self.frontier.copy(), self.checkpoints,
            self.last_good, frozenset(self.verified_sizes),
        )  # fmt: skip

    def reach(self) -> tuple[ChainProblem, AuditCheckpoint] | None:
        """Check every checkpoint at the size the stream has reached."""
        size = self.checked
        while self.index < len(self.pending) and self.pending[self.index].size == size:
            checkpoint = self.pending[self.index]
            problem = _check_checkpoint(
                checkpoint, head_hash=self.prev_hash, frontier=self.frontier, trusted=self.trusted
            )
            if problem is not None:
                return problem, checkpoint
            self.index += 1
            self.checkpoints += 1
            self.last_good = size
            self.verified_sizes.add(size)
        return None

    def next_size(self) -> int:
        """Size of the next checkpoint to check (-1 when none is left)."""
        return self.pending[self.index].size if self.index < len(self.pending) else -1

    def stream(
        self,
        rows: Iterable[EntryRow],
        progress: Callable[[int], None] | None,
        progress_every: int,
    ) -> VerifyReport | None:
        """Check ``rows`` as the entries after the current state; a report on the first failure.

        Returns None when the rows are exhausted with every entry and every checkpoint
        reached sound (the caller then runs :meth:`finish`).
        """
        # The hot loop keeps its state in locals (about 10% faster on a million entries).
        checked, prev_hash = self.checked, self.prev_hash
        append = self.frontier.append
        next_size = self.next_size()
        for row in rows:
            expected = checked + 1
            digest = _sound_digest(row, expected, prev_hash)
            if digest is None:
                self.checked, self.prev_hash = checked, prev_hash
                problem = check_row(row, expected, prev_hash) or ChainProblem.ENTRY_HASH_MISMATCH
                seq = row[0]
                return self.report(
                    problem, min(expected, seq) if isinstance(seq, int) else expected
                )
            checked, prev_hash = expected, str(row[10])
            append(_sha256(_LEAF + digest).digest())
            if expected == next_size:
                self.checked, self.prev_hash = checked, prev_hash
                found = self.reach()
                if found is not None:
                    return self.report(found[0], expected, found[1])
                next_size = self.next_size()
            if progress is not None and expected % progress_every == 0:
                progress(expected)
        self.checked, self.prev_hash = checked, prev_hash
        if progress is not None:
            progress(self.checked)
        return None

    def finish(self, checkpoint_every: int | None) -> VerifyReport:
        """Run the checks after the last entry: nothing signed beyond it, head, checkpoints due."""
        if self.index < len(self.pending):
            return self.report(
                ChainProblem.CHECKPOINT_BEYOND_LOG, self.checked + 1, self.pending[self.index]
            )
        if self.head != (self.checked, self.prev_hash):
            return self.report(ChainProblem.HEAD_MISMATCH, min(self.head[0], self.checked) + 1)
        # Every due checkpoint must exist (one at each multiple of the interval).
        if checkpoint_every is not None:
            for due in range(checkpoint_every, self.checked + 1, checkpoint_every):
                if due not in self.verified_sizes:
                    return self.report(ChainProblem.CHECKPOINT_MISSING, due)
        return self.report(None)

    def report(
        self,
        problem: ChainProblem | None,
        seq: int | None = None,
        bad: AuditCheckpoint | None = None,
    ) -> VerifyReport:
        """Return the report: ``ok`` when ``problem`` is None."""
        if problem is not None:
            logger.warning("audit log broken at seq %s: %s", seq, problem.value)
        root = self.frontier.root() if self.checked else EMPTY_ROOT
        return VerifyReport(
            ok=problem is None, entries=self.checked, first_bad_seq=seq, reason=problem,
            head_seq=self.head[0], head_hash=self.head[1], checkpoints=self.checkpoints,
            last_good_checkpoint=self.last_good,
            bad_checkpoint_id=None if bad is None else bad.id,
            root_hash=root.hex() if problem is None else None,
            pinned=self.trusted is not None,
        )  # fmt: skip


def verify_rows(
    *,
    rows: Iterable[EntryRow],
    checkpoints: Sequence[AuditCheckpoint],
    head: tuple[int, str],
    trusted_keys: Sequence[VerifyKey] | None = None,
    checkpoint_every: int | None = None,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 5000,
    start: ChainState | None = None,
) -> VerifyReport:
    """Verify entry rows in ``seq`` order against each other, the head and the checkpoints.

    Parameters
    ----------
    rows : Iterable[EntryRow]
        Every entry (after ``start``), in the order stored (ascending ``seq``), as
        :data:`ROW_COLUMNS` tuples.
    checkpoints : Sequence[AuditCheckpoint]
        Every stored checkpoint, in the order written (``id``).
    head : tuple[int, str]
        The head row's ``(seq, hash)``.
    trusted_keys : Sequence[VerifyKey] or None
        Public keys checkpoints must be signed with; ``None`` checks each checkpoint against
        its own public key only (integrity, not authenticity).
    checkpoint_every : int or None
        The checkpoint interval in force; when given, a missing checkpoint at a multiple of
        it after the newest verified one is reported (``checkpoint_missing``).
    progress : Callable[[int], None] or None
        Called every ``progress_every`` entries and at the end with the count checked.
    progress_every : int
        Entries between progress calls.
    start : ChainState or None
        A state already verified (by an earlier pass over the entries before it); ``rows``
        then hold only the entries after ``start.size``. None starts at the genesis.

    Returns
    -------
    VerifyReport
        ``ok=True`` with the Merkle root, or the first bad sequence number and the problem.
    """
    trusted = None if trusted_keys is None else {k.key_id: k for k in trusted_keys}
    state = _Pass(checkpoints, trusted, head, start or ChainState.genesis())
    # 1. Checkpoints must grow in the order they were written.
    disordered = _out_of_order(checkpoints)
    if disordered is not None:
        return state.report(ChainProblem.CHECKPOINT_ORDER, disordered.size, disordered)
    # 2. Stream the entries; check each checkpoint when the stream reaches its size.
    found = state.reach()
    if found is not None:
        return state.report(found[0], state.checked, found[1])
    broken = state.stream(rows, progress, progress_every)
    # 3. Nothing may be signed beyond the log; the head must match; no checkpoint missing.
    return broken if broken is not None else state.finish(checkpoint_every)


def verify_segment(
    *,
    rows: Iterable[EntryRow],
    checkpoints: Sequence[AuditCheckpoint],
    start: ChainState,
    end: int,
    trusted_keys: Sequence[VerifyKey] | None = None,
) -> ChainState | None:
    """Verify the entries ``start.size + 1 .. end`` alone; their end state, or None.

    One piece of a parallel pass: ``start`` is taken from the stored checkpoint at
    ``start.size`` without being trusted; the piece before it proves it by verifying that
    checkpoint against its own computed state. ``checkpoints`` are those with sizes in
    ``(start.size, end]``; every one must be reached and sound.

    Parameters
    ----------
    rows : Iterable[EntryRow]
        The stored entries with ``start.size < seq <= end`` (or, for the first piece,
        every entry up to ``end``), in ``seq`` order.
    checkpoints : Sequence[AuditCheckpoint]
        The checkpoints inside the piece.
    start : ChainState
        The state the piece starts from (counts of verified checkpoints zero).
    end : int
        The size the piece must reach.
    trusted_keys : Sequence[VerifyKey] or None
        As for :func:`verify_rows`.

    Returns
    -------
    ChainState or None
        The state after ``end`` entries (counting only this piece's checkpoints), or None
        when anything fails or the rows stop short; the caller then verifies sequentially
        from ``start`` to name the first problem exactly as :func:`verify_rows` does.
    """
    trusted = None if trusted_keys is None else {k.key_id: k for k in trusted_keys}
    state = _Pass(checkpoints, trusted, (end, ""), start)
    if state.stream(rows, None, 1) is not None:
        return None
    if state.checked != end or state.index < len(state.pending):
        return None
    return state.state()
