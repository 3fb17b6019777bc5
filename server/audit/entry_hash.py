"""What an audit entry's hash covers, and how it is computed.

``entry_hash = sha256(prev_hash || canonical_json(covered fields))`` where the covered fields
are :data:`HASHED_COLUMNS` and canonical JSON has sorted keys, no spaces, non-ASCII kept as
UTF-8 and ``at`` as a UTC ISO time with microseconds. The subject is covered only through its
salted commitment ``sha256(salt || pseudonym)``, so erasure may null the stored pseudonym and
salt without breaking the chain.

:func:`compute_row_hash` builds the canonical text directly (the key order is fixed) rather
than through ``json.dumps(..., sort_keys=True)``; the output is byte-for-byte the same (a test
compares the two on random entries) and verifying a million entries is about twice as fast.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from json.encoder import encode_basestring  # type: ignore[attr-defined,unused-ignore]
from typing import Any

from ..tables.audit_entry import AuditEntry

_PSEUDONYM_RE = re.compile(r"ps_[0-9a-f]{64}")

#: Columns covered by ``entry_hash`` besides ``prev_hash`` (``subject_ref``/``subject_salt``
#: are not, so erasure can null them).
HASHED_COLUMNS = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "purpose",
    "outcome",
    "subject_commitment",
    "detail_json",
)


def subject_commitment(salt: str, subject: str) -> str:
    """Return ``sha256(bytes(salt) || pseudonym)`` as hex.

    Parameters
    ----------
    salt : str
        Hex-encoded random salt (16 bytes).
    subject : str
        The subject's pseudonym.

    Returns
    -------
    str
        64 hex digits.
    """
    return hashlib.sha256(bytes.fromhex(salt) + subject.encode("ascii")).hexdigest()


def canonical_detail(detail: Mapping[str, object]) -> str:
    """Serialise ``detail`` as canonical JSON (sorted keys, no spaces, no NaN).

    Parameters
    ----------
    detail : Mapping[str, object]
        Ids, counts, field names and reason codes.

    Returns
    -------
    str
        The canonical JSON text.

    Raises
    ------
    ValueError
        If ``detail`` is not JSON-serialisable or carries a pseudonym (subjects belong in
        the ``subject`` argument, where erasure can reach them).
    """
    try:
        text = json.dumps(
            dict(detail), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"audit detail must be plain JSON ({type(exc).__name__})") from None
    if _PSEUDONYM_RE.search(text):
        raise ValueError("audit detail must not carry pseudonyms; pass the subject separately")
    return text


def _text(value: str | None) -> str:
    """JSON text of an optional string (``null`` for None)."""
    return "null" if value is None else str(encode_basestring(value))


def format_time(at: datetime) -> str:
    """Return ``at`` as the covered text: UTC, ISO 8601, microseconds.

    Parameters
    ----------
    at : datetime
        A timezone-aware time.

    Returns
    -------
    str
        For example ``2026-11-20T09:00:00.000000+00:00``.
    """
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_entry(row: Mapping[str, Any]) -> str:
    """Return the canonical JSON text of an entry's covered fields.

    Parameters
    ----------
    row : Mapping[str, Any]
        The :data:`HASHED_COLUMNS` (``at`` timezone-aware, ``seq`` an int).

    Returns
    -------
    str
        Same text as ``json.dumps`` with sorted keys, ``(",", ":")`` separators and
        ``ensure_ascii=False``.
    """
    return (
        f'{{"action":{_text(row["action"])},"actor":{_text(row["actor"])},'
        f'"at":"{format_time(row["at"])}","detail_json":{_text(row["detail_json"])},'
        f'"outcome":{_text(row["outcome"])},"purpose":{_text(row["purpose"])},'
        f'"role":{_text(row["role"])},"seq":{int(row["seq"])},'
        f'"subject_commitment":{_text(row["subject_commitment"])}}}'
    )


def compute_row_hash(row: Mapping[str, Any]) -> str:
    """Return the hash of an entry given as a column mapping, chained to its ``prev_hash``.

    Parameters
    ----------
    row : Mapping[str, Any]
        ``prev_hash`` and the :data:`HASHED_COLUMNS` (``at`` timezone-aware).

    Returns
    -------
    str
        ``sha256(prev_hash || canonical JSON of the covered fields)`` as hex.
    """
    return hashlib.sha256((row["prev_hash"] + canonical_entry(row)).encode("utf-8")).hexdigest()


def compute_entry_hash(entry: AuditEntry) -> str:
    """Return the hash of ``entry`` chained to its ``prev_hash``.

    Parameters
    ----------
    entry : AuditEntry
        The entry (``subject_ref`` and ``subject_salt`` are not covered).

    Returns
    -------
    str
        ``sha256(prev_hash || canonical JSON of the covered fields)`` as hex.
    """
    return compute_row_hash({name: getattr(entry, name) for name in (*HASHED_COLUMNS, "prev_hash")})
