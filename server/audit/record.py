"""``AuditRecord``: one audit entry as domain code hands it to an ``AuditSink``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """What happened, before the chain gives it a sequence number and hashes.

    Parameters
    ----------
    actor : str
        Who acted (``edge:<id>``, ``agent``, ``admin``, ``enrollment``).
    role : str
        The actor's role.
    action : str
        An ``AuditAction`` value.
    purpose : str or None
        Purpose stated by the request, if any.
    subject : str or None
        The subject's pseudonym, if the action concerns one (stored as a salted commitment
        plus the erasable pseudonym and salt).
    outcome : str
        An ``AuditOutcome`` value.
    detail : Mapping[str, object]
        Ids, counts, field names and reason codes; never values or pseudonyms.
    at : datetime
        When it happened (timezone-aware).
    """

    actor: str
    role: str
    action: str
    purpose: str | None
    subject: str | None
    outcome: str
    detail: Mapping[str, object] = field(default_factory=dict)
    at: datetime
