"""Verify a large audit log on several cores, split at its signed checkpoints.

The log is cut into pieces that end at stored checkpoints. Each piece starts from the
state its opening checkpoint stores (the head hash and the Merkle frontier) and is checked
in a worker process that reads its own rows through its own database connection
(:func:`server.audit.verify.verify_segment`). That starting state is not taken on trust:
the piece before it recomputes the same state from the entries and checks the checkpoint
against it (signature under the pinned keys, head hash, Merkle root, stored frontier), so
when every piece passes, the chain from the genesis to the head is verified exactly as one
sequential pass would verify it.

When a piece fails, the first failing piece is verified again sequentially in this process
from the state the piece before it computed (the same path as ``verify_rows``), so the
report names the first bad entry and the kind of problem exactly as a sequential pass does;
the extra work is at most one piece.

Workers see committed data only (their own connections): verify a log as stored, not an
uncommitted transaction. Entries up to the head never change after they are written, so
reading them on several connections gives the same rows as one.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.context import BaseContext
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from privacy import VerifyKey

from ..tables.audit_checkpoint import AuditCheckpoint
from .merkle import MerkleFrontier
from .verify import ChainState, EntryRow, VerifyReport, verify_rows, verify_segment

logger = logging.getLogger(__name__)

#: Below this many entries a single pass is faster than starting workers.
PARALLEL_FROM = 100_000
#: Pieces per worker: small enough pieces to balance the cores and drive a progress bar.
PIECES_PER_WORKER = 4
#: Upper bound of the worker count chosen automatically.
MAX_AUTO_WORKERS = 8
#: Smallest sequence number read by the first piece (rows below 1 are found as gaps).
FIRST_SEQ = -(2**62)

RowsFrom = Callable[[int, int], Iterable[EntryRow]]


@dataclass(frozen=True)
class Piece:
    """One piece of the log: entries ``lo + 1 .. hi`` and the state stored at ``lo``."""

    lo: int
    hi: int
    start: ChainState
    checkpoints: tuple[AuditCheckpoint, ...]


def resolve_workers(workers: int) -> int:
    """Return the worker count to use: ``workers``, or one per core (at most 8) for 0.

    Parameters
    ----------
    workers : int
        The configured count (``FEDPROFILE_AUDIT_VERIFY_WORKERS``); 0 chooses automatically.

    Returns
    -------
    int
        At least 1.
    """
    if workers > 0:
        return workers
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_WORKERS))


def shareable_url(url: str) -> str | None:
    """Return a URL worker processes can open on the same data, or None when there is none.

    An in-memory SQLite database exists only inside this process.

    Parameters
    ----------
    url : str
        The audited database's SQLAlchemy URL, with its password.

    Returns
    -------
    str or None
        ``url`` itself, or None for an in-memory database.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or parsed.query.get("mode") == "memory":
            return None
    return url


def _stored_start(checkpoint: AuditCheckpoint) -> ChainState | None:
    """Return the state a checkpoint stores (unverified); None if its frontier is unreadable."""
    try:
        hashes = json.loads(checkpoint.frontier_json)
        frontier = MerkleFrontier.from_hex(checkpoint.size, hashes)
    except (ValueError, TypeError):
        return None
    return ChainState(checkpoint.size, checkpoint.head_hash, frontier)


def plan_pieces(
    checkpoints: Sequence[AuditCheckpoint], head_seq: int, pieces: int
) -> list[Piece] | None:
    """Cut entries ``1 .. head_seq`` into about ``pieces`` pieces at readable checkpoints.

    Parameters
    ----------
    checkpoints : Sequence[AuditCheckpoint]
        The stored checkpoints (any order).
    head_seq : int
        The head's sequence number: the last entry to verify.
    pieces : int
        How many pieces to aim for.

    Returns
    -------
    list[Piece] or None
        Pieces in log order covering ``1 .. head_seq``; None when the log cannot be cut
        (no usable checkpoint, or checkpoints out of order, which a sequential pass
        reports before reading any entry).
    """
    ordered = list(checkpoints)  # sizes grow in the order written, or no plan
    if not ordered or any(b.size <= a.size for a, b in zip(ordered, ordered[1:], strict=False)):
        return None  # a sequential pass reports the disorder before reading any entry
    if ordered[0].size < 1:
        return None
    usable = [
        (c.size, state)
        for c in ordered
        if c.size < head_seq and (state := _stored_start(c)) is not None
    ]
    starts: list[tuple[int, ChainState]] = [(0, ChainState.genesis())]
    index = 0
    for k in range(1, pieces):
        target = head_seq * k // pieces
        while index < len(usable) and usable[index][0] < target:
            index += 1
        if index < len(usable) and usable[index][0] > starts[-1][0]:
            starts.append(usable[index])
    if len(starts) == 1:
        return None
    ends = [lo for lo, _ in starts[1:]] + [head_seq]
    return [
        Piece(lo, hi, state, tuple(c for c in ordered if lo < c.size <= hi))
        for (lo, state), hi in zip(starts, ends, strict=True)
    ]


