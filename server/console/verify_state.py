"""The audit-verify status the console shows: the last result, and a run in the background.

Verifying a million entries takes seconds, so no page runs it inline. An officer starts a run
(:meth:`VerifyState.start` claims it, :meth:`VerifyState.run` does the work in a background
task with its own database session); pages read only the last finished result.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from privacy import VerifyKey

from ..audit.log import VerifyReport, verify_chain

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifySnapshot:
    """What the overview shows about the audit log's integrity.

    Parameters
    ----------
    running : bool
        Whether a verification is under way.
    report : VerifyReport or None
        The last finished result (``None`` before the first run).
    finished_at : datetime or None
        When that result was produced.
    failed : bool
        Whether the last run could not complete (a database error, not a broken chain).
    """

    running: bool
    report: VerifyReport | None
    finished_at: datetime | None
    failed: bool = False


class VerifyState:
    """Thread-safe holder of the last verification result of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = False
        self._report: VerifyReport | None = None
        self._finished_at: datetime | None = None
        self._failed = False

    def snapshot(self) -> VerifySnapshot:
        """Return the current status (never blocks on a running verification)."""
        with self._lock:
            return VerifySnapshot(self._running, self._report, self._finished_at, self._failed)

    def start(self) -> bool:
        """Claim the next run; ``False`` if one is already running."""
        with self._lock:
            if self._running:
                return False
            self._running = True
            return True

    def run(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        *,
        trusted_keys: Sequence[VerifyKey] | None = None,
        checkpoint_every: int | None = None,
        workers: int = 1,
    ) -> None:
        """Verify the whole chain on ``engine`` and store the result (after :meth:`start`).

        Parameters
        ----------
        engine : Engine
            The application's engine; the run uses its own session.
        clock : Callable[[], datetime]
            Source of the finish time.
        trusted_keys : Sequence[VerifyKey] or None
            Keys checkpoints must be signed with (the server's own).
        checkpoint_every : int or None
            The checkpoint interval in force (a missing due checkpoint is reported).
        workers : int
            Processes for a large log (``verify_chain``'s ``workers``).
        """
        report: VerifyReport | None = None
        try:
            with Session(engine) as session:
                report = verify_chain(
                    session=session, trusted_keys=trusted_keys,
                    checkpoint_every=checkpoint_every, workers=workers,
                )  # fmt: skip
        except Exception:  # noqa: BLE001 - a failed run is shown, never raised into a page
            logger.exception("console audit verification could not complete")
        with self._lock:
            self._running = False
            self._failed = report is None
            if report is not None:
                self._report = report
            self._finished_at = clock()
