"""Consent coverage for the overview and consent pages, computed off the request path.

Counting the latest consent state of every (subject, purpose) is a grouped scan of the whole
``consent_record`` table: milliseconds for thousands of subjects, seconds for hundreds of
thousands. So pages never wait for it on a large table: :class:`CoverageCache` keeps the last
result with the time it was computed, serves it while it is younger than ``max_age`` and
otherwise refreshes it in a background task, serving the previous result (marked with its
time) meanwhile. Small tables (fewer than ``inline_limit`` subjects) are counted inline, so
pages of a fresh or small deployment are always exact. Publishing a notice invalidates the
result (renewal counts change at once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import BackgroundTasks
from sqlalchemy.engine import Engine
from sqlmodel import Session

from .queries import Coverage, consent_coverage, count_subjects, notice_registry, notice_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoverageSnapshot:
    """Coverage counts and when they were computed.

    Parameters
    ----------
    rows : list[Coverage]
        One entry per purpose.
    computed_at : datetime
        When the counts were taken.
    subjects : int
        Subjects at that moment.
    """

    rows: list[Coverage]
    computed_at: datetime
    subjects: int


class CoverageCache:
    """Last consent-coverage result of this process, refreshed in the background.

    Parameters
    ----------
    max_age : timedelta
        How long a result is served without a refresh.
    inline_limit : int
        Below this many subjects the counts are taken inline on every miss.
    """

    def __init__(
        self, *, max_age: timedelta = timedelta(seconds=60), inline_limit: int = 20_000
    ) -> None:
        self._lock = threading.Lock()
        self._snapshot: CoverageSnapshot | None = None
        self._refreshing = False
        self.max_age = max_age
        self.inline_limit = inline_limit

    def invalidate(self) -> None:
        """Forget the result (after a notice is published)."""
        with self._lock:
            self._snapshot = None

    def _fresh(self, at: datetime) -> CoverageSnapshot | None:
        """Return the snapshot if it is younger than ``max_age``."""
        snap = self._snapshot
        if snap is not None and at - snap.computed_at < self.max_age:
            return snap
        return None

    def get(
        self,
        *,
        db: Session,
        engine: Engine,
        clock: Callable[[], datetime],
        background: BackgroundTasks,
    ) -> tuple[CoverageSnapshot | None, bool]:
        """Return the coverage to show and whether a refresh is under way.

        Parameters
        ----------
        db : Session
            The request's session.
        engine : Engine
            The application's engine (background refreshes open their own session).
        clock : Callable[[], datetime]
            Source of "now".
        background : BackgroundTasks
            Where a refresh is scheduled when the table is large.

        Returns
        -------
        tuple[CoverageSnapshot or None, bool]
            The freshest result available (``None`` before the first large count finishes)
            and whether a background refresh is running.
        """
        at = clock()
        with self._lock:
            fresh = self._fresh(at)
            if fresh is not None:
                return fresh, self._refreshing
        subjects = count_subjects(session=db)
        if subjects < self.inline_limit:
            snap = _compute(db, at, subjects)
            with self._lock:
                self._snapshot = snap
            return snap, False
        with self._lock:
            stale = self._snapshot
            if not self._refreshing:
                self._refreshing = True
                background.add_task(self._refresh, engine, clock)
            return stale, True

    def _refresh(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        """Recount in a session of its own and store the result."""
        snap = None
        try:
            with Session(engine) as session:
                at = clock()
                snap = _compute(session, at, count_subjects(session=session))
        except Exception:  # noqa: BLE001 - a failed refresh keeps the old result
            logger.exception("console consent-coverage refresh failed")
        with self._lock:
            self._refreshing = False
            if snap is not None:
                self._snapshot = snap


def _compute(db: Session, at: datetime, subjects: int) -> CoverageSnapshot:
    """Count coverage now under the published notices."""
    notices = notice_registry(notice_rows(session=db))
    rows = consent_coverage(session=db, notices=notices, at=at)
    return CoverageSnapshot(rows=rows, computed_at=at, subjects=subjects)
