"""Data quality per ingest: how an export compares with the edge's earlier ones.

``fedprofile edge ingest`` already counts every rejected (schema-violating) and duplicated
line. After each ingest this module compares the run with the edge's own history of ingests
(kept in the edge store, never sent) and names what an operator should look at:

- **schema violations**: more than 5% of the lines were rejected (they wait in the
  quarantine; fix the export and ingest the repaired file again);
- **volume drop**: fewer than 20% of the median accepted lines of the last ingests;
- **duplicated export**: more than half the lines were already stored;
- **stale source**: the newest event is more than 48 hours older than the ingest.

The per-round training report (``models.quality``) is what the server acts on; this one
keeps the operator of the edge informed at the moment the export arrives.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .ingest import IngestReport
from .store import EdgeStore, from_epoch

#: Edge-store meta key of the ingest history (a JSON list, newest last).
HISTORY_META = "ingest-history"
#: Ingests kept in the history.
HISTORY_KEEP = 30
REJECTION_LIMIT = 0.05
VOLUME_DROP = 0.20
DUPLICATE_LIMIT = 0.50
STALE_HOURS = 48.0


@dataclass(frozen=True)
class IngestQuality:
    """One ingest's quality against the edge's history.

    Parameters
    ----------
    rejection_rate, duplicate_rate : float
        Shares of the lines read that were rejected or already stored.
    volume_ratio : float or None
        Accepted lines / the median of the previous ingests' (``None``: no history yet).
    freshness_hours : float or None
        Hours between the ingest and the newest stored event (``None``: no events).
    flags : list[str]
        What an operator should look at (see the module docstring).
    """

    rejection_rate: float
    duplicate_rate: float
    volume_ratio: float | None
    freshness_hours: float | None
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON values."""

        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        return {
            "rejection_rate": rounded(self.rejection_rate),
            "duplicate_rate": rounded(self.duplicate_rate),
            "volume_ratio": rounded(self.volume_ratio),
            "freshness_hours": rounded(self.freshness_hours),
            "flags": list(self.flags),
        }


def _history(store: EdgeStore) -> list[dict[str, Any]]:
    saved = store.get_meta(HISTORY_META)
    return [] if saved is None else list(json.loads(saved))


def record_ingest_quality(store: EdgeStore, report: IngestReport, *, at: datetime) -> IngestQuality:
    """Judge ``report`` against the edge's history, then add it to the history.

    Parameters
    ----------
    store : EdgeStore
        The edge store (holds the history and the events).
    report : IngestReport
        This ingest's counts (all files).
    at : datetime
        When the ingest ran (timezone-aware).

    Returns
    -------
    IngestQuality
        Rates, volume against the history, freshness and flags.
    """
    lines = max(report.lines, 1)
    rejection = report.total_rejected / lines
    duplicates = report.total_duplicates / lines
    history = _history(store)
    previous = [int(h["accepted"]) for h in history if int(h["accepted"]) > 0]
    median = statistics.median(previous) if previous else None
    volume = None if median is None else report.total_accepted / median
    span = store.event_time_range()
    fresh = None if span is None else (at - from_epoch(span[1])).total_seconds() / 3600.0
    flags: list[str] = []
    if rejection > REJECTION_LIMIT:
        flags.append(
            f"schema violations: {100 * rejection:.1f}% of the lines were rejected (see the "
            "quarantine; fix the export and ingest the repaired file again)"
        )
    if volume is not None and volume < VOLUME_DROP:
        flags.append(
            f"volume drop: {report.total_accepted} lines accepted, {100 * volume:.0f}% of the "
            f"median of the last {len(previous)} ingests"
        )
    if duplicates > DUPLICATE_LIMIT:
        flags.append(f"duplicated export: {100 * duplicates:.0f}% of the lines were already stored")
    if fresh is not None and fresh > STALE_HOURS:
        flags.append(f"stale source: the newest event is {fresh:.0f} hours old")
    history.append(
        {
            "at": at.isoformat(),
            "lines": report.lines,
            "accepted": report.total_accepted,
            "rejected": report.total_rejected,
            "duplicates": report.total_duplicates,
        }
    )
    store.set_meta(HISTORY_META, json.dumps(history[-HISTORY_KEEP:]))
    return IngestQuality(rejection, duplicates, volume, fresh, flags)
