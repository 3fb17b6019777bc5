"""The covered text of an entry: the fast builder equals canonical JSON, times normalise."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.audit.entry_hash import (
    canonical_entry,
    compute_row_hash,
    format_time,
    hash_fields,
    stored_time_text,
)

TEXT = st.text(max_size=30)
OPTIONAL = st.none() | TEXT


@given(
    seq=st.integers(min_value=1, max_value=2**40), actor=TEXT, role=TEXT, action=TEXT,
    purpose=OPTIONAL, outcome=TEXT, commitment=OPTIONAL, detail=TEXT,
    at=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                    timezones=st.just(UTC)),
)  # fmt: skip
def test_hash_fields_equals_sha256_of_sorted_json(
    seq: int, actor: str, role: str, action: str, purpose: str | None, outcome: str,
    commitment: str | None, detail: str, at: datetime,
) -> None:  # fmt: skip
    row = {
        "seq": seq, "at": at, "actor": actor, "role": role, "action": action,
        "purpose": purpose, "outcome": outcome, "subject_commitment": commitment,
        "detail_json": detail, "prev_hash": "ab" * 32,
    }  # fmt: skip
    reference = json.dumps(
        {**{k: v for k, v in row.items() if k != "prev_hash"}, "at": format_time(at)},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )  # fmt: skip
    expected = hashlib.sha256(("ab" * 32 + reference).encode()).hexdigest()
    assert canonical_entry(row) == reference
    assert compute_row_hash(row) == expected
    fast = hash_fields("ab" * 32, seq, format_time(at), actor, role, action, purpose, outcome,
                       commitment, detail)  # fmt: skip
    assert fast == expected


@pytest.mark.parametrize(
    "stored",
    [
        "2026-11-20 09:00:00.000000",  # SQLite text (SQLAlchemy's format)
        "2026-11-20T09:00:00",  # another text shape
        datetime(2026, 11, 20, 9, 0),  # naive UTC
        datetime(2026, 11, 20, 17, 0, tzinfo=timezone(timedelta(hours=8))),  # PostgreSQL, +08
    ],
)
def test_stored_time_text_every_shape_gives_the_covered_form(stored: object) -> None:
    assert stored_time_text(stored) == "2026-11-20T09:00:00.000000+00:00"


def test_stored_time_text_not_a_time_is_returned_unchanged() -> None:
    assert stored_time_text("yesterday") == "yesterday"
