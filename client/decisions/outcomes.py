"""Contact outcomes in, per-arm daily totals out: what an edge reports for experiments.

A contact centre exports one line per contact it handled under an experiment (JSONL or CSV):
``experiment``, ``arm`` (both from the decision's answer), ``at`` (ISO 8601 with a timezone),
``first_response_s``, ``resolved`` (at first contact), ``transferred`` (to a human or another
queue) and optionally ``order_value`` and ``retained_30d``. The edge sums them per experiment,
arm and UTC day and sends only the totals (:class:`models.decisions.OutcomeTotals`). A cell
with fewer than ``min_cell`` contacts is held back, so no total describes a handful of
people; a re-sent day replaces the earlier totals on the server, so give each run the whole
day (a file per day, or a cumulative export). A bad line is reported by number and skipped;
the rest go on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.decisions import OutcomeTotals

from ..errors import InputFileError
from ..readers import RawRecord, reader_for

#: Fewest contacts an uploaded cell may describe (edge default).
DEFAULT_MIN_CELL = 10


class ContactOutcome(BaseModel):
    """One handled contact's outcome (a line of the outcome file)."""

    model_config = ConfigDict(extra="ignore")

    experiment: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    arm: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    at: datetime
    first_response_s: float = Field(ge=0.0, le=30 * 86400)
    resolved: bool
    transferred: bool
    order_value: float = Field(default=0.0, ge=0.0, le=1e9)
    retained_30d: bool | None = None

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("at needs a timezone, e.g. 2026-12-07T09:30:00+08:00")
        return value


@dataclass
class _Cell:
    contacts: int = 0
    resolved: int = 0
    transferred: int = 0
    first_sum: float = 0.0
    first_sq: float = 0.0
    value_sum: float = 0.0
    value_sq: float = 0.0
    retained: int = 0
    retention_known: int = 0

    def add(self, line: ContactOutcome) -> None:
        self.contacts += 1
        self.resolved += line.resolved
        self.transferred += line.transferred
        self.first_sum += line.first_response_s
        self.first_sq += line.first_response_s**2
        self.value_sum += line.order_value
        self.value_sq += line.order_value**2
        if line.retained_30d is not None:
            self.retention_known += 1
            self.retained += line.retained_30d


@dataclass
class OutcomeSummary:
    """What an outcome file gave: the totals to send and what was held back or refused."""

    totals: list[OutcomeTotals] = field(default_factory=list)
    lines: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    held_back_cells: int = 0
    held_back_contacts: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-ready data (line numbers and reasons, never values)."""
        return {
            "lines": self.lines, "cells": len(self.totals),
            "contacts": sum(t.contacts for t in self.totals),
            "held_back_cells": self.held_back_cells,
            "held_back_contacts": self.held_back_contacts,
            "rejected": [{"line": n, "reason": r} for n, r in self.rejected],
        }  # fmt: skip


def _parse(record: RawRecord) -> ContactOutcome:
    if record.problem is not None:
        raise ValueError(record.problem)
    payload = record.payload
    data = json.loads(payload) if isinstance(payload, bytes) else dict(payload)
    if not isinstance(data, dict):
        raise ValueError("a line must be a JSON object")
    return ContactOutcome.model_validate(data)


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors(include_input=False)[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(error)[:200]


def read_outcomes(path: Path) -> Iterator[tuple[int, ContactOutcome | str]]:
    """Yield ``(line number, outcome or the reason it was refused)`` for every record.

    Raises
    ------
    InputFileError
        If the file cannot be read at all (missing, unknown suffix).
    """
    if not path.is_file():
        raise InputFileError(path, "no such file")
    try:
        reader = reader_for(path)
    except ValueError as error:
        raise InputFileError(path, str(error)) from None
    for record in reader(path):
        try:
            yield record.number, _parse(record)
        except ValueError as error:  # json.JSONDecodeError is one
            yield record.number, _reason(error)


def summarize(
    lines: Iterable[tuple[int, ContactOutcome | str]], *, min_cell: int = DEFAULT_MIN_CELL
) -> OutcomeSummary:
    """Sum the outcomes per experiment, arm and UTC day; hold back cells below ``min_cell``."""
    cells: dict[tuple[str, str, str], _Cell] = {}
    summary = OutcomeSummary()
    for number, line in lines:
        summary.lines += 1
        if isinstance(line, str):
            summary.rejected.append((number, line))
            continue
        day = line.at.astimezone(UTC).date().isoformat()
        cells.setdefault((line.experiment, line.arm, day), _Cell()).add(line)
    for (experiment, arm, day), cell in sorted(cells.items()):
        if cell.contacts < min_cell:
            summary.held_back_cells += 1
            summary.held_back_contacts += cell.contacts
            continue
        summary.totals.append(
            OutcomeTotals(
                experiment=experiment, arm=arm, day=day, contacts=cell.contacts,
                resolved=cell.resolved, transferred=cell.transferred,
                first_response_sum=cell.first_sum, first_response_sumsq=cell.first_sq,
                order_value_sum=cell.value_sum, order_value_sumsq=cell.value_sq,
                retained=cell.retained, retention_known=cell.retention_known,
            )
        )  # fmt: skip
    return summary


def upload_outcomes(
    summary: OutcomeSummary,
    *,
    settings: Any,
    transport: Any = None,
) -> int:
    """Send the summary's totals to ``POST /edges/me/outcomes`` in batches of 1,000.

    Raises
    ------
    EdgeConfigError
        If the edge is not registered.
    ServerUnavailableError
        If the server cannot be reached.
    UploadRefusedError
        If the server refuses the totals.
    """
    import httpx

    from ..credentials import load_credentials
    from ..errors import EdgeConfigError, ServerUnavailableError, UploadRefusedError
    from ..server_http import server_client

    credential = load_credentials(settings.credentials_path)
    if credential is None:
        raise EdgeConfigError(
            "the edge is not registered; run 'fedprofile edge sync' with an enrollment token"
        )
    stored = 0
    with server_client(settings, transport=transport, token=credential.token) as http:
        for start in range(0, len(summary.totals), 1000):
            batch = summary.totals[start : start + 1000]
            body = {"totals": [t.model_dump() for t in batch]}
            try:
                response = http.post("/edges/me/outcomes", json=body)
            except httpx.HTTPError as error:
                raise ServerUnavailableError(settings.server_url) from error
            if response.status_code != 200:
                raise UploadRefusedError(
                    f"the server refused the outcome totals ({response.status_code})",
                    status=response.status_code,
                )
            stored += int(response.json()["stored"])
    return stored