def _start_method() -> BaseContext:
    """Fork when this process has one thread (cheap), otherwise spawn (fork is unsafe)."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _verify_piece(
    url: str,
    lo: int,
    hi: int,
    start: ChainState,
    checkpoints: list[dict[str, Any]],
    trusted: list[str] | None,
) -> ChainState | None:
    """Worker: verify one piece through a fresh connection of its own."""
    from ..db import create_db_engine  # noqa: PLC0415 - workers import on demand
    from .log import iter_connection_rows  # noqa: PLC0415 - avoids an import cycle

    keys = None if trusted is None else [VerifyKey.from_text(text) for text in trusted]
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            rows = iter_connection_rows(
                connection=connection, first=FIRST_SEQ if lo == 0 else lo + 1, last=hi
            )
            return verify_segment(
                rows=rows, checkpoints=[AuditCheckpoint(**c) for c in checkpoints],
                start=start, end=hi, trusted_keys=keys,
            )  # fmt: skip
    finally:
        engine.dispose()


def _run_pieces(
    plan: Sequence[Piece],
    url: str,
    trusted_keys: Sequence[VerifyKey] | None,
    workers: int,
    progress: Callable[[int], None] | None,
) -> list[ChainState | None]:
    """Verify every piece on a pool of ``workers`` processes; results in log order."""
    trusted = None if trusted_keys is None else [k.to_text() for k in trusted_keys]
    with ProcessPoolExecutor(max_workers=workers, mp_context=_start_method()) as pool:
        futures = {
            pool.submit(
                _verify_piece,
                url,
                piece.lo,
                piece.hi,
                piece.start,
                [c.model_dump() for c in piece.checkpoints],
                trusted,
            ): piece
            for piece in plan
        }
        pending, done_entries = set(futures), 0
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            done_entries += sum(futures[f].hi - futures[f].lo for f in finished)
            if progress is not None:
                progress(done_entries)
        return [future.result() for future in futures]


def verify_in_pieces(
    *,
    url: str,
    checkpoints: Sequence[AuditCheckpoint],
    head: tuple[int, str],
    rows_from: RowsFrom,
    workers: int,
    trusted_keys: Sequence[VerifyKey] | None = None,
    checkpoint_every: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport | None:
    """Verify the log on ``workers`` processes; the same report as one sequential pass.

    Parameters
    ----------
    url : str
        A database URL worker processes can open (see :func:`shareable_url`).
    checkpoints : Sequence[AuditCheckpoint]
        Every stored checkpoint, in the order written.
    head : tuple[int, str]
        The head row's ``(seq, hash)``.
    rows_from : Callable[[int, int], Iterable[EntryRow]]
        Reads the entries with ``first <= seq <= last`` in this process (for the
        sequential re-check of a failing piece).
    workers : int
        Worker processes (at least 2 to be worth it).
    trusted_keys, checkpoint_every, progress
        As for :func:`server.audit.verify.verify_rows`; ``progress`` is called as pieces
        complete, with the number of entries verified so far.

    Returns
    -------
    VerifyReport or None
        The report; None when the log cannot be cut into pieces (the caller verifies it in
        one pass).
    """
    if multiprocessing.current_process().daemon:
        return None  # a daemonic process (a pool worker itself) may not start processes
    plan = plan_pieces(checkpoints, head[0], workers * PIECES_PER_WORKER)
    if plan is None:
        return None
    try:
        results = _run_pieces(plan, url, trusted_keys, workers, progress)
    except (BrokenProcessPool, OSError, SQLAlchemyError) as error:
        # Workers could not start or read (no fork/spawn here, too many connections...):
        # the caller verifies in one pass, which reports a real database problem itself.
        logger.warning("parallel audit verify unavailable (%s); verifying in one pass", error)
        return None
    state = ChainState.genesis()
    for piece, result in zip(plan, results, strict=True):
        if result is None:
            # Name the problem exactly: one sequential pass from the verified state before it.
            first = FIRST_SEQ if piece.lo == 0 else piece.lo + 1
            return verify_rows(
                rows=rows_from(first, head[0]), checkpoints=checkpoints, head=head,
                trusted_keys=trusted_keys, checkpoint_every=checkpoint_every,
                progress=progress, start=state,
            )  # fmt: skip
        state = state.then(result)
    # Every entry is verified: the checks after the last one (head, checkpoints due).
    return verify_rows(
        rows=(), checkpoints=checkpoints, head=head, trusted_keys=trusted_keys,
        checkpoint_every=checkpoint_every, start=state,
    )  # fmt: skip
